"""The watchdog's length-mismatch look on a real database: after the first look it reads
only the recordings archived since (and any id it passed without seeing), and it forgets
a flagged recording once it is older than the window.

The service's clock is shifted in these tests (a `ManualClock`), as in the e2e tests and
the demo: the window is judged by the rows' `created_at`, which that clock wrote.
"""
from __future__ import annotations

from datetime import timedelta

from recorder.watchdog.flag_watch import PRIME_TAIL, FlagWatch
from storage import repositories as repo
from storage.models import Attempt, Case, Recording
from tests.integration.test_watchdog_probes import probes_for, service_clock

MISMATCH = ["duration_mismatch"]


async def add_recording(db, clock, n: int, flags: list[str], *, rec_id: int | None = None,
                        age_s: float = 0.0) -> str:
    """Attempt number `n` with its Recording row, created `age_s` before now (an explicit
    `rec_id`: the row another transaction was handed before this one, committed late)."""
    attempt_id = f"{n:032x}"
    now = clock()
    async with db.session() as s:
        if await s.get(Case, "FW-1") is None:
            await repo.add_case(s, Case(id="FW-1", client="c", debtor_name="D", created_at=now), [])
        await repo.create_attempt(s, Attempt(id=attempt_id, case_id="FW-1", number="15550001111", state="ended",
                                             outcome="answered", created_at=now, recording_name=attempt_id))
        await repo.add_recording(s, Recording(
            id=rec_id, attempt_id=attempt_id, case_id="FW-1", archive_path=f"x/{attempt_id}.wav", sha256="0" * 64,
            size_bytes=1000, duration_s=30.0, flags=flags, call_ended_at=now - timedelta(seconds=age_s),
            created_at=now - timedelta(seconds=age_s), retain_until=now + timedelta(days=1200)))
    return attempt_id


async def look(db, watch: FlagWatch, clock) -> tuple[str, ...]:
    async with db.session() as s:
        return await watch.current(s, clock())


async def test_the_cursor_picks_up_a_new_mismatch_reading_only_the_new_rows(db, tmp_path):
    clock = service_clock()
    old = [await add_recording(db, clock, n, MISMATCH if n % 50 == 0 else []) for n in range(1, 301)]
    watch = FlagWatch()
    assert await look(db, watch, clock) == tuple(old[49::50]), "the first look loads the window's flagged rows"
    read = watch.rows_read
    assert await look(db, watch, clock) == tuple(old[49::50])
    assert watch.rows_read == read, "nothing new: no row read"

    fresh = await add_recording(db, clock, 301, MISMATCH)
    await add_recording(db, clock, 302, [])
    assert await look(db, watch, clock) == (*old[49::50], fresh)
    assert watch.rows_read == read + 2, "only the two new rows read"


async def test_a_mismatch_older_than_the_window_is_forgotten(db, tmp_path):
    clock = service_clock()
    primed = await add_recording(db, clock, 1, MISMATCH, age_s=86400 - 120)  # loaded by the first look
    ancient = await add_recording(db, clock, 2, MISMATCH, age_s=86400 + 1)  # outside the window already
    watch = FlagWatch()
    assert await look(db, watch, clock) == (primed,)
    later = await add_recording(db, clock, 3, MISMATCH)  # read through the cursor
    assert await look(db, watch, clock) == (primed, later)
    clock.advance(121)
    assert await look(db, watch, clock) == (later,), "a day old: forgotten"
    clock.advance(86400 - 122)
    assert await look(db, watch, clock) == (later,), "still inside the window (created_at > now - 1 day)"
    clock.advance(1)
    assert await look(db, watch, clock) == ()
    assert ancient not in watch.found


