"""Watchdog checks, pure: facts in, a `CheckResult` (state + reason) out.

Each function judges one part of the recording chain from a snapshot the runner took;
none does I/O, so every threshold is tested without a PBX. `CRITICAL` closes the dialing
gate; `WARN` is an alarm only.
"""
from __future__ import annotations

import enum
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


def ingest_backlog(pending: int, oldest_age_s: float, *, max_age_s: float) -> CheckResult:
    if pending and oldest_age_s > max_age_s:
        return CheckResult("ingest_backlog", State.CRITICAL,
                           f"{pending} recording(s) waiting, oldest {oldest_age_s:.0f} s", pending)
    if pending:
        return CheckResult("ingest_backlog", State.OK, f"{pending} waiting", pending)
    return ok("ingest_backlog", 0)


def database_writes(waiting: int, oldest_age_s: float) -> CheckResult:
    """Facts (attempt reports, audit events) wait in the local journal: the database does not
    take writes (locked, read-only, full, gone). Nothing is lost, but no call may be placed
    until it takes them again: a new call could not even be written ahead."""
    if waiting:
        return CheckResult("database_writes", State.CRITICAL,
                           f"the database takes no writes: {waiting} fact(s) waiting in the local journal, "
                           f"oldest {oldest_age_s:.0f} s", waiting)
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
