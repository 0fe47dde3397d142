"""Watchdog checks, pure: facts in, a `CheckResult` (state + reason) out.

Each function judges one part of the recording chain from a snapshot the runner took;
none does I/O, so every threshold is tested without a PBX. `CRITICAL` closes the dialing
gate; `WARN` is an alarm only. One warning also acts: a busy ingest backlog sets
`back_pressure` (new dials are refused for a while, the gate stays open).
"""
from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


class State(enum.IntEnum):
    OK = 0
    WARN = 1
    CRITICAL = 2


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    state: State
    reason: str = ""
    value: float | None = None  # the measured figure, for /metrics
    # an incident (a call not recorded, a failed canary) rather than a condition: it stays
    # until a canary proves the chain again, instead of clearing by itself
    cleared_by_canary: bool = False
    # False: still critical (shown, alarmed) but no longer holding the gate closed: the
    # chain was proven since (missing recordings stay critical until archived or resolved)
    holds_gate: bool = True
    # new dials are held back (HTTP 503, Retry-After) while this is set: the ingest backlog is
    # busy, not stuck; the gate stays open and nothing is an incident
    back_pressure: bool = False

    @property
    def critical(self) -> bool:
        return self.state is State.CRITICAL


def ok(name: str, value: float | None = None, reason: str = "") -> CheckResult:
    return CheckResult(name, State.OK, reason, value)


def ami_link(connected: bool, ping_rtt_s: float | None, *, max_rtt_s: float = 2.0) -> CheckResult:
    """The AMI link is up and answers its Ping in time (no AMI: calls cannot be watched)."""
    if not connected:
        return CheckResult("ami_link", State.CRITICAL, "AMI link down", None)
    if ping_rtt_s is not None and ping_rtt_s > max_rtt_s:
        return CheckResult("ami_link", State.WARN, f"Ping took {ping_rtt_s:.2f} s", ping_rtt_s)
    return ok("ami_link", ping_rtt_s)


@dataclass(frozen=True, slots=True)
class PbxUptime:
    startup: datetime | None  # CoreStatus CoreStartupDate/Time
    reload: datetime | None  # CoreReloadDate/Time


def pbx_restart(previous: PbxUptime | None, current: PbxUptime | None) -> CheckResult:
    """A restart or reload since the last look: the chain must prove itself again."""
    if current is None or current.startup is None:
        return CheckResult("pbx_uptime", State.CRITICAL, "PBX status unknown")
    if previous is not None and previous.startup is not None:
        if current.startup != previous.startup:
            return CheckResult("pbx_uptime", State.CRITICAL,
                               f"PBX restarted at {current.startup.isoformat()}")
        if current.reload != previous.reload and current.reload is not None:
            return CheckResult("pbx_uptime", State.CRITICAL,
                               f"PBX configuration reloaded at {current.reload.isoformat()}")
    return ok("pbx_uptime")


def module_loaded(name: str, loaded: bool | None) -> CheckResult:
    """A module the chain needs (app_mixmonitor) is loaded in the PBX."""
    check = f"module_{name}"
    if loaded is None:
        return CheckResult(check, State.CRITICAL, f"cannot tell whether {name} is loaded")
    return ok(check) if loaded else CheckResult(check, State.CRITICAL, f"{name} is not loaded")


@dataclass(frozen=True, slots=True)
class DirectoryAccess:
    """Who must be able to write a directory (its owner when the service started), and
    what the directory says now."""

    path: str
    writer_uid: int
    writer_gid: int
    exists: bool
    uid: int = -1
    gid: int = -1
    mode: int = 0
    read_only_mount: bool = False


def can_write(access: DirectoryAccess) -> bool:
    """Unix permission bits (no ACLs): may writer_uid/writer_gid create files here?"""
    if not access.exists or access.read_only_mount:
        return False
    if access.writer_uid == 0:
        return True
    if access.uid == access.writer_uid:
        return bool(access.mode & 0o300 == 0o300)
    if access.gid == access.writer_gid:
        return bool(access.mode & 0o030 == 0o030)
    return bool(access.mode & 0o003 == 0o003)


def spool_writable(access: DirectoryAccess | None) -> CheckResult:
    """The PBX can still create recordings in its spool directory (MixMonitor would only
    log "Cannot open" and record nothing)."""
    if access is None:
        return ok("spool_writable", None, "not checked")
    if can_write(access):
        return ok("spool_writable", 1)
    why = ("does not exist" if not access.exists else "is on a read-only mount" if access.read_only_mount
           else f"is not writable by uid {access.writer_uid} (owner {access.uid}:{access.gid}, "
                f"mode {access.mode & 0o777:o})")
    return CheckResult("spool_writable", State.CRITICAL, f"{access.path} {why}", 0)


