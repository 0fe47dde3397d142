"""Rows for retention: legal holds, recordings by case/client, tombstones.

Like storage.repositories, every function takes an open `AsyncSession`; the caller owns
the transaction (a hold and its ledger entry commit together).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Case, LegalHold, Recording


def recording_keys(recording: Recording) -> tuple[str, ...]:
    """Every store object of a recording: the mixed file, each leg's file, the playback copy."""
    legs = tuple(str(leg["archive_path"]) for leg in recording.legs or () if leg.get("archive_path"))
    playback = (recording.playback_path,) if recording.playback_path else ()
    return (recording.archive_path, *legs, *playback)


async def all_recordings(session: AsyncSession) -> Sequence[Recording]:
    """Every recording, live and tombstoned, oldest retention first."""
    rows = await session.scalars(select(Recording).order_by(Recording.retain_until, Recording.id))
    return rows.all()


async def recordings_of_case(session: AsyncSession, case_id: str) -> Sequence[Recording]:
    rows = await session.scalars(select(Recording).where(Recording.case_id == case_id)
                                 .order_by(Recording.call_ended_at, Recording.id))
    return rows.all()


async def recordings_of_client(session: AsyncSession, client: str) -> Sequence[Recording]:
    rows = await session.scalars(select(Recording).join(Case, Case.id == Recording.case_id)
                                 .where(Case.client == client).order_by(Recording.case_id, Recording.id))
    return rows.all()


async def get_recording(session: AsyncSession, recording_id: int) -> Recording | None:
    return await session.get(Recording, recording_id)


async def mark_purged(session: AsyncSession, recording_id: int, at: datetime) -> bool:
    """Set the tombstone; False if the recording was already purged (nothing changed)."""
    result = await session.execute(update(Recording).where(Recording.id == recording_id,
                                                           Recording.purged_at.is_(None))
                                   .values(purged_at=at))
    return bool(result.rowcount)


async def set_retain_until(session: AsyncSession, recording_id: int, retain_until: datetime) -> None:
    await session.execute(update(Recording).where(Recording.id == recording_id)
                          .values(retain_until=retain_until))


async def add_hold(session: AsyncSession, hold: LegalHold) -> LegalHold:
    session.add(hold)
    await session.flush()
    return hold


async def get_hold(session: AsyncSession, hold_id: int) -> LegalHold | None:
    return await session.get(LegalHold, hold_id)


async def live_holds(session: AsyncSession) -> Sequence[LegalHold]:
    rows = await session.scalars(select(LegalHold).where(LegalHold.released_at.is_(None))
                                 .order_by(LegalHold.id))
    return rows.all()


async def holds_for(session: AsyncSession, *, case_id: str | None = None,
                    include_released: bool = True) -> Sequence[LegalHold]:
    """Holds, newest first; with `case_id`, the case's own holds and those on its recordings."""
    query = select(LegalHold).order_by(LegalHold.id.desc())
    if case_id is not None:
        on_its_recordings = select(Recording.id).where(Recording.case_id == case_id)
        query = query.where(or_(LegalHold.case_id == case_id, LegalHold.recording_id.in_(on_its_recordings)))
    if not include_released:
        query = query.where(LegalHold.released_at.is_(None))
    return (await session.scalars(query)).all()


async def release(session: AsyncSession, hold_id: int, *, by: str, why: str, at: datetime) -> bool:
    """Release a live hold; False if it was already released (nothing changed)."""
    result = await session.execute(update(LegalHold).where(LegalHold.id == hold_id,
                                                           LegalHold.released_at.is_(None))
                                   .values(released_by=by, release_reason=why, released_at=at))
    return bool(result.rowcount)
