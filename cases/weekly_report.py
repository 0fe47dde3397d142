"""The weekly report (每周欠费缴费统计报表): per batch, team and collector, what was worked
and what came of it in one ISO week, and the week's compliance summary. Pure: rows in,
figures out; no I/O, no clock (``as_of`` is passed in). cases/weekly_report_store.py reads
the rows, cases/weekly_report_files.py writes the PDF, XLSX and charts.

These definitions are the contract: every figure below can be computed by hand from the
stored rows, and the tests do.

**The week.** An ISO week (``2026-W49``) on the floor's clock, Asia/Shanghai: from Monday
00:00 Beijing time (inclusive) to the next Monday 00:00 (exclusive); a stored instant (UTC)
is in the week when ``start <= t < end``; a date (a payment's ``paid_on``) when it is one of
the week's seven days, Monday to Sunday. Canary calls (the watchdog's test calls on the
reserved case ``CANARY``) are no debtor's and count nowhere.

**The groups.** Every figure is given by batch, by team and by collector, and in total (the
total counts each row once, so it is the same whichever grouping is read):

- *batch*: the case's batch, ``{client}/{code}`` (no batch: ``None``);
- *team*: the case's team's name as it is now (a complaint without a case: its collector's
  team);
- *collector* (a ``users.username``), which depends on the figure: for cases and arrears,
  the case's collector (``cases.collector_id``, as it is now); for attempts, contacts, talk
  time and promises, *the call's collector*: the user whose ``users.phone`` equals the call's
  ``attempts.collector`` (the phone the call was bridged to or dialled from), and when the
  call names no phone or no user has it, the case's collector; for the recovered amount, the
  payment's ``credited_user_id``; for complaints, the complaint's ``collector_user_id``.
  ``None`` (shown "no collector") where there is none.

Only the reader's cases count (console/scope.py's report_scope: a client user its client's,
a team lead its team's): every row is counted through its case; a complaint without a case
only for a reader of every case, or of its collector's team, or that collector.

**The figures** of one group:

- ``cases``: cases open at any time in the week. A case is open at an instant when its
  status then was ``open``; its status at an instant is the ``before`` of the first
  ``case.status_changed`` audit event at or after that instant, else its status now. A case
  counts when it was created before the week's end and was open at ``max(week start,
  created_at)``, or some status change in the week made it ``open``.
- ``arrears_cents``: the sum of those cases' ``amount_due_cents`` (unknown: 0).
- ``attempts``: attempts created (placed: the write-ahead row) in the week.
- ``contacts``: those attempts with ``bridged_seconds > 0`` (the debtor talked with a collector).
- ``contact_rate``: contacts / attempts (no attempts: ``None``).
- ``talk_seconds``: the sum of those attempts' ``bridged_seconds``, rounded to the nearest
  whole second (halves up) after summing, per group and in total.
- ``promises``: promises to pay entered in the week. A correction replaces the row it
  corrects (``corrects_id``, a chain: a correction may be corrected again): a chain counts
  once, in the week its first row was entered, as what its last row says; it is a promise
  when that last row's code is ``promise_to_pay`` (a promise corrected into something else is
  none; something else corrected into a promise is one). ``promised_cents`` sums their amounts.
- ``promises_kept``: promises whose case has payments with ``paid_on`` from the promise's
  day (its first row's entry date in Beijing) to the promise date plus ``PROMISE_GRACE_DAYS``
  (3: a bank transfer reaches the client's books a few days after the debtor pays) that
  together reach the promised amount (and are more than 0); only payments dated up to the
  report's ``as_of`` day count. ``promises_pending``: not kept, and the promise date plus
  grace is not yet past on ``as_of``'s day; ``promises_broken``: the rest.
- ``promise_kept_rate``: kept / (kept + broken): of the promises whose time has come, the
  share kept (a pending promise is neither; none due: ``None``).
- ``recovered_cents``: the sum of payments with ``paid_on`` in the week, of the group's cases
  (whatever their status), by collector credited to ``credited_user_id``.
- ``recovery_rate``: recovered / arrears (no arrears: ``None``).
- ``complaints``: complaints with ``registered_at`` in the week.

**The compliance summary** of the attempts placed in the week (the same attempts as above):

- ``outside_rules``: attempts that were not allowed, or placed outside the contract's
  window: ``not_allowed + outside_window`` (each attempt counted once). *Not allowed*: no
  stored decision, or the decision's ``allowed`` is not true. *Outside the window* (of the
  allowed ones): ``created_at`` (the decision's time) is before 08:00 or at/after
  21:00 local time in any of the debtor's candidate zones, taken from the facts stored with
  the decision (the case's timezone, else its region, else the number; a third party's
  number by its own prefix first: dialer/policy/zones.py), else the zone the decision named;
  no zone at all counts as outside. An agreed time excuses it: an appointment of the case
  (recorded with a call, agreed by someone, not cancelled before the call) within
  ``AGREED_TIME_TOLERANCE`` (5 minutes, the policy's default) of the call. Expected: 0.
- ``answered``: attempts with ``answered_at`` set; each is ``recorded`` (it has a recording
  row), ``in_ingest`` (no recording yet, its ingest job still ``recording`` or ``due``) or
  ``unrecorded`` (neither: no recording and its ingest job resolved by a person or missing).
  Expected unrecorded: 0.
- ``recordings_verified``: recorded attempts whose recording's ledger entry (``ledger_seq``)
  exists, is the ``ingest`` entry of ``recording:<attempt id>`` and names the recording's
  SHA-256 as its mixed file's. Expected: equal to ``recorded``.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from dialer.policy.zones import candidate_zones, is_valid_zone

REPORT_ZONE = ZoneInfo("Asia/Shanghai")
WINDOW_START, WINDOW_END = time(8, 0), time(21, 0)  # the contract's calling hours, debtor-local
PROMISE_GRACE_DAYS = 3
AGREED_TIME_TOLERANCE = timedelta(minutes=5)
HISTORY_WEEKS = 8  # the recovery chart's weeks, the report's week the last
PROMISE = "promise_to_pay"
IN_INGEST = frozenset({"recording", "due"})
LISTED_MAX = 50  # attempt ids named per compliance problem (the counts are exact)
FIRST_YEAR = 2000

_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")


class WeekError(ValueError):
    """Not an ISO week this report can be about; the message says why."""


@dataclass(frozen=True, slots=True, order=True)
class Week:
    """An ISO week on the floor's clock (Asia/Shanghai)."""

    year: int
    number: int

    def __post_init__(self) -> None:
        try:
            date.fromisocalendar(self.year, self.number, 1)
        except (ValueError, TypeError):
            raise WeekError(f"{self.year}-W{self.number:02d} is not an ISO week") from None
        if self.year < FIRST_YEAR:
            raise WeekError(f"weeks from {FIRST_YEAR}-W01 only")

    @classmethod
    def parse(cls, text: object) -> Week:
        """``2026-W49`` (as an HTML week input sends it), else WeekError."""
        if not isinstance(text, str) or not (m := _WEEK.fullmatch(text.strip())):
            raise WeekError("week: an ISO week such as 2026-W49")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, moment: datetime) -> Week:
        """The week an (aware) instant falls in, on Beijing's clock."""
        year, number, _ = moment.astimezone(REPORT_ZONE).isocalendar()
        return cls(year, number)

    @classmethod
    def last_complete(cls, now: datetime) -> Week:
        """The latest week that has ended by `now` (the one a weekly run reports)."""
        return cls.of(now).shift(-1)

    @property
    def label(self) -> str:
        return f"{self.year:04d}-W{self.number:02d}"

    def __str__(self) -> str:
        return self.label

    @property
    def first_day(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=6)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=REPORT_ZONE)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.first_day + timedelta(days=7), time(0), tzinfo=REPORT_ZONE)

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def holds_day(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def shift(self, weeks: int) -> Week:
        return Week.of(self.start + timedelta(weeks=weeks, hours=12))

    def history(self, count: int = HISTORY_WEEKS) -> tuple[Week, ...]:
        """The `count` weeks ending with this one, oldest first (never before FIRST_YEAR)."""
        out = []
        for back in range(count - 1, -1, -1):
            try:
                out.append(self.shift(-back))
            except WeekError:
                continue
        return tuple(out)


class Grouping(StrEnum):
    BATCH = "batch"
    TEAM = "team"
    COLLECTOR = "collector"


# -- the rows read (cases/weekly_report_store.py builds them; tests build them by hand) --

class CaseRow(NamedTuple):
    case_id: str
    batch: str | None
    team: str | None
    collector: str | None  # the case's collector now
    arrears_cents: int | None
    created_at: datetime
    status: str  # now


class StatusChange(NamedTuple):
    """A `case.status_changed` audit event."""

    case_id: str
    at: datetime
    before: str
    after: str


class AttemptRow(NamedTuple):
    attempt_id: str
    case_id: str
    batch: str | None
    team: str | None
    case_collector: str | None
    call_collector: str | None  # the user whose phone is attempts.collector
    created_at: datetime
    number: str
    decision: Mapping[str, Any] | None
    answered: bool
    bridged_seconds: float | None
    recording_sha256: str | None  # its recording's, None: no recording row
    ledger_action: str | None  # the recording's ledger entry (by ledger_seq), None: none found
    ledger_subject: str | None
    ledger_detail: str | None  # the entry's canonical JSON text
    ingest_state: str | None  # its ingest job's state, None: no job


class AgreedTime(NamedTuple):
    """An appointment (an agreed call time) of a case called in the week."""

    case_id: str
    at: datetime
    agreed_by: str | None
    recorded_attempt_id: str | None
    cancelled_at: datetime | None


class DispositionRow(NamedTuple):
    disposition_id: int
    case_id: str
    batch: str | None
    team: str | None
    collector: str | None  # the call's collector (as for attempts)
    code: str
    amount_cents: int | None
    promise_date: date | None
    corrects_id: int | None
    entered_at: datetime


class PaymentRow(NamedTuple):
    case_id: str
    batch: str | None
    team: str | None
    credited: str | None  # the credited user
    amount_cents: int
    paid_on: date


class ComplaintRow(NamedTuple):
    complaint_id: int
    batch: str | None
    team: str | None
    collector: str | None  # the complaint's collector
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class WeeklyInputs:
    """What the report is computed from. The store reads: the cases in scope that may have
    been open in the week and the status changes since its start; the week's attempts with
    their recordings, ledger entries and ingest jobs; the agreed times of the cases called;
    the dispositions entered since the week's start that are in the week or corrections; the
    payments from the first history week's Monday on; the week's complaints. Rows outside
    what a figure counts are ignored (the function filters again), so a superset is fine."""

    cases: Sequence[CaseRow] = ()
    status_changes: Sequence[StatusChange] = ()
    attempts: Sequence[AttemptRow] = ()
    agreed_times: Sequence[AgreedTime] = ()
    dispositions: Sequence[DispositionRow] = ()
    payments: Sequence[PaymentRow] = ()
    complaints: Sequence[ComplaintRow] = ()


# -- the figures --------------------------------------------------------------------------

def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Figures:
    """One group's figures (see the module docstring for each definition)."""

    group: str | None  # the batch / team / collector; None: none; "total" in the total row
    cases: int = 0
    arrears_cents: int = 0
    attempts: int = 0
    contacts: int = 0
    talk_seconds: int = 0
    promises: int = 0
    promised_cents: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    promises_pending: int = 0
    recovered_cents: int = 0
    complaints: int = 0

    @property
    def contact_rate(self) -> float | None:
        return ratio(self.contacts, self.attempts)

    @property
    def promise_kept_rate(self) -> float | None:
        return ratio(self.promises_kept, self.promises_kept + self.promises_broken)

    @property
    def recovery_rate(self) -> float | None:
        return ratio(self.recovered_cents, self.arrears_cents)

    def as_json(self) -> dict[str, Any]:
        return {"group": self.group, "cases": self.cases, "arrears_cents": self.arrears_cents,
                "attempts": self.attempts, "contacts": self.contacts, "contact_rate": self.contact_rate,
                "talk_seconds": self.talk_seconds, "promises": self.promises, "promised_cents": self.promised_cents,
                "promises_kept": self.promises_kept, "promises_broken": self.promises_broken,
                "promises_pending": self.promises_pending, "promise_kept_rate": self.promise_kept_rate,
                "recovered_cents": self.recovered_cents, "recovery_rate": self.recovery_rate,
                "complaints": self.complaints}


@dataclass(frozen=True, slots=True)
class Compliance:
    attempts: int = 0
    not_allowed: int = 0
    outside_window: int = 0
    outside_rules: int = 0  # not allowed + outside the window (of the allowed)
    answered: int = 0
    recorded: int = 0
    in_ingest: int = 0
    unrecorded: int = 0
    recordings_verified: int = 0
    outside_rules_ids: tuple[str, ...] = ()  # the first LISTED_MAX of each, to follow up
    unrecorded_ids: tuple[str, ...] = ()
    unverified_ids: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.outside_rules and not self.unrecorded and self.recordings_verified == self.recorded

    def as_json(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "outside_rules": self.outside_rules, "not_allowed": self.not_allowed,
                "outside_window": self.outside_window, "answered": self.answered, "recorded": self.recorded,
                "in_ingest": self.in_ingest, "unrecorded": self.unrecorded,
                "recordings_verified": self.recordings_verified, "clean": self.clean,
                "outside_rules_ids": list(self.outside_rules_ids), "unrecorded_ids": list(self.unrecorded_ids),
                "unverified_ids": list(self.unverified_ids)}


@dataclass(frozen=True, slots=True)
class WeekRecovery:
    week: Week
    recovered_cents: int


@dataclass(frozen=True, slots=True)
class WeeklyReport:
    week: Week
    as_of: datetime
    groups: Mapping[Grouping, tuple[Figures, ...]]
    total: Figures
    compliance: Compliance
    recovery_by_week: tuple[WeekRecovery, ...] = ()  # oldest first, this week last
    scope: str = ""  # whose cases: "" every case, else e.g. "client cu"

    def rows(self, by: Grouping) -> tuple[Figures, ...]:
        return self.groups[by]

    def as_json(self, by: Grouping | None = None) -> dict[str, Any]:
        groupings = [by] if by is not None else list(Grouping)
        return {"week": self.week.label, "start": self.week.start.isoformat(), "end": self.week.end.isoformat(),
                "as_of": self.as_of.isoformat(), "scope": self.scope,
                "groups": {g.value: [f.as_json() for f in self.groups[g]] for g in groupings},
                "total": self.total.as_json(), "compliance": self.compliance.as_json(),
                "recovery_by_week": [{"week": r.week.label, "recovered_cents": r.recovered_cents}
                                     for r in self.recovery_by_week]}


@dataclass(slots=True)
class _Acc:
    cases: int = 0
    arrears_cents: int = 0
    attempts: int = 0
    contacts: int = 0
    talk: float = 0.0
    promises: int = 0
    promised_cents: int = 0
    kept: int = 0
    broken: int = 0
    pending: int = 0
    recovered_cents: int = 0
    complaints: int = 0

    def figures(self, group: str | None) -> Figures:
        return Figures(group, self.cases, self.arrears_cents, self.attempts, self.contacts, half_up(self.talk),
                       self.promises, self.promised_cents, self.kept, self.broken, self.pending,
                       self.recovered_cents, self.complaints)


def half_up(seconds: float) -> int:
    return int(math.floor(seconds + 0.5))


@dataclass(slots=True)
class _Book:
    """Accumulators per grouping and key, and the total."""

    by: dict[Grouping, dict[str | None, _Acc]] = field(default_factory=lambda: {g: {} for g in Grouping})
    total: _Acc = field(default_factory=_Acc)

    def each(self, batch: str | None, team: str | None, collector: str | None) -> Iterable[_Acc]:
        for grouping, key in ((Grouping.BATCH, batch), (Grouping.TEAM, team), (Grouping.COLLECTOR, collector)):
            yield self.by[grouping].setdefault(key, _Acc())
        yield self.total


def _sorted(groups: Mapping[str | None, _Acc]) -> tuple[Figures, ...]:
    return tuple(acc.figures(key) for key, acc in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or "")))


