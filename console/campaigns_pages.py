"""The campaigns page: every campaign with its 30-day counts, start / pause / stop, and a form
to create one (the same checks as the API: dialer/campaigns.py's `spec_from`)."""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from console import i18n
from console.campaigns_api import campaign_id_of, campaigns_with_counts, change_campaign
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.pages import locale_of, read_form, render
from dialer import campaign_store
from dialer.campaigns import DEFAULT_PHONE_ORDER, MOVES, RELATIONS, VERBS, CampaignError, Mode, Status, spec_from
from people.roles import Permission, may

P = Permission


async def campaigns_page(request: web.Request, *, message: str | None = None, error: bool = False,
                         status: int = 200, form: dict[str, str] | None = None) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    campaigns = [with_verbs(c) for c in await campaigns_with_counts(deps)]
    return render(request, "campaigns.html", status=status, message=message, error=error, campaigns=campaigns,
                  can_manage=may(who.role, P.CAMPAIGN_MANAGE), modes=[m.value for m in Mode],
                  relations=RELATIONS, default_order=DEFAULT_PHONE_ORDER, form=form or {})


def _ids(text: str, field: str) -> list[int]:
    parts = [p.strip() for p in text.replace("，", ",").split(",") if p.strip()]
    if not all(p.isascii() and p.isdigit() and len(p) <= 9 for p in parts):
        raise CampaignError(f"{field}: ids separated by commas")
    return [int(p) for p in parts]


def body_of(form: dict[str, str]) -> dict[str, Any]:
    """The form as the API's JSON body (so both go through one set of checks)."""
    selection: dict[str, Any] = {}
    if form.get("batches", "").strip():
        selection["batches"] = _ids(form["batches"], "batches")
    segments = [p.strip() for p in form.get("segments", "").replace("，", ",").split(",") if p.strip()]
    if segments:
        selection["segments"] = segments
    hours = form.get("retry_hours", "4").strip()
    if not hours.isascii() or not hours.isdigit() or len(hours) > 4:
        raise CampaignError("retry_spacing_s: whole hours")
    body: dict[str, Any] = {"name": form.get("name", "").strip(), "mode": form.get("mode", ""),
                            "selection": selection, "retry_spacing_s": int(hours) * 3600,
                            "phone_order": [r for r in RELATIONS if form.get(f"order_{r}")],
                            "amd": bool(form.get("amd"))}
    if form.get("client", "").strip():
        body["client"] = form["client"].strip()
    return body


async def create_form(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    form = await read_form(request)
    try:
        spec = spec_from(body_of(form))
        async with deps.db.session() as s:
            campaign = await campaign_store.create(s, spec, by=who.username, now=deps.clock())
    except CampaignError as exc:
        return await campaigns_page(request, message=t("error", message=str(exc)), error=True, status=400, form=form)
    return await campaigns_page(request, message=t("campaigns.created", name=campaign.name))


async def change_from_form(request: web.Request, page: Callable[..., Awaitable[web.Response]]) -> web.Response:
    """Start / pause / stop from a page's button (this page's, the wallboard's); `page` renders
    the page again with the outcome."""
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    await read_form(request)  # the CSRF token is the guard's; nothing else is read
    verb = request.match_info["action"]
    try:
        if verb not in VERBS:
            raise web.HTTPNotFound(text=verb)
        campaign = await change_campaign(deps, who, campaign_id_of(request), verb)
    except web.HTTPException as exc:
        return await page(request, message=t("error", message=exc.text or exc.reason), error=True, status=exc.status)
    return await page(request, message=t("campaigns.changed", name=campaign.name,
                                         status=t(f"campaign.status.{campaign.status}")))


def with_verbs(campaign: dict[str, Any]) -> dict[str, Any]:
    """A campaign as listed, with the moves its status allows (the buttons)."""
    return campaign | {"verbs": [v for v, target in VERBS.items() if target in MOVES[Status(campaign["status"])]]}


async def action_form(request: web.Request) -> web.Response:
    return await change_from_form(request, campaigns_page)


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    _page("GET", "/campaigns", campaigns_page, P.FLOOR_VIEW, "Campaigns"),
    _page("POST", "/campaigns", create_form, P.CAMPAIGN_MANAGE, "Create a campaign (form)"),
    _page("POST", "/campaigns/{campaign_id}/{action}", action_form, P.CAMPAIGN_MANAGE,
          "Start, pause or stop a campaign (form)", params=(Param("campaign_id", "path", {"type": "string"}),
                                                           Param("action", "path", {"type": "string"}))),
]
