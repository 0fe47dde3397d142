"""Faults on the real sandbox: every answered call ends archived, with the right outcome and
its full length, and nothing the service learnt is lost.

(a) another process holds a write lock on the database for 30 s while a call ends: both
    end reports and the gate's audit event wait in the journal; the gate closes
    (`database_writes`) and re-opens through a canary; the call ends `answered` and is
    archived once the lock goes.
(b) the lock is taken the moment the call has ended, so it is held during the ingest
    commit: ingest fails (audited), the watchdog shows the call critical until its
    recording is archived, ingest retries and archives it exactly once after the lock.
(c) the service is killed (SIGKILL) mid-call, one call ends while it is down and the other
    after its restart: both end `answered`, their recordings archived at full length (the
    first through the PBX's hang-up record in the spool).
(d) a hostile local FastAGI client: forged `ended` and `bind` (no token, another's token)
    are refused and audited while the real call is recorded in full; during a flood of 500
    connections a real call is still bound and recorded.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from recorder import ledger_store
from storage import repositories as repo
from storage.db import Database
from storage.models import Attempt, Case, IngestJob, Recording
from tests.e2e.conftest import E2E_CALLER_ID, free_port, start_harness
from tests.e2e.test_watchdog_faults import harness_open, until
from tests.integration.test_fastagi_server import env_block

pytestmark = pytest.mark.e2e
LOCK_S = 30.0
TOLERANCE_S = 1.6  # MixMonitor's 32 KB steps and the carrier's timing


class WriteLock:
    """Another process's write transaction on the database file, held in its own thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        con = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
        try:
            con.execute("BEGIN IMMEDIATE")
            self.taken.set()
            self.release.wait(LOCK_S + 10)
            con.execute("ROLLBACK")
        finally:
            con.close()

    async def hold_for(self, seconds: float) -> None:
        self.thread.start()
        await asyncio.to_thread(self.taken.wait, 10)
        assert self.taken.is_set(), "could not take the write lock"
        await asyncio.sleep(seconds)
        self.release.set()
        await asyncio.to_thread(self.thread.join, 10)


async def stored(h, attempt_id: str):
    async with h.service.db.session() as s:
        attempt = await repo.get_attempt(s, attempt_id)
        recordings = (await s.scalars(select(Recording).where(Recording.attempt_id == attempt_id))).all()
        ingests = [e for e in await ledger_store.entries(s, subject=f"recording:{attempt_id}") if e.action == "ingest"]
        actions = [e.action for e in await repo.audit_events(s, subject=attempt_id)]
    return attempt, recordings, ingests, actions


def assert_full_length(attempt, recording, talk_s: float) -> None:
    assert (attempt.state, attempt.outcome, attempt.hangup_cause) == ("ended", "answered", 16), attempt.__dict__
    assert abs(recording.duration_s - talk_s) <= TOLERANCE_S + 1.0, (recording.duration_s, talk_s)
    assert "duration_mismatch" not in recording.flags and "short" not in recording.flags, recording.flags


