"""The watchdog's probes on the live service: the PBX link, the disks, the database.

Each probe answers one question cheaply (it runs every half second) and never raises
for an expected failure: a failed PBX query means "cannot tell" (None), which the checks
treat as critical. The PBX is reached through the small `PbxLink` seam (the service wraps
its AMI link in it), so the watchdog does not depend on the AMI package.
Missing recordings come from the ingest jobs (however old: the few due ones, by the state
index); length mismatches from the last day of recordings, kept by `FlagWatch` from the
recordings archived since the last look (flag_watch.py); the silent rate from the newest
few. No probe reads more rows as the archive grows.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recorder.watchdog.checks import DirectoryAccess, DiskFacts, IngestBacklog, PbxUptime, Reconciliation
from recorder.watchdog.flag_watch import FlagWatch
from storage.clock import Clock
from storage.db import Database
from storage import ingest_jobs
from storage.models import CANARY_CASE, Attempt, Recording
from storage.names import attempt_of_spool_file

RECENT_RECORDINGS = 20
BAD_FLAGS = ("no_signal_", "tone_only_")
SHORT_RECORDING_S = 2.0
RECONCILE_WINDOW = timedelta(days=1)


class PbxLink(Protocol):
    """What the probes ask of the PBX (the service wraps its AMI link in this)."""

    @property
    def connected(self) -> bool: ...

    @property
    def last_ping_rtt(self) -> float | None: ...

    async def query(self, action: str) -> Mapping[str, str] | None:
        """The reply to a read-only action (CoreStatus, ListCommands); None if it failed."""


def _pbx_time(date: str | None, clock: str | None) -> datetime | None:
    if not date or not clock:
        return None
    try:
        return datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (an archive not yet written to)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


@dataclass
class _WriteRate:
    """Bytes per second written to a volume, from successive used-space samples."""

    last: tuple[float, int] | None = None  # (monotonic time, bytes used)
    rate: float = 0.0

    def sample(self, used: int, now: float) -> float:
        if self.last is not None and now > self.last[0]:
            instant = max(0.0, (used - self.last[1]) / (now - self.last[0]))
            self.rate = 0.9 * self.rate + 0.1 * instant
        self.last = (now, used)
        return self.rate


@dataclass
class ServiceProbes:
    link: PbxLink
    db: Database
    clock: Clock
    volumes: dict[str, Path]  # check name ("spool_disk", "archive_disk") -> a path on it
    backlog: Callable[[], IngestBacklog]  # the ingest runner's
    journal: Callable[[], tuple[int, float]] = lambda: (0, 0.0)  # facts waiting for the database
    spool_dir: Path | None = None
    mismatches: FlagWatch = field(default_factory=lambda: FlagWatch("duration_mismatch", RECONCILE_WINDOW))
    _rates: dict[str, _WriteRate] = field(default_factory=dict)
    _spool_writer: tuple[int, int] | None = None  # the spool's owner at start: the PBX user

    def __post_init__(self) -> None:
        if self.spool_dir is not None:
            try:
                st = self.spool_dir.stat()
                self._spool_writer = (st.st_uid, st.st_gid)
            except OSError:
                self._spool_writer = None

    async def spool_access(self) -> DirectoryAccess | None:
        if self.spool_dir is None or self._spool_writer is None:
            return None
        return await asyncio.to_thread(self._access, self.spool_dir, *self._spool_writer)

    @staticmethod
    def _access(path: Path, uid: int, gid: int) -> DirectoryAccess:
        try:
            st = path.stat()
            read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
        except OSError:
            return DirectoryAccess(str(path), uid, gid, exists=False)
        if not stat.S_ISDIR(st.st_mode):
            return DirectoryAccess(str(path), uid, gid, exists=False)
        return DirectoryAccess(str(path), uid, gid, True, st.st_uid, st.st_gid, st.st_mode, read_only)

    async def ami(self) -> tuple[bool, float | None]:
        return self.link.connected, self.link.last_ping_rtt

    async def pbx_uptime(self) -> PbxUptime | None:
        status = await self.link.query("CoreStatus")
        if status is None:
            return None
        return PbxUptime(_pbx_time(status.get("CoreStartupDate"), status.get("CoreStartupTime")),
                         _pbx_time(status.get("CoreReloadDate"), status.get("CoreReloadTime")))

    async def mixmonitor_loaded(self) -> bool | None:
        """app_mixmonitor registers the AMI action StopMixMonitor; it is listed (to a user
        with the `call` class) exactly while the module is loaded. ModuleCheck would need
        the `system` write class, which also allows restarting the PBX."""
        actions = await self.link.query("ListCommands")
        return None if actions is None else "StopMixMonitor" in actions

    async def disks(self) -> dict[str, DiskFacts | None]:
        return await asyncio.to_thread(self._disks)

    def _disks(self) -> dict[str, DiskFacts | None]:
        found: dict[str, DiskFacts | None] = {}
        now = time.monotonic()
        for name, path in self.volumes.items():
            try:
                usage = shutil.disk_usage(_existing(path))
            except OSError:
                found[name] = None
                continue
            rate = self._rates.setdefault(name, _WriteRate()).sample(usage.used, now)
            found[name] = DiskFacts(str(path), usage.free, usage.total, rate)
        return found

    async def ingest_backlog(self) -> IngestBacklog:
        return self.backlog()

    async def journal_backlog(self) -> tuple[int, float, float]:
        return self.journal()

    async def reconciliation(self, older_than_s: float) -> Reconciliation:
        """Missing: recordings due for ingest longer than `older_than_s` and neither archived
        nor resolved by a person, however old (their ingest jobs, an indexed few rows)."""
        now = self.clock()
        settled = now - timedelta(seconds=older_than_s)
        async with self.db.session() as session:
            missing = await ingest_jobs.overdue(session, settled, limit=1000)
            mismatched = await self.mismatches.current(session, now)
            orphans = await self._spool_orphans(session, older_than_s)
        return Reconciliation(missing=tuple(missing), orphans=tuple(orphans), mismatched=tuple(mismatched))

    async def _spool_orphans(self, session: AsyncSession, older_than_s: float) -> list[str]:
        """Spool files left behind: no attempt owns them, or theirs is already archived.
        Their age is judged by the file system's clock (mtime is real time), not the
        service's `clock`, which may be shifted (OffsetClock in the e2e tests and the demo)."""
        if self.spool_dir is None:
            return []
        cutoff = time.time() - older_than_s
        files = await asyncio.to_thread(self._settled_files, self.spool_dir, cutoff)
        names = {attempt: p.name for p in files if (attempt := attempt_of_spool_file(p.name))}
        names.update({p.name: p.name for p in files if attempt_of_spool_file(p.name) is None})
        if not names:
            return []
        known = set((await session.scalars(select(Attempt.id).where(
            Attempt.id.in_(names), Attempt.state != "ended"))).all())
        return sorted(name for attempt_id, name in names.items() if attempt_id not in known)

    @staticmethod
    def _settled_files(spool_dir: Path, cutoff: float) -> list[Path]:
        """WAVs last written before `cutoff`; one that vanishes between the listing and its
        stat (ingest moved it) is skipped rather than failing the evaluation."""
        found = []
        for path in spool_dir.glob("*.wav"):
            try:
                if path.stat().st_mtime < cutoff:
                    found.append(path)
            except FileNotFoundError:
                continue
        return found

    async def recent_recordings(self) -> tuple[int, int]:
        """The newest few recordings (the primary key read backwards: a few rows at any size)."""
        async with self.db.session() as session:
            rows = (await session.execute(select(Recording.duration_s, Recording.flags)
                                          .where(Recording.case_id != CANARY_CASE)
                                          .order_by(Recording.id.desc()).limit(RECENT_RECORDINGS))).all()
        bad = sum(1 for duration_s, flags in rows if duration_s < SHORT_RECORDING_S
                  or any(f.startswith(BAD_FLAGS) for f in (flags or [])))
        return bad, len(rows)
