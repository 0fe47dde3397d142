"""Durable ingest on a real SQLite file and filesystem archive: every due recording is
archived exactly once, whatever fails in between (a write lock held during the commit,
missing files, a restart), and what cannot be archived stays missing until a person
resolves it; the spool tells a restarted service how calls ended while it was down."""
from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.holds import AlreadyDone, MissingWhoWhy, UnknownTarget
from recorder.ingest import IngestSettings, spool_paths
from recorder.ingest_runner import IngestRunner
from recorder.ledger_store import Ledger
from recorder.resolutions import missing_recordings, resolve_missing
from recorder.spool_scan import EndRecordError, parse_end_record, scan_spool
from storage import repositories as repo
from storage.call_tokens import CallTokens
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case, IngestJob, Recording
from tests.integration.test_ingest import write_wav
from tests.tampers import write_locked

A, B = "a" * 32, "b" * 32
TOKENS = CallTokens(b"t" * 32)


@pytest.fixture
def world(fast_db, clock, tmp_path, signer):
    spool = tmp_path / "spool"
    spool.mkdir()
    archive = FilesystemArchive(tmp_path / "archive")
    writer = DurableWriter(fast_db, Journal(tmp_path / "facts.journal"), clock)
    ledger = Ledger(fast_db, signer, clock, checkpoint_every=5)
    settings = IngestSettings(spool_dir=spool, close_timeout_s=0.2)

    class World:
        pass

    w = World()
    w.db, w.spool, w.archive, w.writer, w.ledger, w.settings, w.clock = (fast_db, spool, archive, writer, ledger,
                                                                        settings, clock)
    w.incidents = []
    w.runner = lambda: IngestRunner(fast_db, archive, settings, clock, ledger, writer, workers=2, idle_poll_s=0.05,
                                    on_failure=lambda a, why: w.incidents.append((a, why)))
    return w


async def bound_call(w, attempt_id: str, *, seconds: float = 2.0, files: bool = True) -> None:
    """A call answered and bound, its recording in the spool (MixMonitor's three files)."""
    async with w.db.session() as s:
        if await s.get(Case, "C-I") is None:
            await repo.add_case(s, Case(id="C-I", client="cu", debtor_name="Ma", created_at=w.clock()), [])
        await repo.create_attempt(s, Attempt(id=attempt_id, case_id="C-I", number="1555", state="originated",
                                             created_at=w.clock()))
    await w.writer.report(attempt_id, Report(event=Event.ANSWERED, source=Source.AGI, at=w.clock()))
    await w.writer.report(attempt_id, Report(event=Event.BOUND, source=Source.AGI, at=w.clock(),
                                             recording_name=attempt_id))
    if files:
        for k, path in enumerate(spool_paths(w.spool, attempt_id).values()):
            write_wav(path, seconds, 6000 + k + (100 if attempt_id == B else 0))


async def hang_up(w, attempt_id: str) -> None:
    w.clock.advance(2)
    await w.writer.report(attempt_id, Report(event=Event.HUNG_UP, source=Source.AGI, at=w.clock(), answered=True,
                                             hangup_cause=16))


