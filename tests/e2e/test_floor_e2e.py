"""Collectors' seats on the real sandbox: each collector's phone is rung once for the shift and
waits in the PBX; an answered debtor is bridged to a ready one at once, or, with none ready
within 2 s, hears the abandon message (recorded, audited), never dead air; after each call
the seat waits again; a seat whose phone hung up takes no more calls."""
from __future__ import annotations

import asyncio

import pytest

from dialer.floor import SeatState
from storage import repositories as repo
from tests.e2e.conftest import start_harness

pytestmark = pytest.mark.e2e


async def _until(predicate, timeout: float = 20.0, poll: float = 0.1) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(poll)


def _states(service) -> dict[str, str]:
    return {seat.seat_id: seat.state.value for seat in service.seats.floor.seats()}


async def _actions(service, attempt_id: str) -> list[str]:
    async with service.db.session() as s:
        return [e.action for e in await repo.audit_events(s, subject=attempt_id)]


async def test_answered_debtors_go_to_waiting_seats_or_hear_the_abandon_message(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True})
    service = h.service
    try:
        seats = await service.open_seats(("6001", "6002"))
        assert len(seats) == 2
        await _until(lambda: service.seats.floor.ready_count(asyncio.get_running_loop().time()) == 2)

        # three debtors answer at once (carrier: answer after 1 s, talk 6 s); two seats
        numbers = {"FL-1": "15555300021", "FL-2": "15555300022", "FL-3": "15555300023"}
        for case_id, number in numbers.items():
            await h.add_case(case_id, number)
        attempts = await asyncio.gather(*(service.dial(case_id) for case_id in numbers))
        recordings = [await h.wait_recording(a.id) for a in attempts]
        abandoned = [a for a in attempts if "call.abandoned" in await _actions(service, a.id)]
        assert len(abandoned) == 1, "two seats for three debtors: one abandoned with the message"
        ended = [await h.wait_attempt(a.id, until=lambda a, gone=a in abandoned: a.answered_seconds is not None
                                      and (gone or a.bridged_seconds is not None)) for a in attempts]
        for attempt, end, rec in zip(attempts, ended, recordings):
            assert end.outcome == "answered" and end.bound_at is not None
            legs = {leg["leg"]: leg for leg in rec.legs}
            assert legs["rx"]["has_signal"], legs  # the debtor, recorded whatever became of the call
            if attempt in abandoned:
                assert not end.bridged_seconds, "the abandoned debtor was bridged to nobody"
                assert rec.duration_s < 6, "the message, then the end: not the 6 s conversation"
                assert legs["tx"]["speech_ratio"] > 0, "the debtor heard the message, not dead air"
            else:
                assert end.bridged_seconds > 3, end
                assert legs["tx"]["has_signal"], legs  # the collector's phone
                assert abs(rec.duration_s - end.answered_seconds) <= 1.0, "recorded from answer to hang-up"

        # after their calls both seats wait again (wrap-up 0 s) and take the next debtor
        await _until(lambda: sorted(_states(service).values()) == ["wrap_up", "wrap_up"])
        await h.add_case("FL-4", "15555300024")
        again = await service.dial("FL-4")
        end = await h.wait_attempt(again.id, until=lambda a: a.bridged_seconds is not None)
        assert end.bridged_seconds > 3 and "call.abandoned" not in await _actions(service, again.id)

        # a collector's phone hangs up: that seat is gone, the other takes the next call
        await _until(lambda: SeatState.ON_CALL.value not in _states(service).values())
        gone = next(seat for seat in service.seats.floor.seats() if seat.collector == "6001")
        await service.link.action("Hangup", Channel=gone.channel, Cause=16)
        await _until(lambda: gone.seat_id not in _states(service))
        await h.add_case("FL-5", "15555300025")
        last = await service.dial("FL-5")
        await _until(lambda: any(s.attempt_id == last.id for s in service.seats.floor.seats()))
        assert next(s for s in service.seats.floor.seats() if s.attempt_id == last.id).collector == "6002"
        end = await h.wait_attempt(last.id, until=lambda a: a.bridged_seconds is not None)
        assert end.bridged_seconds > 3
        async with service.db.session() as s:
            closed = [e for e in await repo.audit_events(s, subject="6001") if e.action == "seat.closed"]
        assert closed and closed[-1].detail["seat"] == gone.seat_id
    finally:
        await service.stop(drain_timeout=30)
