"""The watchdog's checks and the dialing gate, pure."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.watchdog import checks
from recorder.watchdog.checks import (BacklogLimits, CanaryFacts, CheckResult, DiskFacts, IngestBacklog, PbxUptime,
                                      Reconciliation, State)
from recorder.watchdog.gate import DialingGate, GateState

T0 = datetime(2026, 11, 29, 2, 0, tzinfo=timezone.utc)
MiB = 2**20


def test_ami_link():
    assert checks.ami_link(False, None).critical
    assert checks.ami_link(True, 0.01).state is State.OK
    assert checks.ami_link(True, 3.0, max_rtt_s=2.0).state is State.WARN


def test_pbx_restart_and_reload_are_critical():
    up = PbxUptime(T0, T0)
    assert checks.pbx_restart(None, up).state is State.OK
    assert checks.pbx_restart(up, up).state is State.OK
    restarted = checks.pbx_restart(up, PbxUptime(T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)))
    assert restarted.critical and "restarted" in restarted.reason
    assert "reloaded" in checks.pbx_restart(up, PbxUptime(T0, T0 + timedelta(minutes=1))).reason
    assert checks.pbx_restart(up, None).critical


def test_module_and_recording_failures():
    assert checks.module_loaded("app_mixmonitor", False).critical
    assert checks.module_loaded("app_mixmonitor", None).critical
    assert not checks.module_loaded("app_mixmonitor", True).critical
    assert checks.recording_failures(["a1"]).critical
    assert not checks.recording_failures([]).critical


def test_reconciliation_missing_is_critical_orphans_and_mismatches_warn():
    assert checks.reconciliation(Reconciliation(missing=("a1",))).critical
    warn = checks.reconciliation(Reconciliation(orphans=("x.wav",), mismatched=("a2",)))
    assert warn.state is State.WARN and "orphan" in warn.reason and "mismatch" in warn.reason
    assert checks.reconciliation(Reconciliation()).state is State.OK


def test_disk_space_floor_and_time_to_full():
    floor = dict(min_free_bytes=100 * MiB, min_hours_to_full=24)
    assert checks.disk_space("archive_disk", None, **floor).critical
    assert checks.disk_space("archive_disk", DiskFacts("/a", 50 * MiB, 1000 * MiB, 0), **floor).critical
    filling = DiskFacts("/a", 500 * MiB, 1000 * MiB, write_rate_bps=500 * MiB / 3600)  # 1 h left
    assert checks.disk_space("archive_disk", filling, **floor).state is State.WARN
    assert checks.disk_space("archive_disk", DiskFacts("/a", 500 * MiB, 1000 * MiB, 10.0), **floor).state is State.OK


LIMITS = BacklogLimits(max_age_s=60, stall_s=30, high_water=100, low_water=25)


def test_backlog_silence_clock_canary():
    assert checks.ingest_backlog(IngestBacklog(3, 120, since_progress_s=1), LIMITS).critical
    assert not checks.ingest_backlog(IngestBacklog(3, 10, since_progress_s=1), LIMITS).critical
    assert checks.silent_rate(5, 10, warn_ratio=0.3, min_sample=10).state is State.WARN
    assert checks.silent_rate(5, 6, warn_ratio=0.3, min_sample=10).state is State.OK
    assert checks.clock_sanity(-30.0, 1.0, max_skew_s=2).critical
    assert "backwards" in checks.clock_sanity(-30.0, 1.0, max_skew_s=2).reason
    assert not checks.clock_sanity(1.1, 1.0, max_skew_s=2).critical
    assert checks.canary(CanaryFacts(T0, T0 + timedelta(seconds=1), "no speech"), T0, max_age_s=600).critical
    assert checks.canary(CanaryFacts(None, None), T0, max_age_s=600).state is State.WARN
    assert checks.canary(CanaryFacts(T0, None), T0 + timedelta(hours=1), max_age_s=600).state is State.WARN
    assert checks.canary(CanaryFacts(T0, T0 - timedelta(seconds=1)), T0, max_age_s=600).state is State.OK


def test_a_busy_backlog_warns_and_holds_dials_back_a_stuck_one_is_critical():
    busy = checks.ingest_backlog(IngestBacklog(150, 20, since_progress_s=0.3, rate_per_s=9.5), LIMITS)
    assert busy.state is State.WARN and busy.back_pressure and not busy.critical
    assert "busy" in busy.reason and "9.5/s" in busy.reason and busy.value == 150
    small = checks.ingest_backlog(IngestBacklog(40, 20, since_progress_s=0.3, rate_per_s=9.5), LIMITS)
    assert small.state is State.OK and not small.back_pressure, "below the high-water mark: nothing to hold back"
    stalled = checks.ingest_backlog(IngestBacklog(150, 40, since_progress_s=31), LIMITS)
    assert stalled.critical and "stuck" in stalled.reason, "nothing archived for stall_s: stuck, however few wait"
    assert checks.ingest_backlog(IngestBacklog(2, 40, since_progress_s=31), LIMITS).critical
    too_old = checks.ingest_backlog(IngestBacklog(150, 61, since_progress_s=0.1, rate_per_s=20), LIMITS)
    assert too_old.critical, "the oldest far past its time: stuck even while others are archived"
    idle = checks.ingest_backlog(IngestBacklog(0, 0, since_progress_s=500), LIMITS)
    assert idle.state is State.OK and not idle.back_pressure, "an empty backlog never stalls"


def test_back_pressure_has_hysteresis():
    def step(pending, holding):
        return checks.ingest_backlog(IngestBacklog(pending, 5, 0.5, 10.0), LIMITS, holding=holding).back_pressure

    assert not step(99, holding=False) and step(100, holding=False), "on at the high-water mark"
    assert step(99, holding=True) and step(26, holding=True), "stays on between the marks"
    assert not step(25, holding=True), "off at the low-water mark"
    assert not step(60, holding=False), "and stays off between the marks"


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=60))
def test_back_pressure_switches_only_at_the_marks(backlogs):
    holding = False
    for pending in backlogs:
        now = checks.holds_back_dials(pending, holding, LIMITS)
        if now and not holding:
            assert pending >= LIMITS.high_water
        if holding and not now:
            assert pending <= LIMITS.low_water
        assert now == (pending > LIMITS.low_water if holding else pending >= LIMITS.high_water)
        holding = now


def test_retry_after_follows_the_rate_down_to_the_low_water_mark():
    assert checks.retry_after_s(IngestBacklog(125, 5, 0.1, rate_per_s=10.0), LIMITS) == 10
    assert checks.retry_after_s(IngestBacklog(125, 5, 0.1, rate_per_s=0.0), LIMITS) == 5, "no rate known yet"
    assert checks.retry_after_s(IngestBacklog(5000, 5, 0.1, rate_per_s=1.0), LIMITS) == 60
    assert checks.retry_after_s(IngestBacklog(26, 5, 0.1, rate_per_s=100.0), LIMITS) == 1


def test_a_busy_backlog_leaves_the_gate_open():
    gate = DialingGate(GateState.OPEN, "")
    busy = checks.ingest_backlog(IngestBacklog(500, 20, since_progress_s=0.2, rate_per_s=9.0), LIMITS)
    assert gate.observe([FINE, busy], T0) is None and gate.is_open
    stuck = checks.ingest_backlog(IngestBacklog(500, 20, since_progress_s=45), LIMITS)
    change = gate.observe([FINE, stuck], T0)
    assert change is not None and not change.opened and "stuck" in change.reason


CRIT = CheckResult("ami_link", State.CRITICAL, "AMI link down")
FINE = CheckResult("ami_link", State.OK)
CANARY_FAILED = CheckResult("canary", State.CRITICAL, "no speech on the collector leg", cleared_by_canary=True)


def test_the_gate_starts_closed_and_opens_only_after_a_canary():
    gate = DialingGate()
    assert not gate.is_open and gate.wants_canary
    assert gate.observe([FINE], T0) is None and not gate.is_open
    change = gate.canary_passed(T0)
    assert change.opened and gate.is_open


def test_a_critical_closes_and_recovery_alone_does_not_reopen():
    gate = DialingGate(GateState.OPEN, "")
    change = gate.observe([CRIT, FINE], T0)
    assert change is not None and not change.opened and "AMI link down" in change.reason
    assert gate.canary_passed(T0) is None and not gate.is_open, "a canary cannot open over a critical"
    assert gate.observe([FINE], T0) is None and gate.wants_canary
    assert gate.canary_passed(T0).opened


def test_an_unrecorded_call_closes_until_a_canary_proves_the_chain():
    gate = DialingGate(GateState.OPEN, "")
    incident = checks.recording_failures(["a1"])
    assert incident.cleared_by_canary
    assert not gate.observe([FINE, incident], T0).opened and gate.wants_canary
    assert gate.canary_passed(T0).opened


def test_a_failed_canary_closes_and_only_a_passing_one_reopens():
    gate = DialingGate(GateState.OPEN, "")
    assert not gate.observe([FINE, CANARY_FAILED], T0).opened
    assert gate.wants_canary
    assert gate.observe([FINE], T0) is None and not gate.is_open
    assert gate.canary_passed(T0).opened


ops = st.lists(st.one_of(st.tuples(st.just("observe"), st.lists(st.sampled_from([CRIT, FINE, CANARY_FAILED]),
                                                                 max_size=3)),
                         st.tuples(st.just("canary"), st.none())), max_size=30)


@settings(max_examples=300)
@given(ops)
def test_the_gate_is_never_open_while_a_check_is_critical_nor_opened_without_a_canary(sequence):
    gate = DialingGate()
    last_results: list[CheckResult] = []
    for op, results in sequence:
        was_open = gate.is_open
        if op == "observe":
            last_results = results
            change = gate.observe(results, T0)
            assert not (change and change.opened), "only a canary opens the gate"
            if any(r.critical for r in results):
                assert not gate.is_open
        else:
            gate.canary_passed(T0)
            if gate.is_open and not was_open:
                assert not any(r.critical and not r.cleared_by_canary for r in last_results)


def test_the_spool_must_stay_writable_by_its_owner_at_start():
    from recorder.watchdog.checks import DirectoryAccess, spool_writable

    pbx = dict(path="/spool", writer_uid=101, writer_gid=102)
    assert not spool_writable(DirectoryAccess(**pbx, exists=True, uid=101, gid=102, mode=0o40750)).critical
    assert spool_writable(DirectoryAccess(**pbx, exists=True, uid=101, gid=102, mode=0o40555)).critical
    chowned = spool_writable(DirectoryAccess(**pbx, exists=True, uid=0, gid=0, mode=0o40755))
    assert chowned.critical and "not writable by uid 101" in chowned.reason
    assert not spool_writable(DirectoryAccess(**pbx, exists=True, uid=0, gid=102, mode=0o40775)).critical
    assert spool_writable(DirectoryAccess(**pbx, exists=False)).critical
    assert "read-only" in spool_writable(DirectoryAccess(**pbx, exists=True, uid=101, gid=102, mode=0o40750,
                                                         read_only_mount=True)).reason
    assert not spool_writable(None).critical


# -- the cursor over new recordings (flag_watch.Cursor) ------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.data())
def test_the_cursor_misses_no_id_whatever_the_commit_order(data):
    """Ids are handed out 1..n in order but committed in any order (PostgreSQL: a sequence
    value is taken at insert, seen at commit), with looks in between: every committed id
    is read by some look, as long as it commits within the grace time of its hole."""
    from recorder.watchdog.flag_watch import Cursor

    n = data.draw(st.integers(1, 40))
    commit_order = data.draw(st.permutations(range(1, n + 1)))
    looks_after = data.draw(st.sets(st.integers(0, n)))  # look after this many commits
    cursor, committed, read = Cursor(), set(), set()

    def look(now):
        ids = {i for i in committed if i > cursor.last_id or i in cursor.holes}
        read.update(ids)
        cursor.read(ids, now)
        cursor.expire(now, grace_s=1000)

    for count, i in enumerate(commit_order):
        if count in looks_after:
            look(float(count))
        committed.add(i)
    look(float(n))
    assert read == set(range(1, n + 1))
    assert not cursor.holes and cursor.last_id == n


def test_holes_expire_and_a_jump_of_ids_is_bounded():
    from recorder.watchdog import flag_watch
    from recorder.watchdog.flag_watch import Cursor

    cursor = Cursor()
    cursor.read([1, 2, 5], now=0.0)
    assert (cursor.last_id, sorted(cursor.holes)) == (5, [3, 4])
    cursor.read([4], now=1.0)  # a hole filled: asked no more
    assert sorted(cursor.holes) == [3]
    cursor.expire(now=500.0, grace_s=600)
    assert sorted(cursor.holes) == [3]
    cursor.expire(now=601.0, grace_s=600)  # a rolled-back insert: forgotten after the grace time
    assert not cursor.holes
    cursor.read([5 + 10 * flag_watch.MAX_HOLES], now=602.0)  # ids jumped (a sequence moved on)
    assert len(cursor.holes) == flag_watch.MAX_HOLES and min(cursor.holes) == 5 + 9 * flag_watch.MAX_HOLES


def test_a_busy_database_holds_dials_back_a_stuck_one_closes_the_gate():
    """A burst of dials and hang-ups can keep SQLite's write lock past its busy timeout for a
    moment: the facts wait in the journal and land within a second or two. That is busy
    (warn, back-pressure), not a database that takes no writes (critical)."""
    assert checks.database_writes(0, 0.0).state is State.OK
    busy = checks.database_writes(3, 1.0, stuck_after_s=3.0)
    assert (busy.state, busy.back_pressure) == (State.WARN, True) and "busy" in busy.reason
    stuck = checks.database_writes(3, 3.0, stuck_after_s=3.0)
    assert (stuck.state, stuck.back_pressure) == (State.CRITICAL, False) and "takes no writes" in stuck.reason


def test_a_database_that_still_takes_facts_is_busy_however_old_the_oldest_waiting_one():
    """bench-load's burst of 100 (dials tried again after their 503) kept facts waiting 17 s
    while the database took others all along: busy, not stuck. Only a database that takes
    none for `stuck_after_s`, or a fact starved for `starved_after_s`, closes the gate."""
    busy = checks.database_writes(12, 17.0, 0.4, stuck_after_s=3.0)
    assert (busy.state, busy.back_pressure) == (State.WARN, True)
    stuck = checks.database_writes(12, 17.0, 3.2, stuck_after_s=3.0)
    assert stuck.state is State.CRITICAL and "nothing written for 3 s" in stuck.reason
    starved = checks.database_writes(12, 61.0, 0.1, stuck_after_s=3.0, starved_after_s=60.0)
    assert starved.state is State.CRITICAL
