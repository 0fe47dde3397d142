"""Facts that must never be dropped: attempt reports and audit events, written durably.

`DurableWriter.report` and `.audit` write to the database at once. When it cannot take the
write (locked for longer than its busy timeout, read-only, disk error, gone), the fact goes
to the local journal (storage/journal.py, fsynced) instead and the call returns; `run`
replays the journal into the database with backoff until it is empty, and `replay` does
it once at start-up, before the service takes calls. So a write lock held for 30 s while a
call ends loses nothing: the end report, the gate's audit event, the recording incident
wait in the journal and land when the lock is released.

Exactly once: a replayed record is applied in the same transaction as a `journal_applied`
row with its id (a crash between the commit and the journal's rewrite cannot apply it
twice); an audit event carries its id as `event_id`. Order per attempt is kept: while an
attempt has reports waiting in the journal, its new reports join them there.

`pending_reports(attempt)` lets the live service see what it learnt but could not store
yet (the growth watch must not call a recording "not growing" after its call ended just
because the end report is still in the journal).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from storage.attempt_reports import ReportResult, apply_report
from storage.clock import Clock
from storage.db import Database
from storage.journal import Journal
from storage.lifecycle import Event, Report
from storage.models import AuditEvent, JournalApplied

log = logging.getLogger("dunline.durable")

# the database is unavailable for writes (locked past the busy timeout, read-only, I/O error,
# connection lost): keep the fact in the journal and try again later
UNAVAILABLE: tuple[type[BaseException], ...] = (sa_exc.OperationalError, sa_exc.InterfaceError, OSError)

OnReport = Callable[[ReportResult], Awaitable[None] | None]
END_EVENTS = frozenset({Event.HUNG_UP, Event.VANISHED, Event.ORIGINATE_FAILED})


class DurableWriter:
    def __init__(self, db: Database, journal: Journal, clock: Clock, *, on_report: OnReport | None = None,
                 retry_s: float = 0.5, max_retry_s: float = 5.0) -> None:
        self.db, self.journal, self.clock = db, journal, clock
        self.on_report = on_report
        self.retry_s, self.max_retry_s = retry_s, max_retry_s
        self._pending: dict[str, list[Report]] = {}  # attempt id -> reports waiting in the journal
        self._ending: dict[str, int] = {}  # attempt id -> end reports being written right now
        self._waiting: dict[str, float] = {}  # record id -> when journaled (monotonic)
        self._wake = asyncio.Event()
        self._replay_lock = asyncio.Lock()
        self.journaled = 0  # records that went to the journal (counter, for /metrics)
        self._last_written: float | None = None  # when the database last took a fact (monotonic)

    # -- writing ---------------------------------------------------------------------
    async def report(self, attempt_id: str, report: Report) -> ReportResult | None:
        """Apply a report now; None if it was journaled (applied later, in order)."""
        record = {"id": str(uuid.uuid4()), "kind": "report", "attempt_id": attempt_id,
                  "report": report.to_json()}
        ending = report.event in END_EVENTS
        if ending:  # known from now on, even while the database makes the write wait
            self._ending[attempt_id] = self._ending.get(attempt_id, 0) + 1
        try:
            if attempt_id not in self._pending:
                try:
                    async with self.db.session() as session:
                        result = await apply_report(session, attempt_id, report)
                except UNAVAILABLE as exc:
                    log.error("database unavailable for the %s report of %s (%s): journaled",
                              report.event.value, attempt_id, _short(exc))
                else:
                    self._last_written = time.monotonic()
                    await self._notify(result)
                    return result
            await self._keep(record)
            self._pending.setdefault(attempt_id, []).append(report)
            return None
        finally:
            if ending:
                self._ending[attempt_id] -= 1
                if not self._ending[attempt_id]:
                    del self._ending[attempt_id]

    async def audit(self, *, actor: str, action: str, subject: str | None = None, at: datetime | None = None,
                    **detail: Any) -> None:
        """Append one audit event; journaled if the database cannot take it now."""
        event_id = str(uuid.uuid4())
        when = at or self.clock()
        try:
            async with self.db.session() as session:
                session.add(AuditEvent(event_id=event_id, at=when, actor=actor, action=action,
                                       subject=subject, detail=detail))
            self._last_written = time.monotonic()
        except UNAVAILABLE as exc:
            log.error("database unavailable for audit event %s (%s): journaled", action, _short(exc))
            await self._keep({"id": event_id, "kind": "audit", "at": when.isoformat(), "actor": actor,
                              "action": action, "subject": subject, "detail": detail})

    async def _keep(self, record: dict[str, Any]) -> None:
        await asyncio.to_thread(self.journal.append, record)
        self._waiting[record["id"]] = time.monotonic()
        self.journaled += 1
        self._wake.set()

    async def _notify(self, result: ReportResult) -> None:
        if self.on_report is None:
            return
        try:
            outcome = self.on_report(result)
            if outcome is not None:
                await outcome
        except Exception:  # a listener's bug must not undo or repeat a stored fact
            log.exception("on_report failed for %s", result.attempt_id)

    # -- what waits ----------------------------------------------------------------------
    def pending_reports(self, attempt_id: str) -> tuple[Report, ...]:
        return tuple(self._pending.get(attempt_id, ()))

    def ended_pending(self, attempt_id: str) -> bool:
        """An end of this attempt is known but not stored yet: being written (the database
        may keep it waiting for its busy timeout) or waiting in the journal."""
        return attempt_id in self._ending or any(r.event in END_EVENTS for r in self._pending.get(attempt_id, ()))

    def backlog(self) -> tuple[int, float, float]:
        """Records waiting in the journal, the age of the oldest, and for how long the database
        has taken no fact at all since the oldest was journaled (seconds): a busy database
        takes some while others wait; a stuck one takes none."""
        if not self._waiting:
            return 0, 0.0, 0.0
        now, oldest = time.monotonic(), min(self._waiting.values())
        since = oldest if self._last_written is None else max(oldest, self._last_written)
        return len(self._waiting), now - oldest, now - since

    # -- replay ----------------------------------------------------------------------------
    async def replay(self) -> int:
        """Apply what the journal holds, in order; returns how many records remain."""
        async with self._replay_lock:
            records = await asyncio.to_thread(self.journal.records)
            if not records:
                self._pending.clear()
                self._waiting.clear()
                return 0
            now_mono = time.monotonic()
            for record in records:  # after a restart: every record is waiting since now
                self._waiting.setdefault(record["id"], now_mono)
            done: list[str] = []
            blocked: set[str] = set()  # attempts whose earlier record could not be applied
            applied: list[ReportResult] = []
            for record in records:
                attempt_id = record.get("attempt_id")
                if attempt_id in blocked:
                    continue
                try:
                    result = await self._apply_record(record)
                except UNAVAILABLE as exc:
                    log.warning("journal replay: database still unavailable (%s)", _short(exc))
                    break
                except Exception:  # a record that cannot be applied: keep it, keep its attempt's order
                    log.exception("journal replay: record %s could not be applied; kept", record["id"])
                    if attempt_id:
                        blocked.add(attempt_id)
                    continue
                done.append(record["id"])
                if result is not None:
                    applied.append(result)
            remaining = await asyncio.to_thread(self.journal.remove, done) if done else len(records)
            for record_id in done:
                self._waiting.pop(record_id, None)
            if done:
                self._last_written = time.monotonic()
            self._rebuild_pending(await asyncio.to_thread(self.journal.records))
        for result in applied:
            await self._notify(result)
        if done:
            log.info("journal replay: %d record(s) applied, %d remain", len(done), remaining)
        return remaining

    async def _apply_record(self, record: dict[str, Any]) -> ReportResult | None:
        async with self.db.session() as session:
            if await session.get(JournalApplied, record["id"]) is not None:
                return None  # applied before a crash cut the journal's rewrite
            session.add(JournalApplied(id=record["id"], applied_at=self.clock()))
            if record["kind"] == "audit":
                exists = await session.scalar(select(AuditEvent.id).where(AuditEvent.event_id == record["id"]))
                if exists is None:
                    session.add(AuditEvent(event_id=record["id"], at=datetime.fromisoformat(record["at"]),
                                           actor=record["actor"], action=record["action"],
                                           subject=record.get("subject"), detail=record.get("detail") or {}))
                return None
            if record["kind"] == "report":
                return await apply_report(session, record["attempt_id"], Report.from_json(record["report"]))
            raise ValueError(f"unknown journal record kind {record['kind']!r}")

    def _rebuild_pending(self, records: list[dict[str, Any]]) -> None:
        self._pending = {}
        for record in records:
            if record.get("kind") == "report":
                waiting = self._pending.setdefault(record["attempt_id"], [])  # later ones queue behind it
                try:
                    waiting.append(Report.from_json(record["report"]))
                except (KeyError, TypeError, ValueError):
                    log.error("journal record %s is not a readable report; kept for a person to look at",
                              record["id"])
        ids = {r["id"] for r in records}
        self._waiting = {k: v for k, v in self._waiting.items() if k in ids}

    async def run(self) -> None:
        """Replay whenever something waits, backing off while the database stays unavailable."""
        delay = self.retry_s
        while True:
            if not self._waiting:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(delay)
            try:
                remaining = await self.replay()
            except Exception:
                log.exception("journal replay failed")
                remaining = 1
            delay = self.retry_s if remaining == 0 else min(delay * 2, self.max_retry_s)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
