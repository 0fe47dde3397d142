"""Lookup by case at 1 000 000 recordings: latency of the real retrieval query, p50/p99.

The database: the real schema (Alembic head) holding 200 000 cases and 1 000 000
answered attempts with their recordings (1-9 per case, plus 4 large cases of 5 000),
inserted in call-time order, so a case's recordings are scattered over the table as
they would be after years of calls. Built with raw executemany in one transaction and
cached under var/bench/, keyed by the migration head and BENCH_DATA_VERSION.

Timed: `recorder.retrieval.search(db, RecordingQuery(case_id=..., limit=50))`, the same
async path the API and CLI take (SQLAlchemy + aiosqlite, one session per lookup), for
2 000 random cases, without the ledger write; then `find_recordings` (search + the
ledger "access" entry, one write transaction) for 300 cases; then the newest 50 of each
large case. The composite index recordings (case_id, call_ended_at) is created here if
the schema lacks it (pending its migration) and is the one measured as "dunline".

Baseline, same run, same file, same code path, only the index differs: the query after
dropping the case indexes, i.e. a full scan (20 cases: each takes a full pass); and the
existing single-column ix_recordings_case_id alone. The indexes are restored afterwards.
"""
from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.retrieval import find_recordings, search
from recorder.retrieval_query import RecordingQuery, Requester
from storage.db import Database, alembic_config

BENCH_DATA_VERSION = 2
CASES, RECORDINGS, BIG_CASES, BIG_SIZE = 200_000, 1_000_000, 4, 5_000
LOOKUPS, LEDGER_LOOKUPS, SCAN_LOOKUPS = 2_000, 300, 20
COMPOSITE = "CREATE INDEX IF NOT EXISTS ix_recordings_case_ended ON recordings (case_id, call_ended_at)"
SINGLE = "CREATE INDEX IF NOT EXISTS ix_recordings_case_id ON recordings (case_id)"
START = datetime(2023, 12, 1, 8, 0, tzinfo=timezone.utc)  # the first call
CALL_SPACING_S = 94  # 1 000 000 calls over about three years


def _case_id(n: int) -> str:
    return f"K{n:07d}"


def _case_of_each_recording(rng: random.Random) -> list[int]:
    """Which case each recording (in call-time order) belongs to."""
    counts = [rng.randint(1, 9) for _ in range(CASES - BIG_CASES)] + [BIG_SIZE] * BIG_CASES
    excess = sum(counts) - RECORDINGS
    while excess:
        i = rng.randrange(CASES - BIG_CASES)
        if excess > 0 and counts[i] > 1:
            counts[i], excess = counts[i] - 1, excess - 1
        elif excess < 0:
            counts[i], excess = counts[i] + 1, excess + 1
    owners = [case for case, count in enumerate(counts) for _ in range(count)]
    rng.shuffle(owners)
    return owners


def _ts(seconds: str) -> str:
    """SQL for a stored UtcDateTime (naive UTC text with microseconds) from unix seconds."""
    return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"


def _leg_json(leg: str, i: int) -> str:
    """SQL for one entry of `legs` as ingest writes it (columns n and day in scope)."""
    sha = f"printf('%062x%02x', n, {i})"
    return ("""'{"leg": "%s", "rms_dbfs": -21.5, "speech_ratio": 0.42, "has_signal": true, """
            """"steady_tone": false, "duration_s": 80.0, "archive_path": "' || day || '/' || """ % leg
            + sha + """ || '.wav", "sha256": "' || """ + sha + """ || '"}'""")


def _build(path: Path) -> None:
    """Fill the migrated, empty database. Rows are made by SQLite itself from a table of
    (recording number, case number); the secondary indexes are dropped for the load and
    recreated from their own definitions afterwards (a sort instead of random inserts)."""
    owners = _case_of_each_recording(random.Random(20261130))
    start = int(START.timestamp())
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                           "AND tbl_name IN ('cases', 'attempts', 'recordings')").fetchall()
    with conn:
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE TEMP TABLE owner (n INTEGER PRIMARY KEY, c INTEGER, t INTEGER)")
        conn.executemany("INSERT INTO owner VALUES (?, ?, ?)",
                         ((n, c, start + n * CALL_SPACING_S) for n, c in enumerate(owners)))
        conn.execute(f"""
            WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < {CASES})
            INSERT INTO cases (id, client, debtor_name, status, created_at, flags)
            SELECT printf('K%07d', n), 'client' || (n % 7), 'Debtor ' || n, 'open', {_ts(start - 86400)}, '[]'
            FROM k""")
        conn.execute(f"""
            INSERT INTO attempts (id, case_id, number, collector, caller_id, state, outcome, created_at,
                                  answered_at, ended_at, recording_name)
            SELECT printf('%032x', n), printf('K%07d', c), printf('1555%07d', c), printf('70%02d', n % 40),
                   '15559990000', 'ended', 'answered', {_ts('t - 95')}, {_ts('t - 80')}, {_ts('t')},
                   printf('%032x', n)
            FROM owner ORDER BY n""")
        conn.execute(f"""
            INSERT INTO recordings (id, attempt_id, case_id, archive_path, sha256, size_bytes, duration_s,
                                    legs, flags, call_ended_at, created_at, retain_until, store, ledger_seq)
            SELECT n + 1, printf('%032x', n), printf('K%07d', c), day || '/' || printf('%064x', n) || '.wav',
                   printf('%064x', n), 1280044, 80.0,
                   '[' || {_leg_json("rx", 1)} || ', ' || {_leg_json("tx", 2)} || ']',
                   CASE WHEN n % 23 = 0 THEN '["no_signal_tx"]' ELSE '[]' END,
                   {_ts('t')}, {_ts('t + 2')}, {_ts('t + 94694400')}, 'fs', n + 1
            FROM (SELECT n, c, t, strftime('%Y/%m/%d', t, 'unixepoch') AS day FROM owner) ORDER BY n""")
        for _, sql in indexes:
            conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


