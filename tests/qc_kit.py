"""Recorded calls for the quality-control tests: each call ingested for real (recorder.ingest:
the recording row, its three files in the archive, its ledger entry), put through to a
collector's phone, ending at a given time."""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, ingest_attempt, spool_paths
from recorder.ledger_store import Ledger
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.models import Attempt, Case
from tests.integration.test_ingest import write_wav

Call = tuple[str, str, str, datetime]  # attempt id, case id, the collector's phone, when the call ended


def attempt_id(n: int) -> str:
    return f"{n:032x}"


async def seed_calls(db: Database, ledger: Ledger, clock: Clock, root: Path, calls: list[Call],
                     cases: dict[str, int | None] | None = None) -> FilesystemArchive:
    """The cases (case id -> collector user id, or None) with one phone each, then every call
    answered, ended and ingested."""
    spool = root / "spool"
    spool.mkdir(exist_ok=True)
    archive = FilesystemArchive(root / "archive")
    wanted = cases or {}
    async with db.session() as s:
        for case_id in sorted({c for _, c, _, _ in calls} | set(wanted)):
            if await s.get(Case, case_id) is None:
                await repo.add_case(s, Case(id=case_id, client="cu", debtor_name="王芳", created_at=clock(),
                                            amount_due_cents=123_450, timezone="Asia/Shanghai",
                                            collector_id=wanted.get(case_id)),
                                    [repo.NewPhone(f"1380000{len(case_id):04d}")])
        for attempt, case_id, phone, ended in calls:
            await repo.create_attempt(s, Attempt(
                id=attempt, case_id=case_id, number=f"1380000{len(case_id):04d}", collector=phone,
                caller_id="4008001000", state="ended", outcome="answered", created_at=ended - timedelta(seconds=70),
                answered_at=ended - timedelta(seconds=60), ended_at=ended, recording_name=attempt,
                answered_seconds=60.0))
    for k, (attempt, *_rest) in enumerate(calls):
        files = spool_paths(spool, attempt)
        write_wav(files["mixed"], 1, 6000 + 10 * k)
        write_wav(files["rx"], 1, 5000 + 10 * k)
        write_wav(files["tx"], 1, 4000 + 10 * k)
        assert await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), attempt, clock, ledger) is not None
    return archive
