"""The dialing policy's inputs over the API (cases/rule_inputs.py does and audits each):

    POST /api/cases/{case_id}/flags                     {"flag", "why"}         raise (case.flag)
    POST /api/cases/{case_id}/flags/{flag}/clear        {"why"}                 clear (case.clear)
    POST /api/cases/{case_id}/care-approval             {"days", "why"}         approve care (case.clear)
    POST /api/cases/{case_id}/phones/{phone_id}/refusal {"why"}                 a third party refused (case.flag)
    POST /api/cases/{case_id}/phones/{phone_id}/refusal/lift {"why"}            (case.clear)
    POST /api/cases/{case_id}/phones/{phone_id}/retirement/lift {"why"}  a wrong number after all (case.clear)
    POST /api/cases/{case_id}/phones/{phone_id}/do-not-call {"why"}            the number on the list for the client
    POST /api/cases/{case_id}/appointments  {"at", "agreed_by", "attempt_id"}     an agreed time (case.edit)
    GET|POST /api/suppressions, POST /api/suppressions/{id}/remove, POST /api/suppressions/import
    GET|POST /api/caller-ids, POST /api/caller-ids/{id}/withdraw
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases import rule_inputs as rules
from console.batches_api import read_upload
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param, json_object
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.scope import case_scope, phone_shown
from people.roles import Permission
from storage import repositories as repo

WHY = {"type": "string", "minLength": 4, "maxLength": 500}
FLAG_BODY = {"type": "object", "additionalProperties": False, "required": ["flag", "why"],
             "properties": {"flag": {"type": "string", "enum": ["dispute", "fraud", "care"]}, "why": WHY}}
WHY_BODY = {"type": "object", "additionalProperties": False, "required": ["why"], "properties": {"why": WHY}}
CARE_BODY = {"type": "object", "additionalProperties": False, "required": ["days", "why"],
             "properties": {"days": {"type": "integer", "minimum": 1, "maximum": rules.MAX_CARE_DAYS}, "why": WHY}}
TIME_BODY = {"type": "object", "additionalProperties": False, "required": ["at", "agreed_by", "attempt_id"],
             "properties": {"at": {"type": "string", "format": "date-time"},
                            "agreed_by": {"type": "string", "enum": ["debtor", "third_party"]},
                            "attempt_id": {"type": "string", "maxLength": 64}}}
SUPPRESSION_BODY = {"type": "object", "additionalProperties": False, "required": ["number", "why"],
                    "properties": {"number": {"type": "string", "maxLength": 40}, "why": WHY,
                                   "client": {"type": "string", "maxLength": 23}}}
CALLER_ID_BODY = {"type": "object", "additionalProperties": False, "required": ["client", "number", "why"],
                  "properties": {"client": {"type": "string", "maxLength": 23},
                                 "number": {"type": "string", "maxLength": 40}, "why": WHY}}
PHONE_ID = Param("phone_id", "path", {"type": "string", "pattern": r"^[0-9]{1,12}$"})
FLAG = Param("flag", "path", {"type": "string", "enum": ["dispute", "fraud", "care"]})
ENTRY_ID = Param("entry_id", "path", {"type": "string", "pattern": r"^[0-9]{1,12}$"})


def _int(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    value = id_number_of(raw)
    if value is None:
        raise web.HTTPBadRequest(text=f"invalid {name}")
    return value


async def _done(work: Any, status: int = 200, **extra: Any) -> web.Response:
    """Run a rule-input change: refused -> 400 with why, unknown -> 404."""
    try:
        result = await work
    except LookupError as exc:
        raise web.HTTPNotFound(text=str(exc).strip("'\"")) from None
    except rules.RuleInputRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"ok": True, "result": _plain(result), **extra}, status=status)


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def raise_flag(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, FLAG_BODY)
    return await _done(rules.raise_flag(deps.db, deps.clock, case_id, body["flag"], body["why"], by=who.username,
                                        scope=case_scope(who)))


async def clear_flag(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, WHY_BODY)
    return await _done(rules.clear_flag(deps.db, deps.clock, case_id, request.match_info["flag"], body["why"],
                                        by=who.username, scope=case_scope(who)))


async def approve_care(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, CARE_BODY)
    return await _done(rules.approve_care(deps.db, deps.clock, case_id, body["days"], body["why"], by=who.username,
                                          scope=case_scope(who)))


def _refusal(refused: bool) -> Any:
    async def handler(request: web.Request) -> web.Response:
        who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
        body = await json_object(request, WHY_BODY)
        return await _done(rules.set_refusal(deps.db, deps.clock, case_id, _int(request, "phone_id"), refused,
                                             body["why"], by=who.username, scope=case_scope(who)))
    handler.__name__ = "refuse_phone" if refused else "lift_refusal"
    return handler


async def lift_retirement(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, WHY_BODY)
    return await _done(rules.lift_retirement(deps.db, deps.clock, case_id, _int(request, "phone_id"), body["why"],
                                             by=who.username, scope=case_scope(who)))


async def phone_do_not_call(request: web.Request) -> web.Response:
    """The debtor (or anyone on a case's phone) asked never to be called: the number goes on
    the list for the case's client."""
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, WHY_BODY)
    phone_id = _int(request, "phone_id")
    async with deps.db.session() as s:
        try:
            case = await repo.get_case(s, case_id, case_scope(who))
        except repo.NotFound:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
        phone = next((p for p in case.phones if p.id == phone_id), None)
        if phone is None:
            raise web.HTTPNotFound(text=f"case {case_id} has no phone {phone_id}")
        number, client = phone.number, case.client
    return await _done(rules.add_suppression(deps.db, deps.clock, number, body["why"], by=who.username,
                                             client=client, case_id=case_id, source="case"), status=201)


