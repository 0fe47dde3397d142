"""After-the-fact compliance audit of stored attempts.

Deliberately independent of ``decide()``: every rule is re-implemented here from its
definition, in the most direct way (for each attempt, look at the attempts that came
before it).  Only the zone *lookup table* (``zones.candidate_zones``) is shared, because
it is data, not a rule.  Day caps compare local calendar dates (``astimezone().date()``)
where ``limits`` uses midnight boundaries, so the two implementations check each other.

Each attempt is judged with the facts stored with it (the case and phone *as they were*
at the time), the caller ID actually used and the appointments known then.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Sequence
from zoneinfo import ZoneInfo

from .model import CASE_FLAGS, Appointment, AttemptRecord, CaseFacts, PhoneFacts, PolicySettings
from .zones import candidate_zones

RULES: tuple[str, ...] = (
    "case_status", "case_flags", "dispute", "fraud", "care", "complaint", "do_not_call", "phone_retired",
    "third_party_refused",
    "caller_id", "zone", "window",
    "min_gap", "attempts_per_number_per_day", "unanswered_per_number_per_day",
    "attempts_per_case_per_day", "connected_per_case_per_day", "calls_per_case_7d",
    "quiet_period",
)


@dataclass(frozen=True, slots=True)
class AuditedAttempt:
    """A stored attempt with the facts as they were when it was placed."""

    attempt_id: str
    record: AttemptRecord
    case: CaseFacts
    phone: PhoneFacts
    caller_id: str
    appointments: tuple[Appointment, ...] = ()


@dataclass(frozen=True, slots=True)
class Breach:
    """One attempt that broke one rule."""

    attempt_id: str
    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Per rule: how many attempts it was checked on, and every breach found."""

    checked: dict[str, int] = field(default_factory=dict)
    breaches: tuple[Breach, ...] = ()

    @property
    def clean(self) -> bool:
        """True when no attempt broke any rule."""
        return not self.breaches

    def by_rule(self) -> dict[str, list[Breach]]:
        """Breaches grouped by rule name (rules without breaches omitted)."""
        out: dict[str, list[Breach]] = {}
        for b in self.breaches:
            out.setdefault(b.rule, []).append(b)
        return out


def _has_appointment(a: AuditedAttempt, tolerance_min: int) -> bool:
    tol = timedelta(minutes=tolerance_min)
    return any(
        ap.recorded_attempt_id and ap.agreed_by and ap.at.tzinfo is not None
        and abs(a.record.at - ap.at) <= tol
        for ap in a.appointments
    )


def _window_reason(at: datetime, zone: str, s: PolicySettings) -> str | None:
    local = at.astimezone(ZoneInfo(zone))
    if local.date() in s.holidays:
        return f"called on holiday {local.date()} in {zone}"
    w = s.windows[local.weekday()]
    if w is None:
        return f"called on a closed weekday in {zone}"
    minute = local.hour * 60 + local.minute + local.second / 60 + local.microsecond / 6e7
    start = w.start.hour * 60 + w.start.minute + w.start.second / 60
    last = w.end.hour * 60 + w.end.minute + w.end.second / 60 - s.last_dial_margin_min
    if not (start <= minute < last):
        return f"called at {local:%H:%M} local in {zone}"
    return None


def _suppressions(a: AuditedAttempt, s: PolicySettings) -> list[tuple[str, str | None]]:
    case, phone, at = a.case, a.phone, a.record.at
    care_ok = case.care_approved_until is not None and case.care_approved_until >= at
    return [
        ("case_status", None if case.status == "open" else f"case was {case.status}"),
        ("case_flags", f"unknown case flags {sorted(set(case.flags) - CASE_FLAGS)}"
         if set(case.flags) - CASE_FLAGS else None),
        ("dispute", "case was disputed" if "dispute" in case.flags else None),
        ("fraud", "case was flagged for fraud" if "fraud" in case.flags else None),
        ("care", "care flag without approval" if "care" in case.flags and not care_ok else None),
        ("complaint", "case had an open complaint without a supervisor's leave" if case.complaint_pause else None),
        ("do_not_call", "number was do-not-call" if phone.do_not_call else None),
        ("phone_retired", "number was retired (a wrong number)" if phone.retired else None),
        ("third_party_refused",
         "third party had refused" if phone.kind == "third_party" and phone.refused else None),
        ("caller_id", None if a.caller_id in s.caller_id_pool
         else f"caller ID {a.caller_id!r} not approved"),
    ]


