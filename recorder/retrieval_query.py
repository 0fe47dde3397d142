"""What may be asked of the archive: validated requests (case numbers, phones, dates,
flags, paging cursors), who asks and why, and the errors a request can meet.

Everything here is pure: a `RecordingQuery` that exists is valid, so the query builder
in recorder/retrieval.py never sees hostile input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from storage.models import ATTEMPT_ID_PATTERN

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
        raise InvalidRequest(f"case: invalid case number {text!r}: 1-64 of A-Z a-z 0-9 . _ -, "
                             "starting with a letter or digit")
    return text


def check_attempt_id(text: str | None) -> str:
    if text is None or not ATTEMPT_ID_PATTERN.fullmatch(text):
        raise InvalidRequest(f"invalid recording id {text!r}: 32 hex digits (the attempt id)")
    return text


EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(9000, 1, 1, tzinfo=timezone.utc)


def parse_time(text: str, name: str = "time") -> datetime:
    """ISO 8601 date or date-time; without a zone it is UTC. Times a call cannot have (before
    1970, after the year 9000, or beyond what a zone can shift) are refused, named."""
    try:
        when = datetime.fromisoformat(text)
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        in_utc = when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidRequest(f"{name}: not a date/time {text[:40]!r} (ISO 8601, e.g. 2026-11-29 "
                             "or 2026-11-29T08:00:00+01:00)") from None
    if not EARLIEST <= in_utc < LATEST:
        raise InvalidRequest(f"{name}: {text[:40]!r} is outside {EARLIEST:%Y} to {LATEST:%Y}")
    return when


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


def encode_cursor(ended: datetime, row_id: int) -> str:
    return f"{ended.astimezone(timezone.utc):%Y%m%dT%H%M%S%f}Z.{row_id}"


def decode_cursor(text: str) -> tuple[datetime, int]:
    """The position a `next_cursor` names; InvalidRequest naming `cursor` if it names none."""
    match = CURSOR.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        ended = datetime.strptime(match[1], "%Y%m%dT%H%M%S%f").replace(tzinfo=timezone.utc)
    except ValueError:
        raise InvalidRequest(f"cursor: {text[:60]!r} is not a cursor this service gave out") from None
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
            raise InvalidRequest(f"phone: invalid phone number {self.phone[:40]!r}")
        if self.collector is not None and not COLLECTOR.fullmatch(self.collector):
            raise InvalidRequest(f"collector: invalid collector {self.collector[:40]!r}")
        for flag in self.flags:
            if not FLAG.fullmatch(flag):
                raise InvalidRequest(f"flag: invalid flag {flag[:40]!r}")
        for when in (self.ended_from, self.ended_to):
            if when is not None and when.tzinfo is None:
                raise InvalidRequest("times must carry a zone")
        if self.ended_from and self.ended_to and self.ended_from >= self.ended_to:
            raise InvalidRequest("from, to: from must be before to")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit: must be 1..{MAX_LIMIT}")
        if self.cursor is not None:
            decode_cursor(self.cursor)

    @classmethod
    def from_text(cls, *, case: str | None = None, phone: str | None = None,
                  collector: str | None = None, ended_from: str | None = None,
                  ended_to: str | None = None, flags: tuple[str, ...] = (),
                  limit: str | int | None = None, cursor: str | None = None) -> RecordingQuery:
        """From user input (query string, command line); empty strings mean "not given"."""
        try:
            size = DEFAULT_LIMIT if limit in (None, "") else int(limit)
        except ValueError:
            raise InvalidRequest(f"limit: not a number {str(limit)[:40]!r}") from None
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
