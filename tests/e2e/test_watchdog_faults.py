"""Fault injection on the real sandbox: the watchdog closes the dialing gate, no call gets
through while it is closed, and only a passing canary opens it again.

Each test starts the service with the watchdog on, waits for the first canary to open the
gate, injects one fault and proves, with the same three steps (`close_measured`,
`refused`, `reopens_after_canary`):

1. the gate closed in time: within CLOSE_LIMIT_S of the fault becoming observable
   (a condition: disk full, module gone, AMI down) or of the incident the service
   reported (a call whose recording failed);
2. no call reached the carrier while it was closed: `Service.dial` raised GateClosed
   (audited `dial.gate_closed`) and the carrier's own call log has no call for the numbers
   dialled then (each phase dials its own number);
3. it re-opened only after recovery, through a canary that started after the recovery and
   passed (`last_canary`, the canaries' start times, audit `gate.closed` / `gate.opened`
   with reasons).

Times come from wrapping, per instance, the watchdog's gate report, its gate's judgement,
its incident input and its canary (`instrument`); nothing in the service is changed.

(a) the spool volume fills up; (b) the spool directory becomes unwritable; (c) app_mixmonitor
is unloaded; (d) the AMI connection is cut; (e) the PBX is killed and restarted; (f) a
recording is deleted during the call: before its first flush, and after it grew (the growth
watch runs for the whole call).
Every fault is undone in a `finally` (mount, mode, module, PBX).
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from asterisk_conf import sandbox
from recorder.watchdog.gate import GateChange, GateClosed, GateState
from recorder.watchdog.runner import CanaryOutcome
from storage import repositories as repo
from tests.e2e.conftest import Harness, start_harness
from tests.e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e

CANARY = "15551100550"  # carrier: answer after 1 s and talk; only this file's canaries dial it
CLOSE_LIMIT_S = 1.5
WATCHDOG = {"enabled": True, "interval_s": 0.25, "canary_retry_s": 2, "reconcile_after_s": 3,
            "min_free_mb": 1, "canary_number": CANARY}
MiB = 2**20


# -- instrumentation and the open/close/prove pattern -------------------------------------

@dataclass
class Trace:
    """What the watchdog did, with monotonic times: gate changes, critical results it judged,
    incidents the service reported."""

    changes: list[tuple[float, GateChange]] = field(default_factory=list)
    criticals: list[tuple[float, str, str]] = field(default_factory=list)  # (t, check, reason)
    evaluations: list[tuple[float, frozenset[str]]] = field(default_factory=list)  # (t, critical checks)
    incidents: list[tuple[float, str, str]] = field(default_factory=list)  # (t, attempt, reason)
    canaries: list[tuple[float, float, CanaryOutcome]] = field(default_factory=list)  # (start, end, outcome)

    def closes_after(self, t0: float) -> list[tuple[float, GateChange]]:
        return [(t, c) for t, c in self.changes if t >= t0 and not c.opened]

    def critical_checks(self, since: float) -> set[str]:
        return {name for t, name, _ in self.criticals if t >= since}

    def cleared(self, check: str, since: float) -> float | None:
        """When the watchdog first judged `check` not critical after having judged it
        critical since `since` (the recovery as the watchdog saw it)."""
        seen = False
        for t, names in self.evaluations:
            if t < since:
                continue
            if check in names:
                seen = True
            elif seen:
                return t
        return None

    def critical_reasons(self, check: str, since: float) -> list[str]:
        return [reason for t, name, reason in self.criticals if name == check and t >= since]

    def incident(self, attempt_id: str) -> tuple[float, str] | None:
        return next(((t, reason) for t, a, reason in self.incidents if a == attempt_id), None)


def instrument(h: Harness) -> Trace:
    """Wrap (per instance) the watchdog's report, its gate's judgement and the incident input."""
    w, trace = h.service.watchdog, Trace()
    assert w is not None, "watchdog not enabled"
    report, observe, failed, canary = w.on_change, w.gate.observe, w.recording_failed, w.canary

    async def on_change(change: GateChange) -> None:
        trace.changes.append((time.monotonic(), change))
        await report(change)

    def judged(results, now):
        results = list(results)
        at = time.monotonic()
        trace.criticals += [(at, r.name, r.reason) for r in results if r.critical]
        trace.evaluations.append((at, frozenset(r.name for r in results if r.critical)))
        return observe(results, now)

    def recording_failed(attempt_id: str, reason: str) -> None:
        trace.incidents.append((time.monotonic(), attempt_id, reason))
        failed(attempt_id, reason)

    async def timed_canary() -> CanaryOutcome:
        started = time.monotonic()
        outcome = await canary()
        trace.canaries.append((started, time.monotonic(), outcome))
        return outcome

    w.on_change, w.gate.observe, w.recording_failed = on_change, judged, recording_failed
    w.canary = timed_canary
    return trace


async def until(predicate, timeout: float, what: str, poll: float = 0.01):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        await asyncio.sleep(poll)


async def harness_open(info, tmp_path: Path, **kwargs) -> tuple[Harness, Trace]:
    """The service with the watchdog on, its gate opened by the first canary."""
    watchdog = {**WATCHDOG, **kwargs.pop("watchdog", {})}
    h = await start_harness(info, tmp_path, watchdog=watchdog, **kwargs)
    try:
        trace = instrument(h)
        w = h.service.watchdog
        try:
            await until(lambda: w.gate.is_open, 40, "the first canary opening the gate", poll=0.05)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {w.gate.reason}; last canary {w.last_canary}") from None
    except BaseException:
        await h.service.stop(drain_timeout=30)
        raise
    return h, trace


async def close_measured(h: Harness, trace: Trace, t0: float, check: str, *, limit: float = CLOSE_LIMIT_S,
                         state: GateState | None = None) -> float:
    """The gate closed within `limit` s of `t0` (the fault or incident), with `check`
    critical among the reasons; returns the measured delay."""
    w = h.service.watchdog
    await until(lambda: trace.closes_after(t0), limit + 10, f"gate closing on {check}")
    at, change = trace.closes_after(t0)[0]
    delay = at - t0
    print(f"gate closed {delay:.3f} s after the fault: {change.state.value}: {change.reason}")
    # the gate may close on another symptom of the same fault first (a PBX being killed fails
    # its probes over a link not yet seen down): the named check must follow
    await until(lambda: check in trace.critical_checks(t0), limit + 10,
                f"{check} judged critical (so far: {sorted(trace.critical_checks(t0))})")
    assert delay <= limit, f"the gate closed {delay:.2f} s after the fault (limit {limit} s): {change.reason}"
    assert not w.gate.is_open
    if state is not None:
        assert change.state is state, change
    await until_audited(h, "dialing-gate", "gate.closed", reason=change.reason)
    return delay


async def refused(h: Harness, case_id: str, number: str) -> None:
    """A dial while the gate is closed: GateClosed, audited, nothing originated."""
    await h.add_case(case_id, number)
    with pytest.raises(GateClosed, match="dialing gate closed"):
        await h.service.dial(case_id)
    async with h.service.db.session() as s:
        events = [e.action for e in await repo.audit_events(s, subject=case_id)]
        assert not await repo.attempts_for_case(s, case_id)
    assert "dial.gate_closed" in events, events


async def reopens_after_canary(h: Harness, trace: Trace, recovered_at: float, *, timeout: float = 45) -> float:
    """After the recovery the gate opened again, and only through a canary that started
    after the recovery and passed; returns the seconds from recovery to open."""
    w = h.service.watchdog
    await until(lambda: w.gate.is_open, timeout, "gate re-opening after recovery", poll=0.05)
    opened = [(t, c) for t, c in trace.changes if c.opened and t >= recovered_at]
    assert opened, trace.changes
    at, change = opened[0]
    assert change.reason == "canary passed" and change.state is GateState.OPEN, change
    assert w.last_canary is not None and w.last_canary.passed, w.last_canary
    started, ended, outcome = [c for c in trace.canaries if c[1] <= at][-1]  # the one that opened it
    assert outcome is w.last_canary and started >= recovered_at, "a canary started after the recovery"
    await until_audited(h, "dialing-gate", "gate.opened", reason="canary passed")
    async with h.service.db.session() as s:
        canary = await repo.get_attempt(s, w.last_canary.attempt_id)
        gate = [e for e in await repo.audit_events(s, subject="dialing-gate")]
    assert canary is not None and canary.number == CANARY and canary.outcome == "answered"
    assert gate[-1].action == "gate.opened" and gate[-1].detail["reason"] == "canary passed", gate[-1]
    assert gate[-2].action == "gate.closed", gate[-2]
    print(f"re-opened {at - recovered_at:.1f} s after recovery by canary {w.last_canary.attempt_id} "
          f"({w.last_canary.seconds:.1f} s, {w.canary_runs} canary runs in all)")
    return at - recovered_at


async def no_carrier_calls(h: Harness, *numbers: str) -> None:
    await asyncio.sleep(0.5)  # a call placed anyway would be in the log by now
    for number in numbers:
        assert h.carrier_calls(number) == 0, f"{number} reached the carrier while the gate was closed"


async def until_audited(h: Harness, subject: str, action: str, timeout: float = 10, *,
                        reason: str | None = None) -> set[str]:
    """The audit actions on `subject` once `action` (with that `reason`) is among them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with h.service.db.session() as s:
            events = await repo.audit_events(s, subject=subject)
        actions = {e.action for e in events}
        if any(e.action == action and (reason is None or e.detail.get("reason") == reason) for e in events):
            return actions
        assert loop.time() < deadline, f"{action} not audited for {subject}: {actions}"
        await asyncio.sleep(0.1)


