"""The canary on the real sandbox: PBX -> carrier -> MixMonitor -> ingest -> archive -> speech check.

One canary call passes within seconds: exactly that call in the carrier's call log, no
collector phone rung, left out of the compliance report. With app_mixmonitor unloaded on
the PBX the next canary fails with the reason `bind` gave; loaded again, it passes.
"""
from __future__ import annotations

import asyncio
import csv
from datetime import timedelta

import pytest

from asterisk_conf.sandbox import asterisk_rx
from dialer.compliance import compliance_report
from dialer.originate import CANARY_CASE
from recorder.watchdog.canary import CANARY_PROMPT_SECONDS, MIN_PROMPT_MATCH, envelope, prompt_match
from recorder.wavfile import HEADER_PROBE, parse_header
from storage import repositories as repo
from tests.e2e.conftest import start_harness

pytestmark = pytest.mark.e2e

NUMBER = "15551100077"  # carrier: answer after 1 s, then talk (prompt loop); only this file dials it


def leg_pcm(store, leg) -> tuple[bytes, int]:
    with store.open_read(leg["archive_path"]) as handle:
        data = handle.read()
    layout = parse_header(data[:HEADER_PROBE], len(data))
    return data[layout.data_offset:layout.data_offset + layout.data_size], layout.sample_rate


def phone_dumps(info) -> set[str]:
    """What the collector phones recorded (baresip writes a pair of WAVs per call)."""
    return {str(p) for phone in info.phones for p in phone.dump_dir.glob("*.wav")}


def carrier_rows(info, number: str) -> list[list[str]]:
    if not info.carrier_call_log.exists():
        return []
    with info.carrier_call_log.open(newline="") as handle:
        return [row for row in csv.reader(handle) if number in row]


async def wait_carrier_rows(info, number: str, count: int, timeout: float = 5.0) -> list[list[str]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        rows = carrier_rows(info, number)
        if len(rows) >= count or loop.time() > deadline:
            return rows
        await asyncio.sleep(0.1)


async def pbx(info, command: str) -> str:
    return await asyncio.to_thread(asterisk_rx, info, command)


@pytest.fixture
async def canary_harness(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path, watchdog={"canary_number": NUMBER})
    yield h
    await h.service.stop(drain_timeout=30)


async def test_canary_passes_and_fails_without_mixmonitor(canary_harness):
    harness = canary_harness
    service, info = harness.service, harness.info
    dumps_before = phone_dumps(info)
    rows_before = len(carrier_rows(info, NUMBER))

    # 1. a healthy chain: the canary passes, timed end to end
    passed = await service.run_canary()
    print("canary:", passed)
    assert passed.passed, passed.reason
    assert passed.seconds < 15, passed
    async with service.db.session() as s:
        attempt = await repo.get_attempt(s, passed.attempt_id)
        rec = await repo.recording_for_attempt(s, passed.attempt_id)
    print("legs:", rec.legs, "duration", rec.duration_s, "flags", rec.flags)
    assert (attempt.case_id, attempt.number, attempt.decision) == (CANARY_CASE, NUMBER, {"canary": True})
    assert attempt.collector is None and attempt.outcome == "answered" and attempt.hangup_cause == 16
    legs = {leg["leg"]: leg for leg in rec.legs}
    assert abs(legs["tx"]["duration_s"] - CANARY_PROMPT_SECONDS) < 1.0
    matches = {name: prompt_match(envelope(*leg_pcm(service.archive, leg))) for name, leg in legs.items()}
    print("envelope match with the prompt:", matches)
    assert matches["tx"] >= MIN_PROMPT_MATCH > matches["rx"], matches  # the carrier's talk is not it
    rows = await wait_carrier_rows(info, NUMBER, rows_before + 1)
    assert len(rows) == rows_before + 1 and "ANSWERED" in rows[-1], rows  # exactly that call
    # no collector was rung: never bridged, no phone recorded a call. (dial_status is the
    # Originate's own DialEnd, ANSWER: the carrier leg, not a collector.)
    await asyncio.sleep(0.5)  # both reports of the hang-up are in
    async with service.db.session() as s:
        ended = await repo.get_attempt(s, attempt.id)
        actions = [e.action for e in await repo.audit_events(s, subject=attempt.id)]
    assert not ended.bridged_seconds and ended.collector is None, ended.__dict__
    assert actions[:2] == ["attempt.created", "call.bound"] and "recording.ingested" in actions, actions
    assert phone_dumps(info) == dumps_before
    start = attempt.created_at - timedelta(hours=1)
    report = await compliance_report(service.db, start, start + timedelta(hours=2), service.policy)
    assert report.clean and report.attempts == 0, report.render()

    # 2. MixMonitor gone from the PBX: the dialplan cannot record the answered canary and hangs
    # up; the canary fails, saying why
    await pbx(info, "module unload app_mixmonitor.so")
    try:
        assert "0 modules loaded" in await pbx(info, "module show like app_mixmonitor")
        failed = await service.run_canary()
    finally:
        await pbx(info, "module load app_mixmonitor.so")
    print("canary without MixMonitor:", failed)
    assert not failed.passed
    assert "recording did not start" in failed.reason, failed.reason
    assert failed.seconds < 10, failed
    assert failed.attempt_id and failed.attempt_id != passed.attempt_id
    async with service.db.session() as s:
        assert await repo.recording_for_attempt(s, failed.attempt_id) is None

    # 3. loaded again: it passes
    again = await service.run_canary()
    print("canary again:", again)
    assert again.passed, again.reason
    assert len(await wait_carrier_rows(info, NUMBER, rows_before + 3)) == rows_before + 3
    assert phone_dumps(info) == dumps_before
