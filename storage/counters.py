"""Aggregates kept as they change, for `/metrics`: never a scan of the attempts or recordings.

A row per (name, label) holds a count, changed in the same transaction as the fact it
counts, by the one writer of that fact:
- `calls` by outcome: `storage/attempt_reports.py` when a report sets or changes an
  attempt's outcome (an `unknown` reconciled to `answered` moves one call between labels);
  `repositories.create_attempt` for an attempt written with an outcome already (imports,
  tests; the dialer writes none);
- `recordings` (label "") and `recordings_flagged` by flag: `repositories.add_recording`,
  in the ingest transaction that archives the recording.

So the counts survive restarts, and every process and node sharing the database sees the
same ones (in-memory counters seeded at start would miss the other processes' changes).
Attempts still open (no outcome yet) are not counted here: the dial path would update one
hot row in every dial's transaction. /metrics counts them through the state index instead
(`open_calls`: as many rows as calls in progress).

On PostgreSQL a count's row is locked from its update to the commit: two transactions
ending calls with the same outcome take turns at their commit, which is why the update is
the last write of the report. Rows are updated in a fixed order (no deadlock between two
multi-row updates). Migration 0012 seeds the table from the rows it counts; `recount` is
that same count from the tables (tests compare the two).
"""
from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping

from sqlalchemy import Text, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.lifecycle import OPEN_STATES
from storage.models import Attempt, Count, Recording

CALLS = "calls"  # attempts by outcome
RECORDINGS = "recordings"  # recordings archived (label "")
FLAGGED = "recordings_flagged"  # recordings by flag (one recording counts once under each of its flags)

Key = tuple[str, str]  # (name, label)


def outcome_changed(before: str | None, after: str | None) -> dict[Key, int]:
    """One call moves from `before` to `after` (None: no outcome, not counted here)."""
    if before == after:
        return {}
    deltas: dict[Key, int] = {}
    if before is not None:
        deltas[(CALLS, before)] = -1
    if after is not None:
        deltas[(CALLS, after)] = 1
    return deltas


def recording_archived(flags: Iterable[str]) -> dict[Key, int]:
    deltas: dict[Key, int] = {(RECORDINGS, ""): 1}
    for flag in flags:
        deltas[(FLAGGED, flag)] = deltas.get((FLAGGED, flag), 0) + 1
    return deltas


async def bump(session: AsyncSession, deltas: Mapping[Key, int]) -> None:
    """Add `deltas` to the counts in the caller's transaction (one upsert, rows in key order)."""
    rows = [{"name": name, "label": label, "value": delta}
            for (name, label), delta in sorted(deltas.items()) if delta]
    if not rows:
        return
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(Count).values(rows)
    statement = statement.on_conflict_do_update(index_elements=[Count.name, Count.label],
                                                set_={"value": Count.value + statement.excluded.value})
    await session.execute(statement)


async def read(session: AsyncSession) -> dict[Key, int]:
    """Every count (a few dozen rows, whatever the size of the archive)."""
    return {(name, label): value for name, label, value in (await session.execute(
        select(Count.name, Count.label, Count.value))).all()}


async def open_calls(session: AsyncSession) -> int:
    """Attempts without an outcome yet: by the state index, only the calls in progress are read
    (the lifecycle gives every attempt that is over an outcome)."""
    return await session.scalar(select(func.count()).select_from(Attempt).where(
        Attempt.state.in_(sorted(s.value for s in OPEN_STATES)), Attempt.outcome.is_(None))) or 0


async def recount(session: AsyncSession) -> dict[Key, int]:
    """The counts from the tables themselves (a full scan: for checks, never for a scrape)."""
    counts: Tally[Key] = Tally()
    for outcome, n in (await session.execute(select(Attempt.outcome, func.count())
                                             .where(Attempt.outcome.is_not(None)).group_by(Attempt.outcome))).all():
        counts[(CALLS, outcome)] = n
    counts[(RECORDINGS, "")] = await session.scalar(select(func.count()).select_from(Recording)) or 0
    for flags in (await session.scalars(select(Recording.flags).where(cast(Recording.flags, Text) != "[]"))).all():
        for flag in flags or ():
            counts[(FLAGGED, flag)] += 1
    return {key: n for key, n in counts.items() if n}
