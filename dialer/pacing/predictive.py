"""Our predictive pacer: look ahead, dial while the next call is worth its abandon risk,
and spend the abandon budget the campaign has (3 % of answered calls over 30 days).

Each second (scenarios.py, forecast.py): from when the calls in flight will be answered
and when the collectors on calls and in wrap-up will be free, each conditional on how long
it has lasted, the pacer computes what one more dial would add to the expected abandons of
the next ~30 s, and dials while that stays within `theta` abandons per answer the dial
brings, adding the dials one by one to the scenarios. Dialling by the margin, not by an
average, is what buys occupancy: the first dials of a second cost nothing, only the last
one costs up to theta (a Lagrangian: the most connected calls for the abandons spent).

Two rules hold the 30-day budget (target x answered - abandoned: the abandons the campaign
can still afford):

- the plan (the calls in flight and the new dials) may expect at most the abandons the
  budget can pay for, counting the answers the plan itself will bring; when even the calls
  already in flight cannot be paid for, the pacer dials at most progressive (a line per
  ready collector not already covered), which abandons nothing, until the budget recovers;
- theta follows the slack kept in reserve: theta = `theta_ref` x exp(s / `slack_scale`)
  within [`min_theta`, `max_theta`], where s = (target - `margin`) x answered - abandoned
  - `reserve`. The slack is the running sum of past error, so this acts like an integral
  controller: a campaign under its target spends the difference, one over it tightens at
  once, and the rate settles near target - margin with a few abandons in hand, whatever
  the floor. The reserve matters on small floors, where abandons come in clumps: touching
  the hard budget means minutes of progressive dialling (measured: 20 collectors lost up
  to 8 points of occupancy that way with no reserve and a slower controller).

`max_theta` bounds how fast a campaign with much slack (a quiet month) spends it: about
twice the target's rate at most, not a burst of abandons.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dialer.pacing.distributions import Duration
from dialer.pacing.forecast import (
    Tables,
    after_talk_table,
    after_wrap_table,
    answers_table,
    in_flight_cdfs,
    quantile_steps,
    support_end,
)
from dialer.pacing.pacer import uncovered_ready
from dialer.pacing.scenarios import Design, expected_abandons, next_dial_abandons, row_index, shortfall_paths, with_dials
from dialer.pacing.snapshot import ABANDON_AFTER_S, Observed, Snapshot

MAX_HORIZON_S = 120


class Predictive:
    """Look-ahead pacer that holds the campaign's abandon rate to its 30-day target."""

    name = "predictive"

    def __init__(self, *, theta: float | None = None, theta_ref: float = 0.035, min_theta: float = 0.005,
                 max_theta: float = 0.1, slack_scale: float = 3.0, margin: float = 0.002, reserve: float = 3.0,
                 max_lines_per_collector: float = 5.0, scenarios: int = 128, seed: int = 20261203,
                 grace_s: float = ABANDON_AFTER_S) -> None:
        self.fixed_theta = theta
        self.theta_ref, self.min_theta, self.max_theta = theta_ref, min_theta, max_theta
        self.slack_scale, self.margin, self.reserve = slack_scale, margin, reserve
        self.max_lines_per_collector = max_lines_per_collector
        self.grace = int(round(grace_s))
        self.design = Design(scenarios, seed)
        self._cache = _TableCache(self.grace)

    # -- the budget ------------------------------------------------------------------

    def theta(self, snapshot: Snapshot) -> float:
        """Expected abandons per answer the next dial may add."""
        if self.fixed_theta is not None:
            return self.fixed_theta
        counts = snapshot.window
        slack = (snapshot.target_abandon_rate - self.margin) * counts.answered - counts.abandoned - self.reserve
        theta = self.theta_ref * math.exp(max(-50.0, min(50.0, slack / self.slack_scale)))
        return min(self.max_theta, max(self.min_theta, theta))

    # -- the decision ------------------------------------------------------------------

    def lines_to_dial(self, snapshot: Snapshot) -> int:
        in_flight = len(snapshot.ringing) + len(snapshot.waiting)
        cap = max(0, math.floor(snapshot.working * self.max_lines_per_collector) - in_flight)
        progressive = min(cap, uncovered_ready(snapshot))
        answer_rate = snapshot.observed.answer_rate
        if cap == 0 or answer_rate <= 0.0:
            return progressive
        tables = self._cache.tables(snapshot.observed)
        start = self.design.start(int(snapshot.now), snapshot.working + in_flight + cap)
        paths = shortfall_paths(tables, self.design, start=start, ready=len(snapshot.ready),
                                waiting=len(snapshot.waiting), on_call=snapshot.on_call,
                                wrap_up=snapshot.wrap_up, ringing=snapshot.ringing)
        plans: dict[int, np.ndarray] = {}

        def plan(n: int) -> np.ndarray:
            if n not in plans:
                plans[n] = with_dials(paths, tables, self.design, start, n)
            return plans[n]

        limit = self.theta(snapshot) * answer_rate  # abandons the n-th dial may add for its answers
        worth_it = largest(lambda n: next_dial_abandons(plan(n - 1), tables.new_dial) <= limit, cap)
        # the plan's expected abandons must fit the 30-day budget, counting its own answers
        target, counts = snapshot.target_abandon_rate, snapshot.window
        answers_in_flight = float(tables.answers[row_index(snapshot.ringing, len(tables.answers)), -1].sum())

        def affordable(n: int) -> bool:
            budget = target * (counts.answered + answers_in_flight + n * answer_rate) - counts.abandoned
            return expected_abandons(plan(n)) <= budget

        if affordable(worth_it):
            return worth_it
        within = largest(affordable, worth_it - 1) if affordable(0) else 0
        return max(within, min(progressive, worth_it))


