"""The recordings of the last day that carry a flag (`duration_mismatch`), kept up to date
from the recordings archived since the last look: the watchdog asks twice a second, and
the cost of an answer is the number of new recordings, not the size of the archive.

Measured before (issue 11): re-reading every recording of the last 24 h as full rows twice
a second took an idle service from 1.5 % of a core with no recordings to 46 % with 10 000.

How it stays complete:
- The first look reads the flagged rows of the window once (four columns; the table is
  scanned once, as it has no index on `created_at`), then everything after a cursor: the
  highest recording id read. Flags are written with the row and never change.
- Ids are not committed in order on PostgreSQL (a sequence hands out 10 to one transaction
  and 11 to another, which may commit first); on SQLite they are (one writer at a time,
  rowid = the highest + 1). So an id the cursor passed without seeing is a *hole*, asked
  for again on every look until it turns up or `hole_grace_s` passes (a rolled-back
  insert leaves a hole forever). The first look starts the cursor `PRIME_TAIL` ids below
  the newest, so rows still in flight then are holes too.
- The window is judged by `created_at` (the service's clock, like the rows), on every
  look: a flagged recording older than the window is dropped.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Recording

log = logging.getLogger("dunline.watchdog")

PRIME_TAIL = 1000  # ids below the newest re-read by the first look (rows in flight then)
BATCH = 5000  # rows read per query while catching up
MAX_HOLES = 10_000


@dataclass
class Cursor:
    """Which recording ids have been read: all up to `last_id`, except the `holes` (id ->
    monotonic time first skipped). Pure bookkeeping, no I/O."""

    last_id: int = 0
    holes: dict[int, float] = field(default_factory=dict)

    def read(self, ids: Iterable[int], now: float) -> None:
        """`ids`: every id read by one look (those after `last_id` and the holes found)."""
        top = self.last_id
        for i in sorted(ids):
            self.holes.pop(i, None)
            if i > top:
                for missing in range(max(top + 1, i - MAX_HOLES), i):  # a jump of ids: the nearest
                    self.holes[missing] = now
                top = i
        self.last_id = top

    def expire(self, now: float, grace_s: float) -> None:
        for i in [i for i, since in self.holes.items() if now - since > grace_s]:
            del self.holes[i]
        if len(self.holes) > MAX_HOLES:  # a storm of rolled-back inserts: keep the newest ids
            log.warning("recording cursor: %d holes, keeping the newest %d", len(self.holes), MAX_HOLES)
            for i in sorted(self.holes)[:len(self.holes) - MAX_HOLES]:
                del self.holes[i]


@dataclass
class FlagWatch:
    flag: str = "duration_mismatch"
    window: timedelta = timedelta(days=1)
    hole_grace_s: float = 600.0
    monotonic: Callable[[], float] = time.monotonic
    cursor: Cursor | None = None  # None until the first look
    found: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # attempt -> (recording id, created)
    rows_read: int = 0  # recording rows fetched so far (tests and the benchmark)
    _ageing: list[tuple[datetime, str]] = field(default_factory=list)  # heap: the oldest found first
    _answer: tuple[str, ...] | None = None  # `found` in recording order, until it changes
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def current(self, session: AsyncSession, now: datetime) -> tuple[str, ...]:
        """Attempt ids of the flagged recordings created within the window before `now`,
        in recording order. Costs the rows new since the last look and the recordings that
        left the window, not the number found (thousands on a bad day)."""
        async with self._lock:
            since = now - self.window
            if self.cursor is None:
                self.cursor = await self._prime(session, since)
            await self._advance(session, self.cursor, since)
            while self._ageing and self._ageing[0][0] <= since:
                _, attempt_id = heapq.heappop(self._ageing)
                if attempt_id in self.found and self.found[attempt_id][1] <= since:
                    del self.found[attempt_id]
                    self._answer = None
            if self._answer is None:
                self._answer = tuple(a for a, _ in sorted(self.found.items(), key=lambda item: item[1][0]))
            return self._answer

    async def _prime(self, session: AsyncSession, since: datetime) -> Cursor:
        newest = await session.scalar(select(func.max(Recording.id))) or 0
        rows = (await session.execute(select(Recording.id, Recording.attempt_id, Recording.created_at,
                                             Recording.flags).where(
            Recording.created_at > since,
            cast(Recording.flags, Text).contains(f'"{self.flag}"', autoescape=True)))).all()
        self._take(rows, since)
        return Cursor(last_id=max(0, newest - PRIME_TAIL))

    async def _advance(self, session: AsyncSession, cursor: Cursor, since: datetime) -> None:
        now = self.monotonic()
        columns = (Recording.id, Recording.attempt_id, Recording.created_at, Recording.flags)
        if cursor.holes:
            holes = sorted(cursor.holes)
            for start in range(0, len(holes), BATCH):
                rows = (await session.execute(select(*columns).where(
                    Recording.id.in_(holes[start:start + BATCH])))).all()
                self._take(rows, since)
                cursor.read((r.id for r in rows), now)
        while True:
            rows = (await session.execute(select(*columns).where(Recording.id > cursor.last_id)
                                          .order_by(Recording.id).limit(BATCH))).all()
            self._take(rows, since)
            cursor.read((r.id for r in rows), now)
            if len(rows) < BATCH:
                break
        cursor.expire(now, self.hole_grace_s)

    def _take(self, rows: Iterable, since: datetime) -> None:
        for row in rows:
            self.rows_read += 1
            if row.created_at > since and self.flag in (row.flags or ()) \
                    and self.found.get(row.attempt_id) != (row.id, row.created_at):
                self.found[row.attempt_id] = (row.id, row.created_at)
                heapq.heappush(self._ageing, (row.created_at, row.attempt_id))
                self._answer = None