async def pbx(info, command: str) -> str:
    return await asyncio.to_thread(sandbox.asterisk_rx, info, command)


async def wait_spool_file(h: Harness, attempt_id: str, timeout: float = 20) -> Path:
    path = h.info.recording_dir_host / f"{attempt_id}.wav"
    await until(path.exists, timeout, f"spool file of {attempt_id}", poll=0.005)
    return path


# -- (a) the spool volume fills up -----------------------------------------------------------

def _mount_tmpfs(target: Path, size_mb: int) -> None:
    st = target.stat()
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    f"size={size_mb}m,uid={st.st_uid},gid={st.st_gid},mode={st.st_mode & 0o7777:o}",
                    "dunline-fault-spool", str(target)], check=True, capture_output=True)


def _unmount(target: Path) -> None:
    if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)
    assert not os.path.ismount(target), f"{target} still mounted"


async def test_spool_volume_full_closes_until_freed(sandbox_info, tmp_path):
    spool = sandbox_info.recording_dir_host
    assert not os.path.ismount(spool)
    _mount_tmpfs(spool, 8)
    try:
        h, trace = await harness_open(sandbox_info, tmp_path, watchdog={"min_free_mb": 2})
        try:
            filler = spool / "filler.bin"
            free = os.statvfs(spool).f_bavail * os.statvfs(spool).f_frsize
            with open(filler, "wb") as handle:  # leave 1 MiB: below min_free_mb
                handle.write(b"\0" * (free - 1 * MiB))
                handle.flush()
                os.fsync(handle.fileno())
            t0 = time.monotonic()
            await close_measured(h, trace, t0, "spool_disk", state=GateState.CLOSED)
            assert h.service.watchdog.results["spool_disk"].critical
            await refused(h, "WF-A", "15555490101")
            await asyncio.sleep(1.0)
            assert not h.service.watchdog.gate.is_open
            assert not [c for c in trace.canaries if c[0] >= t0], "no canary while a condition fails"
            filler.unlink()
            await reopens_after_canary(h, trace, time.monotonic())
            await no_carrier_calls(h, "15555490101")
        finally:
            await h.service.stop(drain_timeout=30)
    finally:
        (spool / "filler.bin").unlink(missing_ok=True)
        _unmount(spool)


