"""Retrieval for compliance: find recordings, read one, and log every access.

Two layers:
- `search(db, query)`, `load_recording`, `case_recordings`: read-only queries that log
  nothing (the export and the benchmark build on them);
- `find_recordings`, `recording_metadata`, `open_audio`: what people call. Each writes one
  ledger "access" entry (who, why, what was asked, which recordings came back) before
  anything is handed out; a refused request (bad input, unknown case) writes nothing.

Results are newest first (call_ended_at, then id) and keyset-paged: `next_cursor` names
the last row of a page and passing it back continues strictly after that row, so pages
stay stable while new calls are ingested. By case, the query walks the index on
recordings (case_id, call_ended_at) backwards and reads only the rows it returns.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from sqlalchemy import Select, Text, cast, or_, select

from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger_store import Ledger
from recorder.retrieval_query import (AUDIO_LEGS, AudioUnavailable, InvalidRequest, NoSuchCase,
                                      NoSuchRecording, RecordingQuery, Requester, decode_cursor,
                                      encode_cursor, check_attempt_id, check_case_number)
from storage.db import Database
from storage.models import Attempt, Case, Recording
from storage.names import SEARCH_SUBJECT, case_subject, recording_subject

@dataclass(frozen=True, slots=True)
class LegFile:
    leg: str  # "rx" (heard from the debtor) or "tx" (the collector)
    archive_path: str
    sha256: str
    duration_s: float | None
    has_signal: bool | None


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    """One recording with its call's metadata (times aware UTC)."""

    id: int
    attempt_id: str
    case_id: str
    client: str
    number: str
    collector: str | None
    caller_id: str | None
    answered_at: datetime | None
    ended_at: datetime  # the call's end as the recording row has it
    duration_s: float
    flags: tuple[str, ...]
    sha256: str
    size_bytes: int
    archive_path: str
    store: str
    legs: tuple[LegFile, ...]
    retain_until: datetime
    purged_at: datetime | None
    ledger_seq: int | None

    def key_of(self, leg: str) -> tuple[str, str]:
        """(archive key, sha256) of the mixed file or of one leg."""
        if leg == "mixed":
            return self.archive_path, self.sha256
        for item in self.legs:
            if item.leg == leg:
                return item.archive_path, item.sha256
        raise AudioUnavailable(f"recording {self.attempt_id} has no {leg} leg")

    def as_json(self) -> dict[str, Any]:
        iso = lambda t: t.isoformat() if t is not None else None  # noqa: E731
        return {"attempt_id": self.attempt_id, "case_id": self.case_id, "client": self.client,
                "number": self.number, "collector": self.collector, "caller_id": self.caller_id,
                "answered_at": iso(self.answered_at), "ended_at": iso(self.ended_at),
                "duration_s": self.duration_s, "flags": list(self.flags), "sha256": self.sha256,
                "size_bytes": self.size_bytes, "archive_path": self.archive_path, "store": self.store,
                "legs": [{"leg": g.leg, "archive_path": g.archive_path, "sha256": g.sha256,
                          "duration_s": g.duration_s, "has_signal": g.has_signal} for g in self.legs],
                "retain_until": iso(self.retain_until), "purged_at": iso(self.purged_at),
                "ledger_seq": self.ledger_seq}


@dataclass(frozen=True, slots=True)
class RecordingPage:
    recordings: tuple[RecordingInfo, ...]
    next_cursor: str | None  # None: this was the last page


def _base() -> Select[Any]:
    return (select(Recording, Attempt.number, Attempt.collector, Attempt.caller_id,
                   Attempt.answered_at, Case.client)
            .join(Attempt, Attempt.id == Recording.attempt_id)
            .join(Case, Case.id == Recording.case_id))


def search_statement(query: RecordingQuery) -> Select[Any]:
    """The one query behind every search (newest first, one row more than a page)."""
    stmt = _base()
    if query.case_id is not None:
        stmt = stmt.where(Recording.case_id == query.case_id)
    if query.phone is not None:
        stmt = stmt.where(Attempt.number == query.phone)
    if query.collector is not None:
        stmt = stmt.where(Attempt.collector == query.collector)
    if query.ended_from is not None:
        stmt = stmt.where(Recording.call_ended_at >= query.ended_from)
    if query.ended_to is not None:
        stmt = stmt.where(Recording.call_ended_at < query.ended_to)
    for flag in query.flags:  # flags are a JSON list of plain tokens: match the quoted token
        stmt = stmt.where(cast(Recording.flags, Text).contains(f'"{flag}"', autoescape=True))
    if query.cursor is not None:
        ended, row_id = decode_cursor(query.cursor)
        stmt = stmt.where(Recording.call_ended_at <= ended,
                          or_(Recording.call_ended_at < ended, Recording.id < row_id))
    return stmt.order_by(Recording.call_ended_at.desc(), Recording.id.desc()).limit(query.limit + 1)


