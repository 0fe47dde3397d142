"""The console's JSON API (aiohttp): cases, dialling, attempts, the watchdog; the app itself.

Every handler validates its input before touching anything stored: a bad case number
is a 400/404 with a clear message, never an exception page or a partial write. Every
route is an `Endpoint` (console/endpoints.py) behind the guard; a case outside the
signed-in user's reach is "not found" (console/scope.py), and every read of a debtor's
data is an audit event with the reader's name.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web

from cases import dispositions_store
from console import batches_api, payments_api
from console.assign_api import ENDPOINTS as ASSIGN_ENDPOINTS
from console.casework_api import ENDPOINTS as CASEWORK_ENDPOINTS
from console.dispositions_api import ENDPOINTS as DISPOSITION_ENDPOINTS
from console.dispositions_api import dispositions_json
from console.dispositions_pages import ENDPOINTS as DISPOSITION_PAGE_ENDPOINTS
from console.campaigns_api import ENDPOINTS as CAMPAIGN_ENDPOINTS, PREVIEW_HOLDS
from console.campaigns_pages import ENDPOINTS as CAMPAIGN_PAGE_ENDPOINTS
from console.complaints_api import ENDPOINTS as COMPLAINT_ENDPOINTS
from console.complaints_pages import ENDPOINTS as COMPLAINT_PAGE_ENDPOINTS
from console.complaints_pages import alarm_banner
from console.floor_api import ENDPOINTS as FLOOR_ENDPOINTS
from console.floor_api import SSE_CLIENTS, close_streams
from console.floor_pages import ENDPOINTS as FLOOR_PAGE_ENDPOINTS
from console.reports_api import ENDPOINTS as REPORT_ENDPOINTS
from console.weekly_reports_api import ENDPOINTS as WEEKLY_REPORT_ENDPOINTS
from console.rules_api import ENDPOINTS as RULE_ENDPOINTS
from console.deps import DEPS, ConsoleDeps, principal
from console.dialing import DialNotPossible, DialRefused, request_dial
from console.endpoints import PAGE_HOOKS, Endpoint, Param, register
from console.metrics import metrics
from console.openapi import openapi_json
from console.pages import ENDPOINTS as PAGE_ENDPOINTS
from console.payments_pages import ENDPOINTS as PAYMENT_PAGE_ENDPOINTS
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.recordings_api import ENDPOINTS as RECORDING_ENDPOINTS
from console.registers_api import ENDPOINTS as REGISTER_ENDPOINTS
from console.registers_pages import ENDPOINTS as REGISTER_PAGE_ENDPOINTS
from console.qc_api import ENDPOINTS as QC_ENDPOINTS
from console.qc_pages import ENDPOINTS as QC_PAGE_ENDPOINTS
from console.scope import case_scope, id_number_shown, masked_text, phone_shown, view_case
from console.security import outer_wall, security_headers
from console.session_api import ENDPOINTS as SESSION_ENDPOINTS
from people.accounts import Principal
from people.roles import Permission
from storage import repositories as repo
from storage.models import ATTEMPT_ID_PATTERN, Attempt, Case, Recording
from storage.names import case_subject

log = logging.getLogger("dunline.console")

ATTEMPT_ID_SCHEMA = {"type": "string", "pattern": ATTEMPT_ID_PATTERN.pattern}


def attempt_json(a: Attempt, who: Principal) -> dict[str, Any]:
    return {
        "id": a.id, "case_id": a.case_id, "number": phone_shown(who, a.number), "collector": a.collector,
        "state": a.state, "outcome": a.outcome, "hangup_cause": a.hangup_cause,
        "dial_status": a.dial_status, "created_at": _iso(a.created_at),
        "answered_at": _iso(a.answered_at), "ended_at": _iso(a.ended_at),
        "bridged_seconds": a.bridged_seconds, "recorded_seconds": a.recorded_seconds,
        "note": a.note,
    }


def phones_json(case: Case, who: Principal) -> list[dict[str, Any]]:
    return [{"id": p.id, "number": phone_shown(who, p.number), "kind": p.kind, "relation": p.relation,
             "label": p.label, "do_not_call": p.do_not_call, "refused": p.refused,
             "added_by": p.added_by} for p in case.phones]


def case_summary_json(c: Case, who: Principal) -> dict[str, Any]:
    return {"id": c.id, "client": c.client, "debtor_name": c.debtor_name, "status": c.status,
            "batch_id": c.batch_id, "account": c.account, "arrears_cents": c.amount_due_cents,
            "overdue_since": _iso(c.overdue_since), "region": c.region, "segment": c.segment,
            "team_id": c.team_id, "collector_id": c.collector_id, "flags": list(c.flags or []),
            "phones": phones_json(c, who)}


def recording_ref(r: Recording) -> dict[str, Any]:
    """That a call was recorded, and where to ask for it (with who and why, logged)."""
    return {"attempt_id": r.attempt_id, "href": f"/api/recordings/{r.attempt_id}"}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


async def list_cases(request: web.Request) -> web.Response:
    who = principal(request)
    status = request.query.get("status") or None
    if status is not None and status not in ("open", "returned", "closed", "settled"):
        raise web.HTTPBadRequest(text="status: open, returned, closed or settled")
    batch = request.query.get("batch")
    if batch is not None and id_number_of(batch) is None:
        raise web.HTTPBadRequest(text="batch: a batch's id")
    limit = request.query.get("limit", "200")
    if id_number_of(limit) is None or not 1 <= int(limit) <= 500:
        raise web.HTTPBadRequest(text="limit: 1 to 500")
    async with request.app[DEPS].db.session() as s:
        cases = await repo.list_cases(s, int(limit), case_scope(who), text=request.query.get("q", "")[:64],
                                      status=status, batch_id=int(batch) if batch else None,
                                      after=request.query.get("after", "")[:64] or None)
        await repo.audit(s, at=request.app[DEPS].clock(), actor=who.username, action="cases.listed",
                         subject="cases", cases=[c.id for c in cases])
        return web.json_response([case_summary_json(c, who) for c in cases])


async def get_case(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    try:
        view = await view_case(deps.db, deps.clock, who, case_id)
    except LookupError:
        raise web.HTTPNotFound(text=f"no case {case_id}") from None
    case = view.case
    return web.json_response({
        **case_summary_json(case, who), "id_number": id_number_shown(who, case.id_number),
        "address": case.address, "status_reason": case.status_reason,
        "care_approved_until": _iso(case.care_approved_until),
        "attempts": [{**attempt_json(a, who),
                      "dispositions": dispositions_json(view.dispositions.get(a.id, ()), who, view.numbers)}
                     for a in view.attempts],
        # recordings are evidence: listed (and every access logged) only through
        # /api/cases/{id}/recordings with who and why (console/recordings_api.py)
        "recordings": {"count": len(view.recordings), "href": f"/api/cases/{case.id}/recordings"},
        "decisions": [{"at": _iso(d.at), "number": phone_shown(who, d.number), "allowed": d.allowed,
                       "rule": d.rule, "reason": masked_text(who, d.reason, view.numbers),
                       "next_allowed_at": _iso(d.next_allowed_at), "attempt_id": d.attempt_id}
                      for d in view.decisions],
    })


async def _number_to_dial(request: web.Request, case: Case) -> str | None:
    """`phone` (a phone's id on the case: what a reader of masked numbers has) or `number`."""
    phone, number = request.query.get("phone"), request.query.get("number")
    if phone is not None and number is not None:
        raise web.HTTPBadRequest(text="give phone or number, not both")
    if phone is not None:
        if id_number_of(phone) is None:
            raise web.HTTPBadRequest(text="phone: the id of one of the case's phones")
        match = [p.number for p in case.phones if p.id == int(phone)]
        if not match:
            raise web.HTTPNotFound(text=f"case {case.id} has no phone {phone}")
        return match[0]
    if number is not None and not re.fullmatch(r"\+?[0-9]{3,20}", number):
        raise web.HTTPBadRequest(text="invalid number")
    return number


async def dial_case(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    async with deps.db.session() as s:
        try:
            case = await repo.get_case(s, case_id, case_scope(who))
        except repo.NotFound:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
    number = await _number_to_dial(request, case)
    campaign = request.query.get("campaign")
    if campaign is not None and not (campaign.isascii() and campaign.isdigit() and len(campaign) <= 9):
        raise web.HTTPBadRequest(text="campaign: a campaign's id")

    try:
        outcome = await request_dial(deps, who, case, number, campaign_id=int(campaign) if campaign else None)
    except DialNotPossible as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    if isinstance(outcome, DialRefused):
        body: dict[str, Any] = {"blocked": True, "rule": outcome.rule, "reason": outcome.reason}
        headers = {}
        if outcome.status == 409:
            body["next_allowed_at"] = outcome.next_allowed_at
        if outcome.retry_after_s is not None:
            headers["Retry-After"] = str(outcome.retry_after_s)
            body["retry_after_s"] = outcome.retry_after_s
        return web.json_response(body, status=outcome.status, headers=headers)
    return web.json_response(attempt_json(outcome, who), status=201)


async def get_attempt(request: web.Request) -> web.Response:
    attempt_id, who = request.match_info["attempt_id"], principal(request)
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise web.HTTPBadRequest(text="invalid attempt id")
    async with request.app[DEPS].db.session() as s:
        attempt = await repo.get_attempt(s, attempt_id)
        try:
            if attempt is None:
                raise repo.NotFound(attempt_id)
            await repo.get_case(s, attempt.case_id, case_scope(who))
        except repo.NotFound:
            raise web.HTTPNotFound(text="no such attempt") from None
        recording = await repo.recording_for_attempt(s, attempt_id)
        dispositions = await dispositions_store.for_attempt(s, attempt_id)
        await repo.audit(s, at=request.app[DEPS].clock(), actor=who.username, action="attempt.viewed",
                         subject=case_subject(attempt.case_id), attempt_id=attempt_id)
        body = attempt_json(attempt, who)
        body["recording"] = recording_ref(recording) if recording else None
        body["dispositions"] = dispositions_json(dispositions, who, [attempt.number])
        return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    """Ready or not, why, and the watchdog's gate and checks: what a health probe and
    `dunline watchdog status` read (no debtor data; no sign-in)."""
    health = request.app[DEPS].health()
    return web.json_response(health, status=200 if health.get("ready") else 503)


async def watchdog_status(request: web.Request) -> web.Response:
    """The watchdog's checks, the gate and the last canary."""
    health = request.app[DEPS].health()
    watchdog = health.get("watchdog")
    if watchdog is None:
        raise web.HTTPNotFound(text="the watchdog is not running (watchdog.enabled = false)")
    return web.json_response({"ready": health["ready"], "reasons": health.get("reasons", []), **watchdog})


P = Permission
ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, None, "Ready to dial, or why not (no sign-in)", tags=("system",),
             responses={200: "ready", 503: "not ready: the reasons"}),
    Endpoint("GET", "/api/openapi.json", openapi_json, P.SIGNED_IN, "This document", tags=("system",)),
    Endpoint("GET", "/api/cases", list_cases, P.CASE_VIEW, "The cases within your reach, in case-number order",
             tags=("cases",), params=(
                 Param("q", "query", {"type": "string", "maxLength": 64},
                       description="a case number or name by its start, an account or a phone number"),
                 Param("status", "query", {"type": "string", "enum": ["open", "returned", "closed", "settled"]}),
                 Param("batch", "query", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
                 Param("after", "query", {"type": "string", "maxLength": 64},
                       description="the last case number of the previous page"),
                 Param("limit", "query", {"type": "string", "pattern": "^[0-9]{1,3}$"}))),
    Endpoint("GET", "/api/cases/{case_id}", get_case, P.CASE_VIEW,
             "A case: phones, attempts (each with its dispositions), the policy's decisions", tags=("cases",),
             params=(CASE_ID_PARAM,), responses={200: "the case", 404: "no such case"}),
    Endpoint("POST", "/api/cases/{case_id}/dial", dial_case, P.CASE_DIAL, "Place a call for a case",
             params=(CASE_ID_PARAM,
                     Param("phone", "query", {"type": "string", "pattern": "^[0-9]{1,12}$"},
                           description="the id of one of the case's phones"),
                     Param("number", "query", {"type": "string"}, description="or the number itself"),
                     Param("campaign", "query", {"type": "string", "pattern": "^[0-9]{1,9}$"},
                           description="a running campaign this call is for (a preview's dial)")),
             tags=("cases",), responses={201: "the attempt", 404: "no such case or phone",
                                         409: "blocked by the dialing policy (the rule), or the campaign "
                                              "named is not running (rule campaign_not_running)",
                                         503: "the dialing gate is closed (rule dialing_gate), or new "
                                              "dials are held back while ingest or the database is busy "
                                              "(rules ingest_backlog, database_busy); Retry-After says "
                                              "when to try again"}),
    Endpoint("GET", "/api/attempts/{attempt_id}", get_attempt, P.CASE_VIEW, "One call attempt",
             params=(Param("attempt_id", "path", ATTEMPT_ID_SCHEMA),), tags=("cases",),
             responses={200: "the attempt", 404: "no such attempt"}),
    Endpoint("GET", "/api/watchdog", watchdog_status, P.SYSTEM_VIEW, "The watchdog: gate, checks, canary",
             tags=("system",), responses={200: "the watchdog", 404: "no watchdog running"}),
    Endpoint("GET", "/metrics", metrics, P.SYSTEM_VIEW, "Prometheus metrics", tags=("system",),
             produces="text/plain"),
]


def make_app(deps: ConsoleDeps) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[outer_wall])
    app[DEPS] = deps
    app.on_response_prepare.append(security_headers)
    app[SSE_CLIENTS] = set()
    app[PREVIEW_HOLDS] = {}
    app[PAGE_HOOKS] = [alarm_banner]  # the complaints due soon or overdue, on every page of those who handle them
    app.on_shutdown.append(close_streams)
    batches_api.setup(app)
    payments_api.setup(app)
    register(app, [*ENDPOINTS, *SESSION_ENDPOINTS, *RECORDING_ENDPOINTS, *CASEWORK_ENDPOINTS,
                   *batches_api.ENDPOINTS, *RULE_ENDPOINTS, *ASSIGN_ENDPOINTS, *PAGE_ENDPOINTS,
                   *REPORT_ENDPOINTS, *DISPOSITION_ENDPOINTS, *DISPOSITION_PAGE_ENDPOINTS,
                   *FLOOR_ENDPOINTS, *FLOOR_PAGE_ENDPOINTS, *CAMPAIGN_ENDPOINTS,
                   *CAMPAIGN_PAGE_ENDPOINTS, *payments_api.ENDPOINTS, *PAYMENT_PAGE_ENDPOINTS,
                   *REGISTER_ENDPOINTS, *REGISTER_PAGE_ENDPOINTS, *QC_ENDPOINTS, *QC_PAGE_ENDPOINTS,
                   *WEEKLY_REPORT_ENDPOINTS, *COMPLAINT_ENDPOINTS, *COMPLAINT_PAGE_ENDPOINTS])
    return app
