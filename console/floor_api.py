"""The live floor in the console: collectors' seats, the wallboard, screen pop, listen /
whisper / barge (dialer/seats.py, dialer/supervision.py do it; this is who may, and the wire).

    GET  /api/floor                       the wallboard: seats and their states, calls on them,
                                          monitoring sessions (floor.view; a team lead: their team)
    POST /api/floor/seat                  open a seat on my own phone (floor.work)
    POST /api/floor/pause {"code"}        pause my seats with a code; POST /api/floor/ready
    POST /api/floor/collectors/{username}/pause {"code"}   pause a collector (floor.manage)
    POST /api/calls/{attempt_id}/monitor {"mode"}          listen / whisper / barge from my own
                                          phone (call.monitor; a team lead: their team's calls)
    GET  /api/floor/events                server-sent events: my seats as they change (the screen
                                          pop), or every seat for the wallboard

A person's phone is their user's `phone` (`dunline user set NAME --phone 6001`): nobody opens a
seat on, or listens from, someone else's phone.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy import select

from console.deps import DEPS, ConsoleDeps, principal
from console.endpoints import Endpoint, Param, json_object
from dialer.floor import Seat, SeatState
from dialer.seats import SeatNotOpened
from dialer.supervision import NotOnTheFloor, SpyMode
from people.accounts import Principal
from people.roles import Permission, may
from storage import repositories as repo
from storage.models import ATTEMPT_ID_PATTERN, Attempt
from storage.people import User

log = logging.getLogger("dunline.console")

PAUSE_CODES = ("break", "lunch", "training", "meeting", "coaching", "technical")
HEARTBEAT_S = 15.0
SSE_CLIENTS = web.AppKey("floor_sse_clients", set)
P = Permission


@dataclass(frozen=True, slots=True)
class Staff:
    """Who works from which phone (the users with one)."""

    by_phone: dict[str, User]

    def user(self, phone: str) -> User | None:
        return self.by_phone.get(phone)

    def in_reach(self, who: Principal, phone: str) -> bool:
        """A team lead sees and manages their team's collectors; a supervisor everyone's."""
        if who.role != "team_lead":
            return True
        user = self.user(phone)
        return user is not None and user.team_id is not None and user.team_id == who.team_id


async def staff(deps: ConsoleDeps) -> Staff:
    async with deps.db.session() as s:
        users = (await s.scalars(select(User).where(User.phone.is_not(None)))).all()
    return Staff({u.phone: u for u in users if u.phone})


def floor_of(deps: ConsoleDeps) -> Any:
    if deps.seats is None:
        raise web.HTTPServiceUnavailable(text="the floor is off here (floor.seats = false): calls ring a phone")
    return deps.seats


def my_phone(who: Principal) -> str:
    if not who.phone:
        raise web.HTTPConflict(text="you have no phone: an admin sets it (dunline user set NAME --phone EXT)")
    return who.phone


def seat_json(seat: Seat, now: float, staff: Staff, case_of: dict[str, str], wrap_up_s: float = 0.0
              ) -> dict[str, Any]:
    """A seat for the pages; in wrap-up, `wrap_up_left`: seconds until it is ready by itself
    (None: the floor waits for the collector to say so)."""
    user = staff.user(seat.collector)
    left = (round(max(0.0, wrap_up_s - (now - seat.since)), 1) if wrap_up_s > 0 else None) \
        if seat.state is SeatState.WRAP_UP else None
    return {"wrap_up_left": left, "seat": seat.seat_id, "phone": seat.collector, "user": user.username if user else None,
            "name": user.display_name if user else None, "state": seat.state.value,
            "seconds": round(max(0.0, now - seat.since), 1), "attempt_id": seat.attempt_id,
            "case_id": case_of.get(seat.attempt_id or ""), "pause_code": seat.pause_code or None}


async def cases_of(deps: ConsoleDeps, attempt_ids: list[str]) -> dict[str, str]:
    if not attempt_ids:
        return {}
    async with deps.db.session() as s:
        return {a: c for a, c in (await s.execute(
            select(Attempt.id, Attempt.case_id).where(Attempt.id.in_(attempt_ids)))).all()}


async def wallboard_json(deps: ConsoleDeps, who: Principal) -> dict[str, Any]:
    keeper, people = floor_of(deps), await staff(deps)
    now = keeper.now()
    seats = [s for s in keeper.floor.seats() if people.in_reach(who, s.collector)]
    case_of = await cases_of(deps, [s.attempt_id for s in seats if s.attempt_id])
    sessions = deps.supervision.sessions() if deps.supervision is not None else ()
    health = deps.health()
    return {"gate": {"open": bool(health.get("ready")), "reasons": list(health.get("reasons", []))},
            "seats": [seat_json(s, now, people, case_of) for s in seats],
            "ready": sum(1 for s in seats if keeper.floor.is_ready(s, now)),
            "on_call": sum(1 for s in seats if s.state is SeatState.ON_CALL),
            "monitoring": [{"session": x.spy_id, "attempt_id": x.attempt_id, "mode": x.mode.value, "by": x.by,
                            "collector": x.collector} for x in sessions]}


async def wallboard(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    body = await wallboard_json(deps, who)
    async with deps.db.session() as s:
        await repo.audit(s, at=deps.clock(), actor=who.username, action="floor.viewed", subject="floor",
                         cases=sorted({x["case_id"] for x in body["seats"] if x["case_id"]}))
    return web.json_response(body)


async def open_seat(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    keeper, phone = floor_of(deps), my_phone(who)
    try:
        seat_id = await keeper.open_seat(phone)
    except SeatNotOpened as exc:
        raise web.HTTPServiceUnavailable(text=f"the PBX could not ring your phone {phone}: {exc}") from None
    return web.json_response({"seat": seat_id, "phone": phone, "state": "connecting"}, status=201)


def _code_of(body: dict[str, Any]) -> str:
    code = body.get("code")
    if code not in PAUSE_CODES:
        raise web.HTTPBadRequest(text=f"code: one of {', '.join(PAUSE_CODES)}")
    return str(code)


PAUSE_BODY = {"type": "object", "additionalProperties": False, "required": ["code"],
              "properties": {"code": {"type": "string", "enum": list(PAUSE_CODES)}}}
MONITOR_BODY = {"type": "object", "additionalProperties": False, "required": ["mode"],
                "properties": {"mode": {"type": "string", "enum": [m.value for m in SpyMode]}}}


async def pause_me(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    code = _code_of(await json_object(request, PAUSE_BODY))
    paused = await floor_of(deps).pause(my_phone(who), code, by=who.username)
    return web.json_response({"paused": paused, "code": code})


async def ready_me(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    return web.json_response({"ready": await floor_of(deps).ready(my_phone(who), by=who.username)})


async def pause_collector(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    code = _code_of(await json_object(request, PAUSE_BODY))
    name = request.match_info["username"]
    paused = await pause_other(deps, who, name, code)
    return web.json_response({"paused": paused, "code": code, "user": name})


async def pause_other(deps: ConsoleDeps, who: Principal, name: str, code: str) -> int:
    """Pause a collector of the reader's floor (the API and the wallboard's form); 404 if the
    name is nobody's with a phone, or not within a team lead's team."""
    keeper, people = floor_of(deps), await staff(deps)
    user = next((u for u in people.by_phone.values() if u.username == name), None)
    if user is None or not user.phone or not people.in_reach(who, user.phone):
        raise web.HTTPNotFound(text=f"no collector {name} on your floor")
    return await keeper.pause(user.phone, code, by=who.username)


async def monitor_call(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    attempt_id = request.match_info["attempt_id"]
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise web.HTTPBadRequest(text="invalid attempt id")
    body = await json_object(request, MONITOR_BODY)
    try:
        mode = SpyMode(body.get("mode"))
    except ValueError:
        raise web.HTTPBadRequest(text=f"mode: one of {', '.join(m.value for m in SpyMode)}") from None
    session = await start_monitoring(deps, who, attempt_id, mode)
    return web.json_response({"session": session.spy_id, "mode": mode.value, "phone": session.phone,
                              "collector": session.collector}, status=201)


async def start_monitoring(deps: ConsoleDeps, who: Principal, attempt_id: str, mode: SpyMode) -> Any:
    """Ring the monitoring user's own phone onto a call on their floor (the API and the
    wallboard's forms); HTTP errors say why not."""
    keeper, phone = floor_of(deps), my_phone(who)
    if deps.supervision is None:
        raise web.HTTPServiceUnavailable(text="monitoring is off here")
    seat = next((x for x in keeper.floor.seats() if x.attempt_id == attempt_id), None)
    if seat is None or not (await staff(deps)).in_reach(who, seat.collector):
        raise web.HTTPNotFound(text="no such call on your floor now")
    if seat.collector == phone:
        raise web.HTTPConflict(text="that call is on your own phone")
    try:
        return await deps.supervision.start(attempt_id, mode, phone=phone, by=who.username)
    except NotOnTheFloor as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    except Exception as exc:  # the PBX could not ring the phone (the session is ledgered as ended)
        raise web.HTTPServiceUnavailable(text=f"the PBX could not ring your phone {phone}: {exc}") from None


