"""End to end on the real sandbox: Asterisk 22, a carrier Asterisk, baresip collector phones.

(a) an answered call is bound, bridged to a collector, recorded and archived;
(b) busy / no answer / congestion / invalid are told apart by the Hangup cause;
(c) the AMI link is cut mid-call: it reconnects, resyncs, the outcome is still recorded
    and the Originate was sent exactly once;
(d) the FastAGI server survives hostile clients and still binds the next real call;
(e) the PBX records from the answer even while the service is slow to bind.
"""
from __future__ import annotations

import asyncio
import hashlib

import pytest

from storage import repositories as repo
from tests.e2e.conftest import start_harness
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e


async def test_answered_call_is_bound_recorded_and_archived(harness):
    number = "15555300001"  # carrier: answer after 1 s, talk 6 s, hang up
    await harness.add_case("E2E-A", number)
    attempt = await harness.service.dial("E2E-A")
    rec = await harness.wait_recording(attempt.id)
    ended = await harness.wait_attempt(  # both reports in: hang-up handler and AMI bridge events
        attempt.id, until=lambda a: a.bridged_seconds is not None and a.answered_seconds is not None)

    assert (ended.case_id, ended.outcome, ended.hangup_cause) == ("E2E-A", "answered", 16)
    assert ended.recording_name == attempt.id and ended.bound_at is not None
    assert ended.dial_status == "ANSWER", "the collector phone answered"
    assert ended.bridged_seconds and ended.bridged_seconds > 3

    path = harness.service.archive.path_of(rec.archive_path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == rec.sha256
    assert abs(rec.duration_s - ended.bridged_seconds) <= 1.0, (rec.duration_s, ended.bridged_seconds)
    assert abs(rec.duration_s - ended.answered_seconds) <= 1.0, "recorded from answer to hang-up"
    async with harness.service.db.session() as s:
        actions = [e.action for e in await repo.audit_events(s, subject=attempt.id)]
    assert "recording.not_growing" not in actions
    legs = {leg["leg"]: leg for leg in rec.legs}
    assert legs["rx"]["has_signal"], legs  # the debtor (carrier prompts)
    assert legs["tx"]["has_signal"], legs  # the collector (phone's speech source)
    for leg in legs.values():
        leg_path = harness.service.archive.path_of(leg["archive_path"])
        assert hashlib.sha256(leg_path.read_bytes()).hexdigest() == leg["sha256"]
    assert rec.flags == [], rec.flags
    assert actions[:2] == ["attempt.created", "call.bound"] and "recording.ingested" in actions
    assert harness.carrier_calls(number) == 1


async def test_the_recording_covers_the_whole_answered_time_while_the_service_is_slow_to_bind(harness):
    """The dialplan starts MixMonitor the moment the debtor answers, before it asks the service:
    a service that stalls (here its event loop blocked for 2.5 s the moment the debtor
    answers: a pause, a starved CPU) delays the bridge, never the recording. The answered span
    is measured from the PBX's own events as they arrive: the channel Up, and the carrier's
    hang-up request (the channel's Hangup event comes only after the hang-up handler ran).
    The carrier talks from its answer, as a debtor would."""
    import time

    from ami.events import Hangup, Newstate, UnknownEvent

    number = "15555300001"  # carrier: answer after 1 s, talk 6 s, hang up
    await harness.add_case("E2E-SLOW", number)
    events = harness.service.link.subscribe()
    attempt = await harness.service.dial("E2E-SLOW")
    try:
        up = down = gone = None
        while gone is None:
            event = await asyncio.wait_for(events.get(), timeout=30)
            if isinstance(event, UnknownEvent) and event.name == "HangupRequest":
                if event.headers.get("Uniqueid") == attempt.id and down is None:
                    down = event.at  # the carrier hung up
                continue
            if getattr(event, "uniqueid", None) != attempt.id:
                continue
            if isinstance(event, Newstate) and event.channel_state == 6 and up is None:
                up = event.at
                time.sleep(2.5)  # the whole service stalls: FastAGI, AMI, the database, everything
            elif isinstance(event, Hangup):
                gone = event.at
    finally:
        harness.service.link.unsubscribe(events)
    rec = await harness.wait_recording(attempt.id)
    ended = await harness.wait_attempt(attempt.id, until=lambda a: a.bridged_seconds is not None)
    assert up is not None and down is not None and ended.outcome == "answered"
    answered_span = down - up
    print(f"answered {answered_span:.2f} s, bridged {ended.bridged_seconds} s, recorded {rec.duration_s:.2f} s")
    assert ended.bridged_seconds < answered_span - 1.0, "the stalled service did keep the collector waiting"
    assert rec.duration_s >= answered_span - 0.1, "no more than 100 ms of the answered call is missing"


@pytest.mark.parametrize("number, outcome, cause", [
    ("15552000001", "busy", 17),
    ("15553000001", "no_answer", None),
    ("15554000001", "congestion", 34),
    ("19990000001", "invalid", 1),
])
async def test_unanswered_outcomes_from_hangup_cause(harness, number, outcome, cause):
    case_id = f"E2E-{outcome}"
    await harness.add_case(case_id, number)
    attempt = await harness.service.dial(case_id)
    ended = await harness.wait_attempt(attempt.id, timeout=30)
    assert ended.outcome == outcome, (ended.outcome, ended.hangup_cause, ended.note)
    if cause is not None:
        assert ended.hangup_cause == cause
    assert ended.recording_name is None and ended.bound_at is None
    async with harness.service.db.session() as s:
        assert await repo.recording_for_attempt(s, attempt.id) is None


async def test_ami_cut_mid_call_reconnects_resyncs_and_never_redials(sandbox_info, tmp_path):
    proxy = TcpProxy(sandbox_info.ami_host, sandbox_info.ami_port)
    await proxy.start()
    h = await start_harness(sandbox_info, tmp_path, ami_port=proxy.port)
    try:
        number = "15555500002"  # answer after 1 s, talk 10 s
        await h.add_case("E2E-C", number)
        logins_before = h.service.link.logins
        resyncs_before = h.service.monitor.resyncs
        attempt = await h.service.dial("E2E-C")
        await h.wait_attempt(attempt.id, state="bound", timeout=20)
        proxy.cut()
        for _ in range(200):
            if h.service.link.logins > logins_before and h.service.monitor.resyncs > resyncs_before:
                break
            await asyncio.sleep(0.1)
        assert h.service.link.logins > logins_before, "the link logged in again"
        assert h.service.monitor.resyncs > resyncs_before, "a resync followed the new login"
        ended = await h.wait_attempt(attempt.id, timeout=40)
        rec = await h.wait_recording(attempt.id)
        assert ended.outcome == "answered" and ended.hangup_cause == 16
        assert rec.duration_s > 5
        assert proxy.count(b"Action: Originate") == 1, "Originate was never replayed"
        assert proxy.connections >= 2
        assert h.carrier_calls(number) == 1
    finally:
        await h.service.stop(drain_timeout=30)
        await proxy.close()


async def test_fastagi_survives_hostile_clients_then_binds_a_real_call(harness):
    port = harness.service.agi.port
    # 1. connect and close without a byte
    _, w = await asyncio.open_connection("127.0.0.1", port)
    w.close()
    # 2. a garbage header
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"\x00\xff garbage \r\n\r\n")
    await w.drain()
    await asyncio.wait_for(r.read(), 10)  # the server closes it
    w.close()
    # 3. a "channel" without its attempt's token, hanging up at once: refused before any command
    r, w = await asyncio.open_connection("127.0.0.1", port)
    attempt_id = "f" * 32
    w.write((f"agi_network: yes\nagi_network_script: bind?attempt={attempt_id}\n"
             f"agi_request: agi://127.0.0.1/bind?attempt={attempt_id}\n"
             f"agi_channel: PJSIP/x-1\nagi_uniqueid: {attempt_id}\n\n").encode())
    await w.drain()
    assert await asyncio.wait_for(r.readline(), 10) == b"FAILURE\n"
    w.write(b"HANGUP\n")
    w.close()
    # the server still binds and records a real call
    await harness.add_case("E2E-D", "15555200003")
    attempt = await harness.service.dial("E2E-D")
    ended = await harness.wait_attempt(attempt.id)
    assert ended.outcome == "answered" and ended.recording_name == attempt.id
    await harness.wait_recording(attempt.id)
    async with harness.service.db.session() as s:
        refused = [e for e in await repo.audit_events(s) if e.action == "agi.refused"]
    assert refused and refused[0].detail["reason"] == "no valid token for this attempt"
