"""The floor's pages: a collector's (their seat, pause / ready, and the screen pop: the case
of the call on their seat opens by itself) and the wallboard (seats, calls, listen / whisper /
barge, pause a collector). The rules and the wire are console/floor_api.py's; the pages are
forms (no JavaScript needed) plus one small script (/static/floor.js) that follows the
floor's events and opens the call's case the moment it is bridged."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from console import i18n
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.campaigns_api import campaigns_with_counts
from console.campaigns_pages import change_from_form, with_verbs
from console.floor_api import (PAUSE_CODES, cases_of, floor_of, my_phone, pause_other, start_monitoring,
                               wallboard_json)
from console.pages import locale_of, read_form, render, show_case
from dialer.floor import SeatState
from dialer.seats import SeatNotOpened
from dialer.supervision import SpyMode
from people.roles import Permission, may
from storage.models import ATTEMPT_ID_PATTERN

P = Permission
ON_A_SEAT = (SeatState.RESERVED, SeatState.ON_CALL, SeatState.WRAP_UP)


async def floor_page(request: web.Request, *, message: str | None = None, error: bool = False,
                     status: int = 200) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    seats = []
    if deps.seats is not None and who.phone:
        keeper = deps.seats
        mine = [s for s in keeper.floor.seats() if s.collector == who.phone]
        case_of = await cases_of(deps, [s.attempt_id for s in mine if s.attempt_id])
        seats = [(s, case_of.get(s.attempt_id or ""), round(keeper.now() - s.since)) for s in mine]
    return render(request, "floor.html", status=status, message=message, error=error, seats=seats,
                  floor_on=deps.seats is not None, phone=who.phone, pause_codes=PAUSE_CODES, live=True)


async def floor_action(request: web.Request, action: str) -> web.Response:
    """Open a seat / pause / ready, from the floor page's forms."""
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    form = await read_form(request)
    try:
        keeper, phone = floor_of(deps), my_phone(who)
        if action == "seat":
            try:
                await keeper.open_seat(phone)
            except SeatNotOpened as exc:
                return await floor_page(request, message=t("error", message=str(exc)), error=True, status=503)
            message = t("floor.ringing", phone=phone)
        elif action == "pause":
            code = form.get("code", "")
            if code not in PAUSE_CODES:
                return await floor_page(request, message=t("floor.bad_code"), error=True, status=400)
            await keeper.pause(phone, code, by=who.username)
            message = t("floor.paused", code=t(f"pause.{code}"))
        else:
            await keeper.ready(phone, by=who.username)
            message = t("floor.is_ready")
    except web.HTTPException as exc:
        return await floor_page(request, message=t("error", message=exc.text or exc.reason), error=True,
                                status=exc.status)
    return await floor_page(request, message=message)


async def call_page(request: web.Request) -> web.Response:
    """The screen pop: the case of the call on my seat (reserved, on the call, wrapping up)."""
    who, deps = principal(request), request.app[DEPS]
    attempt_id = request.match_info["attempt_id"]
    if not ATTEMPT_ID_PATTERN.fullmatch(attempt_id) or deps.seats is None or not who.phone:
        raise web.HTTPNotFound(text="no such call on your seat")
    if not any(s.attempt_id == attempt_id and s.collector == who.phone and s.state in ON_A_SEAT
               for s in deps.seats.floor.seats()):
        raise web.HTTPNotFound(text="no such call on your seat")
    case_of = await cases_of(deps, [attempt_id])
    if attempt_id not in case_of:
        raise web.HTTPNotFound(text="no such call on your seat")
    return await show_case(request, case_of[attempt_id], on_call=attempt_id)


async def wallboard_page(request: web.Request, *, message: str | None = None, error: bool = False,
                         status: int = 200) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    board = await wallboard_json(deps, who) if deps.seats is not None else None
    campaigns = [with_verbs(c) for c in await campaigns_with_counts(deps, include_stopped=False)]
    return render(request, "wallboard.html", status=status, message=message, error=error, board=board,
                  modes=[m.value for m in SpyMode], pause_codes=PAUSE_CODES, refresh=5, campaigns=campaigns,
                  can_monitor=may(who.role, P.CALL_MONITOR) and bool(who.phone),
                  can_pause=may(who.role, P.FLOOR_MANAGE), can_manage_campaigns=may(who.role, P.CAMPAIGN_MANAGE))


