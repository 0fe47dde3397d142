"""Field-visit data past its six months goes (`dunline visits purge`, and the service daily).

For each visit due (cases/registers.py: purge_due_at, RETENTION; read by the index on
(purged_at, purge_due_at), so the run costs what is due, not what is stored):
1. its attachments' files are hashed as they lie (found? still the bytes uploaded?);
2. one transaction: the ledger's `purge` entry (subject `visit:<id>`: what was removed, each
   file's SHA-256 and size, the counts, the texts blanked), the audit event, and the row
   made a tombstone: reason, address, refusal note and report blanked, the attachments'
   names and paths blanked, state `purged`, `purged_at`;
3. only then the visit's directory is deleted. A crash here leaves a directory whose visit is
   purged: the next run deletes it first (a *leftover*), as it does a directory of no visit.
Dry-run reads only. The ledger is passed in (the service's, or the command's): `cases` does
not import `recorder`; anything with its `transaction()` and `append()` will do.
"""
from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.registers import RETENTION, VisitState, due_for_purge
from cases.registers_store import INCOMING
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.names import case_subject, visit_subject
from storage.registers import FieldVisit, VisitAttachment

DEFAULT_WHY = f"field-visit data is kept 6 months ({RETENTION.days} days), then purged"
BLANKED = ("reason", "address", "decision_note", "report")
STALE_PART = timedelta(days=1)