async def test_a_write_lock_while_a_call_ends_loses_nothing(sandbox_info, tmp_path):
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        w = h.service.watchdog
        await h.add_case("FE-A", "15555400101")  # answer after 1 s, talk 8 s
        attempt = await h.service.dial("FE-A")
        await h.wait_attempt(attempt.id, state="bound", timeout=20, poll=0.05)
        t0 = time.monotonic()
        lock = asyncio.create_task(WriteLock(tmp_path / "dunline.db").hold_for(LOCK_S))
        await until(lambda: h.service.writer.backlog()[0] > 0, 30, "the end reports waiting in the journal")
        assert h.service.writer.ended_pending(attempt.id), "the end is known, waiting to be stored"
        await until(lambda: not w.gate.is_open, 10, "gate closing while the database takes no writes")
        assert "database_writes" in trace.critical_checks(t0)
        async with h.service.db.session() as s:  # reads go on under the lock (WAL)
            assert (await repo.get_attempt(s, attempt.id)).state == "bound"
        await lock
        ended = await h.wait_attempt(attempt.id, timeout=30)
        rec = await h.wait_recording(attempt.id, timeout=60)
        assert_full_length(ended, rec, 8.0)
        assert ended.answered_seconds is not None and abs(ended.answered_seconds - 8.0) <= TOLERANCE_S
        _, recordings, ingests, actions = await stored(h, attempt.id)
        assert len(recordings) == 1 and len(ingests) == 1
        assert "recording.not_growing" not in actions, "the growth watch knew the call had ended"
        assert {"call.bound", "recording.ingested"} <= set(actions)
        await until(lambda: h.service.writer.backlog()[0] == 0, 10, "the journal replayed")
        async with h.service.db.session() as s:
            gate = [e for e in await repo.audit_events(s, subject="dialing-gate")]
        assert any(e.action == "gate.closed" and "database_writes" in e.detail["reason"] for e in gate), \
            "the gate's audit event written during the lock was kept, not dropped"
        await until(lambda: w.gate.is_open, 60, "gate re-opened by a canary after the lock")
    finally:
        await h.service.stop(drain_timeout=30)
    assert not Path(h.service.settings.database.journal_path()).exists(), "nothing left in the journal"


async def test_a_write_lock_during_the_ingest_commit_is_retried_until_archived(sandbox_info, tmp_path):
    h, trace = await harness_open(sandbox_info, tmp_path)
    try:
        w = h.service.watchdog
        await h.add_case("FE-B", "15555400102")
        attempt = await h.service.dial("FE-B")
        await h.wait_attempt(attempt.id, state="ended", timeout=40, poll=0.01)
        t0 = time.monotonic()
        lock = asyncio.create_task(WriteLock(tmp_path / "dunline.db").hold_for(LOCK_S))
        await until(lambda: trace.incident(attempt.id), 30, "ingest failing under the lock")
        assert "recording not archived" in trace.incident(attempt.id)[1]
        await until(lambda: "reconciliation" in {n for n in trace.critical_checks(t0)}, 30,
                    "the unarchived call critical (reconciliation)")
        async with h.service.db.session() as s:
            assert await repo.recording_for_attempt(s, attempt.id) is None
            assert (await s.get(IngestJob, attempt.id)).state == "due"
        await lock
        rec = await h.wait_recording(attempt.id, timeout=90)
        ended, recordings, ingests, actions = await stored(h, attempt.id)
        assert_full_length(ended, rec, 8.0)
        assert len(recordings) == 1 and len(ingests) == 1, "archived exactly once"
        assert "ingest.failed" in actions and "recording.ingested" in actions
        await until(lambda: w.results["reconciliation"].state.name == "OK", 30, "the critical clears once archived")
        assert not list(h.info.recording_dir_host.glob(f"{attempt.id}*")), "spool files gone after the commit"
    finally:
        await h.service.stop(drain_timeout=30)


# -- (c) SIGKILL mid-call ----------------------------------------------------------------------

def _noon_zone() -> str:
    """A fixed-offset zone where it is about noon now: the service runs on the real clock."""
    offset = datetime.now(timezone.utc).hour - 12
    return f"Etc/GMT+{offset}" if offset >= 0 else f"Etc/GMT-{-offset}"