def recording_failures(recent: Sequence[str]) -> CheckResult:
    """Calls whose recording did not start, stopped growing or was not archived, not yet
    cleared by a canary."""
    if recent:
        return CheckResult("unrecorded_calls", State.CRITICAL,
                           f"{len(recent)} call(s) not recorded: {', '.join(recent[:3])}", len(recent),
                           cleared_by_canary=True)
    return ok("unrecorded_calls", 0)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    missing: tuple[str, ...] = ()  # answered attempts without a recording T s after hang-up
    orphans: tuple[str, ...] = ()  # recording files or rows without an answered attempt
    mismatched: tuple[str, ...] = ()  # recordings whose length differs from the call's


def reconciliation(found: Reconciliation, proven: frozenset[str] = frozenset()) -> CheckResult:
    """Every answered call has exactly one archived recording, every recording belongs to a
    call. A missing recording is critical until it is archived or a person resolves it; a
    passing canary (`proven`: the missing ones known before it) lets the gate open again,
    but forgives none of them."""
    if found.missing:
        new = [m for m in found.missing if m not in proven]
        listed = ", ".join((new or list(found.missing))[:3])
        if new:
            return CheckResult("reconciliation", State.CRITICAL,
                               f"answered call(s) without an archived recording: {listed}",
                               len(found.missing), cleared_by_canary=True)
        return CheckResult("reconciliation", State.CRITICAL,
                           f"{len(found.missing)} answered call(s) without an archived recording "
                           f"(the chain is proven since; archive or resolve them): {listed}",
                           len(found.missing), holds_gate=False)
    problems = [f"{len(found.orphans)} orphan recording(s)"] * bool(found.orphans) + \
               [f"{len(found.mismatched)} length mismatch(es)"] * bool(found.mismatched)
    if problems:
        return CheckResult("reconciliation", State.WARN, "; ".join(problems),
                           len(found.orphans) + len(found.mismatched))
    return ok("reconciliation", 0)


@dataclass(frozen=True, slots=True)
class DiskFacts:
    path: str
    free_bytes: int
    total_bytes: int
    write_rate_bps: float  # recent average, bytes per second


def disk_space(name: str, disk: DiskFacts | None, *, min_free_bytes: int,
               min_hours_to_full: float) -> CheckResult:
    """Enough free space now, and not running out within `min_hours_to_full` at the recent
    write rate (a full disk truncates recordings silently)."""
    if disk is None:
        return CheckResult(name, State.CRITICAL, "volume not available")
    if disk.free_bytes < min_free_bytes:
        return CheckResult(name, State.CRITICAL,
                           f"{disk.path}: {disk.free_bytes // 2**20} MiB free, below "
                           f"{min_free_bytes // 2**20} MiB", disk.free_bytes)
    if disk.write_rate_bps > 0:
        hours = disk.free_bytes / disk.write_rate_bps / 3600
        if hours < min_hours_to_full:
            return CheckResult(name, State.WARN, f"{disk.path}: full in {hours:.1f} h at the "
                                                 f"current write rate", disk.free_bytes)
    return ok(name, disk.free_bytes)


@dataclass(frozen=True, slots=True)
class IngestBacklog:
    """What the ingest runner reports of its work (recorder/ingest_runner.py)."""

    pending: int = 0  # recordings due or being archived
    oldest_age_s: float = 0.0  # how long the oldest of them has waited
    # since a recording was last archived, or since the backlog was last empty (the later)
    since_progress_s: float = 0.0
    rate_per_s: float = 0.0  # recordings archived per second, recently (0: none yet)


@dataclass(frozen=True, slots=True)
class BacklogLimits:
    max_age_s: float  # the oldest waited longer: stuck
    stall_s: float  # nothing archived for this long while recordings wait: stuck
    high_water: int  # busy: from this many waiting, new dials are held back...
    low_water: int  # ...until no more than this many wait


def holds_back_dials(pending: int, holding: bool, limits: BacklogLimits) -> bool:
    """Back-pressure with hysteresis: on at the high-water mark, off only at the low one (a
    backlog hovering at one mark does not switch dialing on and off)."""
    return pending > limits.low_water if holding else pending >= limits.high_water


def retry_after_s(backlog: IngestBacklog, limits: BacklogLimits) -> int:
    """When a held-back dial may try again: the time to archive down to the low-water mark at
    the recent rate, between 1 and 60 s (5 s while no rate is known yet)."""
    if backlog.rate_per_s <= 0:
        return 5
    return max(1, min(60, math.ceil((backlog.pending - limits.low_water) / backlog.rate_per_s)))


