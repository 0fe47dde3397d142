"""The watchdog loop: probe, judge (checks), move the gate, alarm, run canaries.

Every `interval_s` it takes a snapshot through `Probes` (the live service's adapters),
turns it into check results, feeds the gate, and reports each open/close to
`on_change` (audit, log, webhook). Events that must not wait for the next tick (the AMI
link dropped, a recording failed) call `poke()`, so the gate closes within one
evaluation. While the gate wants proof, a canary call runs (at most one at a time, and
not more often than `canary_retry_s`); while it is open, one runs every
`canary_interval_s`. A failed canary is tried again after a short pause before its failure
counts (`canary_tries`: one judgement spoilt by a loaded host does not close the gate; a
real fault fails every try). A passing canary clears the incidents known when it started; a missing recording stays critical (but no longer holds the gate)
until it is archived or resolved.

Besides the gate it keeps one softer answer: `held_back()`, the back-pressure of a busy
ingest backlog (on at `ingest_high_water` recordings waiting, off at `ingest_low_water`),
which refuses new dials for a while without closing the gate or counting as an incident.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from recorder.watchdog import checks
from recorder.watchdog.checks import (BacklogLimits, CanaryFacts, CheckResult, DirectoryAccess, DiskFacts,
                                      IngestBacklog, PbxUptime, Reconciliation)
from recorder.watchdog.gate import DialingGate, DialsHeldBack, GateChange
from storage.clock import Clock

log = logging.getLogger("dunline.watchdog")


@dataclass(frozen=True, slots=True)
class WatchdogSettings:
    interval_s: float = 0.5
    canary_interval_s: float = 300.0
    canary_retry_s: float = 15.0
    # a failed canary is tried again before its failure counts (a loaded host can spoil one
    # judgement: "envelope match 0.77 < 0.80" under load), after a pause of at most canary_retry_s
    canary_tries: int = 2
    canary_recheck_s: float = 5.0
    canary_max_age_s: float = 900.0
    reconcile_after_s: float = 60.0  # an answered call must have its recording by then
    min_free_mb: int = 200
    min_hours_to_full: float = 24.0
    ingest_max_age_s: float = 120.0  # the oldest recording waiting for ingest longer: stuck
    ingest_stall_s: float = 60.0  # nothing archived for this long while recordings wait: stuck
    # facts wait in the journal and the database has taken none for this long: stuck, not busy
    journal_stuck_s: float = 3.0
    journal_starved_s: float = 60.0  # ...or one fact has waited this long, however busy it is
    ingest_high_water: int = 100  # busy: from this many recordings waiting, new dials are held back...
    ingest_low_water: int = 25  # ...until no more than this many wait
    silent_warn_ratio: float = 0.3
    silent_min_sample: int = 10
    clock_max_skew_s: float = 2.0
    ping_max_rtt_s: float = 2.0


@dataclass(frozen=True, slots=True)
class CanaryOutcome:
    passed: bool
    reason: str
    seconds: float
    attempt_id: str | None = None


class Probes(Protocol):
    async def ami(self) -> tuple[bool, float | None]: ...
    async def pbx_uptime(self) -> PbxUptime | None: ...
    async def mixmonitor_loaded(self) -> bool | None: ...
    async def disks(self) -> dict[str, DiskFacts | None]: ...  # check name -> facts
    async def spool_access(self) -> DirectoryAccess | None: ...
    async def ingest_backlog(self) -> IngestBacklog: ...
    # facts waiting for the database: how many, the oldest's age, seconds since it last took one
    async def journal_backlog(self) -> tuple[int, float, float]: ...
    async def reconciliation(self, older_than_s: float) -> Reconciliation: ...
    async def recent_recordings(self) -> tuple[int, int]: ...  # silent/short, total


@dataclass
class _Incidents:
    """Incident ids (attempt ids) seen and those a passing canary has cleared."""

    failed_recordings: dict[str, str] = field(default_factory=dict)  # attempt -> reason
    cleared: set[str] = field(default_factory=set)

    def open_ones(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(i for i in ids if i not in self.cleared)


class Watchdog:
    def __init__(self, probes: Probes, settings: WatchdogSettings, clock: Clock, *,
                 gate: DialingGate | None = None,
                 on_change: Callable[[GateChange], Awaitable[None]] | None = None,
                 canary: Callable[[], Awaitable[CanaryOutcome]] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.probes, self.settings, self.clock = probes, settings, clock
        self.monotonic = monotonic
        self.gate = gate or DialingGate()
        self.on_change = on_change
        self.canary = canary
        self.results: dict[str, CheckResult] = {}
        self.last_evaluated_at: datetime | None = None
        self.canary_facts = CanaryFacts(None, None)
        self.canary_runs = 0
        self.last_canary: CanaryOutcome | None = None
        self._incidents = _Incidents()
        self._uptime: PbxUptime | None = None
        self._clock_mark: tuple[float, float] | None = None
        self._held_back: DialsHeldBack | None = None  # back-pressure of a busy ingest backlog
        self._database_busy: DialsHeldBack | None = None  # ... of facts waiting a moment for the database
        self._poke = asyncio.Event()
        self._canary_task: asyncio.Task[None] | None = None
        self._canary_started_mono: float | None = None
        self._lock = asyncio.Lock()

    # -- inputs from the service ---------------------------------------------------------
    def poke(self) -> None:
        """Evaluate now (an event that may close the gate happened)."""
        self._poke.set()

    def recording_failed(self, attempt_id: str, reason: str) -> None:
        self._incidents.failed_recordings[attempt_id] = reason
        self.poke()

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            try:
                await self.evaluate()
            except Exception:  # a probe bug must not kill the watchdog: that is critical itself
                log.exception("watchdog evaluation failed")
                await self._apply([CheckResult("watchdog", checks.State.CRITICAL, "evaluation failed")])
            try:  # asyncio.timeout: wait_for (3.11) can swallow a cancellation racing the poke
                async with asyncio.timeout(self.settings.interval_s):
                    await self._poke.wait()
            except TimeoutError:
                pass
            self._poke.clear()

    async def evaluate(self) -> list[CheckResult]:
        async with self._lock:
            results = await self._collect()
            await self._apply(results)
            self._maybe_start_canary()
            return results

    async def _apply(self, results: list[CheckResult]) -> None:
        self.results = {r.name: r for r in results}
        self.last_evaluated_at = self.clock()
        change = self.gate.observe(results, self.last_evaluated_at)
        if change is not None:
            await self._report(change)

    async def _collect(self) -> list[CheckResult]:
        s, p = self.settings, self.probes
        now = self.clock()
        connected, rtt = await p.ami()
        results = [checks.ami_link(connected, rtt, max_rtt_s=s.ping_max_rtt_s)]
        if connected:
            uptime = await p.pbx_uptime()
            results.append(checks.pbx_restart(self._uptime, uptime))
            self._uptime = uptime or self._uptime
            results.append(checks.module_loaded("app_mixmonitor", await p.mixmonitor_loaded()))
        results.append(checks.spool_writable(await p.spool_access()))
        for name, disk in (await p.disks()).items():
            results.append(checks.disk_space(name, disk, min_free_bytes=s.min_free_mb * 2**20,
                                             min_hours_to_full=s.min_hours_to_full))
        results.append(self._backlog_check(await p.ingest_backlog()))
        written = checks.database_writes(*await p.journal_backlog(), stuck_after_s=s.journal_stuck_s,
                                         starved_after_s=s.journal_starved_s)
        self._database_busy = (DialsHeldBack(written.reason, max(1, round(s.journal_stuck_s)), "database_busy")
                               if written.back_pressure else None)
        results.append(written)
        found = await p.reconciliation(s.reconcile_after_s)
        results.append(checks.reconciliation(found, proven=frozenset(self._incidents.cleared)))
        failed = self._incidents.open_ones(tuple(self._incidents.failed_recordings))
        results.append(checks.recording_failures(failed))
        flagged, total = await p.recent_recordings()
        results.append(checks.silent_rate(flagged, total, warn_ratio=s.silent_warn_ratio,
                                          min_sample=s.silent_min_sample))
        results.append(self._clock_check())
        results.append(checks.canary(self.canary_facts, now, max_age_s=s.canary_max_age_s))
        return results

    def _backlog_check(self, backlog: IngestBacklog) -> CheckResult:
        s = self.settings
        limits = BacklogLimits(max_age_s=s.ingest_max_age_s, stall_s=s.ingest_stall_s,
                               high_water=s.ingest_high_water, low_water=s.ingest_low_water)
        result = checks.ingest_backlog(backlog, limits, holding=self._held_back is not None)
        if result.back_pressure != (self._held_back is not None):
            log.warning("new dials %s: %s", "held back" if result.back_pressure else "accepted again",
                        result.reason)
        self._held_back = (DialsHeldBack(result.reason, checks.retry_after_s(backlog, limits))
                           if result.back_pressure else None)
        return result

    def held_back(self) -> DialsHeldBack | None:
        """The back-pressure on new dials now (a busy ingest backlog, or a busy database), or None."""
        return self._held_back or self._database_busy

    def _clock_check(self) -> CheckResult:
        # both clocks read at the same instant (not the wall time from before the probes and
        # the monotonic time after them: a slow probe would read as a jump)
        mark = (self.clock().timestamp(), self.monotonic())
        previous, self._clock_mark = self._clock_mark, mark
        if previous is None:
            return checks.ok("clock", 0.0)
        return checks.clock_sanity(mark[0] - previous[0], mark[1] - previous[1],
                                   max_skew_s=self.settings.clock_max_skew_s)

    async def _report(self, change: GateChange) -> None:
        (log.warning if not change.opened else log.info)(
            "dialing gate %s: %s", "OPEN" if change.opened else "CLOSED", change.reason)
        if self.on_change is not None:
            await self.on_change(change)

    # -- canaries --------------------------------------------------------------------------
    def _maybe_start_canary(self) -> None:
        if self.canary is None or (self._canary_task is not None and not self._canary_task.done()):
            return
        blocking = any(r.critical and r.holds_gate and not r.cleared_by_canary for r in self.results.values())
        if blocking:
            return
        since = None if self._canary_started_mono is None else time.monotonic() - self._canary_started_mono
        due = self.settings.canary_retry_s if self.gate.wants_canary else self.settings.canary_interval_s
        if since is None or since >= due:
            self._canary_task = asyncio.create_task(self._run_canary(), name="canary")

    async def _run_canary(self) -> None:
        """One canary, tried again (`canary_tries` in all, `canary_recheck_s` apart) while it
        fails; only the last failure counts, and its reason says how many tries failed. A
        passing try clears the incidents known when that try started."""
        assert self.canary is not None
        tries = max(1, self.settings.canary_tries)
        pause = min(self.settings.canary_recheck_s, self.settings.canary_retry_s)
        failed: list[str] = []
        while True:
            known, outcome = await self._try_canary()
            if outcome.passed or len(failed) + 1 >= tries:
                break
            failed.append(outcome.reason)
            log.warning("canary failed (try %d of %d), trying again in %g s: %s", len(failed), tries, pause,
                        outcome.reason)
            await asyncio.sleep(pause)
        if failed and not outcome.passed:
            first = "" if failed[0] == outcome.reason else f"; the first: {failed[0]}"
            outcome = replace(outcome, reason=f"{outcome.reason} (failed {len(failed) + 1} tries, "
                                              f"{pause:g} s apart{first})")
        self.last_canary = outcome
        now = self.clock()
        if outcome.passed:
            self._incidents.cleared |= known
            self.canary_facts = CanaryFacts(now, self.canary_facts.last_failed_at, "")
            async with self._lock:
                results = await self._collect()
                self.results = {r.name: r for r in results}
                # anything critical now (a condition, or an incident found while the canary
                # ran, which it did not clear) keeps the gate closed, or closes it: reported
                change = self.gate.observe(results, now)
                if change is None and not any(r.critical and r.holds_gate for r in results):
                    change = self.gate.canary_passed(now)
                if change is not None:
                    await self._report(change)
        else:
            log.error("canary failed: %s", outcome.reason)
            self.canary_facts = CanaryFacts(self.canary_facts.last_passed_at, now, outcome.reason)
            self.poke()

    async def _try_canary(self) -> tuple[set[str], CanaryOutcome]:
        """One canary call, and the incidents known when it started."""
        assert self.canary is not None
        self._canary_started_mono = time.monotonic()
        known = set(self._incidents.failed_recordings) | set(await self._missing_now())
        self.canary_runs += 1
        try:
            return known, await self.canary()
        except Exception as exc:  # the canary's own failure is a failed canary
            log.exception("canary crashed")
            return known, CanaryOutcome(False, f"canary crashed: {exc}", 0.0)

    async def _missing_now(self) -> tuple[str, ...]:
        return (await self.probes.reconciliation(self.settings.reconcile_after_s)).missing

    async def stop(self) -> None:
        if self._canary_task is not None:
            self._canary_task.cancel()
            await asyncio.gather(self._canary_task, return_exceptions=True)

    # -- read side -------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        return {
            "gate": self.gate.state.value,
            "gate_open": self.gate.is_open,
            "gate_reason": self.gate.reason,
            "gate_changed_at": self.gate.changed_at.isoformat() if self.gate.changed_at else None,
            "dials_held_back": None if (held := self.held_back()) is None else {
                "rule": held.rule, "reason": held.reason, "retry_after_s": held.retry_after_s},
            "evaluated_at": self.last_evaluated_at.isoformat() if self.last_evaluated_at else None,
            "checks": {name: {"state": r.state.name.lower(), "reason": r.reason, "value": r.value}
                       for name, r in sorted(self.results.items())},
            "canary": None if self.last_canary is None else {
                "passed": self.last_canary.passed, "reason": self.last_canary.reason,
                "seconds": round(self.last_canary.seconds, 2), "attempt_id": self.last_canary.attempt_id,
                "runs": self.canary_runs},
        }
