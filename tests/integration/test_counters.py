"""The counts /metrics reads (storage/counters.py), kept in the transactions that change
them: they equal a count of the tables after any mix of reports and ingests, from any
number of processes sharing the database, across a restart and a migration; and /metrics
shows them without reading the attempts or recordings tables."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import event, text

from people.roles import Role
from storage import counters
from storage import repositories as repo
from storage.attempt_reports import apply_report
from storage.db import Database
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case, Recording
from tests.console_kit import cheap_accounts, console, seed_users


async def new_attempt(db, clock, attempt_id: str) -> None:
    async with db.session() as s:
        if await s.get(Case, "CT-1") is None:
            await repo.add_case(s, Case(id="CT-1", client="cu", debtor_name="D", created_at=clock()),
                                [repo.NewPhone("15551100001")])
        await repo.create_attempt(s, Attempt(id=attempt_id, case_id="CT-1", number="15551100001",
                                             created_at=clock()))  # as the dialer writes it: no outcome


async def report(db, clock, attempt_id: str, event: Event, source: Source = Source.AGI, **facts):
    async with db.session() as s:
        return await apply_report(s, attempt_id, Report(event=event, source=source, at=clock(), **facts))


async def archive(db, clock, attempt_id: str, flags: list[str]) -> None:
    async with db.session() as s:
        await repo.add_recording(s, Recording(
            attempt_id=attempt_id, case_id="CT-1", archive_path=f"x/{attempt_id}.wav", sha256="0" * 64,
            size_bytes=1, duration_s=30.0, flags=flags, call_ended_at=clock(), created_at=clock(),
            retain_until=clock() + timedelta(days=1200)))


async def snapshot(db) -> tuple[dict, dict, int, int]:
    async with db.session() as s:
        kept, scanned = await counters.read(s), await counters.recount(s)
        open_calls = await counters.open_calls(s)
        no_outcome = (await s.execute(text("SELECT count(*) FROM attempts WHERE outcome IS NULL"))).scalar()
    return {k: v for k, v in kept.items() if v}, scanned, open_calls, no_outcome


async def a_day_of_calls(db, clock, prefix: str) -> None:
    """Every way a call ends, and an outcome changed after the end."""
    ids = {name: f"{prefix}{n:031x}" for n, name in enumerate(
        ["answered", "busy", "failed", "vanished", "unknown_then_answered", "open", "bound"])}
    for attempt_id in ids.values():
        await new_attempt(db, clock, attempt_id)
    a = ids["answered"]
    await report(db, clock, a, Event.ORIGINATE_QUEUED, Source.DIALER)
    await report(db, clock, a, Event.ANSWERED)
    await report(db, clock, a, Event.BOUND, recording_name=a)
    await report(db, clock, a, Event.HUNG_UP, hangup_cause=16, answered=True)
    await report(db, clock, a, Event.HUNG_UP, Source.AMI, hangup_cause=16, bridged_seconds=3.0)  # a fill
    await archive(db, clock, a, ["duration_mismatch", "no_signal_tx"])
    await report(db, clock, ids["busy"], Event.ORIGINATE_QUEUED, Source.DIALER)
    await report(db, clock, ids["busy"], Event.HUNG_UP, hangup_cause=17)
    await report(db, clock, ids["failed"], Event.ORIGINATE_FAILED, Source.DIALER, note="originate failed")
    v = ids["vanished"]
    await report(db, clock, v, Event.ORIGINATE_QUEUED, Source.DIALER)
    await report(db, clock, v, Event.ANSWERED)
    await report(db, clock, v, Event.VANISHED, Source.RESYNC)  # unknown ...
    await report(db, clock, v, Event.HUNG_UP, Source.SPOOL, hangup_cause=16, answered=True)  # ... then answered
    u = ids["unknown_then_answered"]
    await report(db, clock, u, Event.ORIGINATE_UNKNOWN, Source.DIALER, note="link dropped")  # unknown, open state
    await report(db, clock, u, Event.ANSWERED)  # the call existed after all
    await report(db, clock, u, Event.HUNG_UP, hangup_cause=16)
    await archive(db, clock, u, [])
    await report(db, clock, ids["bound"], Event.ANSWERED)
    await report(db, clock, ids["bound"], Event.BOUND, recording_name=ids["bound"])


async def test_the_counts_equal_the_tables_after_every_kind_of_end(db, clock):
    await a_day_of_calls(db, clock, "a")
    kept, scanned, open_calls, no_outcome = await snapshot(db)
    assert kept == scanned == {("calls", "answered"): 3, ("calls", "busy"): 1, ("calls", "failed"): 1,
                               ("recordings", ""): 2, ("recordings_flagged", "duration_mismatch"): 1,
                               ("recordings_flagged", "no_signal_tx"): 1}
    assert open_calls == no_outcome == 2


async def test_two_processes_and_a_restart_share_the_counts(tmp_path, clock):
    """Two services on one database (two engines: what two processes or nodes are), then a
    restart: each sees the other's calls, and the counts are still the tables'."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = Database(url), Database(url)
    await first.migrate()
    try:
        await new_attempt(first, clock, "f" * 32)  # the case, before both dial it
        await asyncio.gather(a_day_of_calls(first, clock, "b"), a_day_of_calls(second, clock, "c"))
        kept, scanned, open_calls, _ = await snapshot(first)
        assert kept == scanned and kept[("calls", "answered")] == 6 and open_calls == 5
        assert (await snapshot(second))[0] == kept
    finally:
        await first.close()
        await second.close()
    restarted = Database(url)
    try:
        assert (await snapshot(restarted))[0] == kept
    finally:
        await restarted.close()