# -- cases open in the week ---------------------------------------------------------------

def open_in_week(case: CaseRow, changes: Sequence[StatusChange], week: Week) -> bool:
    """Whether the case was open at any time in the week (`changes`: its own, any order)."""
    if case.created_at >= week.end:
        return False
    begin = max(week.start, case.created_at)
    later = sorted((c for c in changes if c.at >= begin), key=lambda c: c.at)
    status_at_begin = later[0].before if later else case.status
    return status_at_begin == "open" or any(c.after == "open" and c.at < week.end for c in later)


# -- compliance -----------------------------------------------------------------------------

def call_zones(attempt: AttemptRow) -> frozenset[str]:
    """The debtor's candidate zones as the decision's facts give them (else its zone)."""
    decision = attempt.decision or {}
    facts = decision.get("facts") if isinstance(decision.get("facts"), Mapping) else {}
    case_facts = facts.get("case") if isinstance(facts.get("case"), Mapping) else {}
    phone_facts = facts.get("phone") if isinstance(facts.get("phone"), Mapping) else {}
    zones: frozenset[str] = frozenset()
    if case_facts or phone_facts:
        timezone, region = case_facts.get("timezone"), case_facts.get("region")
        zones = candidate_zones(timezone if isinstance(timezone, str) else None,
                                region if isinstance(region, str) else None, attempt.number,
                                third_party=phone_facts.get("kind", "debtor") != "debtor")
    named = decision.get("zone")
    if not zones and isinstance(named, str) and is_valid_zone(named):
        zones = frozenset({named})
    return zones


