"""The dialer's clock against its witnesses (pure): the order decisions were written in, and
the PBX's own time of each call."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dialer.policy.clock_witness import TimedCall, TimedDecision, check_clock

T0 = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # 10:00 in Beijing


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_clock_that_agrees_with_the_pbx_and_runs_forward_is_clean():
    found = check_clock([TimedDecision(f"a{n}", at(n * 60)) for n in range(5)],
                        [TimedCall(f"a{n}", at(n * 60), at(n * 60 + 0.4)) for n in range(5)])
    assert found.breaches == () and found.checked == {"clock_order": 5, "clock_vs_pbx": 5}


def test_a_dialer_hours_off_is_named_on_every_call():
    """Its own audit would judge 23:00 Beijing as 15:00: the PBX's clock says otherwise."""
    off = timedelta(hours=8)
    calls = [TimedCall(f"a{n}", at(n * 60), at(n * 60) + off) for n in range(3)]
    found = check_clock([], calls)
    assert [b.attempt_id for b in found.breaches] == ["a0", "a1", "a2"]
    assert all(b.rule == "clock_vs_pbx" and "8.0 h later" in b.reason for b in found.breaches)


def test_a_clock_set_back_is_named_even_without_a_pbx_record():
    decisions = [TimedDecision("a1", at(0)), TimedDecision("a2", at(60)), TimedDecision("decision #7", at(-3600)),
                 TimedDecision("a4", at(61))]
    found = check_clock(decisions, [TimedCall("a2", at(60), None)])
    assert [(b.attempt_id, b.rule) for b in found.breaches] == [("decision #7", "clock_order")]
    assert "61 min before a2" in found.breaches[0].reason and found.unverified == ("a2",)


def test_small_differences_are_tolerated():
    found = check_clock([TimedDecision("a", at(1)), TimedDecision("b", at(0.5))],
                        [TimedCall("a", at(1), at(31))], tolerance_s=60, backwards_tolerance_s=1)
    assert found.breaches == ()