# -- (b) the spool directory becomes unwritable ------------------------------------------------

async def test_unwritable_spool_dir_closes_before_any_call(sandbox_info, tmp_path):
    """The spool directory stops being writable by its owner (the PBX user): the watchdog
    sees it from the directory's mode, before any call would have failed to record.
    (A call that does meet an unrecordable spool is rejected by bind: integration tests.)"""
    spool = sandbox_info.recording_dir_host
    mode = spool.stat().st_mode & 0o7777
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        w = h.service.watchdog
        runs = w.canary_runs
        spool.chmod(0o555)
        try:
            t0 = time.monotonic()
            await close_measured(h, trace, t0, "spool_writable", state=GateState.CLOSED)
            assert "not writable by uid" in w.results["spool_writable"].reason, w.results["spool_writable"]
            await refused(h, "WF-B2", "15555490202")
            await asyncio.sleep(1.0)
            assert w.canary_runs == runs, "no canary while a condition fails"
        finally:
            spool.chmod(mode)
        await reopens_after_canary(h, trace, time.monotonic())
        await no_carrier_calls(h, "15555490202")
    finally:
        spool.chmod(mode)
        await h.service.stop(drain_timeout=30)


# -- (c) app_mixmonitor unloaded ---------------------------------------------------------------

async def test_mixmonitor_unloaded_closes_until_loaded(sandbox_info, tmp_path):
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        try:
            t0 = time.monotonic()  # the unload may be seen before `asterisk -rx` returns: measured from
            await pbx(sandbox_info, "module unload app_mixmonitor.so")  # the command (an upper bound)
            await close_measured(h, trace, t0, "module_app_mixmonitor", state=GateState.CLOSED)
            await refused(h, "WF-C", "15555490301")
        finally:
            if "0 modules loaded" in await pbx(sandbox_info, "module show like app_mixmonitor"):
                await pbx(sandbox_info, "module load app_mixmonitor.so")
        await reopens_after_canary(h, trace, time.monotonic())
        await no_carrier_calls(h, "15555490301")
    finally:
        await h.service.stop(drain_timeout=30)
        if "0 modules loaded" in await pbx(sandbox_info, "module show like app_mixmonitor"):
            await pbx(sandbox_info, "module load app_mixmonitor.so")


