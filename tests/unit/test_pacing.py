"""The pacers on hand-built snapshots: no event loop, no clock, no wall time."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dialer.pacing import (
    CallCounts,
    Clipped,
    Empirical,
    Fixed,
    LogNormal,
    Mixture,
    Observed,
    Predictive,
    Progressive,
    Snapshot,
    Uniform,
    VicidialAdaptive,
)
from dialer.pacing.forecast import after_wrap_table, answers_table, in_flight_cdfs, quantile_steps
from dialer.pacing.scenarios import next_dial_abandons
from dialer.pacing.vicidial import Sample, adapted_level, lines_at_level

OBSERVED = Observed(answer_rate=0.3)
# a talk that cannot end within the look-ahead of a call that started 5 s ago
LONG_TALK = replace(OBSERVED, talk=Uniform(120.0, 180.0))
HEALTHY = CallCounts(placed=20_000, answered=6_000, abandoned=120)  # 2 %: budget to spend
OVER = CallCounts(placed=20_000, answered=6_000, abandoned=300)  # 5 %: budget gone


def floor(**fields) -> Snapshot:
    base = dict(now=1000.0, observed=OBSERVED, window=HEALTHY, today=HEALTHY)
    return Snapshot(**(base | fields))


# -- progressive ---------------------------------------------------------------------

def test_progressive_dials_one_line_per_ready_collector_not_covered():
    assert Progressive().lines_to_dial(floor(ready=(1.0, 2.0, 3.0))) == 3
    assert Progressive().lines_to_dial(floor(ready=(1.0, 2.0, 3.0), ringing=(4.0,))) == 2
    assert Progressive().lines_to_dial(floor(ready=(1.0, 2.0, 3.0), ringing=(4.0,), waiting=(0.5,))) == 1
    assert Progressive().lines_to_dial(floor(ready=(1.0,), ringing=(4.0, 5.0))) == 0


def test_progressive_counts_neither_paused_nor_reserved_collectors():
    assert Progressive().lines_to_dial(floor(paused=(10.0,) * 5, reserved=(3.0,) * 2, on_call=(50.0,))) == 0


# -- every pacer: nothing ready, nothing about to free -------------------------------

NOBODY_SOON = dict(observed=LONG_TALK, on_call=(5.0,) * 10, paused=(60.0,) * 3)


@pytest.mark.parametrize("make", [Progressive, VicidialAdaptive, Predictive])
def test_no_ready_collector_and_none_about_to_free_means_no_line(make):
    pacer = make()
    for second in range(40):  # VICIdial's level only moves every 15 s: give it time
        assert pacer.lines_to_dial(floor(now=1000.0 + second, **NOBODY_SOON)) == 0


def test_predictive_dials_ahead_for_collectors_about_to_free():
    """Ten collectors all but done with wrap-up and none ready: progressive waits, ours dials."""
    snapshot = floor(wrap_up=(29.0,) * 10)
    assert Progressive().lines_to_dial(snapshot) == 0
    assert Predictive().lines_to_dial(snapshot) > 10


# -- predictive -----------------------------------------------------------------------

def test_predictive_dials_more_than_progressive_with_budget_to_spend():
    snapshot = floor(ready=(2.0,) * 3, on_call=tuple(float(s) for s in range(30, 330, 20)), wrap_up=(12.0, 25.0))
    assert Predictive().lines_to_dial(snapshot) > Progressive().lines_to_dial(snapshot)


def test_predictive_falls_back_to_at_most_progressive_when_the_budget_is_spent():
    busy = dict(ready=(2.0,) * 3, on_call=tuple(float(s) for s in range(30, 330, 20)), wrap_up=(12.0, 25.0))
    spent = floor(window=OVER, today=OVER, **busy)
    assert Predictive().lines_to_dial(spent) <= Progressive().lines_to_dial(spent) == 3
    assert Predictive().lines_to_dial(floor(**busy)) > 3  # the same floor with budget left


def test_predictive_never_counts_paused_collectors():
    busy = floor(ready=(2.0,) * 3, on_call=tuple(float(s) for s in range(30, 330, 20)), wrap_up=(12.0,))
    pacer = Predictive()
    assert pacer.lines_to_dial(replace(busy, paused=(0.0,) * 40 + (3600.0,) * 40)) == pacer.lines_to_dial(busy)


def test_predictive_counts_ringing_calls():
    busy = floor(ready=(2.0,) * 4, on_call=tuple(float(s) for s in range(30, 330, 20)), wrap_up=(12.0, 25.0))
    pacer = Predictive()
    alone = pacer.lines_to_dial(busy)
    assert alone > 0
    assert pacer.lines_to_dial(replace(busy, ringing=(3.0,) * alone)) < alone
    assert pacer.lines_to_dial(replace(busy, ringing=(3.0,) * 40)) == 0


def test_predictive_tightens_as_the_running_rate_nears_the_target():
    pacer = Predictive()
    loose = pacer.theta(floor(window=CallCounts(20_000, 6_000, 60)))
    near = pacer.theta(floor(window=CallCounts(20_000, 6_000, 170)))
    assert loose > near >= pacer.min_theta


def test_same_snapshot_same_answer():
    snapshot = floor(ready=(1.0,), on_call=tuple(float(s) for s in range(10, 400, 13)), ringing=(1.0, 7.0, 15.0))
    assert len({Predictive().lines_to_dial(snapshot) for _ in range(3)}) == 1


ELAPSED = st.lists(st.floats(min_value=0.0, max_value=10_000.0, allow_nan=False), max_size=40).map(tuple)


@settings(max_examples=60, deadline=None)
@given(ready=ELAPSED, on_call=ELAPSED, wrap_up=ELAPSED, paused=ELAPSED, ringing=ELAPSED,
       waiting=st.lists(st.floats(0.0, 2.0), max_size=5).map(tuple),
       answer_rate=st.floats(0.0, 1.0), answered=st.integers(0, 10_000), abandoned_share=st.floats(0.0, 1.0))
def test_predictive_never_returns_a_negative_or_absurd_number(ready, on_call, wrap_up, paused, ringing, waiting,
                                                             answer_rate, answered, abandoned_share):
    counts = CallCounts(placed=answered * 4, answered=answered, abandoned=int(answered * abandoned_share))
    snapshot = floor(observed=Observed(answer_rate=answer_rate), ready=ready, on_call=on_call, wrap_up=wrap_up,
                     paused=paused, ringing=ringing, waiting=waiting, window=counts, today=counts)
    lines = Predictive().lines_to_dial(snapshot)
    assert isinstance(lines, int)
    assert 0 <= lines <= max(0, 5 * snapshot.working - len(ringing) - len(waiting))


# -- the VICIdial baseline ------------------------------------------------------------

def test_vicidial_at_level_one_is_progressive_and_counts_calls_up():
    snapshot = floor(ready=(1.0,) * 4, on_call=(30.0,) * 6, ringing=(2.0,), paused=(5.0,) * 9)
    assert lines_at_level(1.0, snapshot) == Progressive().lines_to_dial(snapshot) == 3
    assert lines_at_level(2.0, snapshot) == 20 - 6 - 1


def test_vicidial_level_moves_every_15_s_by_the_idle_share():
    pacer = VicidialAdaptive()
    idle = floor(ready=(1.0,) * 5, on_call=(30.0,) * 15, window=CallCounts(), today=CallCounts())
    for second in range(15):
        pacer.lines_to_dial(replace(idle, now=1000.0 + second))
        assert pacer.level == 1.0
    pacer.lines_to_dial(replace(idle, now=1015.0))
    assert pacer.level == pytest.approx(1.25)  # 1.0 x (1 + 5 idle / 20 agents)


def test_vicidial_level_is_capped_and_braked_by_todays_drops():
    samples = [Sample(ready=20, waiting=0, agents=20)] * 15
    assert adapted_level(2.9, samples, CallCounts(), 0.03) == 3.0
    assert adapted_level(2.9, samples, CallCounts(placed=51, answered=20, abandoned=1), 0.03) == 1.0
    assert adapted_level(2.9, samples, CallCounts(placed=50, answered=20, abandoned=1), 0.03) == 3.0  # too few calls
    assert adapted_level(1.5, [Sample(ready=0, waiting=10, agents=20)] * 15, CallCounts(), 0.03) == 1.0


# -- the model's parts -----------------------------------------------------------------

def test_wrap_up_table_is_certain_at_the_end_of_the_range():
    table = after_wrap_table(Uniform(10.0, 30.0), horizon=28, grace=2)
    assert table[29, 0] == pytest.approx(1.0)  # 29 s into a 10-30 s wrap-up: free within 1 s
    assert table[0, 7] == 0.0  # free within 8 + 2 s of starting: impossible
    assert table[0, 17] == pytest.approx(0.5)  # within 18 + 2 s: half of them


def test_calls_that_ring_long_are_less_likely_to_be_answered():
    answer_cdf, gone_cdf = in_flight_cdfs(Clipped(LogNormal(12.0, 4.0), 1.0, 25.0), Fixed(26.0), 28)
    table = answers_table(answer_cdf, gone_cdf, 0.3, 28)
    assert table[0, -1] == pytest.approx(0.3, abs=1e-3)
    assert table[20, -1] < table[5, -1] < table[0, -1] + 0.05
    assert table[26].max() == 0.0  # rung out


def test_past_the_fast_failures_a_call_is_more_likely_to_be_answered():
    unanswered = Mixture(((0.5, Uniform(2.0, 4.0)), (0.5, Fixed(26.0))))
    answer_cdf, gone_cdf = in_flight_cdfs(LogNormal(12.0, 4.0), unanswered, 28)
    table = answers_table(answer_cdf, gone_cdf, 0.3, 28)
    assert table[5, -1] > table[0, -1]


def test_quantile_steps_draw_with_the_table_probabilities():
    table = after_wrap_table(Uniform(10.0, 30.0), horizon=28, grace=0)
    steps = quantile_steps(table)[0]  # a wrap-up just started
    for k in (10, 15, 20, 27):
        assert (steps < k).mean() == pytest.approx(table[0, k - 1], abs=2e-3)


def test_next_dial_costs_nothing_with_an_idle_collector_and_everything_without():
    answered_by = np.linspace(0.03, 0.3, 10)  # P(a new dial is answered by step k)
    idle = np.full((4, 10), -1.0)
    assert next_dial_abandons(idle, answered_by) == 0.0
    assert next_dial_abandons(idle + 1.0, answered_by) == pytest.approx(0.3)
    # no collector at the first step only: only a dial answered that early is lost
    recovering = np.array([[0.0] + [-1.0] * 9])
    assert next_dial_abandons(recovering, answered_by) == pytest.approx(0.03)
    # two calls too many at step 3, then a collector frees: the pool is empty until step 3
    peak = np.array([[-1.0, 0.0, 1.0, 2.0, 1.0, 0.0, -1.0, -1.0, -1.0, -1.0]])
    assert next_dial_abandons(peak, answered_by) == pytest.approx(answered_by[3])


def test_empirical_durations():
    dist = Empirical((3.0, 1.0, 2.0, 2.0))
    assert dist.samples == (1.0, 2.0, 2.0, 3.0)
    assert dist.cdf(2.0) == 0.75 and dist.cdf(0.5) == 0.0 and dist.mean == 2.0
    with pytest.raises(ValueError):
        Empirical(())


def test_snapshot_refuses_negative_or_unknown_times():
    with pytest.raises(ValueError):
        floor(ready=(-1.0,))
    with pytest.raises(ValueError):
        floor(ringing=(float("nan"),))
    with pytest.raises(ValueError):
        CallCounts(placed=10, answered=5, abandoned=6)