class ServeProcess:
    """`dunline serve` as its own process, against the session's sandbox."""

    def __init__(self, info, tmp_path: Path) -> None:
        self.port = free_port()
        self.db_path = tmp_path / "dunline.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DUNLINE_")}
        self.env.update(PYTHONPATH=str(Path(__file__).resolve().parents[2]),
                        DUNLINE_DATABASE_URL=f"sqlite+aiosqlite:///{self.db_path}",
                        DUNLINE_RECORDING_ARCHIVE_DIR=str(tmp_path / "archive"),
                        DUNLINE_CONSOLE_PORT=str(self.port), DUNLINE_WATCHDOG_ENABLED="false",
                        DUNLINE_PBX_RING_TIMEOUT_S="8")
        self.state_dir = str(info.state_dir)
        self.log = tmp_path / "serve.log"
        self.proc: subprocess.Popen | None = None

    def make_api_token(self) -> None:
        """A supervisor made with `dunline user add` and an API token from `dunline user token`:
        what a script that dials uses."""
        cli = [sys.executable, "-m", "dunline.cli", "user"]
        subprocess.run([*cli, "add", "e2e.supervisor", "--role", "supervisor", "--password-stdin"], env=self.env,
                       input="a long e2e password", text=True, check=True, capture_output=True, timeout=60)
        made = subprocess.run([*cli, "token", "e2e.supervisor", "--label", "fault e2e"], env=self.env,
                              text=True, check=True, capture_output=True, timeout=60)
        self.token = made.stdout.strip()

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "dunline.cli", "serve", "--state-dir", self.state_dir],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError("dunline serve not ready: " + self.log.read_text()[-3000:])

    def dial(self, case_id: str) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/cases/{case_id}/dial", method="POST",
                                         headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.load(resp)["id"]

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


async def _seed(db_path: Path, cases: dict[str, str]) -> None:
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    await db.migrate()
    try:
        async with db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            for case_id, number in cases.items():
                await repo.add_case(s, Case(id=case_id, client="e2e", debtor_name="Debtor " + case_id,
                                            timezone=_noon_zone(), created_at=datetime.now(timezone.utc)),
                                    [repo.NewPhone(number)])
    finally:
        await db.close()


async def _read(db_path: Path, attempt_id: str):
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    try:
        async with db.session() as s:
            attempt = await s.get(Attempt, attempt_id)
            recording = await repo.recording_for_attempt(s, attempt_id)
            count = await s.scalar(select(func.count()).select_from(Recording).where(Recording.attempt_id == attempt_id))
        return attempt, recording, count
    finally:
        await db.close()