async def campaign_form(request: web.Request) -> web.Response:
    """Start / pause / stop a campaign from the wallboard's buttons."""
    return await change_from_form(request, wallboard_page)


async def monitor_form(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    attempt_id, form = request.match_info["attempt_id"], await read_form(request)
    try:
        mode = SpyMode(form.get("mode", ""))
    except ValueError:
        return await wallboard_page(request, message=t("floor.no_call"), error=True, status=400)
    try:
        session = await start_monitoring(deps, who, attempt_id, mode)
    except web.HTTPException as exc:
        return await wallboard_page(request, message=t("error", message=exc.text or exc.reason), error=True,
                                    status=exc.status)
    return await wallboard_page(request, message=t("floor.monitoring", mode=t(f"spy.{mode.value}"),
                                                  phone=session.phone))


async def pause_form(request: web.Request) -> web.Response:
    who, deps = principal(request), request.app[DEPS]
    t = i18n.translator(locale_of(request, who))
    name, form = request.match_info["username"], await read_form(request)
    code = form.get("code", "")
    try:
        if code not in PAUSE_CODES:
            raise web.HTTPNotFound()
        await pause_other(deps, who, name, code)
    except web.HTTPNotFound:
        return await wallboard_page(request, message=t("floor.no_collector"), error=True, status=404)
    return await wallboard_page(request, message=t("floor.paused_other", user=name, code=t(f"pause.{code}")))


FLOOR_SCRIPT = (Path(__file__).parent / "static" / "floor.js").read_bytes()


async def floor_script(request: web.Request) -> web.Response:
    return web.Response(body=FLOOR_SCRIPT, content_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=3600"})


def _page(method: str, path: str, handler: Any, permission: Permission, summary: str, **extra: Any) -> Endpoint:
    return Endpoint(method, path, handler, permission, summary, page=True, produces="text/html", **extra)


ENDPOINTS = [
    Endpoint("GET", "/static/floor.js", floor_script, None, "The floor page's script (the screen pop)", page=True,
             produces="text/javascript"),
    _page("GET", "/floor", floor_page, P.FLOOR_WORK, "My seat on the floor"),
    _page("POST", "/floor/seat", lambda request: floor_action(request, "seat"), P.FLOOR_WORK,
          "Open my seat: my phone rings (form)"),
    _page("POST", "/floor/pause", lambda request: floor_action(request, "pause"), P.FLOOR_WORK,
          "Pause my seat with a code (form)"),
    _page("POST", "/floor/ready", lambda request: floor_action(request, "ready"), P.FLOOR_WORK, "Ready (form)"),
    _page("GET", "/floor/calls/{attempt_id}", call_page, P.FLOOR_WORK, "The case of the call on my seat",
          params=(Param("attempt_id", "path", {"type": "string"}),)),
    _page("GET", "/wallboard", wallboard_page, P.FLOOR_VIEW, "The wallboard"),
    _page("POST", "/wallboard/calls/{attempt_id}/monitor", monitor_form, P.CALL_MONITOR,
          "Listen, whisper or barge (form)", params=(Param("attempt_id", "path", {"type": "string"}),)),
    _page("POST", "/wallboard/campaigns/{campaign_id}/{action}", campaign_form, P.CAMPAIGN_MANAGE,
          "Start, pause or stop a campaign (form)", params=(Param("campaign_id", "path", {"type": "string"}),
                                                           Param("action", "path", {"type": "string"}))),
    _page("POST", "/wallboard/collectors/{username}/pause", pause_form, P.FLOOR_MANAGE, "Pause a collector (form)",
          params=(Param("username", "path", {"type": "string"}),)),
]