def outside_window(at: datetime, zones: Iterable[str]) -> bool:
    """Before 08:00 or from 21:00 local time in any of the zones (no zone: outside)."""
    found = False
    for zone in zones:
        found = True
        local = at.astimezone(ZoneInfo(zone)).time()
        if local < WINDOW_START or local >= WINDOW_END:
            return True
    return not found


def agreed(at: datetime, times: Iterable[AgreedTime], tolerance: timedelta = AGREED_TIME_TOLERANCE) -> bool:
    return any(t.recorded_attempt_id and t.agreed_by and abs(at - t.at) <= tolerance
               and (t.cancelled_at is None or t.cancelled_at > at) for t in times)


def ledger_names_recording(attempt: AttemptRow) -> bool:
    """The recording's ledger entry is its ingest entry and names its SHA-256."""
    if attempt.recording_sha256 is None or attempt.ledger_action != "ingest" or attempt.ledger_detail is None:
        return False
    if attempt.ledger_subject != f"recording:{attempt.attempt_id}":
        return False
    try:
        detail = json.loads(attempt.ledger_detail)
        return detail["files"]["mixed"]["sha256"] == attempt.recording_sha256
    except (ValueError, KeyError, TypeError):
        return False


def compliance(attempts: Sequence[AttemptRow], agreed_times: Sequence[AgreedTime],
               tolerance: timedelta = AGREED_TIME_TOLERANCE) -> Compliance:
    """The compliance summary of these attempts (the week's: the caller filters)."""
    by_case: dict[str, list[AgreedTime]] = {}
    for t in agreed_times:
        by_case.setdefault(t.case_id, []).append(t)
    not_allowed = window = answered = recorded = in_ingest = verified = 0
    outside_ids: list[str] = []
    unrecorded_ids: list[str] = []
    unverified_ids: list[str] = []
    for a in sorted(attempts, key=lambda a: (a.created_at, a.attempt_id)):
        refused = (a.decision or {}).get("allowed") is not True
        late = (not refused and outside_window(a.created_at, call_zones(a))
                and not agreed(a.created_at, by_case.get(a.case_id, ()), tolerance))
        not_allowed += refused
        window += late
        if refused or late:
            outside_ids.append(a.attempt_id)
        if not a.answered:
            continue
        answered += 1
        if a.recording_sha256 is not None:
            recorded += 1
            if ledger_names_recording(a):
                verified += 1
            else:
                unverified_ids.append(a.attempt_id)
        elif a.ingest_state in IN_INGEST:
            in_ingest += 1
        else:
            unrecorded_ids.append(a.attempt_id)
    return Compliance(attempts=len(attempts), not_allowed=not_allowed, outside_window=window,
                      outside_rules=len(outside_ids), answered=answered, recorded=recorded, in_ingest=in_ingest,
                      unrecorded=len(unrecorded_ids), recordings_verified=verified,
                      outside_rules_ids=tuple(outside_ids[:LISTED_MAX]),
                      unrecorded_ids=tuple(unrecorded_ids[:LISTED_MAX]),
                      unverified_ids=tuple(unverified_ids[:LISTED_MAX]))


