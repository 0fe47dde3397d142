"""The call monitor turns AMI events into attempt outcomes (real SQLite, scripted events)."""
from __future__ import annotations

import asyncio

import pytest

from ami.events import CoreShowChannel, Hangup, Newchannel, Newstate, OriginateResponse
from ami.link import Resynced
from dialer.monitor import CallMonitor
from storage import repositories as repo
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case

A1, A2, A3 = "1" * 32, "2" * 32, "3" * 32


@pytest.fixture
async def monitor(db, clock, writer):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-M", client="cu", debtor_name="Wu", created_at=clock()),
                            [repo.NewPhone("15552000001")])
        for aid in (A1, A2, A3):
            await repo.create_attempt(s, Attempt(id=aid, case_id="C-M", number="15552000001",
                                                 state="originated", created_at=clock(),
                                                 originated_at=clock()))
    ended: list[str] = []  # attempts whose recording became due for ingest

    def on_report(result) -> None:
        if result.ingest_due:
            ended.append(result.attempt_id)

    writer.on_report = on_report
    mon = CallMonitor(db, asyncio.Queue(), clock, writer, resync_grace_s=0.05)
    mon.recorded_ended = ended
    return mon


async def state_of(db, attempt_id):
    async with db.session() as s:
        return await repo.get_attempt(s, attempt_id)


async def test_busy_is_classified_by_the_hangup_cause(monitor, db):
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-1", uniqueid=A1, linkedid=A1, channel_state=0))
    await monitor.handle(OriginateResponse(at=1.5, response="Failure", reason=0, uniqueid=A1))
    await monitor.handle(Hangup(at=2.0, channel="PJSIP/carrier-1", uniqueid=A1, linkedid=A1, cause=17))
    attempt = await state_of(db, A1)
    assert (attempt.state, attempt.outcome, attempt.hangup_cause) == ("ended", "busy", 17)


async def test_answered_call_with_recording_is_queued_for_ingest(monitor, db, writer, clock):
    for event, extra in ((Event.ANSWERED, {}), (Event.BOUND, {"recording_name": A2})):
        await writer.report(A2, Report(event=event, source=Source.AGI, at=clock(), **extra))
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-2", uniqueid=A2, linkedid=A2, channel_state=0))
    await monitor.handle(Newstate(at=2.0, channel="PJSIP/carrier-2", uniqueid=A2, linkedid=A2, channel_state=6))
    await monitor.handle(Hangup(at=9.0, channel="PJSIP/carrier-2", uniqueid=A2, linkedid=A2, cause=16))
    attempt = await state_of(db, A2)
    assert (attempt.outcome, attempt.hangup_cause) == ("answered", 16)
    assert monitor.recorded_ended == [A2]


async def test_an_answered_call_never_bound_still_names_its_recording(monitor, db):
    """AMI saw the debtor answer and hang up, and no bind was ever stored (the service was slow
    or refused it): the dialplan recorded from the answer, so the end names the recording and
    makes it due for ingest. An unanswered call names none."""
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-3", uniqueid=A3, linkedid=A3, channel_state=0))
    await monitor.handle(Newstate(at=2.0, channel="PJSIP/carrier-3", uniqueid=A3, linkedid=A3, channel_state=6))
    await monitor.handle(Hangup(at=4.0, channel="PJSIP/carrier-3", uniqueid=A3, linkedid=A3, cause=16))
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-1", uniqueid=A1, linkedid=A1, channel_state=0))
    await monitor.handle(Hangup(at=5.0, channel="PJSIP/carrier-1", uniqueid=A1, linkedid=A1, cause=19))
    answered, unanswered = await state_of(db, A3), await state_of(db, A1)
    assert (answered.outcome, answered.bound_at, answered.recording_name) == ("answered", None, A3)
    assert (unanswered.outcome, unanswered.recording_name) == ("no_answer", None)
    assert monitor.recorded_ended == [A3]


async def test_failed_originate_without_a_channel_ends_the_attempt(monitor, db):
    await monitor.handle(OriginateResponse(at=1.0, response="Failure", reason=0, uniqueid=A3))
    attempt = await state_of(db, A3)
    assert (attempt.state, attempt.outcome) == ("ended", "failed")


async def test_failed_originate_without_uniqueid_is_matched_by_action_id(monitor, db):
    monitor.originate_queued("act-7", A3)
    await monitor.handle(OriginateResponse(at=1.0, response="Failure", reason=0, uniqueid="", action_id="act-7"))
    attempt = await state_of(db, A3)
    assert (attempt.state, attempt.outcome) == ("ended", "failed")


async def test_channels_foreign_to_us_are_ignored(monitor, db):
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/6001-1", uniqueid="1764380000.12", linkedid="x"))
    await monitor.handle(Hangup(at=2.0, channel="PJSIP/6001-1", uniqueid="1764380000.12", linkedid="x", cause=16))
    assert (await state_of(db, A1)).state == "originated"


async def test_resync_keeps_live_calls_and_fails_closed_on_vanished_ones(monitor, db, clock):
    clock.advance(10)
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-1", uniqueid=A1, linkedid=A1))
    await monitor.handle(Newchannel(at=1.0, channel="PJSIP/carrier-2", uniqueid=A2, linkedid=A2))
    live = CoreShowChannel(at=5.0, channel="PJSIP/carrier-2", uniqueid=A2, linkedid=A2, channel_state=6)
    await monitor.handle(Resynced(channels=(live,), at=5.0))
    await asyncio.sleep(0.3)
    assert (await state_of(db, A1)).state == "unknown", "vanished while the link was down"
    assert (await state_of(db, A3)).state == "unknown", "never seen, absent from the PBX"
    assert (await state_of(db, A2)).state == "originated", "still live on the PBX"
    assert monitor.resyncs == 1
