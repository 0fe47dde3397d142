"""Complaints, the rules (pure: no I/O, no clock; `now` is always passed in).

The client's plan (投诉处理制度): a complaint, from the client or a debtor, is handled within
24 hours of being received (接到客户投诉后，必须在24小时内处理完善); the recordings and
records of the calls are pulled and looked at (调取当时催收录音及记录); the complainant is
called back and the call recorded (回访并记录). Here:

- the clock: a complaint's deadline is its registration plus `DEADLINE` (24 h);
- the alarms: `DUE_SOON` from `WARN_BEFORE` (2 h) before the deadline, `OVERDUE` at the deadline,
  each raised once (`warned_at`, `overdue_at` remember it); a complaint first looked at after
  its deadline raises only `OVERDUE` (the warning's time is past); a closed one raises none;
- what may be registered: a source (`client` or `debtor`), a summary, a case and/or a
  collector (at least one);
- the outcome (set once), the closing (once, with an outcome), the supervisor's leave to dial.

A refusal is a `ComplaintRefused` naming its problem (`PROBLEMS`; the console's catalog words
each one as `complaint.problem.<key>`); nothing is stored.

While a complaint is open and no supervisor has let dialing go on, its case is not dialled
(the dialing policy's rule `complaint`; dialer/policy_store.py works out the case's fact).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

SOURCES: tuple[str, ...] = ("client", "debtor")
DEADLINE = timedelta(hours=24)
WARN_BEFORE = timedelta(hours=2)
SUMMARY_MIN, SUMMARY_MAX = 4, 2000
OUTCOME_MIN, OUTCOME_MAX = 4, 2000
CASE_ID_MAX = 64
USERNAME_MAX = 32

PROBLEMS: frozenset[str] = frozenset({
    "source", "summary", "target", "case_id", "collector", "not_a_collector", "outcome", "outcome_set",
    "closed", "no_outcome", "no_case", "allowed_already", "follow_up", "follow_up_case", "follow_up_early",
    "reason",
})


class ComplaintRefused(ValueError):
    """Refused; nothing is stored. ``key`` names the problem (one of ``PROBLEMS``), ``values``
    fill its blanks."""

    def __init__(self, key: str, **values: object) -> None:
        assert key in PROBLEMS, key
        self.key = key
        self.values = values
        super().__init__(f"{key}: {values}" if values else key)


class Alarm(StrEnum):
    DUE_SOON = "due_soon"  # WARN_BEFORE before the deadline
    OVERDUE = "overdue"  # at the deadline


class Stage(StrEnum):
    """Where a complaint stands at a moment (what the pages show)."""

    OPEN = "open"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ClockFacts:
    """A complaint's times: all aware; None = not yet."""

    registered_at: datetime
    deadline_at: datetime
    warned_at: datetime | None = None
    overdue_at: datetime | None = None
    closed_at: datetime | None = None


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("a complaint's times are aware datetimes")
    return t


def deadline_of(registered_at: datetime) -> datetime:
    """The deadline of a complaint registered at `registered_at`."""
    return _aware(registered_at) + DEADLINE


def warning_at(deadline_at: datetime) -> datetime:
    """When the due-soon alarm falls due."""
    return _aware(deadline_at) - WARN_BEFORE


def alarm_due(facts: ClockFacts, now: datetime) -> Alarm | None:
    """The alarm to raise now, if any: each is raised once; none for a closed complaint;
    past the deadline only the overdue one (a warning then would come too late to help)."""
    _aware(now)
    if facts.closed_at is not None:
        return None
    if now >= facts.deadline_at:
        return Alarm.OVERDUE if facts.overdue_at is None else None
    if now >= warning_at(facts.deadline_at):
        return Alarm.DUE_SOON if facts.warned_at is None and facts.overdue_at is None else None
    return None


def stage(facts: ClockFacts, now: datetime) -> Stage:
    """By the clock alone (the alarms raised or not): what the lists and banner show."""
    if facts.closed_at is not None:
        return Stage.CLOSED
    if now >= facts.deadline_at:
        return Stage.OVERDUE
    if now >= warning_at(facts.deadline_at):
        return Stage.DUE_SOON
    return Stage.OPEN


