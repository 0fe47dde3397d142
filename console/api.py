"""The console's JSON API (aiohttp). Foundation slice: cases, dialling, attempts.

Every handler validates its input before touching anything stored: a bad case number
is a 400/404 with a clear message, never an exception page or a partial write.
"""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from console.deps import DEPS, ConsoleDeps
from console.metrics import metrics
from console.recordings_api import add_recording_routes
from recorder.watchdog.gate import GateClosed
from storage import repositories as repo
from storage.models import ATTEMPT_ID_PATTERN, Attempt, Recording

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "id": a.id, "case_id": a.case_id, "number": a.number, "collector": a.collector,
        "state": a.state, "outcome": a.outcome, "hangup_cause": a.hangup_cause,
        "dial_status": a.dial_status, "created_at": _iso(a.created_at),
        "answered_at": _iso(a.answered_at), "ended_at": _iso(a.ended_at),
        "bridged_seconds": a.bridged_seconds, "recorded_seconds": a.recorded_seconds,
        "note": a.note,
    }


def recording_ref(r: Recording) -> dict[str, Any]:
    """That a call was recorded, and where to ask for it (with who and why, logged)."""
    return {"attempt_id": r.attempt_id, "href": f"/api/recordings/{r.attempt_id}"}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _case_id(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not CASE_ID.fullmatch(case_id):
        raise web.HTTPBadRequest(text="invalid case number")
    return case_id


async def list_cases(request: web.Request) -> web.Response:
    async with request.app[DEPS].db.session() as s:
        cases = await repo.list_cases(s)
        return web.json_response([
            {"id": c.id, "client": c.client, "status": c.status,
             "phones": [p.number for p in c.phones]} for c in cases
        ])


async def get_case(request: web.Request) -> web.Response:
    case_id = _case_id(request)
    async with request.app[DEPS].db.session() as s:
        try:
            case = await repo.get_case(s, case_id)
        except repo.NotFound:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
        attempts = await repo.attempts_for_case(s, case_id)
        recordings = await repo.recordings_for_case(s, case_id)
        decisions = await repo.decisions_for_case(s, case_id)
        return web.json_response({
            "id": case.id, "client": case.client, "debtor_name": case.debtor_name,
            "status": case.status, "phones": [p.number for p in case.phones],
            "attempts": [attempt_json(a) for a in attempts],
            # recordings are evidence: listed (and every access logged) only through
            # /api/cases/{id}/recordings with who and why (console/recordings_api.py)
            "recordings": {"count": len(recordings), "href": f"/api/cases/{case.id}/recordings"},
            "decisions": [{"at": _iso(d.at), "number": d.number, "allowed": d.allowed, "rule": d.rule,
                           "reason": d.reason, "next_allowed_at": _iso(d.next_allowed_at),
                           "attempt_id": d.attempt_id} for d in decisions],
        })


async def dial_case(request: web.Request) -> web.Response:
    case_id = _case_id(request)
    number = request.query.get("number")
    if number is not None and not re.fullmatch(r"\+?[0-9]{3,20}", number):
        raise web.HTTPBadRequest(text="invalid number")
    from dialer.originate import DialBlocked, DialError  # local: console only needs it here

    try:
        attempt = await request.app[DEPS].dial(case_id, number)
    except DialBlocked as exc:
        d = exc.decision
        return web.json_response(
            {"blocked": True, "rule": d.rule, "reason": d.reason,
             "next_allowed_at": d.next_allowed_at.isoformat() if d.next_allowed_at else None},
            status=409)
    except DialError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except GateClosed as exc:  # no recording chain, no call: try again when the gate opens
        return web.json_response({"blocked": True, "rule": "dialing_gate", "reason": str(exc)},
                                 status=503, headers={"Retry-After": "15"})
    return web.json_response(attempt_json(attempt), status=201)


async def get_attempt(request: web.Request) -> web.Response:
    attempt_id = request.match_info["attempt_id"]
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise web.HTTPBadRequest(text="invalid attempt id")
    async with request.app[DEPS].db.session() as s:
        attempt = await repo.get_attempt(s, attempt_id)
        if attempt is None:
            raise web.HTTPNotFound(text="no such attempt")
        recording = await repo.recording_for_attempt(s, attempt_id)
        body = attempt_json(attempt)
        body["recording"] = recording_ref(recording) if recording else None
        return web.json_response(body)


async def healthz(request: web.Request) -> web.Response:
    health = request.app[DEPS].health()
    return web.json_response(health, status=200 if health.get("ready") else 503)


async def watchdog_status(request: web.Request) -> web.Response:
    """The watchdog's checks, the gate and the last canary (`dunline watchdog status`)."""
    health = request.app[DEPS].health()
    watchdog = health.get("watchdog")
    if watchdog is None:
        raise web.HTTPNotFound(text="the watchdog is not running (watchdog.enabled = false)")
    return web.json_response({"ready": health["ready"], "reasons": health.get("reasons", []), **watchdog})


def make_app(deps: ConsoleDeps) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[DEPS] = deps
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/cases", list_cases)
    app.router.add_get("/api/cases/{case_id}", get_case)
    app.router.add_post("/api/cases/{case_id}/dial", dial_case)
    app.router.add_get("/api/attempts/{attempt_id}", get_attempt)
    app.router.add_get("/api/watchdog", watchdog_status)
    app.router.add_get("/metrics", metrics)
    add_recording_routes(app)
    return app
