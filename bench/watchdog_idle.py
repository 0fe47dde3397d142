"""The watchdog's idle cost at 0, 10 000 and 100 000 recordings of the last day, and a
/metrics scrape's: CPU-seconds (time.process_time, every thread of the process) per
evaluation and per scrape.

The watchdog is the service's own: `Watchdog.evaluate` (every probe and check, as `run`
calls it twice a second) over `ServiceProbes` on a migrated SQLite file, with a stub
PbxLink (connected, CoreStatus and ListCommands answered), an empty spool directory and
no canary. Its first evaluation (which loads the window's flagged recordings once) is shown
apart; then `TICKS` evaluations back to back, in `ROUNDS` rounds interleaved with the other
sizes (the shared host's load drifts), the median round kept. The scrape is the real
`/metrics` handler without HTTP (the same queries and Prometheus text), timed the same way.

The database: the real schema (Alembic head) with one case per 10 calls, each call an
ended answered attempt with its archived recording and ingest job, created over the last
24 h of the service's clock; 1 % flagged `duration_mismatch`, 2 % `no_signal_tx`. Built by
SQLite itself per size (seconds).

Baseline, same run: the 0-recordings database (the goal: 100 000 within 2× of it). For
comparison, the code this replaced, on the same databases: the reconciliation that reloads
every recording of the last day as full rows, and the scrape that groups the attempts
table and reads every recording's flags (`before` columns; fewer rounds, it is slow).
"""
from __future__ import annotations

import asyncio
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, select

from console.deps import DEPS
from console.metrics import metrics
from recorder.watchdog.checks import IngestBacklog, Reconciliation
from recorder.watchdog.probes import RECONCILE_WINDOW, ServiceProbes
from recorder.watchdog.runner import Watchdog, WatchdogSettings
from storage import ingest_jobs
from storage.clock import ManualClock
from storage.db import Database
from storage.models import Attempt, Recording

SIZES = (0, 10_000, 100_000)
TICKS, SCRAPES, ROUNDS = 500, 250, 5
BEFORE_ROUNDS = 5
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)


class StubLink:
    """The PBX as the probes see it when all is well."""

    connected = True
    last_ping_rtt = 0.002

    async def query(self, action: str) -> Mapping[str, str] | None:
        if action == "CoreStatus":
            return {"Response": "Success", "CoreStartupDate": "2026-12-03", "CoreStartupTime": "01:00:00",
                    "CoreReloadDate": "2026-12-03", "CoreReloadTime": "01:00:00"}
        return {"Response": "Success", "Ping": "Keepalive", "StopMixMonitor": "Stop recording"}


def _ts(seconds: str) -> str:
    return f"(strftime('%Y-%m-%d %H:%M:%S', {seconds}, 'unixepoch') || '.000000')"


def _build(path: Path, n: int) -> None:
    """Fill the migrated database with `n` calls of the last day (see the module docstring);
    the counts /metrics reads are set as the service would have left them."""
    if not n:
        return
    end = int(NOW.timestamp())
    spacing = 86_000 / n  # all inside the last 24 h
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    leg = ("""'{"leg": "%s", "rms_dbfs": -21.5, "speech_ratio": 0.42, "has_signal": true, "steady_tone": false, """
           """"duration_s": 80.0, "archive_path": "2026/12/03/' || printf('%%064x', n) || '-%s.wav", """
           """"sha256": "' || printf('%%064x', n) || '"}'""")
    with conn:
        conn.execute(f"CREATE TEMP TABLE k AS WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k "
                     f"WHERE n + 1 < {n}) SELECT n, {end} - CAST(({n} - n) * {spacing} AS INTEGER) AS t FROM k")
        conn.execute(f"""INSERT INTO cases (id, client, debtor_name, status, created_at, flags)
                         SELECT printf('K%07d', n / 10), 'c1', 'Debtor ' || n, 'open', {_ts(end - 90 * 86400)}, '[]'
                         FROM k WHERE n % 10 = 0""")
        conn.execute(f"""INSERT INTO attempts (id, case_id, number, collector, state, outcome, created_at,
                                               answered_at, ended_at, recording_name, answered_seconds)
                         SELECT printf('%032x', n), printf('K%07d', n / 10), printf('1555%07d', n / 10), '6001',
                                'ended', 'answered', {_ts('t - 95')}, {_ts('t - 80')}, {_ts('t - 2')},
                                printf('%032x', n), 78.0 FROM k""")
        conn.execute(f"""INSERT INTO recordings (id, attempt_id, case_id, archive_path, sha256, size_bytes,
                                                 duration_s, legs, flags, call_ended_at, created_at, retain_until,
                                                 store, ledger_seq)
                         SELECT n + 1, printf('%032x', n), printf('K%07d', n / 10),
                                '2026/12/03/' || printf('%064x', n) || '.wav', printf('%064x', n), 1280044, 78.0,
                                '[' || {leg % ('rx', 'rx')} || ', ' || {leg % ('tx', 'tx')} || ']',
                                CASE WHEN n % 100 = 7 THEN '["duration_mismatch"]'
                                     WHEN n % 50 = 3 THEN '["no_signal_tx"]' ELSE '[]' END,
                                {_ts('t - 2')}, {_ts('t')}, {_ts('t + 94694400')}, 'fs', n + 1 FROM k""")
        conn.execute(f"""INSERT INTO ingest_jobs (attempt_id, state, created_at, due_at, tries, done_at)
                         SELECT printf('%032x', n), 'archived', {_ts('t - 80')}, {_ts('t - 2')}, 0, {_ts('t')}
                         FROM k""")
        conn.execute("DELETE FROM counters")
        conn.execute("INSERT INTO counters SELECT 'calls', outcome, count(*) FROM attempts GROUP BY outcome")
        conn.execute("INSERT INTO counters SELECT 'recordings', '', count(*) FROM recordings")
        conn.execute("""INSERT INTO counters SELECT 'recordings_flagged', j.value, count(*)
                        FROM recordings, json_each(recordings.flags) AS j GROUP BY j.value""")
    conn.close()