def time_left(facts: ClockFacts, now: datetime) -> timedelta:
    """Until the deadline (negative: overdue by that much); a closed complaint's at its closing."""
    return facts.deadline_at - (facts.closed_at or now)


def pauses_dialing(case_id: str | None, closed_at: datetime | None, dialing_allowed_at: datetime | None) -> bool:
    """Does this complaint pause its case's dialing? Open, on a case, no supervisor's leave.
    (dialer/policy_store.py asks the same of the database in one query.)"""
    return case_id is not None and closed_at is None and dialing_allowed_at is None


# -- what people enter ---------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Registration:
    source: str
    summary: str
    case_id: str | None
    collector: str | None  # a username


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _printable(text: str) -> bool:
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def validate_registration(raw: Mapping[str, object]) -> Registration:
    """A registration as entered (form or JSON): source, summary, case_id and/or collector."""
    source = raw.get("source")
    if not isinstance(source, str) or source not in SOURCES:
        raise ComplaintRefused("source", sources=", ".join(SOURCES))
    summary = _text(raw.get("summary"))
    if not SUMMARY_MIN <= len(summary) <= SUMMARY_MAX or not _printable(summary):
        raise ComplaintRefused("summary", min=SUMMARY_MIN, max=SUMMARY_MAX)
    case_id = _text(raw.get("case_id")) or None
    if case_id is not None and (len(case_id) > CASE_ID_MAX or not case_id.isprintable()):
        raise ComplaintRefused("case_id", case=case_id[:CASE_ID_MAX])
    collector = _text(raw.get("collector")) or None
    if collector is not None and (len(collector) > USERNAME_MAX or not collector.isprintable()):
        raise ComplaintRefused("collector", collector=collector[:USERNAME_MAX])
    if case_id is None and collector is None:
        raise ComplaintRefused("target")
    return Registration(source, summary, case_id, collector)


def validate_outcome(value: object) -> str:
    text = _text(value)
    if not OUTCOME_MIN <= len(text) <= OUTCOME_MAX or not _printable(text):
        raise ComplaintRefused("outcome", min=OUTCOME_MIN, max=OUTCOME_MAX)
    return text


@dataclass(frozen=True, slots=True)
class State:
    """What the changes after registration check: is it open, has it an outcome, a case, the leave."""

    case_id: str | None
    registered_at: datetime
    outcome: str | None = None
    closed_at: datetime | None = None
    dialing_allowed_at: datetime | None = None


def check_outcome(state: State) -> None:
    """An outcome may be set once, while the complaint is open."""
    if state.closed_at is not None:
        raise ComplaintRefused("closed")
    if state.outcome is not None:
        raise ComplaintRefused("outcome_set")


def check_close(state: State) -> None:
    """Closed once, and only with its outcome set (what was found, what was done)."""
    if state.closed_at is not None:
        raise ComplaintRefused("closed")
    if state.outcome is None:
        raise ComplaintRefused("no_outcome")


def check_allow_dialing(state: State) -> None:
    """A supervisor lets dialing of the case go on while the complaint is open: once."""
    if state.closed_at is not None:
        raise ComplaintRefused("closed")
    if state.case_id is None:
        raise ComplaintRefused("no_case")
    if state.dialing_allowed_at is not None:
        raise ComplaintRefused("allowed_already")


def check_follow_up(state: State, attempt_case_id: str, attempt_created_at: datetime) -> None:
    """The follow-up call is a call of the complaint's case placed after its registration,
    while the complaint is open (a later call may replace an earlier one)."""
    if state.closed_at is not None:
        raise ComplaintRefused("closed")
    if state.case_id is None:
        raise ComplaintRefused("no_case")
    if attempt_case_id != state.case_id:
        raise ComplaintRefused("follow_up_case", case=state.case_id)
    if attempt_created_at < state.registered_at:
        raise ComplaintRefused("follow_up_early")