async def agree_time(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, TIME_BODY)
    return await _done(rules.agree_time(deps.db, deps.clock, case_id, body["at"], body["agreed_by"],
                                        body["attempt_id"], by=who.username, scope=case_scope(who)), status=201)


async def list_suppressions(request: web.Request) -> web.Response:
    who = principal(request)
    entries = await rules.suppressions(request.app[DEPS].db, include_removed=request.query.get("all") == "1")
    return web.json_response([{
        "id": e.id, "number": phone_shown(who, e.number), "client": e.client, "reason": e.reason,
        "source": e.source, "case_id": e.case_id, "added_at": e.added_at.isoformat(), "added_by": e.added_by,
        "removed_at": e.removed_at.isoformat() if e.removed_at else None, "removed_by": e.removed_by}
        for e in entries])


async def add_suppression(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, SUPPRESSION_BODY)
    return await _done(rules.add_suppression(deps.db, deps.clock, body["number"], body["why"], by=who.username,
                                             client=body.get("client")), status=201)


async def remove_suppression(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, WHY_BODY)
    return await _done(rules.remove_suppression(deps.db, deps.clock, _int(request, "entry_id"), body["why"],
                                                by=who.username))


async def import_suppressions(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    filename, data = await read_upload(request)
    try:
        result = await rules.import_suppressions(deps.db, deps.clock, data, filename, request.query.get("why"),
                                                 by=who.username, client=request.query.get("client"))
    except rules.RuleInputRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"added": result.added, "already": result.already,
                              "errors": [{"row": r, "problem": p} for r, p in result.errors or []]}, status=201)


async def list_caller_ids(request: web.Request) -> web.Response:
    rows = await rules.caller_ids(request.app[DEPS].db)
    return web.json_response([{"id": r.id, "client": r.client, "number": r.number, "active": r.active,
                               "added_by": r.added_by} for r in rows])


async def add_caller_id(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, CALLER_ID_BODY)
    return await _done(rules.add_caller_id(deps.db, deps.clock, body["client"], body["number"], body["why"],
                                           by=who.username), status=201)


async def withdraw_caller_id(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, WHY_BODY)
    return await _done(rules.withdraw_caller_id(deps.db, deps.clock, _int(request, "entry_id"), body["why"],
                                                by=who.username))


