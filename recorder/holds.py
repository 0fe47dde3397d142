"""Legal holds: placed on a case or one recording, with who and why; released the same way.

A hold is a `LegalHold` row plus a ledger entry ("hold"/"release", subject "case:<id>" or
"recording:<attempt_id>") written in one transaction. After the commit the store objects
of the affected recordings get (or lose) their Object-Lock-style legal hold. The database
is the authority: the purge job consults it, not the store, and re-applies the store's
holds for every recording it looks at (`sync_store_holds`), so a crash between the commit
and the store call is healed on the next purge run. A store object shared by several
recordings keeps its hold while any live hold covers any live recording referencing it.
"""
from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger_store import Ledger
from recorder.retention import HoldFacts, RecordingFacts, held_keys
from storage import repositories as repo
from storage import retention_repo as rrepo
from storage.db import Database
from storage.models import Case, LegalHold, Recording
from storage.names import case_subject, recording_subject


class HoldError(Exception):
    """A hold could not be placed or released; nothing was changed."""


class MissingWhoWhy(HoldError, ValueError):
    """Every hold, release and purge names who did it and why."""


class UnknownTarget(HoldError, LookupError):
    """No such case, recording or hold."""


class AlreadyDone(HoldError):
    """The hold is already released, or the recording already purged."""


def require_who_why(by: str | None, why: str | None) -> tuple[str, str]:
    by, why = (by or "").strip(), (why or "").strip()
    if not by or not why:
        raise MissingWhoWhy("--by (who) and --why (the reason) are both required: "
                            "every hold, release and purge is recorded with who and why")
    return by, why


@dataclass(frozen=True, slots=True)
class HoldTarget:
    """What a hold covers: a whole case, or the recording of one attempt."""

    case_id: str | None = None
    attempt_id: str | None = None

    def __post_init__(self) -> None:
        if (self.case_id is None) == (self.attempt_id is None):
            raise ValueError("a hold is on a case or on a recording (exactly one)")

    @property
    def subject(self) -> str:
        return case_subject(self.case_id) if self.case_id is not None else recording_subject(self.attempt_id)


@dataclass(frozen=True, slots=True)
class StoreSync:
    """What setting the store's legal holds did."""

    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()  # keys the store no longer has


@dataclass(frozen=True, slots=True)
class HoldResult:
    hold_id: int
    subject: str
    recordings: tuple[str, ...]  # attempt ids of the live recordings affected
    store: StoreSync


def recording_facts(row: Recording) -> RecordingFacts:
    return RecordingFacts(row.id, row.attempt_id, row.case_id, row.retain_until,
                          rrepo.recording_keys(row), row.purged_at)


def hold_facts(row: LegalHold) -> HoldFacts:
    return HoldFacts(row.id, row.case_id, row.recording_id, row.released_at)


def sync_store_holds(store: ArchiveStore, keys: Iterable[str], must_hold: frozenset[str]) -> StoreSync:
    """Blocking: make each key's legal hold in the store match `must_hold`."""
    changed: list[str] = []
    missing: list[str] = []
    for key in dict.fromkeys(keys):
        try:
            if store.retention_of(key).legal_hold != (key in must_hold):
                store.set_legal_hold(key, key in must_hold)
                changed.append(key)
        except (ObjectMissing, FileNotFoundError):
            missing.append(key)
    return StoreSync(tuple(changed), tuple(missing))


async def desired_holds(db: Database) -> tuple[list[RecordingFacts], frozenset[str]]:
    """Every recording's facts and the keys that must be held, from the database."""
    async with db.session() as session:
        recordings = [recording_facts(r) for r in await rrepo.all_recordings(session)]
        holds = [hold_facts(h) for h in await rrepo.live_holds(session)]
    return recordings, held_keys(recordings, holds)


async def _apply_to_store(db: Database, store: ArchiveStore, keys: Sequence[str]) -> StoreSync:
    _, must_hold = await desired_holds(db)
    return await asyncio.to_thread(sync_store_holds, store, keys, must_hold)


async def _resolve(session: Any, target: HoldTarget) -> tuple[str, Recording | None, list[Recording]]:
    """(case id, the held recording or None, the live recordings affected); UnknownTarget."""
    if target.case_id is not None:
        if await session.get(Case, target.case_id) is None:
            raise UnknownTarget(f"no case {target.case_id!r}")
        rows = await rrepo.recordings_of_case(session, target.case_id)
        return target.case_id, None, [r for r in rows if r.purged_at is None]
    row = await repo.recording_for_attempt(session, target.attempt_id or "")
    if row is None:
        raise UnknownTarget(f"no recording of attempt {target.attempt_id!r}")
    if row.purged_at is not None:
        raise AlreadyDone(f"recording {target.attempt_id} was purged at {row.purged_at.isoformat()}")
    return row.case_id, row, [row]


