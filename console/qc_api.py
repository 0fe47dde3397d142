"""Quality control over the API (cases/qc_store.py samples, stores, ledgers and audits):

    POST /api/qc/samples  {"week": "2026-W49", "size"?, "seed"?}  the week's samples (qc.score)
    GET  /api/qc/queue?week=&state=pending|scored                  the QC queue (qc.score)
    GET  /api/qc/items/{qc_item_id}                                one item: its call and scores (qc.view)
    POST /api/qc/items/{qc_item_id}/score  {"items": {...}, "comments"?, "revises"?}  (qc.score)
    GET  /api/qc/items/{qc_item_id}/audio?leg=mixed|rx|tx         a scored call's audio (qc.view)
    GET  /api/qc/scores?week=&collector=                           the current scores (qc.view)
    GET  /api/qc/report?from=&to=                                  per collector (qc.view)

`qc.view` reaches as the role's case reach does (people/roles.py): a collector their own
scores, a team lead their team's, QC and supervisors everyone's; an item beyond the reader's
reach is "not found". QC listens to an item's call through the recordings API
(console/recordings_api.py) with the reason `qc`; a collector or lead plays a *scored* call
of theirs here, ledgered the same way (an `access` entry, why `qc`). Refusals are 400 with
the problem worded in English (the pages word it in the reader's language).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import qc_store
from cases.qc import (COMMENTS_MAX, ITEM_KEYS, MAX_SAMPLE_SIZE, RESULTS, SEED_MAX, QcRefused)
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param, json_object
from console.params import id_number_of
from console.recordings_api import stream_wav
from console.scope import phone_shown
from people.accounts import Principal
from people.roles import Permission, Reach, reach
from recorder.retrieval import open_audio
from recorder.retrieval_query import AUDIO_LEGS, AudioUnavailable, InvalidRequest, NotFound, Requester
from storage import repositories as repo
from storage.names import recording_subject

QC_REASON = "qc"  # why every QC play of a recording is in the ledger

SAMPLE_BODY = {
    "type": "object", "additionalProperties": False, "required": ["week"],
    "properties": {
        "week": {"type": "string", "pattern": r"^[0-9]{4}-W[0-9]{2}$",
                 "description": "the ISO week, on the floor's clock (Asia/Shanghai)"},
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_SAMPLE_SIZE,
                 "description": "calls per collector (default: settings qc.sample_size, 5)"},
        "seed": {"type": "string", "pattern": r"^[0-9A-Za-z._:-]{1,64}$", "maxLength": SEED_MAX,
                 "description": "the sample's seed (default: derived from the week)"},
    },
}
SCORE_BODY = {
    "type": "object", "additionalProperties": False, "required": ["items"],
    "properties": {
        "items": {"type": "object", "additionalProperties": False, "required": list(ITEM_KEYS),
                  "properties": {key: {"type": "string", "enum": list(RESULTS)} for key in ITEM_KEYS},
                  "description": "every scorecard item: pass, fail or na (not applicable)"},
        "comments": {"type": "string", "maxLength": COMMENTS_MAX,
                     "description": "what the collector should know (needed when an item fails)"},
        "revises": {"type": "integer", "minimum": 1, "description": "the item's current score, revised"},
    },
}


def qc_scope(who: Principal) -> qc_store.QcScope:
    """Whose QC the reader sees: their case reach, applied to collectors."""
    match reach(who.role):
        case Reach.ALL:
            return qc_store.ALL
        case Reach.OWN:
            return qc_store.QcScope(user_id=who.user_id)
        case Reach.TEAM:
            return qc_store.QcScope(team_id=who.team_id) if who.team_id is not None else qc_store.NOBODY
    return qc_store.NOBODY


def refusal_text(exc: QcRefused, locale: str) -> str:
    """The refusal in the reader's language (the API answers in English), an item by its name."""
    t = i18n.translator(locale)
    values = dict(exc.values)
    if values.get("item") in ITEM_KEYS:
        values["item"] = t(f"qc.item.{values['item']}")
    return t(f"qc.problem.{exc.key}", **values)