P = Permission
TAGS = ("rules",)
R = {200: "done", 400: "refused: why", 404: "not found (or not yours)"}
ENDPOINTS = [
    Endpoint("POST", "/api/cases/{case_id}/flags", raise_flag, P.CASE_FLAG, "Raise dispute, fraud or care",
             params=(CASE_ID_PARAM,), body=FLAG_BODY, tags=TAGS, responses=R),
    Endpoint("POST", "/api/cases/{case_id}/flags/{flag}/clear", clear_flag, P.CASE_CLEAR, "Clear a flag",
             params=(CASE_ID_PARAM, FLAG), body=WHY_BODY, tags=TAGS, responses=R),
    Endpoint("POST", "/api/cases/{case_id}/care-approval", approve_care, P.CASE_CLEAR,
             "Approve calling a care case again, for some days", params=(CASE_ID_PARAM,), body=CARE_BODY,
             tags=TAGS, responses=R),
    Endpoint("POST", "/api/cases/{case_id}/phones/{phone_id}/refusal", _refusal(True), P.CASE_FLAG,
             "A third party refused to be called", params=(CASE_ID_PARAM, PHONE_ID), body=WHY_BODY, tags=TAGS,
             responses=R),
    Endpoint("POST", "/api/cases/{case_id}/phones/{phone_id}/refusal/lift", _refusal(False), P.CASE_CLEAR,
             "Lift a third party's refusal", params=(CASE_ID_PARAM, PHONE_ID), body=WHY_BODY, tags=TAGS,
             responses=R),
    Endpoint("POST", "/api/cases/{case_id}/phones/{phone_id}/retirement/lift", lift_retirement, P.CASE_CLEAR,
             "Put a phone retired as a wrong number back in use", params=(CASE_ID_PARAM, PHONE_ID), body=WHY_BODY,
             tags=TAGS, responses=R),
    Endpoint("POST", "/api/cases/{case_id}/phones/{phone_id}/do-not-call", phone_do_not_call, P.CASE_FLAG,
             "Put a case's phone on the do-not-call list (for the case's client)",
             params=(CASE_ID_PARAM, PHONE_ID), body=WHY_BODY, tags=TAGS, responses={**R, 201: "listed"}),
    Endpoint("POST", "/api/cases/{case_id}/appointments", agree_time, P.CASE_EDIT, "Record an agreed call time",
             params=(CASE_ID_PARAM,), body=TIME_BODY, tags=TAGS, responses={**R, 201: "recorded"}),
    Endpoint("GET", "/api/suppressions", list_suppressions, P.SUPPRESSION_MANAGE, "The do-not-call list",
             params=(Param("all", "query", {"type": "string", "enum": ["0", "1"]}),), tags=TAGS),
    Endpoint("POST", "/api/suppressions", add_suppression, P.SUPPRESSION_MANAGE, "Put a number on the list",
             body=SUPPRESSION_BODY, tags=TAGS, responses={**R, 201: "listed"}),
    Endpoint("POST", "/api/suppressions/{entry_id}/remove", remove_suppression, P.SUPPRESSION_MANAGE,
             "Take an entry off the list", params=(ENTRY_ID,), body=WHY_BODY, tags=TAGS, responses=R),
    Endpoint("POST", "/api/suppressions/import", import_suppressions, P.SUPPRESSION_MANAGE,
             "Import a do-not-call list (.xlsx or CSV with a phone column)", upload=True, tags=TAGS,
             params=(Param("why", "query", WHY, required=True),
                     Param("client", "query", {"type": "string", "maxLength": 23})),
             responses={201: "imported", 400: "refused: why"}),
    Endpoint("GET", "/api/caller-ids", list_caller_ids, P.CALLER_ID_MANAGE, "The clients' approved caller IDs",
             tags=TAGS),
    Endpoint("POST", "/api/caller-ids", add_caller_id, P.CALLER_ID_MANAGE, "Approve a caller ID for a client",
             body=CALLER_ID_BODY, tags=TAGS, responses={**R, 201: "approved"}),
    Endpoint("POST", "/api/caller-ids/{entry_id}/withdraw", withdraw_caller_id, P.CALLER_ID_MANAGE,
             "Withdraw a caller ID", params=(ENTRY_ID,), body=WHY_BODY, tags=TAGS, responses=R),
]
