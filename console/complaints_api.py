"""Complaints over the API (cases/complaints_store.py checks, stores and audits):

    GET  /api/complaints?status=open|closed|all             the complaints within reach (complaint.manage)
    POST /api/complaints  {"source", "summary", "case_id"?, "collector"?}        -> 201 registered
    GET  /api/complaints/{complaint_id}     the complaint with its case's calls, dispositions, notes,
                                            recordings (references: played through the recordings API,
                                            with a reason, ledgered) and its history
    POST /api/complaints/{complaint_id}/outcome        {"outcome"}     set once, while open
    POST /api/complaints/{complaint_id}/follow-up      {"attempt_id"}  a call placed through
                                            POST /api/cases/{case_id}/dial since registration
    POST /api/complaints/{complaint_id}/close                          with its outcome set
    POST /api/complaints/{complaint_id}/allow-dialing  {"why"}  a supervisor lets the case be dialled
                                            while the complaint is open (complaint.allow_dialing)

Bad input is 400, a change the complaint's state refuses (closed, outcome set already, ...) 409,
a complaint outside the reader's reach 404; nothing is changed then. Free texts (summary,
outcome) show numbers masked to a reader who reads numbers masked.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiohttp import web

from cases import complaints_store as store
from cases.complaints import (OUTCOME_MAX, SOURCES, SUMMARY_MAX, ComplaintRefused, pauses_dialing, stage,
                              time_left)
from cases.refusals import MAX_REASON, MIN_REASON
from console import i18n
from console.deps import DEPS, principal
from console.dispositions_api import dispositions_json
from console.endpoints import Endpoint, Param, json_object
from console.params import id_number_of
from console.scope import case_scope, mask_phone, phone_shown
from people.accounts import Principal
from people.roles import Permission, Role, may, sees_unmasked
from storage import repositories as repo
from storage.complaints import Complaint
from storage.models import ATTEMPT_ID_PATTERN, Attempt, AuditEvent, Recording

P = Permission
# whom a complaint may name as its collector: the people who place calls
CALLER_ROLES = frozenset(r.value for r in Role if may(r, P.CASE_DIAL))
CONFLICTS = frozenset({"closed", "outcome_set", "no_outcome", "allowed_already", "no_case"})
STATUSES = ("open", "closed", "all")
_NUMBER_IN_TEXT = re.compile(r"(?<![0-9])\+?[0-9]{7,}(?![0-9])")  # a phone number written in a text

REGISTER_BODY = {
    "type": "object", "additionalProperties": False, "required": ["source", "summary"],
    "properties": {
        "source": {"type": "string", "enum": list(SOURCES), "description": "who complained"},
        "summary": {"type": "string", "maxLength": SUMMARY_MAX, "description": "what the complaint says"},
        "case_id": {"type": "string", "maxLength": 64, "description": "the case complained about"},
        "collector": {"type": "string", "maxLength": 32, "description": "the collector complained about (user name)"},
    },
}
OUTCOME_BODY = {"type": "object", "additionalProperties": False, "required": ["outcome"],
                "properties": {"outcome": {"type": "string", "maxLength": OUTCOME_MAX}}}
FOLLOW_UP_BODY = {"type": "object", "additionalProperties": False, "required": ["attempt_id"],
                  "properties": {"attempt_id": {"type": "string", "pattern": ATTEMPT_ID_PATTERN.pattern}}}
ALLOW_BODY = {"type": "object", "additionalProperties": False, "required": ["why"],
              "properties": {"why": {"type": "string", "minLength": MIN_REASON, "maxLength": MAX_REASON}}}
COMPLAINT_ID = Param("complaint_id", "path", {"type": "string", "pattern": "^[0-9]{1,12}$"})


def complaint_id_of(request: web.Request) -> int:
    found = id_number_of(request.match_info["complaint_id"])
    if found is None:
        raise web.HTTPNotFound(text="no such complaint")
    return found


def free_text_shown(who: Principal, text: str | None, numbers: Iterable[str] = ()) -> str | None:
    """A person's text (a summary, an outcome) with phone numbers masked for a reader who reads them masked:
    the case's own and anything that looks like one."""
    if text is None or sees_unmasked(who.role):
        return text
    for number in sorted(set(numbers), key=len, reverse=True):
        if number:
            text = text.replace(number, mask_phone(number))
    return _NUMBER_IN_TEXT.sub(lambda m: mask_phone(m.group()), text)


def refusal_text(exc: ComplaintRefused, locale: str) -> str:
    """The refusal in the reader's language (the API answers in English)."""
    return i18n.translator(locale)(f"complaint.problem.{exc.key}", **exc.values)


