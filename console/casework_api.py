"""Changing a case by hand over the API: a phone found by tracing, and returning or
closing (or reopening) a case with a reason (cases/casework.py does and audits it).

    POST /api/cases/{case_id}/phones  {"number", "relation", "source"?}  -> 201 the phone (masked)
    POST /api/cases/{case_id}/status  {"status", "reason"}               -> 200 before and after
"""
from __future__ import annotations

from aiohttp import web

from cases.casework import STATUSES, CaseworkRefused, add_phone, set_status
from cases.intake import Relation
from console.deps import DEPS, principal
from console.endpoints import Endpoint, json_object
from console.params import CASE_ID_PARAM, case_id_of
from console.scope import case_scope, phone_shown
from people.roles import Permission

PHONE_BODY = {"type": "object", "additionalProperties": False, "required": ["number", "relation"],
              "properties": {"number": {"type": "string", "maxLength": 40},
                             "relation": {"type": "string", "enum": [r.value for r in Relation]},
                             "source": {"type": "string", "maxLength": 200}}}
STATUS_BODY = {"type": "object", "additionalProperties": False, "required": ["status", "reason"],
               "properties": {"status": {"type": "string", "enum": list(STATUSES)},
                              "reason": {"type": "string", "minLength": 4, "maxLength": 500}}}


async def add_case_phone(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    body = await json_object(request, PHONE_BODY)
    try:
        added = await add_phone(deps.db, deps.clock, case_id, body["number"], body["relation"], by=who.username,
                                source=body.get("source", ""), scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    except CaseworkRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"id": added.id, "number": phone_shown(who, added.number), "relation": added.relation,
                              "kind": added.kind}, status=201)


async def change_status(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    body = await json_object(request, STATUS_BODY)
    try:
        before = await set_status(deps.db, deps.clock, case_id, body["status"], body["reason"], by=who.username,
                                  scope=case_scope(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    except CaseworkRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"id": case_id, "before": before, "status": body["status"]})


P = Permission
ENDPOINTS = [
    Endpoint("POST", "/api/cases/{case_id}/phones", add_case_phone, P.CASE_EDIT,
             "Add a phone found by tracing", params=(CASE_ID_PARAM,), body=PHONE_BODY, tags=("cases",),
             responses={201: "the phone (masked for most roles)", 400: "refused: why", 404: "no such case"}),
    Endpoint("POST", "/api/cases/{case_id}/status", change_status, P.CASE_CLOSE,
             "Return a case to the client, close or reopen it, with a reason", params=(CASE_ID_PARAM,),
             body=STATUS_BODY, tags=("cases",), responses={200: "done", 400: "refused: why", 404: "no such case"}),
]