# -- promises ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Promise:
    """A promise of the week: its chain's last row, dated by its first."""

    row: DispositionRow
    day: date  # the first row's entry date in Beijing

    @property
    def due(self) -> date:
        return self.row.promise_date or self.day


def promises_of(week: Week, rows: Sequence[DispositionRow]) -> list[Promise]:
    """The week's promises: each chain whose first row was entered in the week and whose last
    row is a promise to pay."""
    corrected_by = {r.corrects_id: r for r in rows if r.corrects_id is not None}
    out = []
    for root in sorted(rows, key=lambda r: r.disposition_id):
        if root.corrects_id is not None or not week.holds(root.entered_at):
            continue
        last, seen = root, {root.disposition_id}
        while last.disposition_id in corrected_by and corrected_by[last.disposition_id].disposition_id not in seen:
            last = corrected_by[last.disposition_id]
            seen.add(last.disposition_id)
        if last.code == PROMISE:
            out.append(Promise(last, root.entered_at.astimezone(REPORT_ZONE).date()))
    return out


def promise_state(promise: Promise, payments: Sequence[PaymentRow], as_of_day: date,
                  grace_days: int = PROMISE_GRACE_DAYS) -> str:
    """kept | pending | broken (see the module docstring)."""
    until = promise.due + timedelta(days=grace_days)
    paid = sum(p.amount_cents for p in payments
               if promise.day <= p.paid_on <= min(until, as_of_day))
    if paid > 0 and paid >= (promise.row.amount_cents or 0):
        return "kept"
    return "pending" if as_of_day <= until else "broken"


