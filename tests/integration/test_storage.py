"""Storage on a real SQLite file, schema made by the Alembic migrations."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from alembic.script import ScriptDirectory

from storage import repositories as repo
from storage.attempt_reports import apply_report
from storage.db import alembic_config
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case, IngestJob, Recording


async def add_demo_case(db, clock, case_id="C-1"):
    async with db.session() as s:
        await repo.add_case(s, Case(id=case_id, client="cu", debtor_name="Zhang", created_at=clock()),
                            [repo.NewPhone("15551100001")])


async def test_migrations_make_wal_sqlite(db):
    async with db.session() as s:
        mode = (await s.execute(text("PRAGMA journal_mode"))).scalar()
        version = (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    assert mode == "wal"
    assert version == ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()


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
        await repo.create_attempt(s, Attempt(id="a" * 32, case_id="C-1", number="1", created_at=clock(),
                                             state="originated"))
    hung_up = dict(event=Event.HUNG_UP, at=clock())
    async with db.session() as s:
        first = await apply_report(s, "a" * 32, Report(source=Source.AGI, answered=True, hangup_cause=16, **hung_up))
    async with db.session() as s:
        second = await apply_report(s, "a" * 32, Report(source=Source.AMI, hangup_cause=1, bridged_seconds=12.5,
                                                        **hung_up))
        attempt = await repo.get_attempt(s, "a" * 32)
    assert (first.verdict.kind, second.verdict.kind) == ("apply", "fill")
    assert (attempt.outcome, attempt.hangup_cause, attempt.bridged_seconds) == ("answered", 16, 12.5)


async def test_two_reporters_of_one_end_race_and_neither_is_lost(tmp_path, clock):
    """The hang-up handler and the AMI Hangup report the same end at the same moment, each
    in its own transaction: compare-and-set on the state makes the loser re-read and fill."""
    from storage.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'race.db'}")
    await db.migrate()
    try:
        await add_demo_case(db, clock)
        ids = [f"{n:032x}" for n in range(20)]
        async with db.session() as s:
            for attempt_id in ids:
                await repo.create_attempt(s, Attempt(id=attempt_id, case_id="C-1", number="1", state="bound",
                                                     created_at=clock(), answered_at=clock(),
                                                     recording_name=attempt_id))

        async def report(attempt_id, **facts):
            async with db.session() as s:
                return await apply_report(s, attempt_id, Report(event=Event.HUNG_UP, at=clock(), **facts))

        results = await asyncio.gather(*(coro for a in ids for coro in (
            report(a, source=Source.AGI, answered=True, hangup_cause=16, answered_seconds=30.0),
            report(a, source=Source.AMI, answered=True, hangup_cause=16, bridged_seconds=29.5))))
        assert sorted(r.verdict.kind for r in results) == ["apply"] * 20 + ["fill"] * 20
        async with db.session() as s:
            for attempt_id in ids:
                attempt = await repo.get_attempt(s, attempt_id)
                assert (attempt.state, attempt.outcome, attempt.answered_seconds, attempt.bridged_seconds) == \
                    ("ended", "answered", 30.0, 29.5)
                assert (await s.get(IngestJob, attempt_id)).state == "due"
    finally:
        await db.close()


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


async def test_attempts_with_recordings_get_their_ingest_job_on_upgrade(tmp_path):
    """0005: an ended call with a recording file but no Recording row is found again (due);
    an archived one is archived; a call still running is recording."""
    from storage.db import Database

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await db.migrate("0004")
    rows = {"a": ("ended", True), "b": ("ended", False), "c": ("bound", False), "d": ("unknown", False)}
    async with db.session() as s:
        await s.execute(text("INSERT INTO cases (id, client, debtor_name, status, created_at, flags) "
                             "VALUES ('OLD-1', 'cu', 'Zhao', 'open', '2026-01-01 08:00:00', '[]')"))
        for attempt_id, (state, archived) in rows.items():
            await s.execute(text("INSERT INTO attempts (id, case_id, number, state, created_at, ended_at, "
                                 "recording_name) VALUES (:id, 'OLD-1', '1555', :state, '2026-01-01 08:00:00', "
                                 ":ended, :id)"), {"id": attempt_id, "state": state,
                                                   "ended": None if state == "bound" else "2026-01-01 08:05:00"})
            if archived:
                await s.execute(text(
                    "INSERT INTO recordings (attempt_id, case_id, archive_path, sha256, size_bytes, duration_s, legs, "
                    "flags, call_ended_at, created_at, retain_until, store) VALUES (:id, 'OLD-1', 'x', 'y', 1, 1.0, "
                    "'[]', '[]', '2026-01-01', '2026-01-01 08:06:00', '2029-01-01', 'fs')"), {"id": attempt_id})
        await s.execute(text("INSERT INTO attempts (id, case_id, number, state, created_at) "
                             "VALUES ('e', 'OLD-1', '1555', 'ended', '2026-01-01 08:00:00')"))  # never recorded
    await db.migrate()
    async with db.session() as s:
        jobs = {j.attempt_id: j for j in (await s.scalars(select(IngestJob))).all()}
    await db.close()
    assert {k: j.state for k, j in jobs.items()} == {"a": "archived", "b": "due", "c": "recording", "d": "due"}
    assert jobs["b"].due_at is not None and jobs["b"].next_try_at == jobs["b"].due_at


async def test_the_migrations_make_exactly_the_models_schema(tmp_path):
    """What `dunline db upgrade` builds is what the code expects: no table, column, index or
    foreign key of the models missing from the migrations, none extra."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.db import Database
    from storage.models import Base

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    await db.migrate()

    def diff(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [d for d in compare_metadata(context, Base.metadata) if d[0] != "remove_table" or
                d[1].name != "alembic_version"]

    async with db.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    await db.close()
    assert differences == []