async def place_hold(ledger: Ledger, store: ArchiveStore, target: HoldTarget, *,
                     by: str | None, why: str | None) -> HoldResult:
    """Hold a case (its recordings now and later) or one recording; row + ledger entry in
    one transaction, then the store objects of the affected recordings are held."""
    by, why = require_who_why(by, why)
    now = ledger.clock()
    async with ledger.transaction() as session:
        case_id, recording, affected = await _resolve(session, target)
        hold = await rrepo.add_hold(session, LegalHold(
            case_id=target.case_id, recording_id=None if recording is None else recording.id,
            placed_by=by, reason=why, placed_at=now))
        attempts = tuple(r.attempt_id for r in affected)
        await ledger.append(session, actor=by, action="hold", subject=target.subject, detail={
            "hold_id": hold.id, "by": by, "why": why, "case_id": case_id, "recordings": list(attempts)})
        await repo.audit(session, at=now, actor=by, action="recording.hold_placed", subject=target.subject,
                         hold_id=hold.id, why=why, recordings=list(attempts))
    keys = [k for r in affected for k in rrepo.recording_keys(r)]
    return HoldResult(hold.id, target.subject, attempts, await _apply_to_store(ledger.db, store, keys))


async def release_hold(ledger: Ledger, store: ArchiveStore, hold_id: int, *,
                       by: str | None, why: str | None) -> HoldResult:
    """Release a live hold; a store object stays held while another live hold covers a
    live recording that references it."""
    by, why = require_who_why(by, why)
    now = ledger.clock()
    async with ledger.transaction() as session:
        hold = await rrepo.get_hold(session, hold_id)
        if hold is None:
            raise UnknownTarget(f"no legal hold #{hold_id}")
        if hold.released_at is not None:
            raise AlreadyDone(f"legal hold #{hold_id} was released at {hold.released_at.isoformat()} "
                              f"by {hold.released_by}")
        affected = await _covered_rows(session, hold)
        subject = await _subject_of(session, hold)
        await rrepo.release(session, hold_id, by=by, why=why, at=now)
        attempts = tuple(r.attempt_id for r in affected)
        await ledger.append(session, actor=by, action="release", subject=subject, detail={
            "hold_id": hold_id, "by": by, "why": why, "placed_by": hold.placed_by,
            "placed_reason": hold.reason, "recordings": list(attempts)})
        await repo.audit(session, at=now, actor=by, action="recording.hold_released", subject=subject,
                         hold_id=hold_id, why=why, recordings=list(attempts))
    keys = [k for r in affected for k in rrepo.recording_keys(r)]
    return HoldResult(hold_id, subject, attempts, await _apply_to_store(ledger.db, store, keys))


async def _covered_rows(session: Any, hold: LegalHold) -> list[Recording]:
    if hold.recording_id is not None:
        row = await rrepo.get_recording(session, hold.recording_id)
        return [row] if row is not None and row.purged_at is None else []
    rows = await rrepo.recordings_of_case(session, hold.case_id or "")
    return [r for r in rows if r.purged_at is None]


async def _subject_of(session: Any, hold: LegalHold) -> str:
    if hold.recording_id is None:
        return case_subject(hold.case_id)
    row = await rrepo.get_recording(session, hold.recording_id)
    return recording_subject(str(row.attempt_id if row is not None else hold.recording_id))


@dataclass(frozen=True, slots=True)
class HoldView:
    hold_id: int
    subject: str
    placed_by: str
    reason: str
    placed_at: str
    released: str | None  # "at by: why", or None while live


async def list_holds(db: Database, *, case_id: str | None = None) -> list[HoldView]:
    """Holds (newest first); with `case_id`, the case's and its recordings'. UnknownTarget."""
    async with db.session() as session:
        if case_id is not None and await session.get(Case, case_id) is None:
            raise UnknownTarget(f"no case {case_id!r}")
        views = []
        for h in await rrepo.holds_for(session, case_id=case_id):
            released = (None if h.released_at is None else
                        f"{h.released_at:%Y-%m-%d %H:%M:%S}Z by {h.released_by}: {h.release_reason}")
            views.append(HoldView(h.id, await _subject_of(session, h), h.placed_by, h.reason,
                                  f"{h.placed_at:%Y-%m-%d %H:%M:%S}Z", released))
    return views
