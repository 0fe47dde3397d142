"""The weekly report's rows, read for one week and one reader's scope in six or seven queries
(cases/weekly_report.py computes the figures from them and holds every definition).

Each query is bounded by the week: attempts by their creation time, dispositions by their
entry time (later corrections included: they replace what they correct), payments from the
first Monday of the recovery chart's weeks, complaints by their registration, agreed times
only for the cases of calls placed outside the window (none, as a rule); the attempts and
dispositions through their (case, time) indexes, so only the cases may be read in full (the
ones open now, or whose status changed since the week began), as the case reports do. A
client user's scope is its own client's cases (console/scope.py): nothing of another
client's is read. The canary's case is never read.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from cases.weekly_report import (AGREED_TIME_TOLERANCE, HISTORY_WEEKS, AgreedTime, AttemptRow, CaseRow,
                                 ComplaintRow, DispositionRow, PaymentRow, StatusChange, Week, WeeklyInputs,
                                 WeeklyReport, call_zones, outside_window, weekly_report)
from storage.complaints import Complaint
from storage.db import Database
from storage.dispositions import Disposition
from storage.intake import Batch
from storage.models import (CANARY_CASE, Appointment, Attempt, AuditEvent, Case, IngestJob, LedgerEntry,
                            Recording)
from storage.names import case_of_subject
from storage.payments import Payment
from storage.people import Team, User
from storage.repositories import CaseScope

STATUS_CHANGED = "case.status_changed"


def scope_label(scope: CaseScope) -> str:
    """Whose cases a report counts, for its heading ("" = every case)."""
    if scope.everything:
        return ""
    if scope.collector_id is not None:
        return f"collector #{scope.collector_id}"
    if scope.team_id is not None:
        return f"team #{scope.team_id}"
    if scope.client is not None:
        return f"client {scope.client}"
    return "none"


def _batch(client: str | None, code: str | None) -> str | None:
    return f"{client}/{code}" if code is not None else None


class _Joins:
    """The case's groups: its batch, team and collector (aliased per query)."""

    def __init__(self) -> None:
        self.user = aliased(User)  # the case's collector
        self.team = aliased(Team)
        self.columns = (Batch.client, Batch.code, self.team.name, self.user.username)

    def onto(self, query: Any) -> Any:
        return (query.outerjoin(Batch, Batch.id == Case.batch_id).outerjoin(self.team, self.team.id == Case.team_id)
                .outerjoin(self.user, self.user.id == Case.collector_id))


def _complaints_in(scope: CaseScope, collector: Any) -> ColumnElement[bool]:
    """A complaint is the reader's when its case is; one without a case when the reader sees
    every case, or names the reader's own collector or team (never a client's)."""
    if scope.everything:
        no_case: ColumnElement[bool] = true()
    elif scope.collector_id is not None:
        no_case = Complaint.collector_user_id == scope.collector_id
    elif scope.team_id is not None:
        no_case = collector.team_id == scope.team_id
    else:
        no_case = false()
    return or_(and_(Complaint.case_id.is_not(None), scope.criteria()), and_(Complaint.case_id.is_(None), no_case))


