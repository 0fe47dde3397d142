"""The watchdog's probes on a real database and spool directory (no PBX: a fake AMI link).

Reconciliation (`ServiceProbes.reconciliation`) finds an answered call without a recording,
spool files nobody owns (orphans) and recordings whose length does not match the call's;
through the watchdog, the missing recording closes the gate and the others only warn, and
an incident found while a canary runs is not cleared by that canary.
"""
from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from recorder.watchdog import checks
from recorder.watchdog.checks import IngestBacklog, State
from recorder.watchdog.gate import GateState
from recorder.watchdog.probes import ServiceProbes
from recorder.watchdog.runner import CanaryOutcome, Watchdog, WatchdogSettings
from storage import repositories as repo
from storage.clock import ManualClock
from storage.models import Attempt, Case, IngestJob, Recording

MISSING, MISMATCHED, FINE, RECENT, UNANSWERED, OLD = (c * 32 for c in "abcdef")
LIVE = "0" * 32
STRAY, FRESH_STRAY = "9" * 32, "8" * 32


class FakeLink:
    """What the probes ask of the AMI link: connected, Ping RTT, CoreStatus, ListCommands."""

    connected = True
    last_ping_rtt = 0.002

    async def query(self, name: str):
        if name == "CoreStatus":
            return {"Response": "Success", "CoreStartupDate": "2026-11-30", "CoreStartupTime": "01:00:00",
                    "CoreReloadDate": "2026-11-30", "CoreReloadTime": "01:00:00"}
        if name == "ListCommands":
            return {"Response": "Success", "Ping": "Keepalive", "StopMixMonitor": "Stop recording"}
        raise AssertionError(name)


def service_clock() -> ManualClock:
    # the service's clock need not be the file system's (OffsetClock in e2e and the demo):
    # a day ahead of real time, so spool file ages must come from the wall clock
    return ManualClock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1))


def probes_for(db, clock, spool: Path) -> ServiceProbes:
    return ServiceProbes(link=FakeLink(), db=db, clock=clock, volumes={"spool_disk": spool},
                         backlog=lambda: IngestBacklog(), spool_dir=spool)


async def add_call(db, clock, attempt_id: str, *, ended_ago: float | None, recorded: bool = True,
                   recording_flags: list[str] | None = None, state: str = "ended") -> None:
    """An attempt (answered and bound if `recorded`), ended `ended_ago` seconds before now,
    with a Recording row if `recording_flags` is given; its ingest job as the lifecycle
    leaves it (recording while the call runs, due from its end, archived with its row)."""
    now = clock()
    async with db.session() as s:
        if await s.get(Case, "REC-1") is None:
            await repo.add_case(s, Case(id="REC-1", client="c", debtor_name="D", created_at=now), [])
        ended_at = None if ended_ago is None else now - timedelta(seconds=ended_ago)
        await repo.create_attempt(s, Attempt(
            id=attempt_id, case_id="REC-1", number="15550001111", state=state, created_at=now - timedelta(hours=1),
            outcome="answered" if recorded else "no_answer", ended_at=ended_at,
            answered_at=now - timedelta(hours=1) if recorded else None,
            recording_name=attempt_id if recorded else None))
        if recorded:
            job_state = "archived" if recording_flags is not None else "recording" if ended_at is None else "due"
            s.add(IngestJob(attempt_id=attempt_id, state=job_state, created_at=now - timedelta(hours=1),
                            due_at=ended_at, next_try_at=ended_at, tries=0))
        if recording_flags is not None:
            await repo.add_recording(s, Recording(
                attempt_id=attempt_id, case_id="REC-1", archive_path=f"x/{attempt_id}.wav", sha256="0" * 64,
                size_bytes=1000, duration_s=30.0, flags=recording_flags, call_ended_at=ended_at or now,
                created_at=(ended_at or now) + timedelta(seconds=1), retain_until=now + timedelta(days=1200)))


def spool_file(spool: Path, name: str, age_s: float) -> None:
    path = spool / name
    path.write_bytes(b"RIFF" + b"\0" * 100)
    mtime = time.time() - age_s  # the file system's clock: real time
    os.utime(path, (mtime, mtime))


async def populate(db, clock, spool: Path) -> None:
    await add_call(db, clock, MISSING, ended_ago=120)  # answered, no recording: missing
    await add_call(db, clock, MISMATCHED, ended_ago=300, recording_flags=["duration_mismatch"])
    await add_call(db, clock, FINE, ended_ago=200, recording_flags=[])
    await add_call(db, clock, RECENT, ended_ago=10)  # not yet settled: ingest may still be running
    await add_call(db, clock, UNANSWERED, ended_ago=500, recorded=False)  # no recording expected
    await add_call(db, clock, OLD, ended_ago=3 * 86400)  # missing for days: still missing
    await add_call(db, clock, LIVE, ended_ago=None, state="bound")  # a call in progress
    spool.mkdir(exist_ok=True)
    spool_file(spool, f"{STRAY}.wav", 600)  # no attempt at all: orphan
    spool_file(spool, f"{FINE}-tx.wav", 600)  # its call is archived already: orphan
    spool_file(spool, f"{LIVE}.wav", 600)  # the call in progress is still writing it
    spool_file(spool, f"{LIVE}-rx.wav", 600)
    spool_file(spool, f"{FRESH_STRAY}.wav", 5)  # too young to judge
    (spool / "vanished.wav").symlink_to(spool / "nowhere.wav")  # listed, gone at stat (ingest moved it)


