"""Complaints stored: the thin I/O around cases/complaints.py.

Every change checks what was entered first (the pure rules), happens in one transaction and
is an audit event (subject `complaint:<id>`): `complaint.registered`, `complaint.outcome_set`,
`complaint.follow_up_linked`, `complaint.dialing_allowed` (a supervisor's leave to dial the
case while the complaint is open), `complaint.closed`; the alarm pass's `complaint.due_soon`
and `complaint.overdue`. A set-once change is a conditional UPDATE, so two people (or two
nodes' alarm passes) racing for it change it once: the loser is refused, nothing changed.

Reach (a `CaseScope`, console/scope.py): a complaint on a case is reached through its case; one
against a collector alone through the collector's team (a team lead's), or by a role that
reaches every case.

`gather()` is the complaint's one view: its case with that case's calls (their dispositions and
notes), the recordings of exactly that case (Recording rows by case id; played through the
recordings' own ledgered access), the follow-up call, and the complaint's history (its audit
events, read through the audit's time index between registration and closing).

`alarm_pass()` is what the service runs every `complaints.check_interval_s`: `due_alarms()`
marks and audits the alarms due (one indexed query over the open complaints near their
deadline) and each is handed to `post` (the webhook) after the commit.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case as when, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from cases import dispositions_store
from cases.complaints import (WARN_BEFORE, Alarm, ClockFacts, ComplaintRefused, Registration, Stage, State,
                              alarm_due, check_allow_dialing, check_close, check_follow_up, check_outcome,
                              deadline_of, stage, validate_outcome, validate_registration)
from cases.refusals import MAX_REASON, MIN_REASON
from storage import repositories as repo
from storage.clock import Clock
from storage.complaints import Complaint
from storage.db import Database
from storage.dispositions import Disposition
from storage.models import ATTEMPT_ID_PATTERN, CANARY_CASE, Attempt, AuditEvent, Case, Recording
from storage.people import User

log = logging.getLogger("dunline.complaints")

COMPLAINT_PREFIX = "complaint:"
ALARM_ACTOR = "complaints"  # the audit's "who" of the alarm pass
# the complaint's own audit events (`complaint.<event>`), what its history shows
EVENTS: tuple[str, ...] = ("registered", "outcome_set", "follow_up_linked", "dialing_allowed", "closed",
                           "due_soon", "overdue")
LIST_LIMIT = 200
HISTORY_LIMIT = 200


def complaint_subject(complaint_id: int) -> str:
    return f"{COMPLAINT_PREFIX}{complaint_id}"


def clock_facts(c: Complaint) -> ClockFacts:
    return ClockFacts(c.registered_at, c.deadline_at, c.warned_at, c.overdue_at, c.closed_at)


def state_of(c: Complaint) -> State:
    return State(c.case_id, c.registered_at, c.outcome, c.closed_at, c.dialing_allowed_at)


def reach_criteria(scope: repo.CaseScope) -> Any:
    """The complaints within `scope`: by their case; without a case, by the collector's team."""
    if scope.everything:
        return true()
    by_case = Complaint.case_id.in_(select(Case.id).where(scope.criteria()))
    if scope.team_id is None:
        return and_(Complaint.case_id.is_not(None), by_case)
    by_team = and_(Complaint.case_id.is_(None),
                   Complaint.collector_user_id.in_(select(User.id).where(User.team_id == scope.team_id)))
    return or_(and_(Complaint.case_id.is_not(None), by_case), by_team)


@dataclass(frozen=True, slots=True)
class Listed:
    """One complaint as the list shows it."""

    complaint: Complaint
    collector: str | None  # the username
    debtor_name: str | None
    stage: Stage


