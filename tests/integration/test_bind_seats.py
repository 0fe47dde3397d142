"""`bind` on the floor, over a real socket (Asterisk played by a script): an answered debtor is
given a ready collector's waiting channel (DUNLINE_SEAT), waits at most `seat_wait_s` for
one, or is abandoned with the message (DUNLINE_ABANDON=1, audited) — still bound and
recorded either way; the canary takes no seat."""
from __future__ import annotations

import asyncio
from dataclasses import replace

from agi_scripts.server import FastAgiServer
from dialer.floor import Floor, SeatState
from dialer.seats import SeatKeeper
from storage import repositories as repo
from tests.integration.test_call_routes import GOOD, ScriptedPbx, routes_server, signed  # noqa: F401


async def _bind_with_seats(routes_server, writer, floor: Floor, script: str, wait_s: float = 0.3) -> ScriptedPbx:
    keeper = SeatKeeper(None, floor, now=asyncio.get_running_loop().time, audit=writer.audit)
    routes = replace(routes_server.call_routes, seats=keeper, seat_wait_s=wait_s)
    server = FastAgiServer(routes.routes(), port=0, authorize=routes.authorize)
    await server.start()
    try:
        pbx = ScriptedPbx(routes_server.spool)
        await pbx.run(server.port, script, GOOD)
    finally:
        await server.close()
        await routes.close()
    return pbx


def _seated(floor: Floor, seat_id: str = "seat-1", collector: str = "6001") -> None:
    floor.open(seat_id, collector, 0.0)
    floor.answered(seat_id, f"PJSIP/{collector}-00000001", 0.0)


async def _actions(db) -> list[str]:
    async with db.session() as s:
        return [e.action for e in await repo.audit_events(s, subject=GOOD)]


async def test_an_answered_debtor_is_given_a_ready_collectors_waiting_channel(routes_server, db, writer):
    floor = Floor()
    _seated(floor)
    pbx = await _bind_with_seats(routes_server, writer, floor, signed("bind", GOOD))
    assert pbx.commands == ["SET VARIABLE DUNLINE_SEAT PJSIP/6001-00000001", "SET VARIABLE DUNLINE_BOUND 1"]
    seat = floor.get("seat-1")
    assert (seat.state, seat.attempt_id) == (SeatState.RESERVED, GOOD)


async def test_with_no_collector_ready_in_time_the_debtor_hears_the_message_and_is_counted(routes_server, db, writer):
    floor = Floor()
    floor.open("seat-1", "6001", 0.0)  # still ringing: not ready
    pbx = await _bind_with_seats(routes_server, writer, floor, signed("bind", GOOD), wait_s=0.2)
    assert pbx.commands == ["SET VARIABLE DUNLINE_ABANDON 1", "SET VARIABLE DUNLINE_BOUND 1"]
    assert "call.abandoned" in await _actions(db)
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert attempt.state == "bound" and attempt.recording_name == GOOD, "recorded like any answered call"


async def test_a_collector_ready_while_the_debtor_waits_takes_the_call(routes_server, db, writer):
    floor = Floor()
    floor.open("seat-1", "6001", 0.0)

    async def phone_answers_soon() -> None:
        await asyncio.sleep(0.1)
        floor.answered("seat-1", "PJSIP/6001-00000001", 0.0)

    answering = asyncio.ensure_future(phone_answers_soon())
    pbx = await _bind_with_seats(routes_server, writer, floor, signed("bind", GOOD), wait_s=1.5)
    await answering
    assert pbx.commands[0] == "SET VARIABLE DUNLINE_SEAT PJSIP/6001-00000001"
    assert "call.abandoned" not in await _actions(db)


async def test_the_canary_takes_no_seat(routes_server, db, writer):
    floor = Floor()
    _seated(floor)
    pbx = await _bind_with_seats(routes_server, writer, floor, signed("bind", GOOD) + "&canary=1")
    assert pbx.commands == ["SET VARIABLE DUNLINE_BOUND 1"]
    assert floor.get("seat-1").state is SeatState.READY


async def test_the_binding_names_the_collector_whose_seat_took_the_call(routes_server, db, writer):
    """The Originate named some collector (ring mode's); on the floor the debtor went to whoever
    was ready: the attempt is theirs (their dispositions, their screen, the reports)."""
    floor = Floor()
    _seated(floor, collector="6007")
    await _bind_with_seats(routes_server, writer, floor, signed("bind", GOOD))
    async with db.session() as s:
        attempt = await repo.get_attempt(s, GOOD)
    assert (attempt.state, attempt.collector) == ("bound", "6007")
