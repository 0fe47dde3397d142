"""The watchdog loop with scripted probes: gate timing, canaries, incidents (no PBX)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone

from recorder.watchdog.checks import DiskFacts, IngestBacklog, PbxUptime, Reconciliation, State
from recorder.watchdog.gate import GateState
from recorder.watchdog.runner import CanaryOutcome, Watchdog, WatchdogSettings

GiB = 2**30


@dataclass
class ScriptedProbes:
    connected: bool = True
    uptime: PbxUptime | None = None
    mixmonitor: bool | None = True
    free: int = 10 * GiB
    missing: tuple[str, ...] = ()
    orphans: tuple[str, ...] = ()
    journaled: int = 0  # facts the database could not take
    journal_age: float = 3.0  # how long the oldest has waited
    backlog: IngestBacklog = IngestBacklog()
    calls: list[str] = field(default_factory=list)

    async def ami(self):
        return self.connected, 0.001

    async def pbx_uptime(self):
        return self.uptime

    async def mixmonitor_loaded(self):
        return self.mixmonitor

    async def disks(self):
        return {"archive_disk": DiskFacts("/archive", self.free, 20 * GiB, 0.0)}

    async def spool_access(self):
        return None

    async def ingest_backlog(self):
        return self.backlog

    async def journal_backlog(self):
        age = self.journal_age if self.journaled else 0.0
        return self.journaled, age, age

    async def reconciliation(self, older_than_s):
        return Reconciliation(missing=self.missing, orphans=self.orphans)

    async def recent_recordings(self):
        return 0, 0


class Canary:
    def __init__(self):
        self.results: list[bool] = []
        self.runs = 0

    async def __call__(self):
        self.runs += 1
        await asyncio.sleep(0.01)
        passed = self.results.pop(0) if self.results else True
        return CanaryOutcome(passed, "ok" if passed else "no speech on the collector leg", 0.01)


async def wait_for(predicate, timeout=3.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def running(probes, canary, clock, changes, **overrides):
    settings = WatchdogSettings(interval_s=0.05, canary_retry_s=0.05, **overrides)

    async def record(change):
        changes.append(change)

    dog = Watchdog(probes, settings, clock, on_change=record, canary=canary)
    task = asyncio.create_task(dog.run())
    return dog, task


async def stop(dog, task):
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await dog.stop()


async def test_starts_closed_opens_after_a_canary_and_closes_on_a_dropped_link(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes)
    try:
        assert not dog.gate.is_open
        await wait_for(lambda: dog.gate.is_open)
        assert canary.runs == 1 and changes[-1].opened
        probes.connected = False
        dog.poke()
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "AMI link down" in changes[-1].reason and dog.gate.state is GateState.CLOSED
        runs = canary.runs
        await asyncio.sleep(0.2)
        assert canary.runs == runs, "no canary while a condition is failing"
        probes.connected = True
        await wait_for(lambda: dog.gate.is_open)
        assert canary.runs == runs + 1, "re-opened by a canary, not by the recovery alone"
    finally:
        await stop(dog, task)


async def test_a_failed_canary_is_retried_and_keeps_the_gate_closed(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    canary.results = [False, False, True]
    dog, task = await running(probes, canary, clock, changes)
    try:
        await wait_for(lambda: dog.gate.is_open)
        assert canary.runs == 3
        assert dog.status()["checks"]["canary"]["state"] == "ok"
    finally:
        await stop(dog, task)


async def test_a_canary_spoilt_once_by_a_loaded_host_does_not_close_the_gate(clock):
    """An open gate's periodic canary fails once (a judgement spoilt by load) and passes when
    tried again a moment later: no close, no 503s; both calls counted."""
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes, canary_interval_s=0.1)
    try:
        await wait_for(lambda: dog.gate.is_open)
        runs = canary.runs
        clock.advance(1)
        canary.results = [False, True]
        await wait_for(lambda: canary.runs >= runs + 2 and not canary.results and dog.last_canary.passed)
        await asyncio.sleep(0.05)
        assert [c.opened for c in changes] == [True], "the failed try closed nothing"
        assert dog.status()["checks"]["canary"]["state"] == "ok" and dog.status()["canary"]["runs"] == canary.runs
    finally:
        await stop(dog, task)


async def test_a_canary_failing_every_try_counts_and_says_so(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes, canary_interval_s=0.1, canary_recheck_s=0.02)
    try:
        await wait_for(lambda: dog.gate.is_open)
        runs = canary.runs
        clock.advance(1)  # the failure comes after the pass that opened the gate
        canary.results = [False, False]
        await wait_for(lambda: not dog.gate.is_open, timeout=2.0)
        assert canary.runs == runs + 2, "closed by the second failed try, not the first"
        assert changes[-1].reason == ("canary: canary failed: no speech on the collector leg "
                                      "(failed 2 tries, 0.02 s apart)"), changes[-1].reason
        assert "failed 2 tries" in dog.status()["canary"]["reason"]
    finally:
        await stop(dog, task)


async def test_with_one_try_a_failed_canary_counts_at_once(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes, canary_interval_s=0.1, canary_tries=1)
    try:
        await wait_for(lambda: dog.gate.is_open)
        runs = canary.runs
        clock.advance(1)
        canary.results = [False]
        await wait_for(lambda: not dog.gate.is_open, timeout=2.0)
        assert canary.runs == runs + 1
        assert changes[-1].reason == "canary: canary failed: no speech on the collector leg"
    finally:
        await stop(dog, task)


async def test_incidents_close_the_gate_until_a_canary_passes(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes)
    try:
        await wait_for(lambda: dog.gate.is_open)
        dog.recording_failed("a" * 32, "recording not growing")
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        await wait_for(lambda: dog.gate.is_open)  # the canary proves the chain; the incident is cleared
        probes.missing = ("b" * 32,)  # a recording deleted before ingest
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "without an archived recording" in changes[-1].reason
        await wait_for(lambda: dog.gate.is_open)  # a canary proved the chain: the gate may open...
        check = dog.status()["checks"]["reconciliation"]
        assert check["state"] == "critical" and "b" * 32 in check["reason"], "...but forgives no missing recording"
        probes.missing = ("b" * 32, "c" * 32)  # a second one: the gate closes again
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "c" * 32 in changes[-1].reason
        await wait_for(lambda: dog.gate.is_open)
        probes.missing = ()  # archived at last (or resolved by a person)
        await asyncio.sleep(0.15)
        assert dog.status()["checks"]["reconciliation"]["state"] == "ok"
        probes.orphans = ("x.wav",)
        await asyncio.sleep(0.15)
        assert dog.gate.is_open and dog.status()["checks"]["reconciliation"]["state"] == "warn"
    finally:
        await stop(dog, task)


async def test_conditions_pbx_restart_module_and_full_disk(clock):
    from datetime import timedelta

    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes)
    try:
        await wait_for(lambda: dog.gate.is_open)
        probes.free = 10 * 2**20
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "archive_disk" in changes[-1].reason
        probes.free = 10 * GiB
        await wait_for(lambda: dog.gate.is_open)
        probes.mixmonitor = False
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "app_mixmonitor is not loaded" in changes[-1].reason
        probes.mixmonitor = True
        await wait_for(lambda: dog.gate.is_open)
        probes.uptime = PbxUptime(clock() + timedelta(minutes=1), None)
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "restarted" in changes[-1].reason
        await wait_for(lambda: dog.gate.is_open)
        probes.journaled = 2  # the database takes no writes: facts wait in the journal
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "database_writes" in changes[-1].reason and "2 fact(s)" in changes[-1].reason
        probes.journaled = 0
        await wait_for(lambda: dog.gate.is_open)
    finally:
        await stop(dog, task)


async def test_a_busy_backlog_holds_dials_back_with_the_gate_open_a_stuck_one_closes_it(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes, ingest_high_water=100, ingest_low_water=25,
                              ingest_stall_s=30)
    try:
        await wait_for(lambda: dog.gate.is_open)
        opened = len(changes)
        probes.backlog = IngestBacklog(150, 20, since_progress_s=0.2, rate_per_s=12.0)  # busy
        await wait_for(lambda: dog.held_back() is not None)
        held = dog.held_back()
        assert held.rule == "ingest_backlog" and held.retry_after_s == 11  # (150 - 25) / 12 a second
        assert dog.status()["dials_held_back"]["retry_after_s"] == 11
        probes.backlog = IngestBacklog(60, 20, since_progress_s=0.2, rate_per_s=12.0)  # between the marks
        await asyncio.sleep(0.15)
        assert dog.held_back() is not None, "held back until the low-water mark"
        probes.backlog = IngestBacklog(20, 20, since_progress_s=0.2, rate_per_s=12.0)
        await wait_for(lambda: dog.held_back() is None)
        assert dog.gate.is_open and len(changes) == opened, "busy never touched the gate"
        probes.backlog = IngestBacklog(150, 40, since_progress_s=31)  # nothing archived for 31 s: stuck
        await wait_for(lambda: not dog.gate.is_open, timeout=1.0)
        assert "stuck" in changes[-1].reason and dog.gate.state is GateState.CLOSED
        probes.backlog = IngestBacklog()
        await wait_for(lambda: dog.gate.is_open)  # recovered, then proven by a canary
    finally:
        await stop(dog, task)


async def test_a_crashing_probe_closes_the_gate(clock):
    class Broken(ScriptedProbes):
        async def disks(self):
            raise OSError("stat failed")

    probes, canary, changes = Broken(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes)
    try:
        await asyncio.sleep(0.2)
        assert not dog.gate.is_open and dog.status()["checks"]["watchdog"]["state"] == "critical"
    finally:
        await stop(dog, task)


async def test_a_slow_probe_is_not_a_clock_jump():
    """Time passes during the probes (a loaded host: one evaluation takes 3 s, the next
    none): wall and monotonic time still move together, so the clock check stays ok."""
    from storage.clock import ManualClock

    start = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
    wall = ManualClock(start)
    mono = {"now": 1000.0}

    def pass_time(seconds):
        wall.advance(seconds)
        mono["now"] += seconds

    class Slow(ScriptedProbes):
        rounds = 0

        async def disks(self):
            Slow.rounds += 1
            if Slow.rounds % 2:
                pass_time(3.0)  # this evaluation's probes take 3 s of both clocks
            return await super().disks()

    dog = Watchdog(Slow(uptime=PbxUptime(start, None)), WatchdogSettings(interval_s=0.05), wall,
                   monotonic=lambda: mono["now"])
    for _ in range(6):
        results = {r.name: r for r in await dog.evaluate()}
        assert results["clock"].state is State.OK, results["clock"]
        pass_time(0.5)
    wall.advance(10.0)  # a real jump of the wall clock alone is still caught
    assert {r.name: r for r in await dog.evaluate()}["clock"].state is State.CRITICAL


async def test_facts_waiting_a_moment_for_a_busy_database_hold_dials_back_and_keep_the_gate_open(clock):
    probes, canary, changes = ScriptedProbes(uptime=PbxUptime(clock(), None)), Canary(), []
    dog, task = await running(probes, canary, clock, changes)
    try:
        await wait_for(lambda: dog.gate.is_open)
        probes.journaled, probes.journal_age = 3, 1.0  # a burst: the replay takes them in a moment
        await wait_for(lambda: dog.held_back() is not None)
        assert dog.held_back().rule == "database_busy" and dog.gate.is_open
        assert dog.status()["dials_held_back"]["rule"] == "database_busy"
        probes.journaled = 0
        await wait_for(lambda: dog.held_back() is None)
        assert dog.gate.is_open and changes[-1].opened, "never closed"
    finally:
        await stop(dog, task)
