"""The case list page at 1 000 000 cases: p50/p95 of `GET /cases` as a signed-in user
opens it (the real app on loopback: guard, session, query, audit entry, template).

The database: the real schema (Alembic head) holding 1 000 000 cases of 4 clients, 200
collectors in 10 teams, one to two phones each; built by SQLite itself and cached under
var/bench/ (keyed by the migration head). Timed, 300 requests each: a supervisor's first
page and pages deep in the book (keyset paging: `after=` a random case number), a
collector's own cases (5 000 of them), a team lead's team (100 000), a search by phone
number and by a name's start.

Baseline, same run, same database: the listing a naive console does for a deep page —
the same query with LIMIT/OFFSET at the same depths (page n costs n pages of reading).
"""
from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import ClientSession, CookieJar, web
from aiohttp.test_utils import unused_port
from sqlalchemy import select

from console.api import make_app
from console.deps import ConsoleDeps, WebSecurity
from people.accounts import Accounts
from people.passwords import PasswordHasher
from storage.clock import ManualClock
from storage.db import Database, alembic_config
from storage.models import Case

CASES, COLLECTORS, TEAMS, REQUESTS = 1_000_000, 200, 10, 300
BENCH_DATA_VERSION = 1
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
PASSWORD = "bench password 1"


def _build(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                           "AND tbl_name IN ('cases', 'phones')").fetchall()
    with conn:
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        conn.execute(f"""
            WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < {CASES})
            INSERT INTO cases (id, client, debtor_name, status, created_at, flags, amount_due_cents, account,
                               overdue_since, collector_id, team_id)
            SELECT printf('c%d-A%07d', n % 4, n), 'c' || (n % 4), '债务人' || n, 'open',
                   '2026-11-01 00:00:00.000000', '[]', 100000 + (n * 37) % 5000000, printf('A%07d', n),
                   date('2026-01-01', '+' || (n % 300) || ' days'), 1 + (n * 7919) % {COLLECTORS},
                   1 + ((n * 7919) % {COLLECTORS}) % {TEAMS}
            FROM k""")
        conn.execute(f"""INSERT INTO phones (case_id, number, kind, relation, do_not_call, refused)
            SELECT id, printf('138%08d', rowid), 'debtor', 'own', 0, 0 FROM cases""")
        conn.execute(f"""INSERT INTO phones (case_id, number, kind, relation, do_not_call, refused)
            SELECT id, printf('139%08d', rowid), 'third_party', 'family', 0, 0 FROM cases WHERE rowid % 3 = 0""")
        for _, sql in indexes:
            conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()


async def _people(db: Database, clock: ManualClock) -> Accounts:
    accounts = Accounts(db, clock, PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1))
    for team in range(1, TEAMS + 1):
        await accounts.add_team(f"team{team}", by="bench")
    for n in range(1, COLLECTORS + 1):  # ids 1..200: the collector_id the rows carry
        await accounts.add_user(username=f"coll{n}", display_name=f"c{n}", role="collector", password=PASSWORD,
                                by="bench", team=f"team{1 + n % TEAMS}", locale="zh-CN")
    await accounts.add_user(username="lead1", display_name="lead", role="team_lead", password=PASSWORD, by="bench",
                            team="team1", locale="zh-CN")
    await accounts.add_user(username="super1", display_name="sup", role="supervisor", password=PASSWORD,
                            by="bench", locale="zh-CN")
    return accounts


def bench_database() -> Path:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    path = Path("var/bench") / f"cases-{head}-v{BENCH_DATA_VERSION}.db"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)

    async def prepare() -> None:
        db = Database(f"sqlite+aiosqlite:///{partial}")
        await db.migrate()
        await _people(db, ManualClock(NOW))
        await db.close()

    asyncio.run(prepare())
    _build(partial)
    partial.rename(path)
    return path


def _p(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1]


async def _timed(session: ClientSession, urls: list[str]) -> list[float]:
    times = []
    for url in urls:
        started = time.perf_counter()
        async with session.get(url) as resp:
            await resp.read()
            assert resp.status == 200, (url, resp.status)
        times.append((time.perf_counter() - started) * 1000)
    return times


async def _measure(path: Path) -> list[tuple[str, list[float]]]:
    db = Database(f"sqlite+aiosqlite:///{path}")
    clock = ManualClock(NOW)
    accounts = Accounts(db, clock, PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1))
    port = unused_port()
    runner = web.AppRunner(make_app(ConsoleDeps(db=db, dial=None, health=lambda: {"ready": True},  # type: ignore
                                                accounts=accounts, security=WebSecurity.build(port))),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(11)
    deep = [f"c{rng.randrange(4)}-A{rng.randrange(CASES):07d}" for _ in range(REQUESTS)]
    rows = []
    try:
        async def signed_in(username: str) -> ClientSession:
            session = ClientSession(cookie_jar=CookieJar(unsafe=True))
            resp = await session.post(f"{base}/api/session", json={"username": username, "password": PASSWORD},
                                      headers={"Origin": base})
            assert resp.status == 201
            return session

        sup, coll, lead = await signed_in("super1"), await signed_in("coll7"), await signed_in("lead1")
        try:
            await _timed(sup, [f"{base}/cases"] * 20)  # warm up
            rows.append(("supervisor: first page", await _timed(sup, [f"{base}/cases"] * REQUESTS)))
            rows.append(("supervisor: deep pages (after=)", await _timed(sup, [f"{base}/cases?after={a}"
                                                                                for a in deep])))
            rows.append(("collector: own cases (5 000)", await _timed(coll, [f"{base}/cases"] * REQUESTS)))
            rows.append(("team lead: team (100 000), deep", await _timed(lead, [f"{base}/cases?after={a}"
                                                                                  for a in deep])))
            phones = [f"138{rng.randrange(1, CASES):08d}" for _ in range(REQUESTS)]
            rows.append(("supervisor: search by phone", await _timed(sup, [f"{base}/cases?q={p}" for p in phones])))
            names = [f"债务人{rng.randrange(CASES)}" for _ in range(REQUESTS)]
            rows.append(("supervisor: search by name start", await _timed(sup, [f"{base}/cases?q={n}"
                                                                                   for n in names])))
        finally:
            for session in (sup, coll, lead):
                await session.close()
        times = []
        async with db.session() as s:
            for _ in range(30):
                offset = rng.randrange(CASES - 50)
                started = time.perf_counter()
                (await s.scalars(select(Case).order_by(Case.id).limit(51).offset(offset))).all()
                times.append((time.perf_counter() - started) * 1000)
        rows.append(("baseline: LIMIT/OFFSET deep page (query only)", times))
    finally:
        await runner.cleanup()
        await db.close()
    return rows


def main() -> None:
    path = bench_database()
    rows = asyncio.run(_measure(path))
    base = statistics.median(rows[-1][1])
    print(f"\nCase list page at {CASES:,} cases (goal: p95 < 200 ms)")
    print(f"{'what':<46} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'vs baseline (p50)':>18}")
    for label, times in rows:
        print(f"{label:<46} {len(times):>5} {statistics.median(times):>8.2f} {_p(times, 95):>8.2f} "
              f"{base / statistics.median(times):>17.1f}×")


if __name__ == "__main__":
    main()