def refused(exc: ComplaintRefused) -> web.HTTPException:
    text = refusal_text(exc, "en")
    return web.HTTPConflict(text=text) if exc.key in CONFLICTS else web.HTTPBadRequest(text=text)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def complaint_json(c: Complaint, who: Principal, now: datetime, *, collector: str | None,
                   numbers: Iterable[str] = ()) -> dict[str, Any]:
    numbers = list(numbers)
    facts = store.clock_facts(c)
    return {
        "id": c.id, "case_id": c.case_id, "collector": collector, "source": c.source,
        "summary": free_text_shown(who, c.summary, numbers), "registered_at": _iso(c.registered_at),
        "registered_by": c.registered_by, "deadline_at": _iso(c.deadline_at), "stage": stage(facts, now).value,
        "seconds_left": int(time_left(facts, now).total_seconds()), "warned_at": _iso(c.warned_at),
        "overdue_at": _iso(c.overdue_at),
        "dialing_paused": pauses_dialing(c.case_id, c.closed_at, c.dialing_allowed_at),
        "dialing_allowed_by": c.dialing_allowed_by, "dialing_allowed_at": _iso(c.dialing_allowed_at),
        "follow_up_attempt_id": c.follow_up_attempt_id, "outcome": free_text_shown(who, c.outcome, numbers),
        "closed_at": _iso(c.closed_at), "closed_by": c.closed_by,
    }


def call_json(a: Attempt, who: Principal) -> dict[str, Any]:
    return {"id": a.id, "number": phone_shown(who, a.number), "collector": a.collector, "state": a.state,
            "outcome": a.outcome, "created_at": _iso(a.created_at), "answered_at": _iso(a.answered_at),
            "ended_at": _iso(a.ended_at), "bridged_seconds": a.bridged_seconds, "note": a.note}


def recording_json(r: Recording) -> dict[str, Any]:
    """That the call was recorded, and where to ask for it (with who and why, in the ledger)."""
    return {"attempt_id": r.attempt_id, "ended_at": _iso(r.call_ended_at), "duration_s": r.duration_s,
            "flags": list(r.flags or []), "purged": r.purged_at is not None,
            "href": f"/api/recordings/{r.attempt_id}"}


def history_json(e: AuditEvent, who: Principal, numbers: Iterable[str]) -> dict[str, Any]:
    detail = {k: free_text_shown(who, v, numbers) if isinstance(v, str) else v for k, v in (e.detail or {}).items()}
    return {"at": _iso(e.at), "actor": e.actor, "action": e.action, "detail": detail}


def gathered_json(g: store.Gathered, who: Principal, now: datetime) -> dict[str, Any]:
    numbers = g.numbers
    case = g.case
    return {
        **complaint_json(g.complaint, who, now, collector=g.collector.username if g.collector else None,
                         numbers=numbers),
        "case": None if case is None else {"id": case.id, "client": case.client, "debtor_name": case.debtor_name,
                                           "status": case.status, "flags": list(case.flags or [])},
        "calls": [{**call_json(a, who), "dispositions": dispositions_json(g.dispositions.get(a.id, ()), who, numbers)}
                  for a in g.attempts],
        "recordings": [recording_json(r) for r in g.recordings],
        "follow_up": call_json(g.follow_up, who) if g.follow_up is not None else None,
        "history": [history_json(e, who, numbers) for e in g.history],
    }


# -- handlers ---------------------------------------------------------------------------

