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
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

from sqlalchemy import Select, Text, cast, or_, select

from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger_store import Ledger
from storage.db import Database
from storage.models import ATTEMPT_ID_PATTERN, Attempt, Case, Recording

CASE_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # no leading '.' or '-': never "..", never an option
PHONE_NUMBER = re.compile(r"\+?[0-9]{3,20}")
COLLECTOR = re.compile(r"[A-Za-z0-9._@-]{1,32}")
FLAG = re.compile(r"[a-z0-9_]{1,32}")
CURSOR = re.compile(r"(\d{8}T\d{12})Z\.(\d{1,18})")
AUDIO_LEGS = ("mixed", "rx", "tx")
DEFAULT_LIMIT, MAX_LIMIT = 50, 500


class RetrievalError(Exception):
    """Base of everything retrieval refuses."""


class InvalidRequest(RetrievalError, ValueError):
    """The caller's input is wrong: a bad case number, date, filter or a missing who/why."""


class NotFound(RetrievalError, LookupError):
    """What was asked for does not exist."""


class NoSuchCase(NotFound):
    """No case with that number."""


class NoSuchRecording(NotFound):
    """No recording for that attempt id."""


class AudioUnavailable(RetrievalError):
    """The recording exists but its audio does not any more (purged, or missing in the store)."""


def check_case_number(text: str | None) -> str:
    if text is None or not CASE_NUMBER.fullmatch(text):
        raise InvalidRequest(f"invalid case number {text!r}: 1-64 of A-Z a-z 0-9 . _ -, "
                             "starting with a letter or digit")
    return text


def check_attempt_id(text: str | None) -> str:
    if text is None or not ATTEMPT_ID_PATTERN.fullmatch(text):
        raise InvalidRequest(f"invalid recording id {text!r}: 32 hex digits (the attempt id)")
    return text


def parse_time(text: str, name: str = "time") -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name}: not a date/time {text!r} (ISO 8601, e.g. 2026-11-29 "
                             "or 2026-11-29T08:00:00+01:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks and why: both required, both go into the ledger."""

    who: str
    why: str

    def __post_init__(self) -> None:
        if not self.who or not self.why or self.who != self.who.strip() or not self.why.strip():
            raise InvalidRequest("who and why are required: every retrieval is logged")
        if len(self.who) > 64 or len(self.why) > 500:
            raise InvalidRequest("who is at most 64 characters, why at most 500")
        if not (self.who + self.why).isprintable():
            raise InvalidRequest("who and why must be printable text")

    @classmethod
    def of(cls, who: str | None, why: str | None) -> Requester:
        return cls((who or "").strip(), (why or "").strip())


def _encode_cursor(ended: datetime, row_id: int) -> str:
    return f"{ended.astimezone(timezone.utc):%Y%m%dT%H%M%S%f}Z.{row_id}"


def _decode_cursor(text: str) -> tuple[datetime, int]:
    match = CURSOR.fullmatch(text)
    if match is None:
        raise InvalidRequest(f"invalid cursor {text!r}")
    ended = datetime.strptime(match[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)
    return ended, int(match[2])


@dataclass(frozen=True, slots=True)
class RecordingQuery:
    """Filters, all optional and combined with AND; `ended_to` is exclusive; every flag
    in `flags` must be present. Validated on construction."""

    case_id: str | None = None
    phone: str | None = None
    collector: str | None = None
    ended_from: datetime | None = None
    ended_to: datetime | None = None
    flags: tuple[str, ...] = ()
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.case_id is not None:
            check_case_number(self.case_id)
        if self.phone is not None and not PHONE_NUMBER.fullmatch(self.phone):
            raise InvalidRequest(f"invalid phone number {self.phone!r}")
        if self.collector is not None and not COLLECTOR.fullmatch(self.collector):
            raise InvalidRequest(f"invalid collector {self.collector!r}")
        for flag in self.flags:
            if not FLAG.fullmatch(flag):
                raise InvalidRequest(f"invalid flag {flag!r}")
        for when in (self.ended_from, self.ended_to):
            if when is not None and when.tzinfo is None:
                raise InvalidRequest("times must carry a zone")
        if self.ended_from and self.ended_to and self.ended_from >= self.ended_to:
            raise InvalidRequest("from must be before to")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be 1..{MAX_LIMIT}")
        if self.cursor is not None:
            _decode_cursor(self.cursor)

    @classmethod
    def from_text(cls, *, case: str | None = None, phone: str | None = None,
                  collector: str | None = None, ended_from: str | None = None,
                  ended_to: str | None = None, flags: tuple[str, ...] = (),
                  limit: str | int | None = None, cursor: str | None = None) -> RecordingQuery:
        """From user input (query string, command line); empty strings mean "not given"."""
        try:
            size = DEFAULT_LIMIT if limit in (None, "") else int(limit)
        except ValueError:
            raise InvalidRequest(f"limit: not a number {limit!r}") from None
        return cls(case_id=case or None, phone=phone or None, collector=collector or None,
                   ended_from=parse_time(ended_from, "from") if ended_from else None,
                   ended_to=parse_time(ended_to, "to") if ended_to else None,
                   flags=tuple(f for f in flags if f), limit=size, cursor=cursor or None)

    @property
    def has_filter(self) -> bool:
        return any((self.case_id, self.phone, self.collector, self.ended_from, self.ended_to,
                    self.flags))

    def describe(self) -> dict[str, Any]:
        """The filters as given (for the ledger)."""
        return {k: v for k, v in {
            "case": self.case_id, "phone": self.phone, "collector": self.collector,
            "from": self.ended_from.isoformat() if self.ended_from else None,
            "to": self.ended_to.isoformat() if self.ended_to else None,
            "flags": list(self.flags) or None, "limit": self.limit, "cursor": self.cursor,
        }.items() if v is not None}


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
        ended, row_id = _decode_cursor(query.cursor)
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
    return RecordingPage(found, _encode_cursor(found[-1].ended_at, found[-1].id) if more else None)


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
    subject = f"case:{query.case_id}" if query.case_id else "recordings:search"
    await _log_access(ledger, requester, subject, what="search", query=query.describe(),
                      returned=[r.attempt_id for r in page.recordings])
    return page


async def recording_metadata(db: Database, ledger: Ledger, attempt_id: str,
                             requester: Requester) -> RecordingInfo:
    info = await load_recording(db, attempt_id)
    await _log_access(ledger, requester, f"recording:{attempt_id}", what="metadata",
                      case_id=info.case_id)
    return info


async def open_audio(db: Database, store: ArchiveStore, ledger: Ledger, attempt_id: str, leg: str,
                     requester: Requester) -> tuple[RecordingInfo, BinaryIO]:
    """The stored WAV of one leg ("mixed", "rx", "tx"), opened for reading; the caller
    closes it. The access is logged once the file is known to be readable."""
    if leg not in AUDIO_LEGS:
        raise InvalidRequest(f"leg must be one of {', '.join(AUDIO_LEGS)}")
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
        await _log_access(ledger, requester, f"recording:{attempt_id}", what="audio", leg=leg,
                          case_id=info.case_id, sha256=sha256)
        logged = True
    finally:
        if not logged:
            handle.close()
    return info, handle
