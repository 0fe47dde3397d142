"""The floor simulator: seeded, exact on floors simple enough to count by hand, and the
pacers measured on a short simulated shift (simulated seconds, not wall time)."""
from __future__ import annotations

import pytest

from dialer.pacing import Fixed, Predictive, Progressive, Snapshot, VicidialAdaptive
from dialer.simulation import Floor, simulate

CLOCKWORK = Floor(collectors=1, answer_rate=1.0, hours=1.0, ring_to_answer=Fixed(5.0), talk=Fixed(100.0),
                  wrap_up=Fixed(20.0), unanswered=Fixed(26.0))


def test_same_seed_same_shift():
    floor = Floor(collectors=10, answer_rate=0.3, hours=0.25)
    assert simulate(floor, Predictive(), seed=7) == simulate(floor, Predictive(), seed=7)
    assert simulate(floor, Progressive(), seed=7) != simulate(floor, Progressive(), seed=8)


def test_occupancy_of_a_clockwork_floor():
    """Dial, 5 s ringing, 100 s talk, 20 s wrap-up, dial again: 100 of every 125 s talking."""
    result = simulate(CLOCKWORK, Progressive(), seed=1)
    assert result.placed == result.answered == 29 and result.abandoned == 0
    assert result.occupancy == pytest.approx((28 * 100 + 95) / 3600)  # the 29th, answered at 3505 s, is cut at 3600


class TwoPerReady:
    """Two lines for every ready collector with no call on the way."""

    name = "two-per-ready"

    def lines_to_dial(self, snapshot: Snapshot) -> int:
        return 2 * len(snapshot.ready) if not snapshot.ringing and not snapshot.waiting else 0


def test_an_answered_call_without_a_collector_within_2_s_is_abandoned():
    result = simulate(CLOCKWORK, TwoPerReady(), seed=1)
    assert result.answered > 40 and result.abandoned * 2 == result.answered


def test_progressive_never_abandons():
    result = simulate(Floor(collectors=20, answer_rate=0.3, hours=1.0), Progressive(), seed=3)
    assert result.answered > 200 and result.abandoned == 0


def test_ours_keeps_abandons_within_3_percent_and_beats_both_baselines():
    floor = Floor(collectors=20, answer_rate=0.3, hours=2.0)
    ours = simulate(floor, Predictive(), seed=11)
    assert ours.abandon_rate <= 0.03
    assert ours.occupancy > simulate(floor, VicidialAdaptive(), seed=11).occupancy + 0.05
    assert ours.occupancy > simulate(floor, Progressive(), seed=11).occupancy + 0.05
