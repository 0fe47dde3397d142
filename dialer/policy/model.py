"""Input and output types of the dialing policy (pure data, no behaviour beyond checks).

Everything here is a frozen, slotted dataclass.  Datetimes are timezone-aware; the
policy never reads a clock, ``now`` is always passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal, Union

CaseStatus = Literal["open", "settled", "returned", "closed"]
PhoneKind = Literal["debtor", "third_party"]

CASE_STATUSES: frozenset[str] = frozenset({"open", "settled", "returned", "closed"})
CASE_FLAGS: frozenset[str] = frozenset({"dispute", "fraud", "care"})
PHONE_KINDS: frozenset[str] = frozenset({"debtor", "third_party"})
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PolicySettingsError(ValueError):
    """The policy settings are invalid; the message names the offending setting."""


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the policy needs to know about a case, as of the decision time."""

    case_id: str
    client: str
    region: str | None
    timezone: str | None
    status: str
    flags: frozenset[str] = frozenset()
    care_approved_until: datetime | None = None
    # an open complaint on the case that no supervisor has let dialing go on past
    # (storage/complaints.py; the store works it out, the policy only reads it)
    complaint_pause: bool = False


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """One number of a case: whose it is and whether it may be called (``retired``: a
    wrong number, not dialled for this case again until a supervisor lifts it)."""

    number: str
    kind: str = "debtor"
    do_not_call: bool = False
    refused: bool = False
    retired: bool = False


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """A past dial attempt (``at`` is aware, normally UTC)."""

    at: datetime
    case_id: str
    number: str
    connected: bool = False
    conversation: bool = False


@dataclass(frozen=True, slots=True)
class Appointment:
    """A time the debtor (or a third party) agreed to, backed by a recorded attempt.

    An appointment whose ``recorded_attempt_id`` or ``agreed_by`` is empty is ignored:
    consent without a recording to prove it does not count.
    """

    at: datetime
    agreed_by: str
    recorded_attempt_id: str


@dataclass(frozen=True, slots=True)
class Allowed:
    """The call may be placed now, in ``zone``, showing ``caller_id``."""

    zone: str
    caller_id: str


@dataclass(frozen=True, slots=True)
class Blocked:
    """The call may not be placed.

    ``rule`` is a stable machine name; ``next_allowed_at`` is the earliest instant the
    *reported* rule frees up (other rules may still block then), or None when only a
    person can lift the block (dispute, do-not-call, ...).
    """

    reason: str
    rule: str
    next_allowed_at: datetime | None = None


Decision = Union[Allowed, Blocked]


@dataclass(frozen=True, slots=True)
class DayWindow:
    """Local wall-clock calling hours of one weekday: ``start <= t < end``."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class Caps:
    """Frequency caps; ``None`` means no cap.  Days are the debtor's local days."""

    attempts_per_number_per_day: int | None = None
    attempts_per_case_per_day: int | None = None
    connected_per_case_per_day: int | None = None
    unanswered_per_number_per_day: int | None = None
    max_per_case_7d: int | None = None
    quiet_days_after_conversation: int | None = None
    min_gap_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """A profile's figures plus per-client/campaign overrides.

    ``windows`` has seven entries, Monday first; ``None`` closes that weekday.
    ``extra_regions`` lets a client map its own region codes to candidate zones.
    ``caller_id_pool`` is empty in the shipped profiles: approved numbers are per client.
    """

    name: str
    windows: tuple[DayWindow | None, ...]
    holidays: frozenset[date] = frozenset()
    last_dial_margin_min: int = 0
    caps: Caps = field(default_factory=Caps)
    appointment_tolerance_min: int = 5
    caller_id_pool: tuple[str, ...] = ()
    extra_regions: tuple[tuple[str, frozenset[str]], ...] = ()


def every_day(start: time, end: time) -> tuple[DayWindow, ...]:
    """The same window on all seven weekdays."""
    return tuple(DayWindow(start, end) for _ in WEEKDAYS)


_CAP_FIELDS: tuple[str, ...] = (
    "attempts_per_number_per_day",
    "attempts_per_case_per_day",
    "connected_per_case_per_day",
    "unanswered_per_number_per_day",
    "max_per_case_7d",
    "quiet_days_after_conversation",
    "min_gap_minutes",
)


def _minutes(t: time) -> float:
    return t.hour * 60 + t.minute + t.second / 60 + t.microsecond / 60e6


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PolicySettingsError(f"{name} must be an integer (got {value!r})")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise PolicySettingsError(f"{name} must be {bound} (got {value})")


def validate_settings(s: PolicySettings) -> PolicySettings:
    """Check every figure; return ``s`` unchanged or raise ``PolicySettingsError``.

    Caps may be 0 (which blocks every call: a way to pause); they may not be negative.
    """
    from .zones import is_valid_zone  # local import keeps model free of table data

    if not isinstance(s.name, str) or not s.name.strip():
        raise PolicySettingsError("name must be a non-empty string")
    if not isinstance(s.windows, tuple) or len(s.windows) != 7:
        raise PolicySettingsError("windows must be a tuple of 7 entries (Monday first)")
    _check_int("last_dial_margin_min", s.last_dial_margin_min, 0, 240)
    _check_int("appointment_tolerance_min", s.appointment_tolerance_min, 0, 240)
    for day, w in zip(WEEKDAYS, s.windows):
        if w is None:
            continue
        label = f"windows[{day}]"
        if not isinstance(w, DayWindow) or not isinstance(w.start, time) or not isinstance(w.end, time):
            raise PolicySettingsError(f"{label} must be a DayWindow of two datetime.time values or None")
        if w.start.tzinfo is not None or w.end.tzinfo is not None:
            raise PolicySettingsError(f"{label} times must be naive local wall-clock times")
        if w.end <= w.start:
            raise PolicySettingsError(f"{label}: end {w.end} must be after start {w.start}")
        if _minutes(w.end) - s.last_dial_margin_min <= _minutes(w.start):
            raise PolicySettingsError(
                f"last_dial_margin_min {s.last_dial_margin_min} leaves no time in {label}"
            )
    for d in s.holidays:
        if type(d) is not date:
            raise PolicySettingsError(f"holidays must hold datetime.date values (got {d!r})")
    if not isinstance(s.caps, Caps):
        raise PolicySettingsError("caps must be a Caps instance")
    for cap in _CAP_FIELDS:
        value = getattr(s.caps, cap)
        if value is not None:
            _check_int(f"caps.{cap}", value, 0)
    if not isinstance(s.caller_id_pool, tuple):
        raise PolicySettingsError("caller_id_pool must be a tuple of numbers")
    for number in s.caller_id_pool:
        if not isinstance(number, str) or not number.strip():
            raise PolicySettingsError(f"caller_id_pool holds an empty or non-string entry: {number!r}")
    if len(set(s.caller_id_pool)) != len(s.caller_id_pool):
        raise PolicySettingsError("caller_id_pool holds duplicates")
    for region, zones in s.extra_regions:
        if not isinstance(region, str) or not region.strip():
            raise PolicySettingsError("extra_regions: region names must be non-empty strings")
        if not zones:
            raise PolicySettingsError(f"extra_regions[{region!r}] maps to no zone")
        for z in zones:
            if not is_valid_zone(z):
                raise PolicySettingsError(f"extra_regions[{region!r}]: unknown zone {z!r}")
    return s
