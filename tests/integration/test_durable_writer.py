"""The durable writer on a real SQLite file held locked by another connection: attempt reports
and audit events go to the fsynced journal while the database cannot take them, land in
order once it can, exactly once (even after a crash between the commit and the journal's
rewrite), and a restart replays what the journal kept."""
from __future__ import annotations

import stat
from datetime import timedelta

import pytest

from storage import repositories as repo
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case, IngestJob
from tests.tampers import write_locked

A = "a" * 32


async def seed(db, clock):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-D", client="cu", debtor_name="Lu", created_at=clock()), [])
        await repo.create_attempt(s, Attempt(id=A, case_id="C-D", number="1555", state="originated",
                                             created_at=clock()))


def report(event, clock, **facts):
    return Report(event=event, source=Source.AGI, at=clock(), **facts)


async def attempt(db):
    async with db.session() as s:
        return await repo.get_attempt(s, A)


async def test_a_locked_database_loses_nothing_and_keeps_the_order(fast_db, clock, tmp_path):
    await seed(fast_db, clock)
    notified = []
    writer = DurableWriter(fast_db, Journal(tmp_path / "j" / "facts.journal"), clock, on_report=notified.append)
    with write_locked(fast_db.engine.url.database):
        assert await writer.report(A, report(Event.ANSWERED, clock)) is None, "journaled"
        await writer.audit(actor="watchdog", action="gate.closed", subject="dialing-gate", reason="x")
    # the lock is gone, but BOUND must not overtake the ANSWERED still in the journal
    assert await writer.report(A, report(Event.BOUND, clock, recording_name=A)) is None
    clock.advance(30)
    assert await writer.report(A, report(Event.HUNG_UP, clock, answered=True, hangup_cause=16)) is None
    assert writer.ended_pending(A) and writer.backlog()[0] == 4
    assert (await attempt(fast_db)).state == "originated", "nothing stored yet"
    journal = tmp_path / "j" / "facts.journal"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert stat.S_IMODE(journal.parent.stat().st_mode) & 0o007 == 0, "no other user may enter"

    assert await writer.replay() == 0
    stored = await attempt(fast_db)
    assert (stored.state, stored.outcome, stored.recording_name) == ("ended", "answered", A)
    assert stored.ended_at - stored.answered_at == timedelta(seconds=30)
    async with fast_db.session() as s:
        gate = [e for e in await repo.audit_events(s) if e.action == "gate.closed"]
        assert (await s.get(IngestJob, A)).state == "due"
    assert len(gate) == 1 and gate[0].event_id and gate[0].detail == {"reason": "x"}
    assert [r.report.event for r in notified] == [Event.ANSWERED, Event.BOUND, Event.HUNG_UP]
    assert notified[-1].ingest_due
    assert not journal.exists() and writer.backlog() == (0, 0.0, 0.0) and not writer.ended_pending(A)
    assert await writer.report(A, report(Event.HUNG_UP, clock, hangup_cause=16)) is not None, "direct again"


async def test_a_restart_replays_the_journal_exactly_once(fast_db, clock, tmp_path):
    """Crash after the commit but before the journal was rewritten: the next start replays the
    same records; the journal_applied marks make the second replay a no-op."""
    await seed(fast_db, clock)
    path = tmp_path / "facts.journal"
    writer = DurableWriter(fast_db, Journal(path), clock)
    with write_locked(fast_db.engine.url.database):
        await writer.report(A, report(Event.ANSWERED, clock))
        await writer.audit(actor="agi", action="recording.not_growing", subject=A)
    records = Journal(path).records()
    for record in records:  # applied, then "killed" before Journal.remove
        await writer._apply_record(record)
    restarted = DurableWriter(fast_db, Journal(path), clock)
    assert await restarted.replay() == 0
    async with fast_db.session() as s:
        assert [e.action for e in await repo.audit_events(s)].count("recording.not_growing") == 1
        refused = [e for e in await repo.audit_events(s) if e.action == "attempt.report_refused"]
    assert refused == [], "the answer was not applied a second time (it would be refused as backwards)"
    assert (await attempt(fast_db)).state == "answered"


async def test_a_record_cut_short_by_a_crash_is_skipped(fast_db, clock, tmp_path):
    await seed(fast_db, clock)
    path = tmp_path / "facts.journal"
    writer = DurableWriter(fast_db, Journal(path), clock)
    with write_locked(fast_db.engine.url.database):
        await writer.report(A, report(Event.ANSWERED, clock))
    with path.open("ab") as handle:
        handle.write(b'{"id":"torn","kind":"audit","act')  # the writer died mid-line: never acknowledged
    assert await DurableWriter(fast_db, Journal(path), clock).replay() == 0
    assert (await attempt(fast_db)).state == "answered"


async def test_replay_waits_while_the_database_stays_locked(fast_db, clock, tmp_path):
    await seed(fast_db, clock)
    writer = DurableWriter(fast_db, Journal(tmp_path / "facts.journal"), clock)
    with write_locked(fast_db.engine.url.database):
        await writer.report(A, report(Event.ANSWERED, clock))
        assert await writer.replay() == 1, "still locked: kept"
    assert await writer.replay() == 0


async def test_a_report_that_cannot_be_applied_keeps_its_attempts_order(fast_db, clock, tmp_path):
    """A record whose application fails for another reason (a bug) stays in the journal, and the
    later records of the same attempt wait behind it; other attempts go on."""
    await seed(fast_db, clock)
    path = tmp_path / "facts.journal"
    writer = DurableWriter(fast_db, Journal(path), clock)
    with write_locked(fast_db.engine.url.database):
        await writer.report(A, report(Event.ANSWERED, clock))
        await writer.report(A, report(Event.BOUND, clock, recording_name=A))
        await writer.audit(actor="x", action="other.attempt", subject="b" * 32)
    records = Journal(path).records()
    records[0]["report"]["event"] = "no-such-event"  # damage the first record
    path.write_text("".join(__import__("json").dumps(r) + "\n" for r in records))
    assert await writer.replay() == 2
    assert (await attempt(fast_db)).state == "originated"
    async with fast_db.session() as s:
        assert [e.action for e in await repo.audit_events(s)] == ["other.attempt"]


async def test_the_backlog_tells_a_busy_database_from_a_stuck_one(fast_db, clock, tmp_path):
    """How long the database has taken no fact (the third figure) is what the watchdog calls
    stuck; the oldest waiting fact's age alone is not: a busy database takes others meanwhile."""
    import asyncio

    writer = DurableWriter(fast_db, Journal(tmp_path / "facts.journal"), clock)
    with write_locked(tmp_path / "d.db"):
        await writer.audit(actor="t", action="first")  # journaled
        await asyncio.sleep(0.3)
        waiting, oldest, stalled = writer.backlog()
        assert waiting == 1 and stalled >= 0.3 and abs(stalled - oldest) < 0.01, "nothing written since"
    await writer.audit(actor="t", action="second")  # the database takes this one directly
    waiting, oldest, stalled = writer.backlog()
    assert waiting == 1 and oldest >= 0.3 and stalled < 0.1, "busy, not stuck: it took a fact just now"
    assert await writer.replay() == 0 and writer.backlog() == (0, 0.0, 0.0)