async def until(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        assert time.monotonic() < deadline, "not reached in time"
        await asyncio.sleep(0.02)
    return value


async def job(w, attempt_id):
    async with w.db.session() as s:
        return await s.get(IngestJob, attempt_id, populate_existing=True)


async def counts(w, attempt_id):
    async with w.db.session() as s:
        rows = await s.scalar(select(func.count()).select_from(Recording).where(Recording.attempt_id == attempt_id))
        entries = [e for e in await ledger_store.entries(s, subject=f"recording:{attempt_id}") if e.action == "ingest"]
    return rows, len(entries)


async def test_a_write_lock_during_the_commit_is_retried_until_archived_once(world):
    w = world
    await bound_call(w, A)
    await hang_up(w, A)
    assert (await job(w, A)).state == "due"
    runner = w.runner()
    task = asyncio.create_task(runner.run())
    try:
        with write_locked(w.db.engine.url.database):
            await until(lambda: _tried(w, A), timeout=10)
            assert spool_paths(w.spool, A)["mixed"].exists(), "the spool file stays until the archive commit"
        assert w.incidents and w.incidents[0][0] == A, "the watchdog heard of the failure at once"
        w.clock.advance(10)  # past the backoff
        runner.poke()
        await until(lambda: _state_is(w, A, "archived"))
        assert await runner.wait_idle(5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await counts(w, A) == (1, 1), "one Recording row, one ingest entry"
    assert not any(p.exists() for p in spool_paths(w.spool, A).values())
    assert await w.writer.replay() == 0, "the failure's audit waited in the journal while the lock was held"
    async with w.db.session() as s:
        failed = [e for e in await repo.audit_events(s, subject=A) if e.action == "ingest.failed"]
    assert failed, "each failed try is audited (journaled while the database was locked)"


async def _tried(w, attempt_id):
    return bool(w.incidents)


async def _state_is(w, attempt_id, state):
    return (await job(w, attempt_id)).state == state


async def test_missing_files_stay_due_with_backoff_until_a_person_resolves(world):
    w = world
    await bound_call(w, A, files=False)  # the files were destroyed before ingest
    await hang_up(w, A)
    runner = w.runner()
    task = asyncio.create_task(runner.run())
    try:
        first = await until(lambda: _failed_once(w, A))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert first.state == "due" and "recording files missing" in first.last_error
    assert first.next_try_at - w.clock() == timedelta(seconds=2), "backoff: 2 s, then doubling"
    [missing] = await missing_recordings(w.db)
    assert (missing.attempt_id, missing.case_id, missing.tries) == (A, "C-I", 1)
    with pytest.raises(MissingWhoWhy):
        await resolve_missing(w.ledger, A, by="qc-li", why=" ")
    with pytest.raises(UnknownTarget):
        await resolve_missing(w.ledger, B, by="qc-li", why="x")
    seq = await resolve_missing(w.ledger, A, by="qc-li", why="spool disk replaced; files lost")
    with pytest.raises(AlreadyDone):
        await resolve_missing(w.ledger, A, by="qc-li", why="again")
    assert await missing_recordings(w.db) == []
    async with w.db.session() as s:
        entry = await ledger_store.get_entry(s, seq)
    assert (entry.action, entry.subject, entry.actor) == ("resolve", f"recording:{A}", "qc-li")
    assert entry.detail_map()["why"] == "spool disk replaced; files lost"
    assert (await job(w, A)).state == "resolved"


async def _failed_once(w, attempt_id):
    stored = await job(w, attempt_id)
    return stored if stored.tries >= 1 else None


async def test_a_restarted_runner_finds_the_due_work(world):
    """The work is in the database: a runner that never heard of the call archives it."""
    w = world
    await bound_call(w, A)
    await bound_call(w, B)
    await hang_up(w, A)
    await hang_up(w, B)
    runner = w.runner()  # a new process: nothing in memory, no poke
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _all_archived(w, (A, B)))
        # the job is marked archived inside ingest's transaction; the spool files go after it
        await runner.wait_idle(5)
        assert not runner.busy
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await counts(w, A) == (1, 1) and await counts(w, B) == (1, 1)


async def _all_archived(w, ids):
    return all([(await job(w, a)).state == "archived" for a in ids])


# -- the spool after a restart -----------------------------------------------------------

def end_record(attempt_id: str, token: str, *, cause=16, answered=61, start=1796286676.3, end=None) -> bytes:
    end = end if end is not None else int(time.time())
    return (f"v=1&attempt={attempt_id}&token={token}&cause={cause}&dialstatus=ANSWER&answered={answered}"
            f"&start={start}&answer={start + 2}&end={end}").encode()


async def test_a_call_that_ended_while_the_service_was_down_ends_answered(world):
    w = world
    await bound_call(w, A)
    (w.spool / f"{A}.end").write_bytes(end_record(A, TOKENS.token_for(A), answered=61))
    result = await scan_spool(w.db, w.spool, w.writer, TOKENS, w.clock)
    assert result.reported == [A]
    async with w.db.session() as s:
        attempt = await repo.get_attempt(s, A)
    assert (attempt.state, attempt.outcome, attempt.hangup_cause, attempt.answered_seconds) == \
        ("ended", "answered", 16, 61.0)
    assert attempt.pbx_started_at.timestamp() == pytest.approx(1796286676.3)
    assert (await job(w, A)).state == "due"
    runner = w.runner()
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _state_is(w, A, "archived"))
        assert await runner.wait_idle(5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert not (w.spool / f"{A}.end").exists(), "the hang-up record goes with the recording, after the commit"


async def test_a_call_the_service_never_bound_is_archived_from_the_pbxs_record(world):
    """The service was killed (kill -9) as the debtor answered: the dialplan recorded the call
    from its answer, no bind ever ran, the hang-up record waits in the spool. The end names
    the recording and the call is archived like any other."""
    w = world
    async with w.db.session() as s:
        await repo.add_case(s, Case(id="C-I", client="cu", debtor_name="Ma", created_at=w.clock()), [])
        await repo.create_attempt(s, Attempt(id=A, case_id="C-I", number="1555", state="originated",
                                             created_at=w.clock()))
    for k, path in enumerate(spool_paths(w.spool, A).values()):
        write_wav(path, 2.0, 6000 + k)
    (w.spool / f"{A}.end").write_bytes(end_record(A, TOKENS.token_for(A), answered=2))
    assert (await scan_spool(w.db, w.spool, w.writer, TOKENS, w.clock)).reported == [A]
    async with w.db.session() as s:
        attempt = await repo.get_attempt(s, A)
    assert (attempt.state, attempt.outcome, attempt.bound_at, attempt.recording_name) == ("ended", "answered", None, A)
    assert (await job(w, A)).state == "due"
    runner = w.runner()
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _state_is(w, A, "archived"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert (await counts(w, A)) == (1, 1), "one recording, one ledger entry"


@pytest.mark.parametrize("content", [
    end_record(A, "0" * 64),  # forged: no token
    end_record(A, TOKENS.token_for(B)),  # another attempt's token
    end_record(B, TOKENS.token_for(B)),  # a record of B in A's file
    b"garbage",
])
async def test_a_forged_hang_up_record_is_refused(world, content):
    w = world
    await bound_call(w, A)
    (w.spool / f"{A}.end").write_bytes(content)
    result = await scan_spool(w.db, w.spool, w.writer, TOKENS, w.clock)
    assert result.refused == [A] and result.reported == []
    async with w.db.session() as s:
        assert (await repo.get_attempt(s, A)).state == "bound"
        [audit] = [e for e in await repo.audit_events(s, subject=A) if e.action == "spool.record_refused"]
    assert (w.spool / f".refused-{A}.end").exists() and not (w.spool / f"{A}.end").exists()
    assert audit.detail["file"] == f"{A}.end"


async def test_spool_leftovers_of_an_archived_recording_are_removed_and_lost_jobs_found(world):
    w = world
    await bound_call(w, A)
    await hang_up(w, A)
    runner = w.runner()
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _state_is(w, A, "archived"))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    for k, path in enumerate(spool_paths(w.spool, A).values()):  # a crash before the unlink
        write_wav(path, 1, 100 + k)
    await bound_call(w, B)
    await hang_up(w, B)
    async with w.db.session() as s:  # a job lost (an old database, a bug): the spool finds it again
        await s.delete(await s.get(IngestJob, B))
    result = await scan_spool(w.db, w.spool, w.writer, TOKENS, w.clock)
    assert result.cleaned == [A] and result.found_again == [B]
    assert not any(p.exists() for p in spool_paths(w.spool, A).values())
    assert (await job(w, B)).state == "due"


@pytest.mark.parametrize("data", [
    b"", b"v=2&attempt=" + A.encode(), b"v=1&attempt=../../x", b"v=1&attempt=" + A.encode() + b"&cause=x",
    b"v=1&attempt=" + A.encode() + b"&start=soon", b"\xff\xfe", b"v=1&" + b"x" * 5000,
])
def test_garbled_hang_up_records_are_errors(data):
    with pytest.raises(EndRecordError):
        parse_end_record(data)



@pytest.mark.parametrize("outcome", ["archived", "failed"])
async def test_a_job_that_ends_while_the_due_jobs_are_read_is_not_started_again(world, monkeypatch, outcome):
    """The runner reads the due jobs while others run; one that ends during that read (its row
    read as still due) must not be started again: archived, it would be ingested twice over;
    failed, it would skip its backoff."""
    from recorder import ingest_runner
    from storage import ingest_jobs

    w = world
    await bound_call(w, A)
    await hang_up(w, A)
    release, started = asyncio.Event(), []
    real_ingest = ingest_runner.ingest_attempt

    async def ingest_attempt(db, archive, settings, attempt_id, *args, **kwargs):
        started.append(attempt_id)
        await release.wait()
        if outcome == "failed":
            raise OSError("archive volume went away")
        return await real_ingest(db, archive, settings, attempt_id, *args, **kwargs)

    monkeypatch.setattr(ingest_runner, "ingest_attempt", ingest_attempt)
    runner = IngestRunner(w.db, w.archive, w.settings, w.clock, w.ledger, w.writer, workers=1, idle_poll_s=0.05)
    real_all_due, reads = ingest_jobs.all_due, []

    async def all_due(session):
        found = await real_all_due(session)
        reads.append(found)
        if len(reads) == 2:  # A is in flight, read as due: let it end now, before this read is used
            release.set()
            await until(lambda: _ended(runner), timeout=10)
        return found

    monkeypatch.setattr(ingest_jobs, "all_due", all_due)
    task = asyncio.create_task(runner.run())
    try:
        await until(lambda: _reads(reads, 4))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert A in reads[1], "the stale read saw A as due"
    assert started == [A], "A was not started again"
    assert (runner.archived, runner.failures) == ((1, 0) if outcome == "archived" else (0, 1))


async def _ended(runner) -> bool:
    return runner.archived + runner.failures > 0 and not runner._in_flight


async def _reads(reads, n) -> bool:
    return len(reads) >= n