def _info(row: Any) -> RecordingInfo:
    rec, number, collector, caller_id, answered_at, client = row
    legs = tuple(LegFile(str(g.get("leg")), str(g.get("archive_path", "")), str(g.get("sha256", "")),
                         g.get("duration_s"), g.get("has_signal")) for g in rec.legs or ())
    return RecordingInfo(rec.id, rec.attempt_id, rec.case_id, client, number, collector, caller_id,
                         answered_at, rec.call_ended_at, rec.duration_s, tuple(rec.flags or ()),
                         rec.sha256, rec.size_bytes, rec.archive_path, rec.store, legs,
                         rec.retain_until, rec.purged_at, rec.ledger_seq)


async def search(db: Database, query: RecordingQuery) -> RecordingPage:
    """One page of matching recordings; NoSuchCase if a case was named that does not exist."""
    async with db.session() as session:
        rows = (await session.execute(search_statement(query))).all()
        if not rows and query.case_id is not None and await session.scalar(
                select(Case.id).where(Case.id == query.case_id)) is None:
            raise NoSuchCase(f"no such case {query.case_id!r}")
    found = tuple(_info(r) for r in rows[:query.limit])
    more = len(rows) > query.limit
    return RecordingPage(found, encode_cursor(found[-1].ended_at, found[-1].id) if more else None)


async def load_recording(db: Database, attempt_id: str) -> RecordingInfo:
    check_attempt_id(attempt_id)
    async with db.session() as session:
        row = (await session.execute(_base().where(Recording.attempt_id == attempt_id))).first()
    if row is None:
        raise NoSuchRecording(f"no recording for attempt {attempt_id}")
    return _info(row)


async def case_recordings(db: Database, case_id: str) -> tuple[RecordingInfo, ...]:
    """Every recording of a case, oldest first (for an export); NoSuchCase if unknown."""
    check_case_number(case_id)
    async with db.session() as session:
        if await session.scalar(select(Case.id).where(Case.id == case_id)) is None:
            raise NoSuchCase(f"no such case {case_id!r}")
        rows = (await session.execute(_base().where(Recording.case_id == case_id)
                                      .order_by(Recording.call_ended_at, Recording.id))).all()
    return tuple(_info(r) for r in rows)


# -- what people call: every one of these is a ledger "access" entry ------------------

async def _log_access(ledger: Ledger, requester: Requester, subject: str, **detail: Any) -> None:
    await ledger.record(actor=requester.who, action="access", subject=subject,
                        detail={"who": requester.who, "why": requester.why, **detail})


async def find_recordings(db: Database, ledger: Ledger, query: RecordingQuery,
                          requester: Requester) -> RecordingPage:
    """Search, then log who found what and why; nothing is returned if logging fails."""
    if not query.has_filter:
        raise InvalidRequest("give at least one filter (case, phone, collector, from, to, flag)")
    page = await search(db, query)
    subject = case_subject(query.case_id) if query.case_id else SEARCH_SUBJECT
    await _log_access(ledger, requester, subject, what="search", query=query.describe(),
                      returned=[r.attempt_id for r in page.recordings])
    return page


async def recording_metadata(db: Database, ledger: Ledger, attempt_id: str,
                             requester: Requester) -> RecordingInfo:
    info = await load_recording(db, attempt_id)
    await _log_access(ledger, requester, recording_subject(attempt_id), what="metadata",
                      case_id=info.case_id)
    return info


async def open_audio(db: Database, store: ArchiveStore, ledger: Ledger, attempt_id: str, leg: str,
                     requester: Requester) -> tuple[RecordingInfo, BinaryIO]:
    """The stored WAV of one leg ("mixed", "rx", "tx"), opened for reading; the caller
    closes it. The access is logged once the file is known to be readable."""
    if leg not in AUDIO_LEGS:
        raise InvalidRequest(f"leg: must be one of {', '.join(AUDIO_LEGS)}")
    info = await load_recording(db, attempt_id)
    if info.purged_at is not None:
        raise AudioUnavailable(f"recording {attempt_id} was purged on {info.purged_at.isoformat()}")
    key, sha256 = info.key_of(leg)
    try:
        handle = await asyncio.to_thread(store.open_read, key)
    except ObjectMissing:
        raise AudioUnavailable(f"recording {attempt_id}: {leg} file missing from the archive") from None
    logged = False
    try:
        await _log_access(ledger, requester, recording_subject(attempt_id), what="audio", leg=leg,
                          case_id=info.case_id, sha256=sha256)
        logged = True
    finally:
        if not logged:
            handle.close()
    return info, handle
