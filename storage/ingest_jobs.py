"""Ingest jobs on the database: the durable work of archiving a call's recording.

A job is created and made due by the attempt's reports (storage/attempt_reports.py); here
the recorder takes due jobs, records a failure with its backoff, marks a job archived (in
the transaction that writes the Recording row and its ledger entry) and a person resolves
one that cannot be archived. What is due and older than a threshold is the watchdog's
critical incident "answered call without an archived recording".
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import IngestJob

BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 300.0


def backoff(tries: int) -> timedelta:
    """How long to wait after the `tries`-th failure: 2 s, 4 s, 8 s, ... at most 5 min."""
    return timedelta(seconds=min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, tries - 1)))


async def start(session: AsyncSession, attempt_id: str, at: datetime) -> None:
    """The recording of a call started: its job exists from now on (not due yet)."""
    if await session.get(IngestJob, attempt_id) is None:
        session.add(IngestJob(attempt_id=attempt_id, state="recording", created_at=at, tries=0))
        await session.flush()


async def make_due(session: AsyncSession, attempt_id: str, at: datetime) -> None:
    """The call is over: its recording is due for ingest (an archived or resolved job stays)."""
    job = await session.get(IngestJob, attempt_id, populate_existing=True)
    if job is None:
        session.add(IngestJob(attempt_id=attempt_id, state="due", created_at=at, due_at=at, next_try_at=at,
                              tries=0))
        await session.flush()
    elif job.state == "recording":
        job.state, job.due_at, job.next_try_at = "due", at, at
        await session.flush()


async def mark_archived(session: AsyncSession, attempt_id: str, now: datetime) -> None:
    job = await session.get(IngestJob, attempt_id, populate_existing=True)
    if job is None:
        session.add(IngestJob(attempt_id=attempt_id, state="archived", created_at=now, due_at=now, tries=0,
                              done_at=now))
    else:
        job.state, job.done_at, job.next_try_at = "archived", now, None
    await session.flush()


async def mark_failed(session: AsyncSession, attempt_id: str, now: datetime, error: str) -> IngestJob | None:
    """One more failed try: the error kept, the next try after the backoff."""
    job = await session.get(IngestJob, attempt_id, populate_existing=True)
    if job is None or job.state != "due":
        return job
    job.tries += 1
    job.last_error = error[:2000]
    job.next_try_at = now + backoff(job.tries)
    await session.flush()
    return job


async def due_jobs(session: AsyncSession, now: datetime, limit: int = 100) -> Sequence[IngestJob]:
    """Due jobs whose next try has come, oldest first."""
    rows = await session.scalars(select(IngestJob).where(IngestJob.state == "due", IngestJob.next_try_at <= now)
                                 .order_by(IngestJob.next_try_at).limit(limit))
    return rows.all()


async def all_due(session: AsyncSession) -> dict[str, int]:
    """Every due job: attempt id -> tries so far."""
    rows = await session.execute(select(IngestJob.attempt_id, IngestJob.tries).where(IngestJob.state == "due"))
    return {attempt_id: tries for attempt_id, tries in rows.all()}


async def next_due_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(select(IngestJob.next_try_at).where(IngestJob.state == "due")
                                .order_by(IngestJob.next_try_at).limit(1))


async def overdue(session: AsyncSession, due_before: datetime, limit: int = 100) -> list[str]:
    """The attempts whose jobs are due since before `due_before` and still not archived or
    resolved (incidents), oldest first. The watchdog asks twice a second: by the state index,
    only the jobs still due are read, and only their ids."""
    rows = await session.scalars(select(IngestJob.attempt_id).where(IngestJob.state == "due",
                                                                    IngestJob.due_at < due_before)
                                 .order_by(IngestJob.due_at).limit(limit))
    return list(rows.all())
