"""Retention rules (pure): how long a recording is kept, whether it may be purged now.

No I/O here: the facts come in as frozen dataclasses (built from the rows by
recorder.holds / recorder.purge), the verdicts go out. The rules:

- a recording is kept until its `retain_until` (call date + the client's period); that
  date is only ever extended, never shortened;
- a live (unreleased) legal hold on the recording, or on its case, keeps it whatever its
  age;
- a purged recording stays a tombstone (its row is never deleted) and is not purged twice;
- a store object may be shared by several recordings (content-addressed: identical bytes
  on the same day). It is deleted only when every recording referencing it is purged, and
  it carries a legal hold while any live hold covers any live recording referencing it.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


def add_years(when: datetime, years: int) -> datetime:
    """`when` plus whole calendar years; 29 February becomes 1 March (never earlier)."""
    if years < 0:
        raise ValueError("retention cannot be negative")
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 Feb in a non-leap target year
        return when.replace(year=when.year + years, month=3, day=1)


def extended(current: datetime, wanted: datetime) -> datetime:
    """The retention to keep after asking for `wanted`: the later of the two, never earlier."""
    return max(current, wanted)


def extension_for(retain_until: datetime, call_ended_at: datetime, years: int) -> datetime | None:
    """The new retain_until when the period becomes `years` after the call, or None if that
    is not later than now's (a shorter period never shortens a recording's retention)."""
    wanted = add_years(call_ended_at, years)
    return wanted if wanted > retain_until else None


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What the rules need to know about one recording."""

    recording_id: int
    attempt_id: str
    case_id: str
    retain_until: datetime  # aware UTC
    keys: tuple[str, ...]  # every store object: the mixed file, then each leg
    purged_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.purged_at is None


@dataclass(frozen=True, slots=True)
class HoldFacts:
    """A legal hold on a whole case (`case_id`) or on one recording (`recording_id`)."""

    hold_id: int
    case_id: str | None
    recording_id: int | None
    released_at: datetime | None = None

    @property
    def live(self) -> bool:
        return self.released_at is None

    def covers(self, recording: RecordingFacts) -> bool:
        """True if this hold, while live, keeps `recording`."""
        if self.recording_id is not None:
            return self.recording_id == recording.recording_id
        return self.case_id is not None and self.case_id == recording.case_id


class Reason(str, Enum):
    EXPIRED = "expired"  # past retain_until, not held: may be purged
    RETAINED = "retained"  # retain_until not reached
    HELD = "held"  # a live legal hold covers it
    ALREADY_PURGED = "already_purged"


@dataclass(frozen=True, slots=True)
class Verdict:
    purge: bool
    reason: Reason
    detail: str


def live_holds_covering(recording: RecordingFacts, holds: Iterable[HoldFacts]) -> tuple[HoldFacts, ...]:
    return tuple(h for h in holds if h.live and h.covers(recording))


def purgeable(recording: RecordingFacts, holds: Iterable[HoldFacts], now: datetime) -> Verdict:
    """May `recording` be purged at `now`? Held beats expired; a tombstone stays one."""
    if not recording.live:
        return Verdict(False, Reason.ALREADY_PURGED, f"purged at {recording.purged_at:%Y-%m-%d %H:%M:%S}Z")
    covering = live_holds_covering(recording, holds)
    if covering:
        ids = ", ".join(f"#{h.hold_id}" for h in covering)
        return Verdict(False, Reason.HELD, f"under legal hold {ids}")
    if now < recording.retain_until:
        return Verdict(False, Reason.RETAINED, f"retained until {recording.retain_until.isoformat()}")
    return Verdict(True, Reason.EXPIRED, f"retention ended {recording.retain_until.isoformat()}")


def referenced_keys(recordings: Iterable[RecordingFacts]) -> frozenset[str]:
    """Every store object some live recording still needs."""
    return frozenset(k for r in recordings if r.live for k in r.keys)


def keys_to_delete(recording: RecordingFacts, others: Iterable[RecordingFacts]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(keys to delete, keys kept because another live recording shares them) when
    `recording` is purged; `others` are the other recordings (purged ones are ignored)."""
    shared = referenced_keys(o for o in others if o.recording_id != recording.recording_id)
    unique_keys = tuple(dict.fromkeys(recording.keys))
    return (tuple(k for k in unique_keys if k not in shared), tuple(k for k in unique_keys if k in shared))


def held_keys(recordings: Iterable[RecordingFacts], holds: Sequence[HoldFacts]) -> frozenset[str]:
    """The store objects that must carry a legal hold: every key of a live, held recording."""
    return frozenset(k for r in recordings if r.live and live_holds_covering(r, holds) for k in r.keys)


def leftover_keys(recordings: Iterable[RecordingFacts]) -> frozenset[str]:
    """Keys of purged recordings that no live recording references: if such an object is
    still in the store, a purge committed but did not finish deleting (a crash)."""
    recordings = list(recordings)
    live = referenced_keys(recordings)
    return frozenset(k for r in recordings if not r.live for k in r.keys if k not in live)


@dataclass(frozen=True, slots=True)
class PlannedPurge:
    recording: RecordingFacts
    verdict: Verdict
    delete: tuple[str, ...]  # store objects to remove after the tombstone is committed
    shared: tuple[str, ...]  # store objects kept: another live recording references them


@dataclass(frozen=True, slots=True)
class PurgePlan:
    purge: tuple[PlannedPurge, ...]
    kept: tuple[tuple[RecordingFacts, Verdict], ...]  # live recordings only


def plan_purge(recordings: Sequence[RecordingFacts], holds: Sequence[HoldFacts], now: datetime,
               candidates: frozenset[int] | None = None) -> PurgePlan:
    """Which live recordings go at `now`, and which store objects go with them.

    Recordings are taken in order; a key shared by two recordings that both go is deleted
    with the last of them (the earlier one still sees the later one as live). With
    `candidates`, only those recording ids may go; the others stay live (and are left out
    of the plan), so nothing they reference is deleted."""
    remaining = {r.recording_id: r for r in recordings}
    purge: list[PlannedPurge] = []
    kept: list[tuple[RecordingFacts, Verdict]] = []
    for recording in recordings:
        if not recording.live or (candidates is not None and recording.recording_id not in candidates):
            continue
        verdict = purgeable(recording, holds, now)
        if not verdict.purge:
            kept.append((recording, verdict))
            continue
        delete, shared = keys_to_delete(recording, remaining.values())
        purge.append(PlannedPurge(recording, verdict, delete, shared))
        remaining.pop(recording.recording_id)
    return PurgePlan(tuple(purge), tuple(kept))
