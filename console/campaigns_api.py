"""Campaigns in the console (dialer/campaigns.py: the rules; dialer/campaign_engine.py: the
dialling).

    GET  /api/campaigns                   every campaign with its counts: the last 30 days and
                                          today (placed, answered, abandoned, abandon rate)
    POST /api/campaigns                   create one (a draft: nothing is dialled until started)
    GET  /api/campaigns/{id}              one, with its counts
    POST /api/campaigns/{id}/{action}     start | pause | stop (audited campaign.<action>)
    POST /api/campaigns/{id}/next         preview: the campaign's next case for me, held for me
                                          for PREVIEW_HOLD_S; I dial it from its page
                                          (POST /api/cases/{case}/dial?campaign={id})
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from console.deps import DEPS, ConsoleDeps, principal
from console.i18n import DISPLAY_ZONE
from console.endpoints import Endpoint, Param
from console.scope import case_scope
from dialer import campaign_store
from dialer.campaigns import VERBS, CampaignError, Mode, Status, spec_from
from dialer.pacing.snapshot import CallCounts
from people.roles import Permission
from storage.campaigns import Campaign

P = Permission
PREVIEW_HOLD_S = 300.0
PREVIEW_HOLDS = web.AppKey("campaign_preview_holds", dict)  # case id -> (username, until)


def counts_json(counts: CallCounts) -> dict[str, Any]:
    return {"placed": counts.placed, "answered": counts.answered, "abandoned": counts.abandoned,
            "abandon_rate": round(counts.rate, 4)}


async def campaigns_with_counts(deps: ConsoleDeps, *, include_stopped: bool = True) -> list[dict[str, Any]]:
    """Every campaign with its 30-day and today's counts (the API and the wallboard)."""
    now = deps.clock()
    # today: since midnight on the floor's clock (the one the console shows times in)
    midnight = now.astimezone(DISPLAY_ZONE).replace(hour=0, minute=0, second=0, microsecond=0)
    async with deps.db.session() as s:
        campaigns = await campaign_store.all_campaigns(s, include_stopped=include_stopped)
        ids = [c.id for c in campaigns]
        window = await campaign_store.window_counts(s, ids, now)
        today = await campaign_store.counts(s, ids, midnight)
    return [campaign_store.campaign_json(c) | {"window": counts_json(window[c.id]), "today": counts_json(today[c.id]),
                                               "target_met": window[c.id].rate <= c.target_abandon_rate}
            for c in campaigns]