def largest(holds: Callable[[int], bool], cap: int) -> int:
    """The largest n in 0..cap with holds(n), for `holds` true for 1..some n and false after
    (risk grows with every dial): gallop, then bisect. Usually n is a handful; at the start
    of a shift it is in the hundreds."""
    if cap < 1 or not holds(1):
        return 0
    good, bad = 1, cap + 1
    while good < cap:
        trial = min(cap, good * 2)
        if not holds(trial):
            bad = trial
            break
        good = trial
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if holds(mid) else (good, mid)
    return good


class _TableCache:
    """The look-ahead tables, rebuilt only when the observed distributions change (by
    identity: production refits them now and then, the simulator never) or the answer
    rate moves by more than 0.005."""

    def __init__(self, grace: int) -> None:
        self.grace = grace
        self._key: tuple[object, ...] = ()
        self._supply_key: tuple[object, ...] = ()
        self._flight_key: tuple[object, ...] = ()
        self._tables: Tables | None = None

    def tables(self, observed: Observed) -> Tables:
        rate = round(observed.answer_rate * 200) / 200
        key = (observed.talk, observed.wrap_up, observed.ring_to_answer, observed.unanswered, rate)
        if self._tables is not None and _same(key, self._key):
            return self._tables
        horizon = self._horizon(observed.ring_to_answer, observed.unanswered)
        supply_key = (observed.talk, observed.wrap_up, horizon)
        if not _same(supply_key, self._supply_key):
            self._talk = after_talk_table(observed.talk, observed.wrap_up, horizon, self.grace)
            self._wrap = after_wrap_table(observed.wrap_up, horizon, self.grace)
            self._talk_steps, self._wrap_steps = quantile_steps(self._talk), quantile_steps(self._wrap)
            self._supply_key = supply_key
        flight_key = (observed.ring_to_answer, observed.unanswered, horizon)
        if not _same(flight_key, self._flight_key):
            self._answer_cdf, self._gone_cdf = in_flight_cdfs(observed.ring_to_answer, observed.unanswered, horizon)
            self._flight_key = flight_key
        answers = answers_table(self._answer_cdf, self._gone_cdf, rate, horizon)
        self._tables = Tables(horizon, answers, self._talk, self._wrap, quantile_steps(answers),
                              self._talk_steps, self._wrap_steps)
        self._key = key
        return self._tables

    def _horizon(self, ring_to_answer: Duration, unanswered: Duration) -> int:
        """Long enough for every call in flight to be answered or gone, plus the grace."""
        in_flight = max(support_end(ring_to_answer), support_end(unanswered))
        return min(MAX_HORIZON_S, int(math.ceil(in_flight)) + self.grace)


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    return len(a) == len(b) and all(x is y or (isinstance(x, (int, float)) and x == y) for x, y in zip(a, b))