def refused(exc: QcRefused) -> web.HTTPException:
    text = refusal_text(exc, "en")
    if exc.key in ("week_not_over", "scored_already"):
        return web.HTTPConflict(text=text)
    return web.HTTPBadRequest(text=text)


def item_id_of(request: web.Request) -> int:
    item_id = id_number_of(request.match_info["qc_item_id"])
    if item_id is None:
        raise web.HTTPNotFound(text="no such QC item")
    return item_id


async def make_samples(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, SAMPLE_BODY)
    try:
        done = await qc_store.create_samples(deps.db, deps.clock, body.get("week"), by=who.username,
                                             size=body.get("size"), seed=body.get("seed"),
                                             default_size=deps.qc_sample_size)
    except QcRefused as exc:
        raise refused(exc) from None
    return web.json_response(done.as_json(), status=201 if done.created else 200)


def _week_query(request: web.Request, name: str = "week") -> Any:
    try:
        return qc_store.week_or_none(request.query.get(name))
    except QcRefused:
        raise web.HTTPBadRequest(text=f"{name}: an ISO week, e.g. 2026-W49") from None


async def queue(request: web.Request) -> web.Response:
    state = request.query.get("state") or None
    if state not in (None, "pending", "scored"):
        raise web.HTTPBadRequest(text="state: pending or scored")
    rows = await qc_store.queue(request.app[DEPS].db, week=_week_query(request), state=state)
    return web.json_response({"items": [r.as_json() for r in rows]})


async def load_item(request: web.Request, who: Principal, *, page: bool = False) -> qc_store.ItemView:
    """The item within the reader's reach, its reading audited (404 otherwise)."""
    deps = request.app[DEPS]
    try:
        view = await qc_store.item(deps.db, item_id_of(request), qc_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text="no such QC item") from None
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="qc.item.viewed",
                         subject=recording_subject(view.attempt_id), item_id=view.item_id, case_id=view.case_id,
                         **({"page": True} if page else {}))
    return view


async def get_item(request: web.Request) -> web.Response:
    who = principal(request)
    view = await load_item(request, who)
    return web.json_response(view.as_json(phone_shown(who, view.number)))


async def score_item(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    item_id = item_id_of(request)
    body = await json_object(request, SCORE_BODY)
    if deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the ledger is not configured: a score is kept only with its entry")
    items = body.get("items")
    try:
        saved = await qc_store.save_score(deps.db, deps.ledger, deps.clock, item_id,
                                          items if isinstance(items, dict) else {}, body.get("comments"),
                                          by=who.username, revises=body.get("revises"))
    except LookupError:
        raise web.HTTPNotFound(text="no such QC item") from None
    except QcRefused as exc:
        raise refused(exc) from None
    return web.json_response(saved.as_json(), status=201)


async def item_audio(request: web.Request) -> web.StreamResponse:
    """A scored item's call, for whoever may read its score (each play a ledgered access)."""
    who, deps = principal(request), request.app[DEPS]
    leg = request.query.get("leg", "mixed")
    if leg not in AUDIO_LEGS:
        raise web.HTTPBadRequest(text=f"leg: one of {', '.join(AUDIO_LEGS)}")
    if deps.store is None or deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the recording archive is not configured")
    try:
        view = await qc_store.item(deps.db, item_id_of(request), qc_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text="no such QC item") from None
    if view.current is None:
        raise web.HTTPNotFound(text="this QC item is not scored yet")
    try:
        _, handle = await open_audio(deps.db, deps.store, deps.ledger, view.attempt_id, leg,
                                     Requester.of(who.username, QC_REASON))
    except InvalidRequest as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    except NotFound as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except AudioUnavailable as exc:
        raise web.HTTPGone(text=str(exc)) from None
    return await stream_wav(request, handle, f"{view.attempt_id}-{leg}.wav")


async def audited_scores(request: web.Request, who: Principal, *, page: bool = False,
                         week: Any = None) -> list[tuple[qc_store.ScoreView, str]]:
    """The current scores within the reader's reach (and `collector`, a user name, if asked),
    their reading audited."""
    deps = request.app[DEPS]
    collector_id = None
    name = (request.query.get("collector") or "").strip()[:32]
    if name:
        users = {u.username: u.id for u in await deps.accounts.users()}
        collector_id = users.get(name, -1)
    rows = await qc_store.scores(deps.db, qc_scope(who), week=week, collector_user_id=collector_id)
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="qc.scores.viewed", subject="qc",
                         scores=[sc.id for sc, _ in rows], **({"page": True} if page else {}))
    return rows