async def test_two_fills_of_one_unknown_outcome_count_it_once(tmp_path, clock):
    """Two late reports of the end of a call whose outcome was unknown, at the same moment in
    two transactions: both would turn it `answered`; the outcome is compare-and-set, so the
    call moves between the counts once."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'race.db'}")
    await db.migrate()
    try:
        ids = [f"d{n:031x}" for n in range(20)]
        for attempt_id in ids:
            await new_attempt(db, clock, attempt_id)
            await report(db, clock, attempt_id, Event.ORIGINATE_QUEUED, Source.DIALER)
            await report(db, clock, attempt_id, Event.HUNG_UP, Source.AMI)  # ended, no cause: unknown
        assert (await snapshot(db))[0] == {("calls", "unknown"): 20}
        results = await asyncio.gather(*(coro for a in ids for coro in (
            report(db, clock, a, Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True),
            report(db, clock, a, Event.HUNG_UP, Source.SPOOL, hangup_cause=16, answered=True))))
        assert sorted(r.verdict.kind for r in results) == ["duplicate"] * 20 + ["fill"] * 20
        kept, scanned, _, _ = await snapshot(db)
        assert kept == scanned == {("calls", "answered"): 20}
    finally:
        await db.close()


async def test_the_migration_seeds_the_counts_from_the_rows(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    await db.migrate("0011")
    try:
        async with db.session() as s:
            await s.execute(text("INSERT INTO cases (id, client, debtor_name, status, created_at, flags) "
                                 "VALUES ('OLD-1', 'cu', 'Zhao', 'open', '2026-01-01 08:00:00', '[]')"))
            for n, outcome in enumerate(["answered", "answered", "busy", None, "unknown"]):
                await s.execute(text("INSERT INTO attempts (id, case_id, number, state, outcome, created_at) "
                                     "VALUES (:id, 'OLD-1', '1555', :state, :outcome, '2026-01-01 08:00:00')"),
                                {"id": f"a{n}", "outcome": outcome, "state": "bound" if outcome is None else "ended"})
            for n, flags in enumerate(['["duration_mismatch", "short"]', '[]']):
                await s.execute(text(
                    "INSERT INTO recordings (attempt_id, case_id, archive_path, sha256, size_bytes, duration_s, "
                    "legs, flags, call_ended_at, created_at, retain_until, store) VALUES (:id, 'OLD-1', 'x', 'y', "
                    "1, 1.0, '[]', :flags, '2026-01-01', '2026-01-01', '2029-01-01', 'fs')"),
                    {"id": f"a{n}", "flags": flags})
        await db.migrate()
        kept, scanned, open_calls, _ = await snapshot(db)
        assert kept == scanned == {("calls", "answered"): 2, ("calls", "busy"): 1, ("calls", "unknown"): 1,
                                   ("recordings", ""): 2, ("recordings_flagged", "duration_mismatch"): 1,
                                   ("recordings_flagged", "short"): 1}
        assert open_calls == 1
    finally:
        await db.close()


async def test_the_counts_and_metrics_on_postgresql(postgres_db, clock):
    """The same counts on PostgreSQL (where the scrape's old flags query failed: `json <>
    character varying`), with two late reports of one unknown end racing in two transactions."""
    db = postgres_db
    await a_day_of_calls(db, clock, "p")
    ids = [f"q{n:031x}" for n in range(10)]
    for attempt_id in ids:
        await new_attempt(db, clock, attempt_id)
        await report(db, clock, attempt_id, Event.ORIGINATE_QUEUED, Source.DIALER)
        await report(db, clock, attempt_id, Event.HUNG_UP, Source.AMI)
    await asyncio.gather(*(coro for a in ids for coro in (
        report(db, clock, a, Event.HUNG_UP, Source.AGI, hangup_cause=16, answered=True),
        report(db, clock, a, Event.HUNG_UP, Source.SPOOL, hangup_cause=16, answered=True))))
    kept, scanned, open_calls, no_outcome = await snapshot(db)
    assert kept == scanned and kept[("calls", "answered")] == 13 and open_calls == no_outcome == 2
    await metrics_show_the_counts(db, clock, answered=13)


async def test_metrics_show_the_counts_without_reading_the_big_tables(db, clock):
    await a_day_of_calls(db, clock, "e")
    await metrics_show_the_counts(db, clock, answered=3)


async def metrics_show_the_counts(db, clock, *, answered: int) -> None:
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    async with console(db, accounts) as running:
        browser = await running.browser(Role.SUPERVISOR)
        event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            resp = await browser.get("/metrics")
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
        assert resp.status == 200
        text_ = await resp.text()
    for line in [f'dunline_calls_total{{outcome="answered"}} {answered:.1f}', 'dunline_calls_total{outcome="busy"} 1.0',
                 'dunline_calls_total{outcome="failed"} 1.0', 'dunline_calls_total{outcome="open"} 2.0',
                 "dunline_recordings_total 2.0", 'dunline_recordings_flagged_total{flag="duration_mismatch"} 1.0',
                 'dunline_recordings_flagged_total{flag="no_signal_tx"} 1.0']:
        assert line in text_, (line, text_)
    assert not any("FROM recordings" in s for s in statements), statements
    attempts = [s for s in statements if "FROM attempts" in s]
    assert len(attempts) == 1 and "attempts.state IN" in attempts[0], attempts