def bench_database() -> tuple[Path, float | None]:
    """The cached 1M-row database (built on first use); returns (path, seconds to build or None)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    path = Path("var/bench") / f"lookup-{head}-v{BENCH_DATA_VERSION}.db"
    if path.exists():
        return path, None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()

    async def migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{partial}")
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    _build(partial)
    partial.rename(path)
    return path, time.perf_counter() - started


def _sql(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def _latencies(db: Database, case_ids: list[str], lookup) -> list[float]:
    times = []
    for case_id in case_ids:
        started = time.perf_counter()
        await lookup(db, case_id)
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1] if len(times) > 1 else times[0]


async def _measure(path: Path) -> list[tuple[str, int, list[float]]]:
    rng = random.Random(7)
    picks = [_case_id(rng.randrange(CASES - BIG_CASES)) for _ in range(LOOKUPS)]
    big = [_case_id(CASES - BIG_CASES + i) for i in range(BIG_CASES)] * 5
    newest = lambda db, c: search(db, RecordingQuery(case_id=c, limit=50))  # noqa: E731
    ledger_holder: list[Ledger] = []
    who = Requester("bench", "lookup benchmark")
    logged = lambda db, c: find_recordings(db, ledger_holder[0], RecordingQuery(case_id=c), who)  # noqa: E731
    rows = []
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        ledger_holder.append(Ledger(db, Signer(Ed25519PrivateKey.generate()), lambda: datetime.now(timezone.utc),
                                    checkpoint_every=10_000))
        await _latencies(db, picks[:50], newest)  # warm the page cache and the connection pool
        rows.append(("dunline: (case_id, call_ended_at) index", LOOKUPS, await _latencies(db, picks, newest)))
        rows.append(("  + ledger access entry (find_recordings)", LEDGER_LOOKUPS,
                     await _latencies(db, picks[:LEDGER_LOOKUPS], logged)))
        rows.append(("  large case (5 000 recordings), newest 50", len(big), await _latencies(db, big, newest)))
        _sql(path, "DELETE FROM ledger_entries", "DELETE FROM ledger_checkpoints",
             "DROP INDEX ix_recordings_case_ended")
        rows.append(("existing ix_recordings_case_id only", LOOKUPS, await _latencies(db, picks, newest)))
        rows.append(("  large case, newest 50", len(big), await _latencies(db, big, newest)))
        _sql(path, "DROP INDEX ix_recordings_case_id")
        rows.append(("baseline: no case index (full scan)", SCAN_LOOKUPS,
                     await _latencies(db, picks[:SCAN_LOOKUPS], newest)))
    finally:
        await db.close()
        _sql(path, SINGLE, COMPOSITE, "DELETE FROM ledger_entries", "DELETE FROM ledger_checkpoints")
    return rows


def _plan(path: Path) -> str:
    from sqlalchemy.dialects import sqlite

    from recorder.retrieval import search_statement

    sql = str(search_statement(RecordingQuery(case_id="K0000001")).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    conn = sqlite3.connect(path)
    try:
        return "; ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
    finally:
        conn.close()


def main() -> None:
    path, built = bench_database()
    _sql(path, SINGLE, COMPOSITE)  # self-heal after an interrupted run; the composite pending its migration
    rows = asyncio.run(_measure(path))
    base = _p(rows[-1][2], 50)
    print(f"lookup by case: {RECORDINGS:,} recordings, {CASES:,} cases, SQLite {sqlite3.sqlite_version}; "
          + (f"database built in {built:.1f} s" if built else f"cached database {path}"))
    print(f"plan: {_plan(path)}")
    print(f"{'what':<44} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'vs baseline':>12}")
    for name, n, times in rows:
        p50, p99 = _p(times, 50), _p(times, 99)
        print(f"{name:<44} {n:>5} {p50:>8.2f} {p99:>8.2f} {max(times):>8.2f} {base / p50:>11.0f}x")


if __name__ == "__main__":
    main()