async def test_a_row_committed_after_a_higher_id_is_not_missed(db, tmp_path):
    """PostgreSQL hands ids out at insert and shows rows at commit: id 11 may be seen before
    id 10 is. An id the cursor passed is asked for again until it turns up (SQLite commits
    in id order; the rows here are given their ids to play PostgreSQL)."""
    clock = service_clock()
    for n in range(1, 4):
        await add_recording(db, clock, n, [], rec_id=n)
    now = {"t": 0.0}
    watch = FlagWatch(hole_grace_s=60, monotonic=lambda: now["t"])
    assert await look(db, watch, clock) == ()
    await add_recording(db, clock, 5, [], rec_id=5)  # committed first
    assert await look(db, watch, clock) == ()
    assert sorted(watch.cursor.holes) == [4]
    late = await add_recording(db, clock, 4, MISMATCH, rec_id=4)  # its transaction commits now
    now["t"] = 30.0
    assert await look(db, watch, clock) == (late,)
    assert not watch.cursor.holes

    await add_recording(db, clock, 9, [], rec_id=9)
    assert await look(db, watch, clock) == (late,)
    assert sorted(watch.cursor.holes) == [6, 7, 8]
    now["t"] = 100.0  # a rolled-back insert never commits: its hole is forgotten after the grace time
    await look(db, watch, clock)
    assert not watch.cursor.holes


async def test_rows_in_flight_at_the_first_look_are_not_missed(db, tmp_path):
    """The first look starts the cursor PRIME_TAIL ids below the newest: a row handed a lower
    id that commits after that look (on PostgreSQL) is still found."""
    clock = service_clock()
    await add_recording(db, clock, 1, [], rec_id=1)
    await add_recording(db, clock, 3, [], rec_id=3)
    watch = FlagWatch()
    assert await look(db, watch, clock) == ()
    assert watch.cursor.last_id == 3 and sorted(watch.cursor.holes) == [2]
    late = await add_recording(db, clock, 2, MISMATCH, rec_id=2)
    assert await look(db, watch, clock) == (late,)
    assert PRIME_TAIL >= 100  # more rows than can be in flight at once


async def test_the_probe_reports_mismatches_through_the_cursor(db, tmp_path):
    clock, spool = service_clock(), tmp_path / "spool"
    spool.mkdir()
    probes = probes_for(db, clock, spool)
    assert (await probes.reconciliation(60)).mismatched == ()
    first = await add_recording(db, clock, 1, MISMATCH)
    await add_recording(db, clock, 2, ["no_signal_tx"])
    found = await probes.reconciliation(60)
    assert found.mismatched == (first,)
    assert await probes.recent_recordings() == (1, 2)
    clock.advance(86401)
    assert (await probes.reconciliation(60)).mismatched == ()


async def test_postgresql_commits_out_of_id_order_and_none_is_missed(postgres_db, clock):
    """On PostgreSQL for real: a transaction holds id N uncommitted while N+1 commits and is
    read; N is a hole until its commit, then found."""
    db = postgres_db
    watch = FlagWatch()
    await add_recording(db, clock, 1, [])
    assert await look(db, watch, clock) == ()
    late_attempt = await add_attempt_only(db, clock, 2)
    async with db.sessions() as held:
        async with held.begin():
            late = Recording(attempt_id=late_attempt, case_id="FW-1", archive_path="x/late.wav", sha256="0" * 64,
                             size_bytes=1000, duration_s=30.0, flags=MISMATCH, call_ended_at=clock(),
                             created_at=clock(), retain_until=clock() + timedelta(days=1200))
            held.add(late)
            await held.flush()  # id N taken, not committed
            await add_recording(db, clock, 3, [])  # id N+1, committed
            assert await look(db, watch, clock) == ()
            assert sorted(watch.cursor.holes) == [late.id]
    assert await look(db, watch, clock) == (late_attempt,)
    assert not watch.cursor.holes


async def add_attempt_only(db, clock, n: int) -> str:
    attempt_id = f"{n:032x}"
    async with db.session() as s:
        await repo.create_attempt(s, Attempt(id=attempt_id, case_id="FW-1", number="15550001111", state="ended",
                                             outcome="answered", created_at=clock(), recording_name=attempt_id))
    return attempt_id