def _same_day(x: datetime, y: datetime, zones: frozenset[str]) -> bool:
    return any(x.astimezone(ZoneInfo(z)).date() == y.astimezone(ZoneInfo(z)).date() for z in zones)


def _day_count_breach(prior: list[AttemptRecord], at: datetime, zones: frozenset[str],
                      cap: int) -> bool:
    # The cap is reached in some zone when, for that zone, `cap` earlier calls share the date.
    for z in zones:
        tz = ZoneInfo(z)
        day = at.astimezone(tz).date()
        if sum(1 for p in prior if p.at.astimezone(tz).date() == day) >= cap:
            return True
    return False


def audit(attempts: Sequence[AuditedAttempt], settings: PolicySettings) -> AuditReport:
    """Every rule re-checked over every attempt, using only the stored attempts."""
    checked = {rule: 0 for rule in RULES}
    breaches: list[Breach] = []
    caps = settings.caps
    ordered = sorted(enumerate(attempts), key=lambda pair: (pair[1].record.at, pair[0]))

    def flag(a: AuditedAttempt, rule: str, reason: str) -> None:
        breaches.append(Breach(a.attempt_id, rule, reason))

    for pos, (_, a) in enumerate(ordered):
        rec = a.record
        for rule, reason in _suppressions(a, settings):
            checked[rule] += 1
            if reason:
                flag(a, rule, reason)
        zones = candidate_zones(a.case.timezone, a.case.region, a.phone.number,
                                settings.extra_regions, third_party=a.phone.kind != "debtor")
        checked["zone"] += 1
        if not zones:
            flag(a, "zone", "no zone could be derived")
        appt = _has_appointment(a, settings.appointment_tolerance_min)
        if zones and not appt:
            checked["window"] += 1
            reasons = [r for r in (_window_reason(rec.at, z, settings) for z in sorted(zones)) if r]
            if reasons:
                flag(a, "window", "; ".join(reasons))

        before = [b.record for _, b in ordered[:pos]]
        same_number = [p for p in before if p.number == rec.number]
        same_case = [p for p in before if p.case_id == rec.case_id]
        day_zones = zones or frozenset({"UTC"})

        if caps.min_gap_minutes is not None:
            checked["min_gap"] += 1
            gap = timedelta(minutes=caps.min_gap_minutes)
            if any(rec.at - p.at < gap for p in same_number):
                flag(a, "min_gap", f"less than {caps.min_gap_minutes} min after the previous call")
        day_rules = (
            ("attempts_per_number_per_day", caps.attempts_per_number_per_day, same_number),
            ("unanswered_per_number_per_day", caps.unanswered_per_number_per_day,
             [p for p in same_number if not p.connected]),
            ("attempts_per_case_per_day", caps.attempts_per_case_per_day, same_case),
            ("connected_per_case_per_day", caps.connected_per_case_per_day,
             [p for p in same_case if p.connected]),
        )
        for rule, cap, pool in day_rules:
            if cap is None:
                continue
            checked[rule] += 1
            todays = [p for p in pool if _same_day(p.at, rec.at, day_zones)]
            if _day_count_breach(todays, rec.at, day_zones, cap):
                flag(a, rule, f"over the cap of {cap} per local day")
        if caps.max_per_case_7d is not None:
            checked["calls_per_case_7d"] += 1
            week = [p for p in same_case if rec.at - p.at < timedelta(days=7)]
            if len(week) >= caps.max_per_case_7d:
                flag(a, "calls_per_case_7d",
                     f"call {len(week) + 1} in 7 days (cap {caps.max_per_case_7d})")
        if caps.quiet_days_after_conversation is not None and not appt:
            checked["quiet_period"] += 1
            quiet = timedelta(days=caps.quiet_days_after_conversation)
            if any(p.conversation and rec.at - p.at < quiet for p in same_case):
                flag(a, "quiet_period", "within the quiet period after a conversation")
    return AuditReport(checked=checked, breaches=tuple(breaches))