class FullReloadProbes(ServiceProbes):
    """The reconciliation before: every recording of the last day as a full row, each look."""

    async def reconciliation(self, older_than_s: float) -> Reconciliation:
        now = self.clock()
        async with self.db.session() as session:
            missing = await ingest_jobs.overdue(session, now - timedelta(seconds=older_than_s), limit=1000)
            mismatched = [r.attempt_id for r in (await session.scalars(
                select(Recording).where(Recording.created_at > now - RECONCILE_WINDOW))).all()
                if "duration_mismatch" in (r.flags or [])]
            orphans = await self._spool_orphans(session, older_than_s)
        return Reconciliation(missing=tuple(missing), orphans=tuple(orphans), mismatched=tuple(mismatched))


async def scrape_before(db: Database) -> None:
    """The scrape's queries before: attempts grouped by outcome, every flagged recording read."""
    async with db.session() as s:
        dict((await s.execute(select(Attempt.outcome, func.count()).group_by(Attempt.outcome))).all())
        await s.scalar(select(func.count()).select_from(Recording))
        for flags in (await s.scalars(select(Recording.flags).where(Recording.flags != "[]"))).all():
            list(flags or ())


def _cpu(rounds: int, once: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        started = time.process_time()
        for _ in range(rounds):
            await once()
        return (time.process_time() - started) / rounds
    return measure


async def _setup(root: Path, n: int) -> dict[str, Any]:
    """The database of `n` recordings, the watchdog primed on it (its first evaluation
    timed), and what the timed rounds call."""
    path = root / f"watchdog-{n}.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    await asyncio.to_thread(_build, path, n)
    spool, archive = root / f"spool-{n}", root / f"archive-{n}"
    spool.mkdir()
    archive.mkdir()
    clock = ManualClock(NOW)

    def probes(kind: type[ServiceProbes]) -> ServiceProbes:
        return kind(link=StubLink(), db=db, clock=clock, volumes={"spool_disk": spool, "archive_disk": archive},
                    backlog=IngestBacklog, spool_dir=spool)

    dog = Watchdog(probes(ServiceProbes), WatchdogSettings(min_free_mb=1), clock)
    started = time.process_time()
    await dog.evaluate()
    first = time.process_time() - started
    old = Watchdog(probes(FullReloadProbes), WatchdogSettings(min_free_mb=1), clock)
    await old.evaluate()
    request = SimpleNamespace(app={DEPS: SimpleNamespace(db=db, health=lambda: {"ready": True})})
    await metrics(request)  # type: ignore[arg-type]
    return {"db": db, "first": first, "tick": _cpu(TICKS // ROUNDS, dog.evaluate),
            "scrape": _cpu(SCRAPES // ROUNDS, lambda: metrics(request)),  # type: ignore[arg-type]
            "tick_before": _cpu(BEFORE_ROUNDS, old.evaluate), "scrape_before": _cpu(BEFORE_ROUNDS,
                                                                                     lambda: scrape_before(db))}


async def _measure() -> dict[int, dict[str, float]]:
    """Every size set up first, then ROUNDS rounds that each time every size in turn (the
    host's load drifts: interleaving spreads it over all sizes); the median round is kept."""
    with tempfile.TemporaryDirectory(prefix="dunline-bench-watchdog-") as tmp:
        sizes = {n: await _setup(Path(tmp), n) for n in SIZES}
        try:
            samples: dict[int, dict[str, list[float]]] = {n: {"tick": [], "scrape": []} for n in SIZES}
            for _ in range(ROUNDS):
                for n, size in sizes.items():
                    samples[n]["tick"].append(await size["tick"]())
                    samples[n]["scrape"].append(await size["scrape"]())
            rows = {}
            for n, size in sizes.items():
                rows[n] = {"first": size["first"], "tick": statistics.median(samples[n]["tick"]),
                           "scrape": statistics.median(samples[n]["scrape"]),
                           "tick_before": await size["tick_before"](),
                           "scrape_before": await size["scrape_before"]()}
            return rows
        finally:
            for size in sizes.values():
                await size["db"].close()


def main() -> None:
    rows = asyncio.run(_measure())
    base, base_scrape = rows[0]["tick"], rows[0]["scrape"]
    print(f"\nWatchdog idle: CPU per evaluation ({TICKS} back to back after the first) and per /metrics "
          f"scrape ({SCRAPES}), median of {ROUNDS} interleaved rounds; SQLite {sqlite3.sqlite_version}; "
          f"goal: 100 000 within 2x of 0")
    print(f"{'recordings (last day)':>22} {'first ms':>9} {'ms/tick':>8} {'vs 0':>6} {'before ms/tick':>15} "
          f"{'scrape ms':>10} {'vs 0':>6} {'before scrape ms':>17}")
    for n, r in rows.items():
        print(f"{n:>22,} {r['first'] * 1000:>9.1f} {r['tick'] * 1000:>8.2f} {r['tick'] / base:>5.2f}x "
              f"{r['tick_before'] * 1000:>15.1f} {r['scrape'] * 1000:>10.2f} {r['scrape'] / base_scrape:>5.2f}x "
              f"{r['scrape_before'] * 1000:>17.1f}")
    print(f"(at 2 evaluations a second, {base * 2 * 100:.2f} % of a core at 0 recordings, "
          f"{rows[SIZES[-1]]['tick'] * 2 * 100:.2f} % at {SIZES[-1]:,})")


if __name__ == "__main__":
    main()
