"""Repositories: the only place that knows how rows are read and written.

Each function takes an open `AsyncSession` (the caller owns the transaction) so several
writes can commit together (e.g. an attempt's binding and its audit event).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, select, true, union, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage import counters
from storage.models import ApprovedCallerId, Attempt, AuditEvent, Case, Phone, PolicyDecision, Recording


class NotFound(LookupError):
    """A row that was asked for by id does not exist."""


@dataclass(frozen=True, slots=True)
class NewPhone:
    number: str
    kind: str = "debtor"
    label: str | None = None


# -- cases -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CaseScope:
    """Which cases a reader may see: all, one collector's, one team's, one client's, or none.
    Built from the signed-in user's role (console/scope.py); a case outside it is "not found"."""

    everything: bool = False
    collector_id: int | None = None
    team_id: int | None = None
    client: str | None = None

    def criteria(self) -> ColumnElement[bool]:
        if self.everything:
            return true()
        if self.collector_id is not None:
            return Case.collector_id == self.collector_id
        if self.team_id is not None:
            return Case.team_id == self.team_id
        if self.client is not None:
            return Case.client == self.client
        return false()


ALL_CASES = CaseScope(everything=True)


async def add_case(session: AsyncSession, case: Case, phones: Sequence[NewPhone]) -> Case:
    """Insert a case with its phones; an existing case number is an error (IntegrityError)."""
    session.add(case)
    for phone in phones:
        session.add(Phone(case_id=case.id, number=phone.number, kind=phone.kind, label=phone.label))
    await session.flush()
    return case


async def get_case(session: AsyncSession, case_id: str, scope: CaseScope = ALL_CASES) -> Case:
    case = await session.scalar(
        select(Case).where(Case.id == case_id, scope.criteria()).options(selectinload(Case.phones))
    )
    if case is None:
        raise NotFound(f"no case {case_id!r}")
    return case


async def list_cases(session: AsyncSession, limit: int = 200, scope: CaseScope = ALL_CASES, *,
                     text: str = "", status: str | None = None, batch_id: int | None = None,
                     after: str | None = None) -> Sequence[Case]:
    """A page of cases within `scope`, in case-number order after `after` (keyset paging:
    as fast on page 5 000 as on page 1). `text` finds a case number or name by its start,
    an account exactly, or a phone number exactly."""
    query = select(Case).where(scope.criteria())
    if text:
        # each way of finding a case on its own index, then their union (an OR of them
        # would scan the table); "starts with" as a range, which an index serves
        digits = text.replace(" ", "").replace("-", "")
        end = text + "\U0010ffff"
        found = union(select(Case.id).where(Case.id >= text, Case.id < end),
                      select(Case.id).where(Case.account == text),
                      select(Case.id).where(Case.debtor_name >= text, Case.debtor_name < end),
                      select(Phone.case_id).where(Phone.number == digits))
        query = query.where(Case.id.in_(select(found.subquery().c[0])))
    if status is not None:
        query = query.where(Case.status == status)
    if batch_id is not None:
        query = query.where(Case.batch_id == batch_id)
    if after is not None:
        query = query.where(Case.id > after)
    rows = await session.scalars(query.options(selectinload(Case.phones)).order_by(Case.id).limit(limit))
    return rows.all()


async def approve_caller_id(session: AsyncSession, client: str, number: str) -> None:
    """Add a work number to the client's approved caller-ID pool (idempotent)."""
    existing = await session.scalar(select(ApprovedCallerId).where(
        ApprovedCallerId.client == client, ApprovedCallerId.number == number))
    if existing is None:
        session.add(ApprovedCallerId(client=client, number=number, active=True))
    else:
        existing.active = True


# -- attempts ----------------------------------------------------------------------

async def create_attempt(session: AsyncSession, attempt: Attempt) -> Attempt:
    session.add(attempt)
    await session.flush()
    await counters.bump(session, counters.outcome_changed(None, attempt.outcome))  # the dialer's have none
    return attempt


async def get_attempt(session: AsyncSession, attempt_id: str) -> Attempt | None:
    return await session.get(Attempt, attempt_id)


async def update_attempt(session: AsyncSession, attempt_id: str, **values: Any) -> None:
    """Set fields of an attempt other than its lifecycle (no-op if values is empty). The
    state and outcome move only through storage/attempt_reports.py."""
    lifecycle = {"state", "outcome", "answered_at", "bound_at", "ended_at", "recording_name"} & set(values)
    if lifecycle:
        raise ValueError(f"{', '.join(sorted(lifecycle))}: set by the attempt lifecycle, not directly")
    if values:
        await session.execute(update(Attempt).where(Attempt.id == attempt_id).values(**values))


async def attempts_for_case(session: AsyncSession, case_id: str) -> Sequence[Attempt]:
    rows = await session.scalars(
        select(Attempt).where(Attempt.case_id == case_id).order_by(Attempt.created_at)
    )
    return rows.all()


async def open_attempts(session: AsyncSession) -> Sequence[Attempt]:
    """Attempts not yet ended (to reconcile with the PBX after a resync)."""
    rows = await session.scalars(select(Attempt).where(Attempt.state.not_in(("ended",))))
    return rows.all()


# -- recordings --------------------------------------------------------------------

async def add_recording(session: AsyncSession, recording: Recording) -> Recording:
    """The one writer of recording rows: counted (storage/counters.py) in the same transaction."""
    session.add(recording)
    await session.flush()
    await counters.bump(session, counters.recording_archived(recording.flags or ()))
    return recording


async def recording_for_attempt(session: AsyncSession, attempt_id: str) -> Recording | None:
    return await session.scalar(select(Recording).where(Recording.attempt_id == attempt_id))


async def recordings_for_case(session: AsyncSession, case_id: str) -> Sequence[Recording]:
    rows = await session.scalars(
        select(Recording).where(Recording.case_id == case_id).order_by(Recording.call_ended_at)
    )
    return rows.all()


async def decisions_for_case(session: AsyncSession, case_id: str) -> Sequence[PolicyDecision]:
    rows = await session.scalars(
        select(PolicyDecision).where(PolicyDecision.case_id == case_id).order_by(PolicyDecision.at, PolicyDecision.id))
    return rows.all()


# -- audit -------------------------------------------------------------------------

async def audit(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: str,
    subject: str | None = None,
    **detail: Any,
) -> None:
    """Append one audit event (never updated, never deleted)."""
    session.add(AuditEvent(at=at, actor=actor, action=action, subject=subject, detail=detail))


async def audit_events(session: AsyncSession, subject: str | None = None) -> Sequence[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if subject is not None:
        query = query.where(AuditEvent.subject == subject)
    return (await session.scalars(query)).all()
