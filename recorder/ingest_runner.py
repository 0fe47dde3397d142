"""The ingest runner: every due recording is archived exactly once, whatever fails in between.

The work is in the database (`ingest_jobs`, storage/ingest_jobs.py): a job is created when
the recording starts and becomes due when its call is over (the attempt's reports do
both). The runner takes due jobs whose next try has come, archives each with
`recorder.ingest.ingest_attempt` (the Recording row, its ledger entry and the job's
`archived` mark commit together; the spool files go only after that commit) and, on any
failure, keeps the error on the job and tries again after a backoff (2 s doubling to
5 min) - across restarts, since the job is in the database. It never gives up: a job due
for longer than the watchdog's reconcile time is a critical incident until it is
archived or a person resolves it (`dunline recordings resolve`, with who and why, a ledger
entry).

`poke()` wakes it at once (a call ended); otherwise it looks again when the next try is
due, and at least every `idle_poll_s`. Up to `workers` recordings are archived at a time,
never the same attempt twice at once; their signal checks run in `analyse` (the service
gives its `AnalysisPool`: other processes, recorder/ingest_pool.py), everything else here.

`backlog()` tells the watchdog how much waits and whether it moves (how long since a
recording was last archived, and the recent rate): a busy backlog holds new dials back, a
stuck one closes the gate (recorder/watchdog/checks.py, `ingest_backlog`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from recorder.archive import ArchiveStore
from recorder.ingest import Analyser, IngestError, IngestSettings, ingest_attempt
from recorder.ingest_pool import analyse_in_thread
from recorder.ledger_store import Ledger
from recorder.watchdog.checks import IngestBacklog
from storage import ingest_jobs
from storage.attempt_reports import FactWriter
from storage.clock import Clock
from storage.db import Database
from storage.durable import UNAVAILABLE
from storage.ingest_jobs import backoff

log = logging.getLogger("dunline.ingest")

RATE_SAMPLES = 32  # the archive rate is taken over the last this many recordings...
RATE_WINDOW_S = 30.0  # ...archived within this long


class IngestRunner:
    def __init__(self, db: Database, archive: ArchiveStore, settings: IngestSettings, clock: Clock,
                 ledger: Ledger, writer: FactWriter, *, workers: int = 2, idle_poll_s: float = 5.0,
                 on_failure: Callable[[str, str], None] = lambda attempt_id, error: None,
                 analyse: Analyser = analyse_in_thread) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.db, self.archive, self.settings, self.clock = db, archive, settings, clock
        self.ledger, self.writer = ledger, writer
        self.workers, self.idle_poll_s = workers, idle_poll_s
        self.on_failure = on_failure
        self.analyse = analyse
        self._wake = asyncio.Event()
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        self._due: dict[str, float] = {}  # attempt id -> since when it waits (monotonic), as last seen
        self._untried: set[str] = set()  # due and never tried yet
        # archived (True) or failed (False) while the due jobs were being read: the read is stale for them
        self._finished_during_read: dict[str, bool] = {}
        self._held_back: dict[str, datetime] = {}  # backoff kept in memory when the database failed too
        self._busy_since: float | None = None  # when the backlog was last found not empty (monotonic)
        self._archived_at: deque[float] = deque(maxlen=RATE_SAMPLES)  # when recordings were archived
        self.archived = 0
        self.failures = 0

    def poke(self) -> None:
        """Look for due work now (a call with a recording is over)."""
        self._wake.set()

    def backlog(self) -> IngestBacklog:
        """Recordings waiting for ingest (due or in flight), the age of the oldest, how long
        since one was archived (or since the backlog was last empty) and the recent rate."""
        now = time.monotonic()
        waiting = {**self._due, **{a: self._due.get(a, now) for a in self._in_flight}}
        recent = [t for t in self._archived_at if now - t <= RATE_WINDOW_S]
        rate = len(recent) / max(now - recent[0], 1e-3) if len(recent) >= 2 else 0.0
        if not waiting:
            return IngestBacklog(rate_per_s=rate)
        progress = max(self._busy_since or now, self._archived_at[-1] if self._archived_at else now - 1e9)
        return IngestBacklog(len(waiting), now - min(waiting.values()), now - progress, rate)

    def _note_backlog(self) -> None:
        if self._due or self._in_flight:
            if self._busy_since is None:
                self._busy_since = time.monotonic()
        else:
            self._busy_since = None

    @property
    def busy(self) -> bool:
        """Work in flight, or due work not yet tried (a shutdown waits for it)."""
        return bool(self._in_flight) or bool(self._untried)

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                wait_s = await self._start_due_work()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
                # arrives as the event is set, and the runner would never stop
                try:
                    async with asyncio.timeout(wait_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            for task in self._in_flight.values():
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)

    async def _start_due_work(self) -> float:
        """Start archiving what is due; return how long to sleep before looking again."""
        now = self.clock()
        self._finished_during_read.clear()
        try:
            async with self.db.session() as session:
                due = await ingest_jobs.due_jobs(session, now, limit=200)
                next_at = await ingest_jobs.next_due_at(session)
                waiting = await ingest_jobs.all_due(session)
        except UNAVAILABLE as exc:
            log.warning("ingest: cannot read the due jobs (%s); trying again", exc)
            return 1.0
        # a job that ended while we read is not due again (archived) or not yet (its backoff)
        stale = self._finished_during_read
        due = [job for job in due if job.attempt_id not in stale]
        waiting = {a: tries for a, tries in waiting.items() if not stale.get(a, False)}
        mono = time.monotonic()
        self._due = {a: self._due.get(a, mono) for a in waiting}
        self._untried = {a for a, tries in waiting.items() if tries == 0 and a not in self._held_back}
        self._note_backlog()
        for job in due:
            if len(self._in_flight) >= self.workers:
                break
            if job.attempt_id in self._in_flight:
                continue
            held = self._held_back.get(job.attempt_id)
            if held is not None and held > now:
                continue
            self._in_flight[job.attempt_id] = asyncio.create_task(self._archive(job.attempt_id),
                                                                   name=f"ingest-{job.attempt_id}")
        self._note_backlog()
        wait_s = self.idle_poll_s
        if next_at is not None:
            wait_s = min(wait_s, max(0.05, (next_at - now).total_seconds()))
        if len(self._in_flight) >= self.workers or self._in_flight:
            wait_s = min(wait_s, 0.5)
        return wait_s

    async def _archive(self, attempt_id: str) -> None:
        archived = False
        try:
            recording = await ingest_attempt(self.db, self.archive, self.settings, attempt_id, self.clock,
                                             self.ledger, analyse=self.analyse)
            if recording is None:
                raise RuntimeError(f"attempt {attempt_id} has no recording to archive")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure is kept on the job and tried again later
            await self._failed(attempt_id, exc)
        else:
            archived = True
            self.archived += 1
            self._archived_at.append(time.monotonic())
            self._held_back.pop(attempt_id, None)
            self._due.pop(attempt_id, None)
            self._untried.discard(attempt_id)
        finally:
            # with leaving _in_flight: a read of the due jobs under way now is stale for this one
            self._finished_during_read[attempt_id] = archived
            self._in_flight.pop(attempt_id, None)
            self._note_backlog()
            self._wake.set()

    async def _failed(self, attempt_id: str, exc: Exception) -> None:
        self.failures += 1
        error = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("attempt ") else str(exc)
        if isinstance(exc, (IngestError, ValueError, *UNAVAILABLE)):
            log.error("ingest of %s failed: %s", attempt_id, exc)
        else:
            log.exception("ingest of %s failed unexpectedly", attempt_id)
        now = self.clock()
        try:
            async with self.db.session() as session:
                job = await ingest_jobs.mark_failed(session, attempt_id, now, error)
            tries = job.tries if job is not None else 1
            self._held_back.pop(attempt_id, None)
        except UNAVAILABLE:
            tries = 1
            self._held_back[attempt_id] = now + backoff(tries)  # the database is down too: remember here
        self._untried.discard(attempt_id)
        self.on_failure(attempt_id, f"recording not archived: {exc}")
        await self.writer.audit(actor="recorder", action="ingest.failed", subject=attempt_id, error=str(exc),
                                tries=tries)

    async def wait_idle(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.busy and loop.time() < deadline:
            self.poke()
            await asyncio.sleep(0.1)
        return not self.busy