async def collector_names(s: AsyncSession, ids: Collection[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = (await s.execute(select(User.id, User.username).where(User.id.in_(wanted)))).all()
    return {user_id: name for user_id, name in rows}


async def _get(s: AsyncSession, complaint_id: int, scope: repo.CaseScope) -> Complaint:
    """The complaint within `scope`, or LookupError (not theirs = not there)."""
    found = await s.scalar(select(Complaint).where(Complaint.id == complaint_id, reach_criteria(scope)))
    if found is None:
        raise LookupError(f"no complaint {complaint_id}")
    return found


async def complaint_and_case(db: Database, complaint_id: int, scope: repo.CaseScope = repo.ALL_CASES
                             ) -> tuple[Complaint, Case | None]:
    """The complaint within `scope` and its case (with phones): what a change needs, no more
    (LookupError: none)."""
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        return c, (await repo.get_case(s, c.case_id) if c.case_id is not None else None)


# -- registering ------------------------------------------------------------------------

async def register(db: Database, clock: Clock, raw: Mapping[str, object], *, by: str,
                   scope: repo.CaseScope = repo.ALL_CASES, caller_roles: Collection[str] | None = None
                   ) -> Complaint:
    """Register a complaint (see cases/complaints.validate_registration), its 24-hour clock
    starting now. The case must be within `scope`; the collector a user of one of
    `caller_roles` (None: any) within it too (a team lead's: their team's)."""
    entered = validate_registration(raw)
    now = clock()
    async with db.session() as s:
        case = await _case_for(s, entered, scope)
        collector = await _collector_for(s, entered, scope, caller_roles)
        row = Complaint(case_id=case.id if case else None, collector_user_id=collector.id if collector else None,
                        source=entered.source, summary=entered.summary, registered_at=now, registered_by=by,
                        deadline_at=deadline_of(now))
        s.add(row)
        await s.flush()
        await repo.audit(s, at=now, actor=by, action="complaint.registered", subject=complaint_subject(row.id),
                         case_id=row.case_id, collector=collector.username if collector else None,
                         source=row.source, deadline_at=row.deadline_at.isoformat())
    return row


async def _case_for(s: AsyncSession, entered: Registration, scope: repo.CaseScope) -> Case | None:
    if entered.case_id is None:
        return None
    try:
        case = await repo.get_case(s, entered.case_id, scope)
    except repo.NotFound:
        raise ComplaintRefused("case_id", case=entered.case_id) from None
    if case.id == CANARY_CASE:  # the watchdog's test calls have no debtor to complain
        raise ComplaintRefused("case_id", case=entered.case_id)
    return case


async def _collector_for(s: AsyncSession, entered: Registration, scope: repo.CaseScope,
                         caller_roles: Collection[str] | None) -> User | None:
    if entered.collector is None:
        return None
    user = await s.scalar(select(User).where(User.username == entered.collector))
    if user is None or (not scope.everything and (scope.team_id is None or user.team_id != scope.team_id)):
        raise ComplaintRefused("collector", collector=entered.collector)
    if caller_roles is not None and user.role not in caller_roles:
        raise ComplaintRefused("not_a_collector", collector=entered.collector)
    return user


# -- reading ----------------------------------------------------------------------------

async def list_complaints(db: Database, now: datetime, scope: repo.CaseScope = repo.ALL_CASES, *,
                          status: str = "open", limit: int = LIST_LIMIT) -> list[Listed]:
    """Open complaints by deadline (the index on closed_at, deadline_at), or the closed ones,
    latest first, or all: open ones first."""
    query = select(Complaint, Case.debtor_name).outerjoin(Case, Case.id == Complaint.case_id) \
        .where(reach_criteria(scope))
    if status == "open":
        query = query.where(Complaint.closed_at.is_(None)).order_by(Complaint.deadline_at, Complaint.id)
    elif status == "closed":
        query = query.where(Complaint.closed_at.is_not(None)).order_by(Complaint.closed_at.desc(),
                                                                        Complaint.id.desc())
    else:
        query = query.order_by(Complaint.closed_at.is_not(None), Complaint.deadline_at.desc(), Complaint.id.desc())
    async with db.session() as s:
        rows = (await s.execute(query.limit(limit))).all()
        names = await collector_names(s, [c.collector_user_id for c, _ in rows])
    return [Listed(c, names.get(c.collector_user_id or 0), debtor, stage(clock_facts(c), now)) for c, debtor in rows]


async def alarm_counts(s: AsyncSession, now: datetime, scope: repo.CaseScope = repo.ALL_CASES) -> tuple[int, int]:
    """(overdue, due soon) open complaints within `scope`: one query on the index
    (closed_at, deadline_at), the open ones whose deadline is at most WARN_BEFORE away."""
    overdue = func.coalesce(func.sum(when((Complaint.deadline_at <= now, 1), else_=0)), 0)
    row = (await s.execute(
        select(overdue, func.count()).select_from(Complaint)
        .where(Complaint.closed_at.is_(None), Complaint.deadline_at <= now + WARN_BEFORE,
               reach_criteria(scope)))).one()
    return int(row[0]), int(row[1]) - int(row[0])


@dataclass(frozen=True, slots=True)
class Gathered:
    """A complaint and what it is about, in one view."""

    complaint: Complaint
    stage: Stage
    collector: User | None
    case: Case | None
    attempts: Sequence[Attempt] = ()
    dispositions: Mapping[str, Sequence[Disposition]] = field(default_factory=dict)  # by attempt id
    recordings: Sequence[Recording] = ()  # exactly the case's
    follow_up: Attempt | None = None
    history: Sequence[AuditEvent] = ()  # the complaint's own events (not its views), oldest first

    @property
    def numbers(self) -> list[str]:
        """Every number the texts may name (for masking)."""
        return [p.number for p in self.case.phones] if self.case is not None else []


async def gather(db: Database, clock: Clock, complaint_id: int, *, by: str,
                 scope: repo.CaseScope = repo.ALL_CASES, **audit_detail: Any) -> Gathered:
    """The complaint with its case's calls, dispositions, notes and recordings and its history;
    the reading audited (`complaint.viewed`). LookupError: none within `scope`."""
    now = clock()
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        collector = await s.get(User, c.collector_user_id) if c.collector_user_id is not None else None
        case = await repo.get_case(s, c.case_id) if c.case_id is not None else None
        attempts: Sequence[Attempt] = ()
        recordings: Sequence[Recording] = ()
        dispositions: Mapping[str, Sequence[Disposition]] = {}
        if case is not None:
            attempts = await repo.attempts_for_case(s, case.id)
            recordings = await repo.recordings_for_case(s, case.id)
            dispositions = await dispositions_store.for_case(s, case.id)
        follow_up = await repo.get_attempt(s, c.follow_up_attempt_id) if c.follow_up_attempt_id else None
        history = (await s.scalars(
            select(AuditEvent).where(AuditEvent.at >= c.registered_at, AuditEvent.at <= (c.closed_at or now),
                                     AuditEvent.subject == complaint_subject(c.id),
                                     AuditEvent.action != "complaint.viewed")
            .order_by(AuditEvent.at, AuditEvent.id).limit(HISTORY_LIMIT))).all()
        await repo.audit(s, at=now, actor=by, action="complaint.viewed", subject=complaint_subject(c.id),
                         case_id=c.case_id, recordings=[r.attempt_id for r in recordings], **audit_detail)
    return Gathered(c, stage(clock_facts(c), now), collector, case, attempts, dispositions, recordings, follow_up,
                    history)


# -- changing ---------------------------------------------------------------------------

async def _set_once(s: AsyncSession, c: Complaint, column: Any, **values: Any) -> None:
    """UPDATE the open complaint where `column` is still empty; nobody else got there first,
    or the complaint is refused as it now stands."""
    result = await s.execute(update(Complaint).where(Complaint.id == c.id, Complaint.closed_at.is_(None),
                                                     column.is_(None)).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        await s.refresh(c)
        raise ComplaintRefused("closed" if c.closed_at is not None else
                               {"outcome": "outcome_set", "dialing_allowed_at": "allowed_already"}.get(column.key,
                                                                                                      "closed"))
    for name, value in values.items():
        setattr(c, name, value)


async def set_outcome(db: Database, clock: Clock, complaint_id: int, outcome: object, *, by: str,
                      scope: repo.CaseScope = repo.ALL_CASES) -> Complaint:
    """What was found and what was done (set once, while open)."""
    text = validate_outcome(outcome)
    now = clock()
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        check_outcome(state_of(c))
        await _set_once(s, c, Complaint.outcome, outcome=text)
        await repo.audit(s, at=now, actor=by, action="complaint.outcome_set", subject=complaint_subject(c.id),
                         case_id=c.case_id, outcome=text)
    return c


async def link_follow_up(db: Database, clock: Clock, complaint_id: int, attempt_id: object, *, by: str,
                         scope: repo.CaseScope = repo.ALL_CASES) -> Complaint:
    """The follow-up call: an attempt of the complaint's case, placed (through the dialer, so
    recorded) since registration; a later call replaces an earlier one (each audited)."""
    if not isinstance(attempt_id, str) or not ATTEMPT_ID_PATTERN.fullmatch(attempt_id):
        raise ComplaintRefused("follow_up")
    now = clock()
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        attempt = await repo.get_attempt(s, attempt_id)
        if attempt is None:
            raise ComplaintRefused("follow_up")
        check_follow_up(state_of(c), attempt.case_id, attempt.created_at)
        result = await s.execute(update(Complaint).where(Complaint.id == c.id, Complaint.closed_at.is_(None))
                                 .values(follow_up_attempt_id=attempt.id)
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:
            raise ComplaintRefused("closed")
        before, c.follow_up_attempt_id = c.follow_up_attempt_id, attempt.id
        await repo.audit(s, at=now, actor=by, action="complaint.follow_up_linked", subject=complaint_subject(c.id),
                         case_id=c.case_id, attempt_id=attempt.id, replaces=before)
    return c


async def allow_dialing(db: Database, clock: Clock, complaint_id: int, why: object, *, by: str,
                        scope: repo.CaseScope = repo.ALL_CASES) -> Complaint:
    """A supervisor lets the case be dialled while the complaint is open (once, with a reason)."""
    reason = why.strip() if isinstance(why, str) else ""
    if not MIN_REASON <= len(reason) <= MAX_REASON or not reason.isprintable():
        raise ComplaintRefused("reason", min=MIN_REASON, max=MAX_REASON)
    now = clock()
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        check_allow_dialing(state_of(c))
        await _set_once(s, c, Complaint.dialing_allowed_at, dialing_allowed_at=now, dialing_allowed_by=by)
        await repo.audit(s, at=now, actor=by, action="complaint.dialing_allowed", subject=complaint_subject(c.id),
                         case_id=c.case_id, why=reason)
    return c


async def close(db: Database, clock: Clock, complaint_id: int, *, by: str,
                scope: repo.CaseScope = repo.ALL_CASES) -> Complaint:
    """Closed (once, with its outcome set): the clock stops, the case's pause ends."""
    now = clock()
    async with db.session() as s:
        c = await _get(s, complaint_id, scope)
        check_close(state_of(c))
        await _set_once(s, c, Complaint.closed_at, closed_at=now, closed_by=by)
        await repo.audit(s, at=now, actor=by, action="complaint.closed", subject=complaint_subject(c.id),
                         case_id=c.case_id, late=now > c.deadline_at,
                         follow_up_attempt_id=c.follow_up_attempt_id)
    return c


# -- the alarms -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AlarmRaised:
    """One alarm raised by the pass: what the console and the webhook announce."""

    complaint_id: int
    alarm: Alarm
    at: datetime
    registered_at: datetime
    deadline_at: datetime
    source: str
    case_id: str | None
    collector: str | None

    @property
    def action(self) -> str:
        return f"complaint.{self.alarm.value}"

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON: ids and times only (no debtor's name, no summary)."""
        return {"event": self.action, "at": self.at.isoformat(), "complaint_id": self.complaint_id,
                "case_id": self.case_id, "collector": self.collector, "source": self.source,
                "registered_at": self.registered_at.isoformat(), "deadline_at": self.deadline_at.isoformat(),
                "href": f"/complaints/{self.complaint_id}"}


async def due_alarms(s: AsyncSession, now: datetime) -> list[AlarmRaised]:
    """Mark and audit every alarm due at `now` (each once), in the caller's transaction; the
    alarms to announce. Reads only the open complaints whose deadline is at most WARN_BEFORE
    away and whose overdue alarm is still to come (the index on closed_at, deadline_at)."""
    rows = (await s.execute(
        select(Complaint, User.username).outerjoin(User, User.id == Complaint.collector_user_id)
        .where(Complaint.closed_at.is_(None), Complaint.deadline_at <= now + WARN_BEFORE,
               Complaint.overdue_at.is_(None))
        .order_by(Complaint.deadline_at, Complaint.id))).all()
    raised = []
    for c, username in rows:
        alarm = alarm_due(clock_facts(c), now)
        if alarm is None:
            continue
        column = Complaint.overdue_at if alarm is Alarm.OVERDUE else Complaint.warned_at
        result = await s.execute(update(Complaint).where(Complaint.id == c.id, Complaint.closed_at.is_(None),
                                                         column.is_(None)).values({column: now})
                                 .execution_options(synchronize_session=False))
        if result.rowcount != 1:  # another pass raised it, or it was closed meanwhile
            continue
        item = AlarmRaised(c.id, alarm, now, c.registered_at, c.deadline_at, c.source, c.case_id, username)
        await repo.audit(s, at=now, actor=ALARM_ACTOR, action=item.action, subject=complaint_subject(c.id),
                         case_id=c.case_id, collector=username, deadline_at=c.deadline_at.isoformat())
        raised.append(item)
    return raised


Post = Callable[[dict[str, Any]], Awaitable[None]]


async def alarm_pass(db: Database, clock: Clock, post: Post | None = None) -> list[AlarmRaised]:
    """One pass: the alarms due marked and audited (committed), then each posted (a failed
    post is logged: the alarm stands in the audit and on the console)."""
    now = clock()
    async with db.session() as s:
        raised = await due_alarms(s, now)
    for item in raised:
        log.warning("complaint %d %s (deadline %s)", item.complaint_id, item.alarm.value, item.deadline_at.isoformat())
        if post is not None:
            try:
                await post(item.payload())
            except Exception:
                log.exception("complaint alarm %s of %d not posted", item.alarm.value, item.complaint_id)
    return raised


async def alarm_loop(db: Database, clock: Clock, post: Post | None, interval_s: float) -> None:
    """The service's task: a pass every `interval_s` (the first at once); a failed pass is
    logged and the next one tries again (an alarm not marked is still due)."""
    while True:
        try:
            await alarm_pass(db, clock, post)
        except Exception:
            log.exception("complaint alarm pass failed; trying again in %.0f s", interval_s)
        await asyncio.sleep(interval_s)