def campaign_id_of(request: web.Request) -> int:
    raw = request.match_info["campaign_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise web.HTTPNotFound(text="no such campaign")
    return int(raw)


async def list_campaigns(request: web.Request) -> web.Response:
    return web.json_response({"campaigns": await campaigns_with_counts(request.app[DEPS])})


async def get_campaign(request: web.Request) -> web.Response:
    wanted = campaign_id_of(request)
    found = [c for c in await campaigns_with_counts(request.app[DEPS]) if c["id"] == wanted]
    if not found:
        raise web.HTTPNotFound(text=f"no campaign {wanted}")
    return web.json_response(found[0])


async def create_campaign(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="expected a JSON object (a campaign)") from None
    try:
        spec = spec_from(body)
        async with deps.db.session() as s:
            campaign = await campaign_store.create(s, spec, by=who.username, now=deps.clock())
    except CampaignError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response(campaign_store.campaign_json(campaign), status=201)


async def change_campaign(deps: ConsoleDeps, who: Any, campaign_id: int, verb: str) -> Campaign:
    """Start / pause / stop (the API and the wallboard's buttons): 404, or 409 for a move the
    campaign's status does not allow."""
    try:
        async with deps.db.session() as s:
            return await campaign_store.change_status(s, campaign_id, verb, by=who.username, now=deps.clock())
    except campaign_store.NoSuchCampaign:
        raise web.HTTPNotFound(text=f"no campaign {campaign_id}") from None
    except CampaignError as exc:
        raise web.HTTPConflict(text=str(exc)) from None


async def campaign_action(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    verb = request.match_info["action"]
    if verb not in VERBS:
        raise web.HTTPNotFound(text=f"no such action: one of {', '.join(VERBS)}")
    campaign = await change_campaign(deps, who, campaign_id_of(request), verb)
    return web.json_response(campaign_store.campaign_json(campaign))


async def preview_next(request: web.Request) -> web.Response:
    """The next case of a running preview campaign for me (within my reach), held for me a while
    so that two collectors do not preview the same case."""
    who, deps = principal(request), request.app[DEPS]
    campaign_id = campaign_id_of(request)
    now: datetime = deps.clock()
    holds: dict[str, tuple[str, datetime]] = request.app[PREVIEW_HOLDS]
    for case_id, (_, until) in list(holds.items()):
        if until <= now:
            del holds[case_id]
    async with deps.db.session() as s:
        try:
            campaign = await campaign_store.get(s, campaign_id)
        except campaign_store.NoSuchCampaign:
            raise web.HTTPNotFound(text=f"no campaign {campaign_id}") from None
        if campaign.mode != Mode.PREVIEW.value or campaign.status != Status.RUNNING.value:
            raise web.HTTPConflict(text=f"campaign {campaign.name} is not a running preview campaign")
        others = {case for case, (user, _) in holds.items() if user != who.username}
        found = await campaign_store.candidates(s, campaign, now, limit=1, exclude=others,
                                                where=(case_scope(who).criteria(),))
    if not found:
        raise web.HTTPNotFound(text="no case of this campaign is due for you now")
    case_id = found[0].case_id
    holds[case_id] = (who.username, now + timedelta(seconds=PREVIEW_HOLD_S))
    return web.json_response({"campaign": campaign_id, "case_id": case_id, "phone": found[0].phone_id,
                              "href": f"/cases/{case_id}", "dial": f"/api/cases/{case_id}/dial?phone="
                              f"{found[0].phone_id}&campaign={campaign_id}"})


CAMPAIGN = Param("campaign_id", "path", {"type": "string", "pattern": "^[0-9]{1,9}$"})
ACTION = Param("action", "path", {"type": "string", "enum": list(VERBS)})
CAMPAIGN_BODY = {"type": "object", "required": ["name", "mode"], "additionalProperties": False,
                 "properties": {
                     "name": {"type": "string", "maxLength": 64},
                     "mode": {"type": "string", "enum": [m.value for m in Mode]},
                     "client": {"type": "string", "maxLength": 64},
                     "selection": {"type": "object", "description": "batches, teams, collectors (ids); "
                                   "min_amount_cents, max_amount_cents, min_overdue_days, max_overdue_days; "
                                   "segments, regions"},
                     "phone_order": {"type": "array", "items": {"type": "string"}},
                     "retry_spacing_s": {"type": "integer", "minimum": 1},
                     "caller_ids": {"type": "array", "items": {"type": "string"}},
                     "amd": {"type": "boolean"},
                     "target_abandon_rate": {"type": "number", "minimum": 0, "maximum": 0.03}}}

ENDPOINTS = [
    Endpoint("GET", "/api/campaigns", list_campaigns, P.FLOOR_VIEW, "Campaigns with their 30-day and today's counts",
             tags=("campaigns",), responses={200: "the campaigns"}),
    Endpoint("POST", "/api/campaigns", create_campaign, P.CAMPAIGN_MANAGE, "Create a campaign (a draft)",
             body=CAMPAIGN_BODY, tags=("campaigns",),
             responses={201: "the campaign", 400: "what is wrong with it (a name taken, a field out of range)"}),
    Endpoint("GET", "/api/campaigns/{campaign_id}", get_campaign, P.FLOOR_VIEW, "A campaign with its counts",
             params=(CAMPAIGN,), tags=("campaigns",), responses={200: "the campaign", 404: "no such campaign"}),
    Endpoint("POST", "/api/campaigns/{campaign_id}/next", preview_next, P.FLOOR_WORK,
             "Preview: the campaign's next case for me (held for me for 5 minutes)", params=(CAMPAIGN,),
             tags=("campaigns",), responses={200: "the case and how to dial it", 404: "no such campaign, or no case due",
                                             409: "not a running preview campaign"}),
    Endpoint("POST", "/api/campaigns/{campaign_id}/{action}", campaign_action, P.CAMPAIGN_MANAGE,
             "Start, pause or stop a campaign (a paused or stopped one places no new call)",
             params=(CAMPAIGN, ACTION), tags=("campaigns",),
             responses={200: "the campaign as it now stands", 404: "no such campaign or action",
                        409: "the campaign's status does not allow it (a stopped one stays stopped)"}),
]
