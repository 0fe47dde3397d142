"""Dispositions over the API (cases/dispositions_store.py checks, stores, applies and audits):

    POST /api/attempts/{attempt_id}/dispositions  {"code", "notes"?, "amount"?, "promise_date"?,
         "callback_at"?, "corrects"?}  -> 201 the disposition and the changes it made (case.dispose)
    GET  /api/follow-ups?due=YYYY-MM-DD  the promises to pay due that day, by collector (case.view)

A case's dispositions are read with the case (GET /api/cases/{id}: each attempt's) and with
the attempt (GET /api/attempts/{id}). Clearing a dispute is the flags API's
(POST /api/cases/{id}/flags/dispute/clear, case.clear).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from aiohttp import web

from cases import dispositions_store as store
from cases.dispositions import CODES, NOTES_MAX, DispositionRefused
from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param, json_object
from console.scope import case_scope, masked_text
from people.accounts import Principal
from people.roles import Permission
from storage import repositories as repo
from storage.dispositions import Disposition
from storage.models import ATTEMPT_ID_PATTERN

DISPOSITION_BODY = {
    "type": "object", "additionalProperties": False, "required": ["code"],
    "properties": {
        "code": {"type": "string", "enum": list(CODES)},
        "notes": {"type": "string", "maxLength": NOTES_MAX},
        "amount": {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,2})?$",
                   "description": "promise_to_pay: the sum promised, in yuan"},
        "promise_date": {"type": "string", "format": "date", "description": "promise_to_pay: by when"},
        "callback_at": {"type": "string", "maxLength": 40,
                        "description": "call_back: the agreed time, with its offset, or the debtor's local "
                                       "time (YYYY-MM-DDTHH:MM)"},
        "corrects": {"type": "integer", "minimum": 1, "description": "the disposition of this call it corrects"},
    },
}
ATTEMPT_ID = Param("attempt_id", "path", {"type": "string", "pattern": ATTEMPT_ID_PATTERN.pattern})


def disposition_json(d: Disposition, corrected_by: int | None, who: Principal, numbers: Iterable[str]
                     ) -> dict[str, Any]:
    return {"id": d.id, "attempt_id": d.attempt_id, "code": d.code, "notes": masked_text(who, d.notes, numbers),
            "amount_cents": d.amount_cents,
            "promise_date": d.promise_date.isoformat() if d.promise_date else None,
            "callback_at": d.callback_at.isoformat() if d.callback_at else None,
            "appointment_id": d.appointment_id, "corrects": d.corrects_id, "corrected_by": corrected_by,
            "entered_by": d.entered_by, "entered_at": d.entered_at.isoformat(), "effects": d.effects}


def dispositions_json(rows: Sequence[Disposition], who: Principal, numbers: Iterable[str]) -> list[dict[str, Any]]:
    numbers = list(numbers)
    fixed = store.corrections(rows)
    return [disposition_json(d, fixed.get(d.id), who, numbers) for d in rows]


def refusal_text(exc: DispositionRefused, locale: str) -> str:
    """The refusal in the reader's language (the API answers in English), a code by its name."""
    t = i18n.translator(locale)
    values = dict(exc.values)
    if "code" in values:
        values["code"] = t(f"dispo.code.{values['code']}")
    return t(f"dispo.problem.{exc.key}", **values)


async def enter_disposition(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    attempt_id = request.match_info["attempt_id"]
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise web.HTTPBadRequest(text="invalid attempt id")
    body = await json_object(request, DISPOSITION_BODY)
    try:
        done = await store.record(deps.db, deps.clock, attempt_id, body, by=who.username, scope=case_scope(who),
                                  phone=who.phone)
    except LookupError:
        raise web.HTTPNotFound(text="no such call") from None
    except DispositionRefused as exc:
        raise web.HTTPBadRequest(text=refusal_text(exc, "en")) from None
    return web.json_response({"id": done.id, "attempt_id": done.attempt_id, "case_id": done.case_id,
                              "code": done.code, "changes": list(done.changes)}, status=201)


def due_of(text: str | None, today: date) -> date:
    if not text:
        return today
    try:
        if len(text) != 10:  # 3.11 reads "20261130" too: only the form the API documents
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text="due: a date, YYYY-MM-DD") from None


def today_on_the_floor(request: web.Request) -> date:
    return request.app[DEPS].clock().astimezone(i18n.DISPLAY_ZONE).date()


async def follow_ups(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    due = due_of(request.query.get("due"), today_on_the_floor(request))
    rows = await store.promises_due(deps.db, due, case_scope(who))
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="follow_ups.listed", subject="cases",
                         due=due.isoformat(), cases=[r.case_id for r in rows])
    by_collector: dict[str | None, list[dict[str, Any]]] = {}
    for r in rows:
        by_collector.setdefault(r.collector, []).append({
            "case_id": r.case_id, "debtor_name": r.debtor_name, "flags": list(r.flags),
            "amount_cents": r.amount_cents, "promise_date": r.promise_date.isoformat(),
            "disposition_id": r.disposition_id, "attempt_id": r.attempt_id, "entered_by": r.entered_by})
    return web.json_response({"due": due.isoformat(), "collectors": [
        {"collector": name, "promises": promises} for name, promises in by_collector.items()]})


P = Permission
ENDPOINTS = [
    Endpoint("POST", "/api/attempts/{attempt_id}/dispositions", enter_disposition, P.CASE_DISPOSE,
             "Record what came of a call (a correction names the disposition it corrects)",
             params=(ATTEMPT_ID,), body=DISPOSITION_BODY, tags=("cases",),
             responses={201: "stored, with the changes it made to the dialing policy's inputs",
                        400: "refused: why (nothing stored)", 404: "no such call (or not yours)"}),
    Endpoint("GET", "/api/follow-ups", follow_ups, P.CASE_VIEW,
             "Promises to pay due on a day, by collector (your cases, your team's, or all)",
             params=(Param("due", "query", {"type": "string", "format": "date"},
                           description="the day (default: today on the floor's clock)"),),
             tags=("cases",), responses={200: "the promises due, by collector"}),
]