async def floor_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: each change of a seat in the reader's reach (a collector: their own
    phone's seats; the wallboard: its floor). The first events are the seats as they stand."""
    who, deps = principal(request), request.app[DEPS]
    keeper = floor_of(deps)
    wallboard_view = may(who.role, P.FLOOR_VIEW)
    if not wallboard_view and not (may(who.role, P.FLOOR_WORK) and who.phone):
        raise web.HTTPForbidden(text="neither a seat of your own nor the wallboard")
    people = await staff(deps)

    def mine(seat: Seat) -> bool:
        return people.in_reach(who, seat.collector) if wallboard_view else seat.collector == who.phone

    queue = keeper.watch()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    request.app[SSE_CLIENTS].add(queue)
    try:
        for seat in keeper.floor.seats():
            if mine(seat) and not queue.full():
                queue.put_nowait(seat)
        while True:
            try:
                seat = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            if seat is None:  # the console is stopping
                break
            if not mine(seat):
                continue
            case_of = await cases_of(deps, [seat.attempt_id] if seat.attempt_id else [])
            event = seat_json(seat, keeper.now(), people, case_of, keeper.floor.wrap_up_s) | {"gone": not seat.channel
                                                                       and seat.state is not SeatState.CONNECTING}
            await response.write(f"event: seat\ndata: {json.dumps(event)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        keeper.unwatch(queue)
        request.app[SSE_CLIENTS].discard(queue)
    return response


async def close_streams(app: web.Application) -> None:
    """At shutdown: every live page's stream ends (else the console would wait for them)."""
    for queue in list(app[SSE_CLIENTS]):
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(None)


USERNAME = Param("username", "path", {"type": "string", "maxLength": 32})
ATTEMPT = Param("attempt_id", "path", {"type": "string", "pattern": ATTEMPT_ID_PATTERN.pattern})
ENDPOINTS = [
    Endpoint("GET", "/api/floor", wallboard, P.FLOOR_VIEW, "The wallboard: seats, their states and calls",
             tags=("floor",), responses={200: "the seats", 503: "the floor is off here (floor.seats = false)"}),
    Endpoint("POST", "/api/floor/seat", open_seat, P.FLOOR_WORK, "Open a seat on my own phone (it rings once)",
             tags=("floor",), responses={201: "the phone is being rung", 409: "you have no phone",
                                         503: "the floor is off, or the PBX could not ring the phone"}),
    Endpoint("POST", "/api/floor/pause", pause_me, P.FLOOR_WORK, "Pause my seats (a code)", body=PAUSE_BODY,
             tags=("floor",), responses={200: "paused", 400: "no such code", 409: "you have no phone", 503: "the floor is off here (floor.seats = false)"}),
    Endpoint("POST", "/api/floor/ready", ready_me, P.FLOOR_WORK, "Ready again (after a pause or wrap-up)",
             tags=("floor",), responses={200: "ready", 409: "you have no phone", 503: "the floor is off here (floor.seats = false)"}),
    Endpoint("POST", "/api/floor/collectors/{username}/pause", pause_collector, P.FLOOR_MANAGE,
             "Pause a collector (a code)", params=(USERNAME,), body=PAUSE_BODY, tags=("floor",),
             responses={200: "paused", 400: "no such code", 404: "no such collector on your floor", 503: "the floor is off here (floor.seats = false)"}),
    Endpoint("POST", "/api/calls/{attempt_id}/monitor", monitor_call, P.CALL_MONITOR,
             "Listen, whisper or barge on a live call from my own phone (ledgered)", params=(ATTEMPT,),
             body=MONITOR_BODY, tags=("floor",),
             responses={201: "your phone is being rung", 404: "no such call on your floor now",
                        409: "you have no phone", 503: "the floor is off"}),
    Endpoint("GET", "/api/floor/events", floor_events, P.SIGNED_IN,
             "Server-sent events: seats as they change (mine; the wallboard: my floor)", tags=("floor",),
             produces="text/event-stream",
             responses={200: "the event stream", 403: "neither a seat of your own nor the wallboard", 503: "the floor is off here (floor.seats = false)"}),
]