# -- (d) the AMI connection is cut -------------------------------------------------------------

async def test_ami_cut_closes_until_reconnected(sandbox_info, tmp_path):
    proxy = TcpProxy(sandbox_info.ami_host, sandbox_info.ami_port)
    await proxy.start()
    try:
        h, trace = await harness_open(sandbox_info, tmp_path, ami_port=proxy.port)
        try:
            link = h.service.link
            logins = link.logins
            t0 = time.monotonic()  # measured from the cut (its effect may be seen before cut() returns)
            proxy.cut()
            await close_measured(h, trace, t0, "ami_link", state=GateState.CLOSED)
            await refused(h, "WF-D1", "15555490401")
            await until(lambda: link.logins > logins and link.connected, 30, "AMI reconnect", poll=0.05)
            await refused(h, "WF-D2", "15555490402")  # the link is back, the gate still closed
            recovered = await until(lambda: trace.cleared("ami_link", t0), 5, "ami_link ok again")
            await reopens_after_canary(h, trace, recovered)
            assert proxy.connections == 2
            await no_carrier_calls(h, "15555490401", "15555490402")
        finally:
            await h.service.stop(drain_timeout=30)
    finally:
        await proxy.close()


# -- (e) the PBX is killed and restarted ---------------------------------------------------------