# -- the report -------------------------------------------------------------------------------

def weekly_report(week: Week, as_of: datetime, rows: WeeklyInputs, *, scope: str = "",
                  grace_days: int = PROMISE_GRACE_DAYS, tolerance: timedelta = AGREED_TIME_TOLERANCE,
                  history_weeks: int = HISTORY_WEEKS) -> WeeklyReport:
    book = _Book()
    changes: dict[str, list[StatusChange]] = {}
    for c in rows.status_changes:
        changes.setdefault(c.case_id, []).append(c)
    for case in rows.cases:
        if open_in_week(case, changes.get(case.case_id, ()), week):
            for acc in book.each(case.batch, case.team, case.collector):
                acc.cases += 1
                acc.arrears_cents += case.arrears_cents or 0

    attempts = [a for a in rows.attempts if week.holds(a.created_at)]
    for a in attempts:
        talk = a.bridged_seconds or 0.0
        for acc in book.each(a.batch, a.team, a.call_collector or a.case_collector):
            acc.attempts += 1
            acc.contacts += talk > 0
            acc.talk += max(talk, 0.0)

    as_of_day = as_of.astimezone(REPORT_ZONE).date()
    payments_of: dict[str, list[PaymentRow]] = {}
    for p in rows.payments:
        payments_of.setdefault(p.case_id, []).append(p)
    for promise in promises_of(week, rows.dispositions):
        state = promise_state(promise, payments_of.get(promise.row.case_id, ()), as_of_day, grace_days)
        r = promise.row
        for acc in book.each(r.batch, r.team, r.collector):
            acc.promises += 1
            acc.promised_cents += r.amount_cents or 0
            acc.kept += state == "kept"
            acc.broken += state == "broken"
            acc.pending += state == "pending"

    for p in rows.payments:
        if week.holds_day(p.paid_on):
            for acc in book.each(p.batch, p.team, p.credited):
                acc.recovered_cents += p.amount_cents

    for c in rows.complaints:
        if week.holds(c.registered_at):
            for acc in book.each(c.batch, c.team, c.collector):
                acc.complaints += 1

    history = week.history(history_weeks)
    recovered = {w: 0 for w in history}
    for p in rows.payments:
        w = Week.of(datetime.combine(p.paid_on, time(12), tzinfo=REPORT_ZONE))
        if w in recovered:
            recovered[w] += p.amount_cents
    return WeeklyReport(
        week=week, as_of=as_of, groups={g: _sorted(book.by[g]) for g in Grouping},
        total=book.total.figures("total"), compliance=compliance(attempts, rows.agreed_times, tolerance),
        recovery_by_week=tuple(WeekRecovery(w, recovered[w]) for w in history), scope=scope)
