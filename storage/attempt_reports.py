"""Reports about attempts, applied to the database: the only writer of an attempt's state.

`apply_report` reads the attempt, asks the pure lifecycle (storage/lifecycle.py) what the
report does, and writes it in the caller's transaction:
- the changed columns, guarded by the state it read (compare-and-set: two reporters of
  the same end cannot overwrite each other; a lost race is re-read and decided again);
- the ingest job: created when the recording starts, made due when the call is over;
- an audit event for a notable transition (unknown, failed, reconciled) and for every
  refused report (a report that would move the attempt backwards);
- the count of calls by outcome (storage/counters.py) when the outcome is set or changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import counters, ingest_jobs
from storage import repositories as repo
from storage.lifecycle import Facts, Report, State, Verdict, decide
from storage.models import Attempt

MAX_RACES = 5


@dataclass(frozen=True, slots=True)
class ReportResult:
    attempt_id: str
    report: Report
    verdict: Verdict | None  # None: no such attempt
    before: State | None
    recording_name: str | None = None  # the attempt's recording, if it has one

    @property
    def changed(self) -> bool:
        return self.verdict is not None and self.verdict.kind in ("apply", "fill")

    @property
    def refused(self) -> bool:
        return self.verdict is None or self.verdict.kind == "refuse"

    @property
    def reason(self) -> str:
        return "unknown attempt" if self.verdict is None else self.verdict.reason

    @property
    def state(self) -> State | None:
        return None if self.verdict is None else self.verdict.state

    @property
    def ingest_due(self) -> bool:
        return self.verdict is not None and self.verdict.ingest == "due"


class FactWriter(Protocol):
    """Where the call path writes what it learns (storage.durable.DurableWriter): attempt
    reports and audit events that must never be dropped."""

    async def report(self, attempt_id: str, report: Report) -> ReportResult | None:
        """Apply a report now; None if the database could not take it (kept, applied later)."""

    async def audit(self, *, actor: str, action: str, subject: str | None = None, at: datetime | None = None,
                    **detail: Any) -> None: ...

    def ended_pending(self, attempt_id: str) -> bool:
        """An end of this attempt is known but not stored yet."""


class ConcurrentChange(RuntimeError):
    """The attempt kept changing under us (should not happen: a bug or a storm of reports)."""


async def apply_report(session: AsyncSession, attempt_id: str, report: Report) -> ReportResult:
    """Apply one report in the caller's transaction (see the module docstring)."""
    for _ in range(MAX_RACES):
        row = await session.get(Attempt, attempt_id, populate_existing=True)
        if row is None:
            await _audit_refusal(session, attempt_id, report, "unknown attempt")
            return ReportResult(attempt_id, report, None, None)
        before = State(row.state)
        verdict = decide(Facts.of(row), report)
        if verdict.kind in ("apply", "fill"):
            guard = [Attempt.id == attempt_id, Attempt.state == before.value]
            moves = counters.outcome_changed(row.outcome, verdict.changes.get("outcome", row.outcome))
            if moves:  # a fill keeps the state: guard the outcome too, or two fills would count twice
                guard.append(Attempt.outcome.is_not_distinct_from(row.outcome))
            result = await session.execute(
                update(Attempt).where(*guard).values(**verdict.changes).execution_options(synchronize_session=False))
            if result.rowcount != 1:
                continue  # another report moved it meanwhile: read again, decide again
            recording = verdict.changes.get("recording_name", row.recording_name)
            if verdict.ingest == "start":
                await ingest_jobs.start(session, attempt_id, report.at)
            elif verdict.ingest == "due":
                await ingest_jobs.make_due(session, attempt_id, report.at)
            if verdict.audit:
                await repo.audit(session, at=report.at, actor=report.source.value, action=verdict.audit,
                                 subject=attempt_id, case_id=row.case_id, report=report.to_json())
            await counters.bump(session, moves)  # last: a count's row stays locked until the commit
            return ReportResult(attempt_id, report, verdict, before, recording)
        if verdict.kind == "refuse":
            await _audit_refusal(session, attempt_id, report, verdict.reason)
        return ReportResult(attempt_id, report, verdict, before, row.recording_name)
    raise ConcurrentChange(f"attempt {attempt_id} changed {MAX_RACES} times while a report was applied")


async def _audit_refusal(session: AsyncSession, attempt_id: str, report: Report, reason: str) -> None:
    await repo.audit(session, at=report.at, actor=report.source.value, action="attempt.report_refused",
                     subject=attempt_id[:128], event=report.event.value, reason=reason,
                     report=report.to_json())