def ingest_backlog(backlog: IngestBacklog, limits: BacklogLimits, *, holding: bool = False) -> CheckResult:
    """Busy or stuck. Stuck (critical: the gate closes): nothing archived for `stall_s` while
    recordings wait, or the oldest waited past `max_age_s`. Busy (a warning): many wait but
    they are being archived; from the high-water mark new dials are held back (back-pressure,
    `holding` says whether they were at the last look) and the gate stays open."""
    pending = backlog.pending
    hold = holds_back_dials(pending, holding, limits)
    if pending and backlog.since_progress_s > limits.stall_s:
        return CheckResult("ingest_backlog", State.CRITICAL,
                           f"stuck: nothing archived for {backlog.since_progress_s:.0f} s, {pending} "
                           f"recording(s) waiting", pending, back_pressure=hold)
    if pending and backlog.oldest_age_s > limits.max_age_s:
        return CheckResult("ingest_backlog", State.CRITICAL,
                           f"{pending} recording(s) waiting, oldest {backlog.oldest_age_s:.0f} s", pending,
                           back_pressure=hold)
    if hold:
        rate = f", archiving {backlog.rate_per_s:.1f}/s" if backlog.rate_per_s > 0 else ""
        return CheckResult("ingest_backlog", State.WARN,
                           f"busy: {pending} recording(s) waiting{rate}; new dials held back until "
                           f"{limits.low_water} or fewer wait", pending, back_pressure=True)
    if pending:
        return CheckResult("ingest_backlog", State.OK, f"{pending} waiting", pending)
    return ok("ingest_backlog", 0)


def database_writes(waiting: int, oldest_age_s: float, stalled_s: float | None = None, *,
                    stuck_after_s: float = 3.0, starved_after_s: float = 60.0) -> CheckResult:
    """Facts (attempt reports, audit events) wait in the local journal: the database did not
    take a write within its busy timeout. Nothing is lost. *Busy* (it still takes facts, the
    others wait their turn: a burst of dials and hang-ups does this to SQLite) is a warning
    with back-pressure on new dials. *Stuck* is critical: no call may be placed, a new call
    could not even be written ahead: the database has taken no fact for `stuck_after_s`
    (`stalled_s`: locked by another process, read-only, full, gone), or a fact has waited
    `starved_after_s` however busy it is. Without `stalled_s` the oldest's age stands in."""
    stalled = oldest_age_s if stalled_s is None else stalled_s
    if waiting and (stalled >= stuck_after_s or oldest_age_s >= starved_after_s):
        return CheckResult("database_writes", State.CRITICAL,
                           f"the database takes no writes: {waiting} fact(s) waiting in the local journal, "
                           f"oldest {oldest_age_s:.0f} s, nothing written for {stalled:.0f} s", waiting)
    if waiting:
        return CheckResult("database_writes", State.WARN,
                           f"the database is busy: {waiting} fact(s) waiting in the local journal, "
                           f"oldest {oldest_age_s:.1f} s", waiting, back_pressure=True)
    return ok("database_writes", 0)


def silent_rate(flagged: int, total: int, *, warn_ratio: float, min_sample: int) -> CheckResult:
    """Too many recent recordings are silent, one-sided or short (a headset, codec or
    carrier problem the chain itself does not see)."""
    if total < min_sample:
        return ok("silent_rate", None, f"{total} recent recordings: too few to judge")
    ratio = flagged / total
    if ratio > warn_ratio:
        return CheckResult("silent_rate", State.WARN,
                           f"{flagged} of the last {total} recordings silent or short", ratio)
    return ok("silent_rate", ratio)


def clock_sanity(wall_elapsed_s: float, monotonic_elapsed_s: float, *, max_skew_s: float) -> CheckResult:
    """The wall clock moved with the monotonic clock (a jump breaks call windows and times)."""
    skew = wall_elapsed_s - monotonic_elapsed_s
    if abs(skew) > max_skew_s:
        direction = "backwards" if skew < 0 else "forwards"
        return CheckResult("clock", State.CRITICAL, f"wall clock jumped {direction} by {abs(skew):.1f} s",
                           skew)
    return ok("clock", skew)


@dataclass(frozen=True, slots=True)
class CanaryFacts:
    last_passed_at: datetime | None
    last_failed_at: datetime | None
    last_reason: str = ""


def canary(facts: CanaryFacts, now: datetime, *, max_age_s: float) -> CheckResult:
    """The last canary call passed, and not too long ago."""
    failed, passed = facts.last_failed_at, facts.last_passed_at
    if failed is not None and (passed is None or failed > passed):
        return CheckResult("canary", State.CRITICAL, f"canary failed: {facts.last_reason}",
                           cleared_by_canary=True)
    if passed is None:
        return CheckResult("canary", State.WARN, "no canary has passed yet")
    age = (now - passed).total_seconds()
    if age > max_age_s:
        return CheckResult("canary", State.WARN, f"last passing canary {age:.0f} s ago", age)
    return ok("canary", age)