async def test_reconciliation_finds_missing_orphans_and_mismatches(db, tmp_path):
    clock, spool = service_clock(), tmp_path / "spool"
    await populate(db, clock, spool)
    found = await probes_for(db, clock, spool).reconciliation(60)
    assert found.missing == (OLD, MISSING), "however old, until archived or resolved"
    assert found.mismatched == (MISMATCHED,)
    assert set(found.orphans) == {f"{STRAY}.wav", f"{FINE}-tx.wav"}, found.orphans

    judged = checks.reconciliation(found)
    assert judged.state is State.CRITICAL and judged.cleared_by_canary and MISSING in judged.reason
    proven = checks.reconciliation(found, proven=frozenset(found.missing))
    assert proven.state is State.CRITICAL and not proven.holds_gate, "a canary forgives no missing recording"
    without_missing = checks.reconciliation(type(found)(orphans=found.orphans, mismatched=found.mismatched))
    assert without_missing.state is State.WARN
    assert without_missing.reason == "2 orphan recording(s); 1 length mismatch(es)"

    clock.advance(60)  # the recent call has settled now, still without its recording
    assert (await probes_for(db, clock, spool).reconciliation(60)).missing == (OLD, MISSING, RECENT)


class Canary:
    """Passes; `during` runs inside the canary call (something happening meanwhile)."""

    def __init__(self) -> None:
        self.runs = 0
        self.during = None

    async def __call__(self) -> CanaryOutcome:
        self.runs += 1
        if self.during is not None:
            during, self.during = self.during, None
            await during()
        return CanaryOutcome(True, "ok", 0.01, f"canary-{self.runs}")


async def wait_for(predicate, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_watchdog_gate_on_reconciliation_with_real_probes(db, tmp_path):
    clock, spool = service_clock(), tmp_path / "spool"
    spool.mkdir()
    probes = probes_for(db, clock, spool)
    changes = []

    async def record(change):
        changes.append(change)

    canary = Canary()
    dog = Watchdog(probes, WatchdogSettings(interval_s=0.05, canary_retry_s=0.05, reconcile_after_s=60,
                                            min_free_mb=1), clock, on_change=record, canary=canary)
    task = asyncio.create_task(dog.run())
    try:
        await wait_for(lambda: dog.gate.is_open)
        # orphans and a length mismatch: alarms only, the gate stays open
        spool_file(spool, f"{STRAY}.wav", 600)
        await add_call(db, clock, MISMATCHED, ended_ago=300, recording_flags=["duration_mismatch"])
        await asyncio.sleep(0.2)
        assert dog.gate.is_open and dog.results["reconciliation"].state is State.WARN, dog.results
        # an answered call without its recording: closed until a canary proves the chain
        runs = canary.runs
        await add_call(db, clock, MISSING, ended_ago=120)
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert dog.gate.state is GateState.PROVING and MISSING in changes[-1].reason
        await wait_for(lambda: dog.gate.is_open)
        assert canary.runs > runs and changes[-1].reason == "canary passed"
        await asyncio.sleep(0.2)
        assert dog.gate.is_open, "the canary proved the chain: calls may go on"
        assert dog.results["reconciliation"].critical and MISSING in dog.results["reconciliation"].reason, \
            "the missing recording stays critical until archived or resolved"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dog.stop()


async def test_an_incident_found_during_a_canary_is_not_cleared_by_it(db, tmp_path):
    """A canary clears the incidents known when it started: a missing recording found while
    it runs keeps the gate closed (and is alarmed), whether the gate was open or proving."""
    clock, spool = service_clock(), tmp_path / "spool"
    spool.mkdir()
    changes = []

    async def record(change):
        changes.append(change)

    canary = Canary()
    # the loop evaluates seldom: the canary's own evaluation at its end is the first to see it
    dog = Watchdog(probes_for(db, clock, spool),
                   WatchdogSettings(interval_s=1.0, canary_retry_s=0.05, canary_interval_s=0.5,
                                    reconcile_after_s=60, min_free_mb=1), clock, on_change=record, canary=canary)
    task = asyncio.create_task(dog.run())
    try:
        # 1. proving (the start): the first canary passes, but a missing recording appeared meanwhile
        canary.during = lambda: add_call(db, clock, MISSING, ended_ago=120)
        await wait_for(lambda: canary.runs == 1 and dog.last_canary is not None)
        await asyncio.sleep(0.1)
        assert not dog.gate.is_open, f"opened despite {MISSING} found during the canary: {changes}"
        assert MISSING in dog.gate.reason
        await wait_for(lambda: dog.gate.is_open, timeout=5)  # the next canary knew it, and cleared it
        assert canary.runs == 2 and [c.opened for c in changes] == [True]
        # 2. open: a periodic canary passes while another missing recording appears
        canary.during = lambda: add_call(db, clock, MISMATCHED, ended_ago=120)  # no Recording row
        await wait_for(lambda: canary.runs == 3 and dog.last_canary.attempt_id == "canary-3", timeout=5)
        await asyncio.sleep(0.1)
        assert not dog.gate.is_open and MISMATCHED in dog.gate.reason, changes
        assert [c.opened for c in changes] == [True, False] and MISMATCHED in changes[-1].reason, \
            "the close is reported (audit, log, webhook) as soon as it happens"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await dog.stop()