async def list_scores(request: web.Request) -> web.Response:
    who = principal(request)
    rows = await audited_scores(request, who, week=_week_query(request))
    return web.json_response({"scores": [{**sc.as_json(), "collector_name": name} for sc, name in rows]})


async def qc_report(request: web.Request) -> web.Response:
    who = principal(request)
    rows = await qc_store.report(request.app[DEPS].db, qc_scope(who), from_week=_week_query(request, "from"),
                                 to_week=_week_query(request, "to"))
    return web.json_response({"collectors": [r.as_json() for r in rows], "items": list(ITEM_KEYS)})


ITEM = Param("qc_item_id", "path", {"type": "string", "pattern": "^[0-9]{1,12}$"})
WEEK = Param("week", "query", {"type": "string"}, description="an ISO week, e.g. 2026-W49")
TAGS = ("qc",)
P = Permission

ENDPOINTS = [
    Endpoint("POST", "/api/qc/samples", make_samples, P.QC_SCORE,
             "Draw a week's QC sample of every collector's recorded calls (a re-run changes nothing)",
             body=SAMPLE_BODY, tags=TAGS,
             responses={201: "samples made (with those already there)", 200: "all were there already: nothing changed",
                        409: "the week is not over yet"}),
    Endpoint("GET", "/api/qc/queue", queue, P.QC_SCORE, "The QC queue: pending items first", tags=TAGS,
             params=(WEEK, Param("state", "query", {"type": "string", "enum": ["pending", "scored"]})),
             responses={200: "the queue's items"}),
    Endpoint("GET", "/api/qc/items/{qc_item_id}", get_item, P.QC_VIEW, "A QC item: its call and its scores",
             params=(ITEM,), tags=TAGS, responses={200: "the item", 404: "no such item (or not within your reach)"}),
    Endpoint("POST", "/api/qc/items/{qc_item_id}/score", score_item, P.QC_SCORE,
             "Score a QC item (stored with its ledger entry); a second score revises the current one",
             params=(ITEM,), body=SCORE_BODY, tags=TAGS,
             responses={201: "the score", 400: "the scorecard is refused: why (nothing stored)",
                        404: "no such item", 409: "the item is scored already: revise its current score",
                        503: "no ledger wired to this service"}),
    Endpoint("GET", "/api/qc/items/{qc_item_id}/audio", item_audio, P.QC_VIEW,
             "A scored QC item's call (WAV; the play is a ledgered access, reason qc)",
             params=(ITEM, Param("leg", "query", {"enum": list(AUDIO_LEGS)})), tags=TAGS, produces="audio/wav",
             responses={200: "the WAV", 404: "no such scored item (or not within your reach)",
                        410: "purged or missing in the store", 503: "no recording archive wired to this service"}),
    Endpoint("GET", "/api/qc/scores", list_scores, P.QC_VIEW,
             "The current QC scores within your reach (a collector: their own), with comments",
             params=(WEEK, Param("collector", "query", {"type": "string"}, description="a collector's user name")),
             tags=TAGS, responses={200: "the scores"}),
    Endpoint("GET", "/api/qc/report", qc_report, P.QC_VIEW,
             "The QC report per collector within your reach: sampled, scored, average total, fails by item",
             params=(Param("from", "query", {"type": "string"}, description="first ISO week (inclusive)"),
                     Param("to", "query", {"type": "string"}, description="last ISO week (inclusive)")),
             tags=TAGS, responses={200: "the report"}),
]