async def _wait_read(db_path: Path, attempt_id: str, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        found = await _read(db_path, attempt_id)
        if predicate(*found):
            return found
        assert time.monotonic() < deadline, f"{what}: {found[0] and found[0].__dict__}"
        await asyncio.sleep(0.25)


async def test_the_service_killed_mid_call_and_restarted_archives_both_calls_answered(sandbox_info, tmp_path):
    serve = ServeProcess(sandbox_info, tmp_path)
    await _seed(serve.db_path, {"KILL-LONG": "15555900201", "KILL-SHORT": "15555300202"})  # talk 18 s / 6 s
    try:
        await asyncio.to_thread(serve.make_api_token)
        await asyncio.to_thread(serve.start)
        long_call = await asyncio.to_thread(serve.dial, "KILL-LONG")
        short_call = await asyncio.to_thread(serve.dial, "KILL-SHORT")
        for attempt_id in (long_call, short_call):
            await _wait_read(serve.db_path, attempt_id, lambda a, r, n: a.state == "bound", 20, "bound")
        await asyncio.sleep(1.0)
        await asyncio.to_thread(serve.kill)  # mid-call: no shutdown, no last report
        spool = sandbox_info.recording_dir_host
        await until(lambda: (spool / f"{short_call}.end").exists(), 20, "the short call ending while the service is down")
        await asyncio.to_thread(serve.start)  # the long call is still talking
        short, short_rec, short_count = await _wait_read(
            serve.db_path, short_call, lambda a, r, n: r is not None, 60, "the short call archived after the restart")
        long_, long_rec, long_count = await _wait_read(
            serve.db_path, long_call, lambda a, r, n: r is not None, 60, "the long call archived")
    finally:
        await asyncio.to_thread(serve.stop)
    assert_full_length(short, short_rec, 6.0)
    assert short.note and "hang-up record" in short.note, "its end came from the PBX's own record"
    assert_full_length(long_, long_rec, 18.0)
    assert (short_count, long_count) == (1, 1)
    assert not list(spool.glob(f"{short_call}*")) and not list(spool.glob(f"{long_call}*"))


# -- (d) a hostile local FastAGI client -------------------------------------------------------

async def _forge(port: int, script: str, uniqueid: str, channel: str = "PJSIP/carrier-00000001") -> bytes:
    """A forged request; what the server answered (b"RESET": closed on it unread, in a flood)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(env_block(script, uniqueid=uniqueid).replace(b"PJSIP/carrier-00000001", channel.encode()))
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    except ConnectionResetError:
        return b"RESET"
    finally:
        writer.close()


async def test_forged_fastagi_requests_are_refused_and_the_real_call_is_recorded_in_full(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path)
    try:
        port = h.service.agi.port
        tokens = h.service.tokens
        await h.add_case("HX-TALK", "15555600301")  # talk 12 s
        await h.add_case("HX-RING", "15553000302")  # rings until the ring timeout: never answered
        talk = await h.service.dial("HX-TALK")
        ring = await h.service.dial("HX-RING")
        await h.wait_attempt(talk.id, state="bound", timeout=20, poll=0.05)
        channel = h.service.monitor.tracker.get(talk.id).channel
        forged = [
            await _forge(port, f"ended?attempt={talk.id}", talk.id, channel),  # the id is listed by the console
            await _forge(port, f"ended?attempt={talk.id}&token={tokens.token_for(ring.id)}", talk.id, channel),
            await _forge(port, f"bind?attempt={ring.id}", ring.id),  # "answer" a call that only rings
        ]
        assert forged == [b"FAILURE\n"] * 3
        async with h.service.db.session() as s:
            assert (await repo.get_attempt(s, talk.id)).state == "bound", "a forged end changes nothing"
            assert (await repo.get_attempt(s, ring.id)).answered_at is None
        ended = await h.wait_attempt(talk.id, timeout=40)
        rec = await h.wait_recording(talk.id, timeout=40)
        assert_full_length(ended, rec, 12.0)
        assert (await h.wait_attempt(ring.id, timeout=40)).outcome == "no_answer"
        await h.service.routes.close()  # let the bounded refusal audits land
        async with h.service.db.session() as s:
            refusals = [e for e in await repo.audit_events(s) if e.action == "agi.refused"]
        assert {e.subject for e in refusals} == {talk.id, ring.id} and len(refusals) == 3
    finally:
        await h.service.stop(drain_timeout=30)


async def _keep_flooding(port: int, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """Hold 500 idle connections open the whole time (re-opening those the server closes) and
    send forged requests alongside, until told to stop."""
    idle: list[asyncio.StreamWriter] = []
    n = 0
    try:
        while not stop.is_set():
            idle = [w for w in idle if not w.is_closing() and not w.transport.is_closing()]
            while len(idle) < 500:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    break
                idle.append(writer)
                counts["opened"] += 1
            forged = await asyncio.gather(*(_forge(port, f"bind?attempt={n + k:032x}&token={n + k:064x}",
                                                   f"{n + k:032x}") for k in range(50)))
            n += 50
            counts["forged"] += len(forged)
            counts["served"] += sum(1 for f in forged if f not in (b"FAILURE\n", b"RESET"))
            await asyncio.sleep(0.05)
    finally:
        for writer in idle:
            writer.close()


async def test_a_flood_of_500_connections_cannot_cost_a_real_call(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path)
    stop = asyncio.Event()
    counts = {"opened": 0, "forged": 0, "served": 0}
    flood = asyncio.create_task(_keep_flooding(h.service.agi.port, stop, counts))
    try:
        await until(lambda: counts["opened"] >= 500, 30, "the flood holding 500 connections")
        await h.add_case("FLOOD", "15555200401")  # talk 4 s
        attempt = await h.service.dial("FLOOD")
        ended = await h.wait_attempt(attempt.id, timeout=40)
        rec = await h.wait_recording(attempt.id, timeout=40)
        stop.set()
        await flood
        assert_full_length(ended, rec, 4.0)
        assert counts["served"] == 0 and counts["forged"] >= 500, counts
        stats = h.service.agi.stats
        assert stats.refused + stats.rejected >= 500 and stats.evicted + stats.rejected > 0, stats
        print(f"flood: {counts}; server {stats}")
    finally:
        stop.set()
        await asyncio.gather(flood, return_exceptions=True)
        await h.service.stop(drain_timeout=30)
