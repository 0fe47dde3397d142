"""Longer retention for existing recordings: a case's or a client's period grows.

retain_until becomes call date + the new period where that is later; it is never
shortened. The store is extended first (protect first: a crash then leaves the store
keeping longer than the database, which only delays a purge: the purge job asks the store
before committing), then the rows and one ledger "retention" entry per case commit
together. Re-running with the same period changes no row but re-applies the store's
retention, so it also heals a store left behind.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from recorder.archive import ArchiveStore, ObjectMissing
from recorder.holds import UnknownTarget, require_who_why
from recorder.ledger_store import Ledger
from recorder.retention import extension_for
from storage import repositories as repo
from storage import retention_repo as rrepo
from storage.models import Case, Recording
from storage.names import case_subject


@dataclass(frozen=True, slots=True)
class Extension:
    attempt_id: str
    case_id: str
    keys: tuple[str, ...]
    old: datetime
    new: datetime


def extend_store(store: ArchiveStore, extensions: Sequence[Extension]) -> list[str]:
    """Blocking: raise each object's retention to at least its recording's new date; the
    keys the store no longer has are returned."""
    missing: list[str] = []
    for ext in extensions:
        for key in ext.keys:
            try:
                if store.retention_of(key).retain_until < ext.new:
                    store.extend_retention(key, ext.new)
            except (ObjectMissing, FileNotFoundError):
                missing.append(key)
    return missing


def _extensions(rows: Sequence[Recording], years: int) -> list[Extension]:
    found = []
    for row in rows:
        new = extension_for(row.retain_until, row.call_ended_at, years)
        if row.purged_at is None and new is not None:
            found.append(Extension(row.attempt_id, row.case_id, rrepo.recording_keys(row), row.retain_until, new))
    return found


async def _rows_of(ledger: Ledger, case_id: str | None, client: str | None) -> Sequence[Recording]:
    async with ledger.db.session() as session:
        if case_id is not None:
            if await session.get(Case, case_id) is None:
                raise UnknownTarget(f"no case {case_id!r}")
            return await rrepo.recordings_of_case(session, case_id)
        if await session.scalar(select(Case.id).where(Case.client == client).limit(1)) is None:
            raise UnknownTarget(f"no case of client {client!r}")
        return await rrepo.recordings_of_client(session, client or "")


async def extend_retention(ledger: Ledger, store: ArchiveStore, *, years: int, by: str | None,
                           why: str | None, case_id: str | None = None,
                           client: str | None = None) -> list[Extension]:
    """Keep the live recordings of a case (or of every case of a client) `years` after
    their call, where that is longer than now; returns what was extended."""
    by, why = require_who_why(by, why)
    if (case_id is None) == (client is None):
        raise ValueError("extend the retention of a case or of a client (exactly one)")
    if years < 0:
        raise ValueError("retention cannot be negative")
    planned = _extensions(await _rows_of(ledger, case_id, client), years)
    await asyncio.to_thread(extend_store, store, planned)
    done: list[Extension] = []
    async with ledger.transaction() as session:
        fresh = {r.attempt_id: r for r in await _fresh_rows(session, planned)}
        by_case: dict[str, list[Extension]] = {}
        for ext in planned:
            row = fresh.get(ext.attempt_id)
            if row is None or row.purged_at is not None or row.retain_until >= ext.new:
                continue
            old = row.retain_until
            await rrepo.set_retain_until(session, row.id, ext.new)
            by_case.setdefault(ext.case_id, []).append(Extension(ext.attempt_id, ext.case_id, ext.keys,
                                                                 old, ext.new))
        for case, extensions in by_case.items():
            await ledger.append(session, actor=by, action="retention", subject=case_subject(case), detail={
                "by": by, "why": why, "years": years, "recordings": {
                    e.attempt_id: {"from": e.old.isoformat(), "to": e.new.isoformat()} for e in extensions}})
            await repo.audit(session, at=ledger.clock(), actor=by, action="recording.retention_extended",
                             subject=case, years=years, why=why, recordings=[e.attempt_id for e in extensions])
            done += extensions
    return done


async def _fresh_rows(session: AsyncSession, planned: Sequence[Extension]) -> list[Recording]:
    rows = []
    for ext in planned:
        row = await repo.recording_for_attempt(session, ext.attempt_id)
        if row is not None:
            rows.append(row)
    return rows