class LedgerWriter(Protocol):
    """What the purge needs of the ledger (recorder/ledger_store.py: Ledger)."""

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    async def append(self, session: AsyncSession, *, actor: str, action: str, subject: str,
                     detail: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class FileGone:
    attachment_id: int
    kind: str
    sha256: str  # as uploaded
    size: int
    found: bool  # the file was there
    intact: bool | None  # its bytes still had that SHA-256 (None: not found)

    def as_json(self) -> dict[str, Any]:
        return {"attachment_id": self.attachment_id, "kind": self.kind, "sha256": self.sha256, "size": self.size,
                "found": self.found, "intact": self.intact}


@dataclass(frozen=True, slots=True)
class VisitPurged:
    visit_id: int
    case_id: str
    due_at: datetime
    state: str  # the state it was in
    files: tuple[FileGone, ...]
    ledger_seq: int | None = None


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool
    purged: list[VisitPurged] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # directories of visits purged earlier
    failed: list[str] = field(default_factory=list)  # "path: error"; retried on the next run

    def render(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        lines = [f"visits purge at {self.now.isoformat()}{' (dry run: nothing changed)' if self.dry_run else ''}"]
        for v in self.purged:
            photos = sum(f.kind == "photo" for f in v.files)
            lines.append(f"{verb} visit {v.visit_id} (case {v.case_id}, {v.state}, due {v.due_at.isoformat()}): "
                         f"{photos} photos, {len(v.files) - photos} recordings"
                         + (f"; ledger entry {v.ledger_seq}" if v.ledger_seq is not None else ""))
        leftover_verb = "would delete" if self.dry_run else "deleted"
        lines += [f"{leftover_verb} leftover {path} (of a visit purged before, or an upload cut off)"
                  for path in self.leftovers]
        lines += [f"FAILED to delete {item} (the next purge tries again)" for item in self.failed]
        lines.append(f"{verb} {len(self.purged)} visits")
        return "\n".join(lines)


def _hash(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return digest.hexdigest()


def _gone(visits_dir: Path, attachments: list[VisitAttachment]) -> tuple[FileGone, ...]:
    """Blocking: each attachment's file as it lies, before it goes."""
    out = []
    for a in attachments:
        found = _hash(visits_dir / a.path) if a.path else None
        out.append(FileGone(a.id, a.kind, a.sha256, a.size, found is not None,
                            None if found is None else found == a.sha256))
    return tuple(out)


async def _due(db: Database, now: datetime, limit: int) -> list[int]:
    async with db.session() as s:
        return list((await s.scalars(select(FieldVisit.id).where(FieldVisit.purged_at.is_(None),
                                                                 FieldVisit.purge_due_at <= now)
                                     .order_by(FieldVisit.purge_due_at, FieldVisit.id).limit(limit))).all())


async def _live_attachments(s: AsyncSession, visit_id: int) -> list[VisitAttachment]:
    return list((await s.scalars(select(VisitAttachment).where(VisitAttachment.visit_id == visit_id,
                                                               VisitAttachment.purged_at.is_(None))
                                 .order_by(VisitAttachment.id))).all())


def _leftover_dirs(visits_dir: Path) -> list[tuple[int, Path]]:
    """Blocking: every visit's directory under the visits directory."""
    try:
        return sorted((int(p.name), p) for p in visits_dir.iterdir() if p.is_dir() and p.name.isdigit()
                      and len(p.name) <= 12)
    except FileNotFoundError:
        return []


async def _leftovers(db: Database, visits_dir: Path) -> list[Path]:
    """Directories of visits already purged, or of no visit at all."""
    dirs = await asyncio.to_thread(_leftover_dirs, visits_dir)
    if not dirs:
        return []
    async with db.session() as s:
        live = set((await s.scalars(select(FieldVisit.id).where(FieldVisit.id.in_([i for i, _ in dirs]),
                                                                FieldVisit.purged_at.is_(None)))).all())
    return [p for i, p in dirs if i not in live]


def _delete_dirs(paths: list[Path]) -> tuple[list[str], list[str]]:
    deleted, failed = [], []
    for path in paths:
        try:
            shutil.rmtree(path)
            deleted.append(str(path))
        except FileNotFoundError:
            deleted.append(str(path))
        except OSError as exc:
            failed.append(f"{path}: {exc}")
    return deleted, failed


async def purge_visits(db: Database, ledger: LedgerWriter, clock: Clock, visits_dir: Path, *, by: str,
                       why: str = DEFAULT_WHY, dry_run: bool = False, limit: int = 1000) -> PurgeReport:
    """Purge every visit whose data is due (at most `limit` a run); one ledger entry each."""
    if not by or not by.strip() or not why or not why.strip():
        raise ValueError("a purge names who (by) and why")
    visits_dir = Path(visits_dir)
    now = clock()
    report = PurgeReport(now=now, dry_run=dry_run)
    leftovers = await _leftovers(db, visits_dir)
    parts = await asyncio.to_thread(_stale_parts, visits_dir, now)
    if dry_run:
        report.leftovers = [str(p) for p in [*leftovers, *parts]]
    else:
        report.leftovers, report.failed = await asyncio.to_thread(_delete_dirs, leftovers)
        deleted, failed = await asyncio.to_thread(_delete_files, parts)
        report.leftovers += deleted
        report.failed += failed
    for visit_id in await _due(db, now, limit):
        async with db.session() as s:
            attachments = await _live_attachments(s, visit_id)
        files = await asyncio.to_thread(_gone, visits_dir, attachments)
        if dry_run:
            async with db.session() as s:
                row = await s.get(FieldVisit, visit_id)
                assert row is not None
                report.purged.append(VisitPurged(row.id, row.case_id, row.purge_due_at, row.state, files))
            continue
        done = await _tombstone(db, ledger, clock, visit_id, files, visits_dir, by=by, why=why, now=now)
        if done is None:
            continue
        report.purged.append(done)
        _deleted, failed = await asyncio.to_thread(_delete_dirs, [visits_dir / str(visit_id)])
        report.failed += failed
    return report


async def _tombstone(db: Database, ledger: LedgerWriter, clock: Clock, visit_id: int, files: tuple[FileGone, ...],
                     visits_dir: Path, *, by: str, why: str, now: datetime) -> VisitPurged | None:
    """One transaction: the ledger entry, the audit event, the tombstone (None: no longer due)."""
    async with ledger.transaction() as s:
        row = await s.get(FieldVisit, visit_id)
        if row is None or not due_for_purge(row.purge_due_at, row.purged_at, now):
            return None  # changed since it was read (purged by another run, or returned later)
        attachments = await _live_attachments(s, visit_id)
        if {a.id for a in attachments} != {f.attachment_id for f in files}:  # one came meanwhile
            files = await asyncio.to_thread(_gone, visits_dir, attachments)
        photos = sum(f.kind == "photo" for f in files)
        detail = {
            "kind": "field_visit", "visit_id": row.id, "case_id": row.case_id, "by": by, "why": why,
            "state": row.state, "requested_at": row.requested_at.isoformat(),
            "returned_at": row.returned_at.isoformat() if row.returned_at else None,
            "due_at": row.purge_due_at.isoformat(), "retention_days": RETENTION.days,
            "files": [f.as_json() for f in files],
            "counts": {"photos": photos, "recordings": len(files) - photos,
                       "bytes": sum(f.size for f in files), "found": sum(f.found for f in files)},
            "blanked": [name for name in BLANKED if getattr(row, name)],
        }
        entry = await ledger.append(s, actor=by, action="purge", subject=visit_subject(row.id), detail=detail)
        state = row.state
        for name in BLANKED:
            setattr(row, name, None)
        row.state, row.purged_at, row.purged_by = VisitState.PURGED.value, clock(), by
        for a in attachments:
            a.file_name, a.path, a.purged_at = None, None, row.purged_at
        await repo.audit(s, at=clock(), actor=by, action="visit.purged", subject=case_subject(row.case_id),
                         visit_id=row.id, files=len(files), why=why, ledger_seq=getattr(entry, "seq", None))
        return VisitPurged(row.id, row.case_id, row.purge_due_at, state, files, getattr(entry, "seq", None))


def _stale_parts(visits_dir: Path, now: datetime) -> list[Path]:
    """Blocking: uploads left half-written in the incoming directory (an upload cut off
    mid-way, a crash) over a day ago: they belong to no visit."""
    try:
        parts = list((visits_dir / INCOMING).glob("*.part"))
    except FileNotFoundError:
        return []
    cutoff = (now - STALE_PART).timestamp()
    out = []
    for part in parts:
        try:
            if part.stat().st_mtime < cutoff:
                out.append(part)
        except FileNotFoundError:
            continue
    return out


def _delete_files(paths: list[Path]) -> tuple[list[str], list[str]]:
    deleted, failed = [], []
    for path in paths:
        try:
            path.unlink()
            deleted.append(str(path))
        except FileNotFoundError:
            deleted.append(str(path))
        except OSError as exc:
            failed.append(f"{path}: {exc}")
    return deleted, failed