async def test_pbx_killed_and_restarted(sandbox_info, tmp_path):
    state = sandbox_info.state_dir
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        link = h.service.link
        logins = link.logins
        try:
            t0 = time.monotonic()  # the link's loss may be seen before kill_pbx returns: measured from the kill
            killed = await asyncio.to_thread(sandbox.kill_pbx, state)
            await close_measured(h, trace, t0, "ami_link", state=GateState.CLOSED)
            await refused(h, "WF-E", "15555490501")
            started = time.monotonic()
            pid = await asyncio.to_thread(sandbox.start_pbx, state)
            print(f"PBX {killed} killed; restarted as {pid} in {time.monotonic() - started:.1f} s")
        finally:
            if not sandbox.status(state).running:
                await asyncio.to_thread(sandbox.start_pbx, state)
        await until(lambda: link.logins > logins and link.connected, 40, "AMI reconnect", poll=0.05)
        recovered = await until(lambda: trace.cleared("pbx_uptime", t0), 5, "pbx_uptime ok again")
        restarted = await until(lambda: trace.critical_reasons("pbx_uptime", t0), 5, "pbx_uptime judged")
        assert any(r.startswith("PBX restarted at") for r in restarted), restarted
        await reopens_after_canary(h, trace, recovered)
        await no_carrier_calls(h, "15555490501")
    finally:
        await h.service.stop(drain_timeout=30)
    assert sandbox.status(state).running


# -- (f) a recording deleted before ingest -----------------------------------------------------

async def test_recording_deleted_before_ingest(sandbox_info, tmp_path):
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        w, spool = h.service.watchdog, sandbox_info.recording_dir_host
        # 1. deleted as soon as MixMonitor opened it (before its first 32 KB flush): the growth
        #    watch sees no growth, cuts the call (no recording, no call) and reports the incident
        await h.add_case("WF-F1", "15555490601")  # answer after 1 s, talk 8 s
        attempt = await h.service.dial("WF-F1")
        await h.wait_attempt(attempt.id, state="bound", timeout=20, poll=0.02)  # bind saw the file
        for _ in range(20):  # the rx/tx legs are opened right after the mixed file
            for path in spool.glob(f"{attempt.id}*.wav"):
                path.unlink(missing_ok=True)
            await asyncio.sleep(0.01)
        t0, reason = await until(lambda: trace.incident(attempt.id), 15, "growth watch incident")
        assert reason == "recording not growing", reason
        await close_measured(h, trace, t0, "unrecorded_calls", state=GateState.PROVING)
        await refused(h, "WF-F2", "15555490602")
        ended = await h.wait_attempt(attempt.id, timeout=20)
        assert ended.hangup_cause == 41, ended.__dict__
        actions = await until_audited(h, attempt.id, "ingest.failed")
        assert {"call.bound", "recording.not_growing", "recording.call_cut", "ingest.failed"} <= actions, actions
        await asyncio.sleep(3.2)  # reconcile_after_s after the call ended
        found = await w.probes.reconciliation(3)
        assert attempt.id in found.missing, found
        await reopens_after_canary(h, trace, t0)
        await asyncio.sleep(1.0)
        assert w.gate.is_open, f"the canary cleared the incident: {w.gate.reason}"

        # 2. deleted after it grew, mid-call: the growth watch runs for the whole call, so the
        #    file that stopped growing gets the call cut too (a disk filling mid-call alike)
        await h.add_case("WF-F3", "15555490603")
        attempt = await h.service.dial("WF-F3")
        path = await wait_spool_file(h, attempt.id)
        await until(lambda: path.exists() and path.stat().st_size > 44, 10, "first flush", poll=0.02)
        await asyncio.sleep(0.3)  # the growth watch has seen it grow
        for leg in spool.glob(f"{attempt.id}*.wav"):
            leg.unlink()
        t1, reason = await until(lambda: trace.incident(attempt.id), 15, "growth watch incident mid-call")
        assert reason == "recording not growing", reason
        await close_measured(h, trace, t1, "unrecorded_calls", state=GateState.PROVING)
        ended = await h.wait_attempt(attempt.id, timeout=20)
        assert ended.outcome == "answered" and ended.hangup_cause == 41, ended.__dict__
        actions = await until_audited(h, attempt.id, "ingest.failed")
        assert {"recording.not_growing", "ingest.failed"} <= actions, actions
        await refused(h, "WF-F4", "15555490604")
        await reopens_after_canary(h, trace, t1)
        await no_carrier_calls(h, "15555490602", "15555490604")
        assert h.carrier_calls("15555490601") == 1 and h.carrier_calls("15555490603") == 1
    finally:
        await h.service.stop(drain_timeout=30)