async def list_complaints(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    status = request.query.get("status", "open")
    if status not in STATUSES:
        raise web.HTTPBadRequest(text="status: open, closed or all")
    now = deps.clock()
    rows = await store.list_complaints(deps.db, now, case_scope(who), status=status)
    async with deps.db.session() as s:
        await repo.audit(s, at=now, actor=who.username, action="complaints.listed", subject="complaints",
                         complaints=[r.complaint.id for r in rows])
    return web.json_response([{**complaint_json(r.complaint, who, now, collector=r.collector),
                               "debtor_name": r.debtor_name} for r in rows])


async def register_complaint(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, REGISTER_BODY)
    try:
        c = await store.register(deps.db, deps.clock, body, by=who.username, scope=case_scope(who),
                                 caller_roles=CALLER_ROLES)
    except ComplaintRefused as exc:
        raise refused(exc) from None
    return await _answer(deps, who, c, status=201)


async def get_complaint(request: web.Request) -> web.Response:
    complaint_id, who, deps = complaint_id_of(request), principal(request), request.app[DEPS]
    try:
        gathered = await store.gather(deps.db, deps.clock, complaint_id, by=who.username, scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no complaint {complaint_id}") from None
    return web.json_response(gathered_json(gathered, who, deps.clock()))


async def _change(request: web.Request, work: Any) -> web.Response:
    complaint_id, who, deps = complaint_id_of(request), principal(request), request.app[DEPS]
    try:
        c = await work(deps, who, complaint_id)
    except LookupError:
        raise web.HTTPNotFound(text=f"no complaint {complaint_id}") from None
    except ComplaintRefused as exc:
        raise refused(exc) from None
    return await _answer(deps, who, c)


async def _answer(deps: Any, who: Principal, c: Complaint, status: int = 200) -> web.Response:
    async with deps.db.session() as s:
        names = await store.collector_names(s, [c.collector_user_id])
    return web.json_response(complaint_json(c, who, deps.clock(), collector=names.get(c.collector_user_id or 0)),
                             status=status)


async def set_outcome(request: web.Request) -> web.Response:
    body = await json_object(request, OUTCOME_BODY)
    return await _change(request, lambda deps, who, cid: store.set_outcome(
        deps.db, deps.clock, cid, body["outcome"], by=who.username, scope=case_scope(who)))


async def link_follow_up(request: web.Request) -> web.Response:
    body = await json_object(request, FOLLOW_UP_BODY)
    return await _change(request, lambda deps, who, cid: store.link_follow_up(
        deps.db, deps.clock, cid, body["attempt_id"], by=who.username, scope=case_scope(who)))


async def close_complaint(request: web.Request) -> web.Response:
    return await _change(request, lambda deps, who, cid: store.close(
        deps.db, deps.clock, cid, by=who.username, scope=case_scope(who)))


async def allow_dialing(request: web.Request) -> web.Response:
    body = await json_object(request, ALLOW_BODY)
    return await _change(request, lambda deps, who, cid: store.allow_dialing(
        deps.db, deps.clock, cid, body["why"], by=who.username, scope=case_scope(who)))


STATE_REFUSED = "refused by the complaint's state: closed, the outcome set already, no outcome yet, ..."
ENDPOINTS = [
    Endpoint("GET", "/api/complaints", list_complaints, P.COMPLAINT_MANAGE,
             "Complaints within your reach: open ones by deadline, or closed ones, or all", tags=("complaints",),
             params=(Param("status", "query", {"type": "string", "enum": list(STATUSES)}),),
             responses={200: "the complaints", 400: "bad status"}),
    Endpoint("POST", "/api/complaints", register_complaint, P.COMPLAINT_MANAGE,
             "Register a complaint against a case and/or a collector; its 24-hour clock starts",
             body=REGISTER_BODY, tags=("complaints",),
             responses={201: "the complaint", 400: "refused: why (nothing stored)"}),
    Endpoint("GET", "/api/complaints/{complaint_id}", get_complaint, P.COMPLAINT_MANAGE,
             "A complaint with its case's calls, dispositions, notes and recordings, and its history",
             params=(COMPLAINT_ID,), tags=("complaints",),
             responses={200: "the complaint, gathered", 404: "no such complaint"}),
    Endpoint("POST", "/api/complaints/{complaint_id}/outcome", set_outcome, P.COMPLAINT_MANAGE,
             "What was found and done (once)", params=(COMPLAINT_ID,), body=OUTCOME_BODY, tags=("complaints",),
             responses={200: "the complaint", 400: "refused: why", 404: "no such complaint", 409: STATE_REFUSED}),
    Endpoint("POST", "/api/complaints/{complaint_id}/follow-up", link_follow_up, P.COMPLAINT_MANAGE,
             "The follow-up call: a call of the case placed since registration",
             params=(COMPLAINT_ID,), body=FOLLOW_UP_BODY, tags=("complaints",),
             responses={200: "the complaint", 400: "refused: why", 404: "no such complaint", 409: STATE_REFUSED}),
    Endpoint("POST", "/api/complaints/{complaint_id}/close", close_complaint, P.COMPLAINT_MANAGE,
             "Close a complaint (its outcome set): the clock stops, the case's pause ends",
             params=(COMPLAINT_ID,), tags=("complaints",),
             responses={200: "the complaint", 404: "no such complaint", 409: STATE_REFUSED}),
    Endpoint("POST", "/api/complaints/{complaint_id}/allow-dialing", allow_dialing, P.COMPLAINT_ALLOW_DIALING,
             "Let the case be dialled while the complaint is open (a supervisor, with a reason)",
             params=(COMPLAINT_ID,), body=ALLOW_BODY, tags=("complaints",),
             responses={200: "the complaint", 400: "refused: why", 404: "no such complaint", 409: STATE_REFUSED}),
]
