"""Assignment over the API (cases/assign_store.py does it, cases/assignment.py decides):

    GET  /api/workload                              each collector's open cases and arrears
    POST /api/assignments  {"rule", "batch_id" | "case_ids", "collector_ids"?, "routes"?, "only_unassigned"?}
    POST /api/cases/{case_id}/assignment  {"collector_id" | "team_id", "why"?}

A team lead works within their team (its cases, its collectors); a supervisor everywhere.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cases.assign_store import AssignRefused, assign, reassign, workload
from cases.assignment import Rule
from console.deps import DEPS, principal
from console.endpoints import Endpoint, json_object
from console.params import CASE_ID_PARAM, case_id_of
from console.scope import case_scope, team_limit
from people.roles import Permission

IDS = {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "maxItems": 1000}
PLAN_BODY = {"type": "object", "additionalProperties": False, "required": ["rule"], "properties": {
    "rule": {"type": "string", "enum": [r.value for r in Rule]},
    "batch_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "case_ids": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 200000},
    "collector_ids": IDS,
    "routes": {"type": "object", "additionalProperties": IDS},
    "only_unassigned": {"type": "boolean"}}}
MOVE_BODY = {"type": "object", "additionalProperties": False, "properties": {
    "collector_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "team_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "why": {"type": "string", "maxLength": 500}}}


MAX_ID = 2**31 - 1  # an id the database can hold (PostgreSQL's integer); above it no row exists


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _ints(value: Any, name: str) -> list[int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(_is_id(v) for v in value):
        raise web.HTTPBadRequest(text=f"{name}: a list of ids")
    return value


async def get_workload(request: web.Request) -> web.Response:
    rows = await workload(request.app[DEPS].db, team_limit(principal(request)))
    return web.json_response([{"user_id": w.user_id, "username": w.username, "display_name": w.display_name,
                               "team": w.team, "open_cases": w.open_cases, "arrears_cents": w.arrears_cents}
                              for w in rows])


async def post_assignments(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await json_object(request, PLAN_BODY)
    routes = body.get("routes")
    if routes is not None and (not isinstance(routes, dict) or not all(isinstance(k, str) for k in routes)):
        raise web.HTTPBadRequest(text="routes: {band or region: [collector ids]}")
    case_ids = body.get("case_ids")
    if case_ids is not None and (not isinstance(case_ids, list) or not all(isinstance(c, str) for c in case_ids)):
        raise web.HTTPBadRequest(text="case_ids: a list of case numbers")
    batch_id = body.get("batch_id")
    if batch_id is not None and not _is_id(batch_id):
        raise web.HTTPBadRequest(text="batch_id: a batch's id")
    only = body.get("only_unassigned", True)
    if not isinstance(only, bool):
        raise web.HTTPBadRequest(text="only_unassigned: true or false")
    try:
        result = await assign(
            deps.db, deps.clock, by=who.username, rule=body["rule"], scope=case_scope(who), case_ids=case_ids,
            batch_id=batch_id, collector_ids=_ints(body.get("collector_ids"), "collector_ids"),
            routes={k: _ints(v, f"routes.{k}") or [] for k, v in routes.items()} if routes else None,
            only_unassigned=only, team_limit=team_limit(who))
    except AssignRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    per: dict[str, int] = {}
    for collector_id in result.placed.values():
        per[str(collector_id)] = per.get(str(collector_id), 0) + 1
    return web.json_response({"placed": len(result.placed), "per_collector": per, "unrouted": result.unrouted})


async def move_case(request: web.Request) -> web.Response:
    who, deps, case_id = principal(request), request.app[DEPS], case_id_of(request)
    body = await json_object(request, MOVE_BODY)
    for name in ("collector_id", "team_id"):
        value = body.get(name)
        if value is not None and not _is_id(value):
            raise web.HTTPBadRequest(text=f"{name}: an id")
    try:
        moved = await reassign(deps.db, deps.clock, case_id, by=who.username, scope=case_scope(who),
                               collector_id=body.get("collector_id"), team_id=body.get("team_id"),
                               why=body.get("why", ""), team_limit=team_limit(who))
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    except AssignRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return web.json_response({"id": case_id, **moved})


P = Permission
TAGS = ("assignment",)
ENDPOINTS = [
    Endpoint("GET", "/api/workload", get_workload, P.ASSIGN, "Each collector's open cases and arrears", tags=TAGS),
    Endpoint("POST", "/api/assignments", post_assignments, P.ASSIGN,
             "Assign cases by a rule (round robin, amount band, overdue band, region)", body=PLAN_BODY, tags=TAGS,
             responses={200: "what was placed, and what no route covers", 400: "refused: why"}),
    Endpoint("POST", "/api/cases/{case_id}/assignment", move_case, P.ASSIGN,
             "Move a case to a collector or a team", params=(CASE_ID_PARAM,), body=MOVE_BODY, tags=TAGS,
             responses={200: "moved", 400: "refused: why", 404: "no such case (or not your team's)"}),
]
