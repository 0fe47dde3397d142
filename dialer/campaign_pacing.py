"""From the floor to a pacer's snapshot, and the lines each running campaign gets (pure).

The floor is shared: a collector's seat takes the next answered debtor of whichever running
campaign. Every tick each running campaign's pacer is asked in turn (by campaign id) with
the whole floor, every call in flight (all campaigns': they compete for the same
collectors, including the lines granted to the campaigns asked before it in this tick) and
its own 30-day counts and abandon target; so two campaigns never both dial for one ready
collector, and each holds its own abandon budget.
"""
from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dialer.floor import Floor, Seat, SeatState
from dialer.pacing.pacer import Pacer
from dialer.pacing.distributions import Clipped, Duration, LogNormal
from dialer.pacing.snapshot import NO_ANSWER_TIMEOUT_S, RING_TO_ANSWER, TALK, CallCounts, Observed, Snapshot

PRIOR_ANSWER_RATE = 0.3  # a campaign with few calls yet: the rate it is assumed to have
PRIOR_WEIGHT = 20  # ... worth this many dials of its own
MAX_LINES_PER_TICK = 50  # however large the floor, a tick places at most this many calls


@dataclass(frozen=True, slots=True)
class InFlight:
    """A call the engine placed and that has no collector yet."""

    campaign_id: int
    since: float  # dialled (ringing) or answered (waiting), seconds on the floor's clock
    answered: bool = False


MIN_SAMPLES = 30  # below this many of its own calls a campaign is paced on the notes' figures
MIN_CV = 0.1  # a fitted spread is at least this share of the mean (a few equal calls are no certainty)


@dataclass(frozen=True, slots=True)
class Fitted:
    """A campaign's own ring-to-answer and talk time distributions, fitted from its calls."""

    ring_to_answer: Duration = RING_TO_ANSWER
    talk: Duration = TALK


def _log_normal(samples: Sequence[float], low: float = 0.5) -> LogNormal | None:
    values = [v for v in samples if v >= low and math.isfinite(v)]
    if len(values) < MIN_SAMPLES:
        return None
    mean = statistics.fmean(values)
    return LogNormal(mean, max(statistics.pstdev(values), MIN_CV * mean))


def fit(talk_s: Sequence[float], ring_s: Sequence[float], ring_timeout_s: float = NO_ANSWER_TIMEOUT_S) -> Fitted:
    """Log-normal talk (seconds with a collector) and ring-to-answer (held inside the ring
    timeout) from a campaign's recent calls; the notes' figures where it has too few."""
    talk = _log_normal(talk_s)
    ring = _log_normal(ring_s, low=0.0)
    return Fitted(ring_to_answer=RING_TO_ANSWER if ring is None else Clipped(ring, 0.5, max(1.0, ring_timeout_s - 1)),
                  talk=TALK if talk is None else talk)


@dataclass(frozen=True, slots=True)
class Running:
    """What the engine knows of one running campaign this tick."""

    campaign_id: int
    pacer: Pacer
    window: CallCounts  # the rolling 30 days
    target_abandon_rate: float
    fitted: Fitted = Fitted()  # the same objects between refits: the pacer's tables are cached by identity


def answer_rate(window: CallCounts) -> float:
    """The campaign's observed answer rate, shrunk towards the prior while it has few calls."""
    return (window.answered + PRIOR_ANSWER_RATE * PRIOR_WEIGHT) / (window.placed + PRIOR_WEIGHT)


def floor_snapshot(floor: Floor, seats: Iterable[Seat], now: float, calls: Sequence[InFlight],
                   running: Running) -> Snapshot:
    """The pacer's view of the floor at `now` for one campaign."""
    ready, reserved, on_call, wrap_up, paused = [], [], [], [], []
    for seat in seats:
        elapsed = max(0.0, now - seat.since)
        if seat.state is SeatState.CONNECTING or not seat.channel:
            continue
        if floor.is_ready(seat, now):
            ready.append(elapsed)
        elif seat.state is SeatState.RESERVED:
            reserved.append(elapsed)
        elif seat.state is SeatState.ON_CALL:
            on_call.append(elapsed)
        elif seat.state is SeatState.WRAP_UP:
            wrap_up.append(elapsed)
        elif seat.state is SeatState.PAUSED:
            paused.append(elapsed)
    return Snapshot(
        now=now, observed=Observed(answer_rate(running.window), ring_to_answer=running.fitted.ring_to_answer,
                                   talk=running.fitted.talk),
        ready=tuple(ready), reserved=tuple(reserved), on_call=tuple(on_call), wrap_up=tuple(wrap_up),
        paused=tuple(paused),
        ringing=tuple(max(0.0, now - c.since) for c in calls if not c.answered),
        waiting=tuple(max(0.0, now - c.since) for c in calls if c.answered),
        window=running.window, target_abandon_rate=running.target_abandon_rate)


def plan_tick(floor: Floor, seats: Sequence[Seat], now: float, calls: Sequence[InFlight],
              campaigns: Sequence[Running]) -> Mapping[int, int]:
    """Lines to dial now per running campaign (campaign id -> lines, zeros left out)."""
    in_flight = list(calls)
    plan: dict[int, int] = {}
    budget = MAX_LINES_PER_TICK
    for running in sorted(campaigns, key=lambda r: r.campaign_id):
        lines = min(budget, max(0, running.pacer.lines_to_dial(
            floor_snapshot(floor, seats, now, in_flight, running))))
        if lines:
            plan[running.campaign_id] = lines
            budget -= lines
            in_flight += [InFlight(running.campaign_id, now)] * lines
    return plan
