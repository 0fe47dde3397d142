"""The retention rules (pure): purgeable, shared objects, store holds, leftovers, extension."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings, strategies as st

from recorder.retention import (HoldFacts, Reason, RecordingFacts, extended, extension_for, held_keys,
                                keys_to_delete, leftover_keys, plan_purge, purgeable)

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def rec(rid: int, case: str = "C1", days: int = 0, keys: tuple[str, ...] | None = None,
        purged: bool = False) -> RecordingFacts:
    return RecordingFacts(rid, f"{rid:032x}", case, T0 + timedelta(days=days),
                          keys if keys is not None else (f"m{rid}", f"rx{rid}", f"tx{rid}"),
                          T0 if purged else None)


def test_expired_and_not_held_may_go():
    verdict = purgeable(rec(1), [], T0)
    assert (verdict.purge, verdict.reason) == (True, Reason.EXPIRED)


def test_not_before_retain_until():
    verdict = purgeable(rec(1, days=1), [], T0 + timedelta(hours=23, minutes=59))
    assert (verdict.purge, verdict.reason) == (False, Reason.RETAINED)
    assert "retained until" in verdict.detail


def test_a_hold_on_the_case_or_the_recording_keeps_it_whatever_its_age():
    old = T0 + timedelta(days=10_000)
    assert purgeable(rec(1), [HoldFacts(7, "C1", None)], old).reason is Reason.HELD
    assert purgeable(rec(1), [HoldFacts(8, None, 1)], old).reason is Reason.HELD
    assert "#8" in purgeable(rec(1), [HoldFacts(8, None, 1)], old).detail


def test_released_holds_and_holds_elsewhere_do_not_keep_it():
    holds = [HoldFacts(1, "C1", None, released_at=T0), HoldFacts(2, "C2", None), HoldFacts(3, None, 99)]
    assert purgeable(rec(1), holds, T0).purge


def test_a_tombstone_is_not_purged_twice():
    assert purgeable(rec(1, purged=True), [], T0).reason is Reason.ALREADY_PURGED


def test_a_shared_object_goes_with_the_last_recording_that_references_it():
    a, b = rec(1, keys=("shared", "a1")), rec(2, keys=("shared", "b1"))
    assert keys_to_delete(a, [a, b]) == (("a1",), ("shared",))
    plan = plan_purge([a, b], [], T0)
    assert [(p.delete, p.shared) for p in plan.purge] == [(("a1",), ("shared",)), (("shared", "b1"), ())]


def test_a_shared_object_stays_while_a_held_recording_references_it():
    a, b = rec(1, keys=("shared", "a1")), rec(2, case="C2", keys=("shared", "b1"))
    plan = plan_purge([a, b], [HoldFacts(1, "C2", None)], T0)
    assert [(p.recording.recording_id, p.delete, p.shared) for p in plan.purge] == [(1, ("a1",), ("shared",))]
    assert [(r.recording_id, v.reason) for r, v in plan.kept] == [(2, Reason.HELD)]


def test_only_candidates_may_go_and_the_others_keep_their_objects():
    a, b = rec(1, keys=("shared", "a1")), rec(2, keys=("shared", "b1"))
    plan = plan_purge([a, b], [], T0, candidates=frozenset({2}))
    assert [(p.recording.recording_id, p.delete) for p in plan.purge] == [(2, ("b1",))]


def test_held_keys_cover_every_file_of_held_live_recordings():
    a, b, c = rec(1, keys=("s", "a")), rec(2, case="C2", keys=("s", "b")), rec(3, case="C3", purged=True)
    assert held_keys([a, b, c], [HoldFacts(1, "C2", None), HoldFacts(2, "C3", None)]) == {"s", "b"}


def test_leftovers_are_objects_of_tombstones_no_live_recording_needs():
    a, b = rec(1, keys=("s", "a"), purged=True), rec(2, keys=("s", "b"))
    assert leftover_keys([a, b]) == {"a"}


def test_retention_is_only_ever_extended():
    call = datetime(2026, 5, 1, tzinfo=timezone.utc)
    assert extension_for(datetime(2029, 5, 1, tzinfo=timezone.utc), call, 5) == datetime(2031, 5, 1, tzinfo=timezone.utc)
    assert extension_for(datetime(2029, 5, 1, tzinfo=timezone.utc), call, 3) is None
    assert extension_for(datetime(2029, 5, 1, tzinfo=timezone.utc), call, 1) is None
    assert extended(T0, T0 - timedelta(days=1)) == T0


# -- properties ------------------------------------------------------------------------

recordings = st.lists(
    st.builds(lambda rid_case, days, keys, purged: rec(rid_case[0], rid_case[1], days, keys, purged),
              st.tuples(st.integers(1, 8), st.sampled_from(["C1", "C2", "C3"])),
              st.integers(-5, 5), st.lists(st.sampled_from(["k1", "k2", "k3", "k4", "k5"]), min_size=1,
                                           max_size=3).map(tuple), st.booleans()),
    max_size=8, unique_by=lambda r: r.recording_id)
holds = st.lists(st.builds(HoldFacts, st.integers(1, 50), st.one_of(st.none(), st.sampled_from(["C1", "C2", "C3"])),
                           st.one_of(st.none(), st.integers(1, 8)),
                           st.one_of(st.none(), st.just(T0))), max_size=5)
moments = st.integers(-7, 7).map(lambda d: T0 + timedelta(days=d))


@settings(max_examples=250)
@given(recordings, holds, moments)
def test_nothing_held_or_retained_is_ever_planned_for_purge(recs, hs, now):
    plan = plan_purge(recs, hs, now)
    for planned in plan.purge:
        r = planned.recording
        assert r.live and now >= r.retain_until
        assert not any(h.live and h.covers(r) for h in hs)
    planned_ids = {p.recording.recording_id for p in plan.purge}
    kept_ids = {r.recording_id for r, _ in plan.kept}
    assert planned_ids | kept_ids == {r.recording_id for r in recs if r.live}
    assert not planned_ids & kept_ids


@settings(max_examples=250)
@given(recordings, holds, moments)
def test_no_object_a_survivor_references_is_ever_deleted(recs, hs, now):
    plan = plan_purge(recs, hs, now)
    going = {p.recording.recording_id for p in plan.purge}
    survivors_need = {k for r in recs if r.live and r.recording_id not in going for k in r.keys}
    deleted = [k for p in plan.purge for k in p.delete]
    assert not survivors_need & set(deleted)
    assert len(deleted) == len(set(deleted)), "each object is deleted once"
    every_key_of_the_going = {k for p in plan.purge for k in p.recording.keys}
    assert every_key_of_the_going - survivors_need == set(deleted), "nothing left behind either"


@settings(max_examples=150)
@given(recordings, holds, moments, moments)
def test_a_purge_allowed_now_is_allowed_later_unless_a_hold_comes(recs, hs, now, later):
    if later < now:
        now, later = later, now
    for r in recs:
        if purgeable(r, hs, now).purge:
            assert purgeable(r, hs, later).purge
