"""A person resolves a recording that cannot be archived: who, why, a ledger entry.

An answered call whose recording is not archived stays a critical incident (the
watchdog's reconciliation) whatever canaries pass meanwhile. When it can never be archived
(the files were destroyed, the disk is gone), a person says so: `resolve_missing` closes
its ingest job as `resolved` with who and why, in the same transaction as a `resolve`
ledger entry naming the recording, its case, the last error and how often ingest tried.
The call stays in every report as unrecorded; only the incident ends.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from recorder.holds import AlreadyDone, UnknownTarget, require_who_why
from recorder.ledger_store import Ledger
from storage import repositories as repo
from storage.db import Database
from storage.models import Attempt, IngestJob
from storage.names import recording_subject


@dataclass(frozen=True, slots=True)
class MissingRecording:
    attempt_id: str
    case_id: str
    number: str
    due_at: datetime | None
    tries: int
    last_error: str | None


async def missing_recordings(db: Database) -> Sequence[MissingRecording]:
    """Every answered call whose recording is due and not archived (oldest first)."""
    async with db.session() as session:
        rows = (await session.execute(
            select(IngestJob, Attempt).join(Attempt, Attempt.id == IngestJob.attempt_id)
            .where(IngestJob.state == "due").order_by(IngestJob.due_at))).all()
    return [MissingRecording(job.attempt_id, attempt.case_id, attempt.number, job.due_at, job.tries, job.last_error)
            for job, attempt in rows]


async def resolve_missing(ledger: Ledger, attempt_id: str, *, by: str, why: str) -> int:
    """Close the incident of one missing recording; returns the ledger entry's seq."""
    by, why = require_who_why(by, why)
    async with ledger.transaction() as session:
        job = await session.get(IngestJob, attempt_id)
        attempt = await session.get(Attempt, attempt_id)
        if job is None or attempt is None:
            raise UnknownTarget(f"no recording of attempt {attempt_id} was ever started")
        if job.state != "due":
            raise AlreadyDone(f"the recording of attempt {attempt_id} is {job.state}, not missing")
        now = ledger.clock()
        job.state, job.resolved_by, job.resolution, job.done_at = "resolved", by, why, now
        entry = await ledger.append(session, actor=by, action="resolve", subject=recording_subject(attempt_id),
                                    detail={"who": by, "why": why, "case_id": attempt.case_id,
                                            "last_error": job.last_error, "tries": job.tries,
                                            "call_ended_at": attempt.ended_at.isoformat() if attempt.ended_at else None})
        await repo.audit(session, at=now, actor=by, action="recording.resolved", subject=attempt_id,
                         case_id=attempt.case_id, why=why, ledger_seq=entry.seq)
        return entry.seq