async def read_inputs(db: Database, week: Week, scope: CaseScope, *,
                      history_weeks: int = HISTORY_WEEKS) -> WeeklyInputs:
    start, end = week.start, week.end
    history_start = week.history(history_weeks)[0].first_day
    in_scope = and_(scope.criteria(), Case.id != CANARY_CASE)
    async with db.session() as s:
        j = _Joins()
        cases = [CaseRow(cid, _batch(client, code), team, user, cents, created, status)
                 for cid, client, code, team, user, cents, created, status in (await s.execute(
                     j.onto(select(Case.id, *j.columns, Case.amount_due_cents, Case.created_at, Case.status)
                            .select_from(Case))
                     .where(in_scope, Case.created_at < end,
                            or_(Case.status == "open", Case.status_changed_at.is_(None),
                                Case.status_changed_at >= start)))).all()]
        known = {c.case_id for c in cases}
        changes = []
        for subject, at, detail in (await s.execute(
                select(AuditEvent.subject, AuditEvent.at, AuditEvent.detail)
                .where(AuditEvent.action == STATUS_CHANGED, AuditEvent.at >= start))).all():
            case_id = case_of_subject(subject or "")
            if case_id in known and isinstance(detail, dict):
                changes.append(StatusChange(case_id, at, str(detail.get("before")), str(detail.get("after"))))

        j = _Joins()
        caller = aliased(User)  # the call's collector: the user with the call's phone
        attempts = [AttemptRow(aid, cid, _batch(client, code), team, user, call_user, created, number, decision,
                               answered is not None, bridged, sha, action, subject, detail, job)
                    for (aid, cid, client, code, team, user, call_user, created, number, decision, answered,
                         bridged, sha, action, subject, detail, job) in (await s.execute(
                        j.onto(select(Attempt.id, Attempt.case_id, *j.columns, caller.username, Attempt.created_at,
                                      Attempt.number, Attempt.decision, Attempt.answered_at,
                                      Attempt.bridged_seconds, Recording.sha256, LedgerEntry.action,
                                      LedgerEntry.subject, LedgerEntry.detail, IngestJob.state)
                               .select_from(Attempt).join(Case, Case.id == Attempt.case_id))
                        .outerjoin(caller, caller.phone == Attempt.collector)
                        .outerjoin(Recording, Recording.attempt_id == Attempt.id)
                        .outerjoin(LedgerEntry, LedgerEntry.seq == Recording.ledger_seq)
                        .outerjoin(IngestJob, IngestJob.attempt_id == Attempt.id)
                        .where(in_scope, Attempt.created_at >= start, Attempt.created_at < end))).all()]

        # agreed times matter only to a call outside the window (none, as a rule): read theirs alone
        late = sorted({a.case_id for a in attempts if outside_window(a.created_at, call_zones(a))})
        agreed = []
        for chunk in (late[i:i + 500] for i in range(0, len(late), 500)):
            agreed += [AgreedTime(*row) for row in (await s.execute(
                select(Appointment.case_id, Appointment.at, Appointment.agreed_by, Appointment.recorded_attempt_id,
                       Appointment.cancelled_at)
                .where(Appointment.case_id.in_(chunk), Appointment.at >= start - AGREED_TIME_TOLERANCE,
                       Appointment.at < end + AGREED_TIME_TOLERANCE))).all()]

        j = _Joins()
        caller = aliased(User)
        dispositions = [DispositionRow(did, cid, _batch(client, code_), team, call_user or user, code, cents, day,
                                       corrects, entered)
                        for (did, cid, client, code_, team, user, call_user, code, cents, day, corrects, entered)
                        in (await s.execute(
                            j.onto(select(Disposition.id, Disposition.case_id, *j.columns, caller.username,
                                          Disposition.code, Disposition.amount_cents, Disposition.promise_date,
                                          Disposition.corrects_id, Disposition.entered_at)
                                   .select_from(Disposition).join(Case, Case.id == Disposition.case_id))
                            .join(Attempt, Attempt.id == Disposition.attempt_id)
                            .outerjoin(caller, caller.phone == Attempt.collector)
                            .where(in_scope, Disposition.entered_at >= start,
                                   or_(Disposition.entered_at < end, Disposition.corrects_id.is_not(None)))
                            )).all()]

        j = _Joins()
        credited = aliased(User)
        payments = [PaymentRow(cid, _batch(client, code), team, who, cents, day)
                    for cid, client, code, team, _, who, cents, day in (await s.execute(
                        j.onto(select(Payment.case_id, *j.columns, credited.username, Payment.amount_cents,
                                      Payment.paid_on).select_from(Payment).join(Case, Case.id == Payment.case_id))
                        .outerjoin(credited, credited.id == Payment.credited_user_id)
                        .where(in_scope, Payment.paid_on >= history_start))).all()]

        team = aliased(Team)
        named, named_team = aliased(User), aliased(Team)
        complaints = [ComplaintRow(cid, _batch(client, code), their_team if case_id is None else case_team, who, at)
                      for cid, case_id, client, code, case_team, their_team, who, at in (await s.execute(
                          select(Complaint.id, Complaint.case_id, Batch.client, Batch.code, team.name,
                                 named_team.name, named.username, Complaint.registered_at)
                          .select_from(Complaint).outerjoin(Case, Case.id == Complaint.case_id)
                          .outerjoin(Batch, Batch.id == Case.batch_id).outerjoin(team, team.id == Case.team_id)
                          .outerjoin(named, named.id == Complaint.collector_user_id)
                          .outerjoin(named_team, named_team.id == named.team_id)
                          .where(_complaints_in(scope, named), or_(Complaint.case_id.is_(None),
                                                                   Complaint.case_id != CANARY_CASE),
                                 Complaint.registered_at >= start, Complaint.registered_at < end))).all()]
    return WeeklyInputs(cases=cases, status_changes=changes, attempts=attempts, agreed_times=agreed,
                        dispositions=dispositions, payments=payments, complaints=complaints)


async def build_weekly_report(db: Database, week: Week, scope: CaseScope, as_of: datetime, *,
                              history_weeks: int = HISTORY_WEEKS) -> WeeklyReport:
    """The week's report as of `as_of` (the clock's now), counting only `scope`'s cases."""
    rows = await read_inputs(db, week, scope, history_weeks=history_weeks)
    return weekly_report(week, as_of, rows, scope=scope_label(scope), history_weeks=history_weeks)


def figures_by_group(report: WeeklyReport) -> dict[str, dict[str | None, Any]]:
    """{grouping: {group: Figures}} (for lookups in callers and tests)."""
    return {g.value: {f.group: f for f in rows} for g, rows in report.groups.items()}

