"""Storage on a real SQLite file, schema made by the Alembic migrations."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage import repositories as repo
from storage.models import Attempt, Case, Recording


async def add_demo_case(db, clock, case_id="C-1"):
    async with db.session() as s:
        await repo.add_case(s, Case(id=case_id, client="cu", debtor_name="Zhang", created_at=clock()),
                            [repo.NewPhone("15551100001")])


async def test_migrations_make_wal_sqlite(db):
    async with db.session() as s:
        mode = (await s.execute(text("PRAGMA journal_mode"))).scalar()
        version = (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert mode == "wal"
    assert version == "0004"


async def test_duplicate_case_changes_nothing(db, clock):
    await add_demo_case(db, clock)
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            await repo.add_case(s, Case(id="C-1", client="x", debtor_name="Other", created_at=clock()),
                                [repo.NewPhone("1")])
    async with db.session() as s:
        case = await repo.get_case(s, "C-1")
        assert case.debtor_name == "Zhang"
        assert [p.number for p in case.phones] == ["15551100001"]


async def test_first_end_wins_second_only_adds(db, clock):
    await add_demo_case(db, clock)
    async with db.session() as s:
        await repo.create_attempt(s, Attempt(id="a" * 32, case_id="C-1", number="1", created_at=clock()))
    async with db.session() as s:
        assert await repo.end_attempt(s, "a" * 32, outcome="answered", ended_at=clock(), hangup_cause=16)
    async with db.session() as s:
        assert not await repo.end_attempt(s, "a" * 32, outcome="failed", ended_at=clock(),
                                          hangup_cause=1, bridged_seconds=12.5)
        attempt = await repo.get_attempt(s, "a" * 32)
    assert (attempt.outcome, attempt.hangup_cause, attempt.bridged_seconds) == ("answered", 16, 12.5)


async def test_one_recording_per_attempt(db, clock):
    await add_demo_case(db, clock)
    async with db.session() as s:
        await repo.create_attempt(s, Attempt(id="b" * 32, case_id="C-1", number="1", created_at=clock()))
    row = dict(attempt_id="b" * 32, case_id="C-1", archive_path="x.wav", sha256="0" * 64, size_bytes=1,
               duration_s=1.0, call_ended_at=clock(), created_at=clock(), retain_until=clock())
    async with db.session() as s:
        await repo.add_recording(s, Recording(**row))
    with pytest.raises(IntegrityError):
        async with db.session() as s:
            await repo.add_recording(s, Recording(**row))
    async with db.session() as s:
        assert len(await repo.recordings_for_case(s, "C-1")) == 1


async def test_naive_datetime_is_refused(db, clock):
    await add_demo_case(db, clock)
    with pytest.raises(Exception, match="naive"):
        async with db.session() as s:
            await repo.audit(s, at=clock().replace(tzinfo=None), actor="t", action="x")
            await s.flush()


async def test_migrations_upgrade_a_database_holding_rows(tmp_path, clock):
    """Each migration applies to a database already holding cases (never only to empty ones)."""
    from storage.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await db.migrate("0001")
    async with db.session() as s:
        await s.execute(text("INSERT INTO cases (id, client, debtor_name, status, created_at) "
                             "VALUES ('OLD-1', 'cu', 'Zhao', 'open', '2026-01-01 08:00:00')"))
        await s.execute(text("INSERT INTO phones (case_id, number, kind) VALUES ('OLD-1', '1555', 'debtor')"))
        await s.execute(text("INSERT INTO attempts (id, case_id, number, state, created_at) "
                             "VALUES ('a', 'OLD-1', '1555', 'ended', '2026-01-01 08:00:00')"))
        await s.execute(text("INSERT INTO recordings (attempt_id, case_id, archive_path, sha256, size_bytes, "
                             "duration_s, legs, flags, call_ended_at, created_at, retain_until) VALUES "
                             "('a', 'OLD-1', 'x', 'y', 1, 1.0, '[]', '[]', '2026-01-01', '2026-01-01', '2029-01-01')"))
    await db.migrate()
    async with db.session() as s:
        case = await repo.get_case(s, "OLD-1")
        assert case.flags == [] and case.phones[0].do_not_call is False
        assert case.campaign is None
        recording = await repo.recording_for_attempt(s, "a")
        assert (recording.store, recording.purged_at, recording.sha256) == ("fs", None, "y")
    await db.close()
