"""Collectors' seats on the real sandbox: each collector's phone is rung once for the shift and
waits in the PBX; an answered debtor is bridged to a ready one at once, or, with none ready
within 2 s, hears the abandon message (recorded, audited), never dead air; after each call
the seat waits again; a seat whose phone hung up takes no more calls."""
from __future__ import annotations

import asyncio
import json

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


async def test_a_collector_whose_phone_unregisters_gets_no_further_call(sandbox_info, tmp_path):
    """The phone's registration is followed over AMI (ContactStatus): the moment 6003's phone
    unregisters, its seat is closed and hung up; the next debtor goes to 6004."""
    from asterisk_conf import sandbox

    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True})
    service = h.service
    try:
        await service.open_seats(("6003", "6004"))
        await _until(lambda: service.seats.floor.ready_count(asyncio.get_running_loop().time()) == 2)
        await asyncio.to_thread(sandbox.unregister_phone, sandbox_info, "6003")
        try:
            await _until(lambda: [s.collector for s in service.seats.floor.seats()] == ["6004"])
            await h.add_case("FL-U", "15555300026")
            attempt = await service.dial("FL-U")
            await _until(lambda: any(s.attempt_id == attempt.id for s in service.seats.floor.seats()))
            assert next(s for s in service.seats.floor.seats() if s.attempt_id == attempt.id).collector == "6004"
            end = await h.wait_attempt(attempt.id, until=lambda a: a.bridged_seconds is not None)
            assert end.bridged_seconds > 3
            async with service.db.session() as s:
                closed = [e for e in await repo.audit_events(s, subject="6003") if e.action == "seat.closed"]
            # baresip ends its calls as it drops the account: the seat's hang-up or the
            # registration's Removed, whichever the PBX reports first, closes it
            assert closed and any(why in closed[-1].detail["reason"] for why in ("Removed", "hung up"))
        finally:  # the session's sandbox is shared: the phone registers again
            await asyncio.to_thread(sandbox.register_phone, sandbox_info, "6003")
            await _until(lambda: "6003/sip:" in sandbox.asterisk_rx(sandbox_info, "pjsip show contacts"), timeout=10)
    finally:
        await service.stop(drain_timeout=30)


def _heard_rms(path) -> float:
    import audioop  # noqa: deprecated in 3.13; fine on 3.11 for a test's measure
    import wave

    with wave.open(str(path)) as handle:
        frames = handle.readframes(handle.getnframes())
    return float(audioop.rms(frames, handle.getsampwidth())) if frames else 0.0


async def test_a_supervisor_listens_whispers_and_barges_from_their_own_phone(sandbox_info, tmp_path):
    """Each mode: the supervisor's phone (6002) is rung, ChanSpy runs on the PBX attached to
    the collector's seat channel, the phone hears the call, and the ledger holds the session
    (who, which call, the mode; its end with its length)."""
    import time

    from asterisk_conf import sandbox
    from dialer.supervision import SpyMode

    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True})
    service = h.service
    supervisor_phone = next(p for p in sandbox_info.phones if p.endpoint == "6002")
    try:
        await service.open_seats(("6001",))
        await _until(lambda: service.seats.floor.ready_count(asyncio.get_running_loop().time()) == 1)
        await h.add_case("FL-S", "15550250041")  # carrier: answer after 1 s, talk 50 s
        attempt = await service.dial("FL-S")
        await _until(lambda: any(s.attempt_id == attempt.id and s.state is SeatState.ON_CALL
                                 for s in service.seats.floor.seats()))
        for mode in SpyMode:
            before, started = set(supervisor_phone.dump_dir.glob("*-dec.wav")), time.time()
            session = await service.supervision.start(attempt.id, mode, phone="6002", by="sup1")
            await _until(lambda: "ChanSpy" in sandbox.asterisk_rx(sandbox_info, "core show channels concise"),
                         timeout=15, poll=0.3)
            await asyncio.sleep(4)  # the supervisor hears the call
            await service.link.action("Hangup", Channel=session.spy_id, Cause=16)
            await _until(lambda: session.spy_id not in {s.spy_id for s in service.supervision.sessions()})
            await _until(lambda: bool(set(supervisor_phone.dump_dir.glob("*-dec.wav")) - before), timeout=10)
            [heard] = set(supervisor_phone.dump_dir.glob("*-dec.wav")) - before
            assert heard.stat().st_mtime >= started - 1
            assert _heard_rms(heard) > 300, f"{mode.value}: the supervisor's phone heard the call"
        await service.link.action("Hangup", Channel=attempt.id, Cause=16)  # the debtor's 50 s need not run out
        async with service.db.session() as s:
            from sqlalchemy import select

            from storage.models import LedgerEntry
            rows = (await s.scalars(select(LedgerEntry).where(LedgerEntry.subject == attempt.id)
                                    .order_by(LedgerEntry.seq))).all()
        sessions = [(r.actor, r.action, json.loads(r.detail)["mode"]) for r in rows
                    if r.action in ("monitor", "monitor_end")]
        assert sessions == [("sup1", edge, mode.value) for mode in SpyMode
                            for edge in ("monitor", "monitor_end")], sessions
        ended = [json.loads(r.detail) for r in rows if r.action == "monitor_end"]
        assert all(d["seconds"] >= 3 for d in ended), ended
    finally:
        await service.stop(drain_timeout=60)
