"""A discrete-event simulation of one campaign's floor, to measure pacers against each other.

Pure: simulated seconds only (no wall clock), one seeded `random.Random`, every duration
injected. The same seed, floor and pacer give the same result, bit for bit.

The model (../shared/notes/rules-and-pacing.md):
- `collectors` collectors signed in for the whole shift (`hours`), none paused;
- every second the pacer is shown a `Snapshot` and the lines it asks for are dialled at once;
- a dial is answered with probability `answer_rate`, after `ring_to_answer` (~12 s);
  otherwise it ends after `unanswered`: busy and invalid numbers within seconds, the
  others ring out at the no-answer timeout (26 s);
- an answered call goes to the collector ready longest; with none ready it waits, and if no
  collector is ready within `abandon_after_s` (2 s) it hears the message: abandoned;
- a connected call lasts `talk`, then the collector wraps up (`wrap_up`), then is ready.

Reported: talk occupancy (talking seconds / logged-in seconds, calls cut at the shift's end),
abandon rate (abandoned / answered), calls placed, answered, abandoned. A 30-day window is
longer than a shift, so the simulator's "30-day" counts are the whole run's, and the
snapshot carries them as they stand each second: the pacer sees what it would in
production (for `VicidialAdaptive`, "since midnight" is the same whole run).

The pacer is given the floor's true distributions as its `Observed` summaries (what a
campaign fits from its previous days) and the answer rate measured so far, over the
dials whose outcome is known (placed long enough ago to be answered or gone: counting
the fast failures before the answers would read the rate low at the start), started
from the true rate weighted as `prior_dials` dials.
"""
from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field

from dialer.pacing.distributions import Duration
from dialer.pacing.forecast import support_end
from dialer.pacing.pacer import Pacer
from dialer.pacing.snapshot import (
    ABANDON_AFTER_S,
    DEFAULT_TARGET_ABANDON_RATE,
    RING_TO_ANSWER,
    TALK,
    UNANSWERED,
    WRAP_UP,
    CallCounts,
    Observed,
    Snapshot,
)

_TICK, _ANSWER, _NO_ANSWER, _GIVE_UP, _TALK_END, _WRAP_END = range(6)


@dataclass(frozen=True, slots=True)
class Floor:
    """One simulated campaign floor and shift."""

    collectors: int
    answer_rate: float
    hours: float = 8.0
    talk: Duration = TALK
    wrap_up: Duration = WRAP_UP
    ring_to_answer: Duration = RING_TO_ANSWER
    unanswered: Duration = UNANSWERED
    abandon_after_s: float = ABANDON_AFTER_S
    target_abandon_rate: float = DEFAULT_TARGET_ABANDON_RATE
    pacer_every_s: float = 1.0
    prior_dials: int = 100

    def __post_init__(self) -> None:
        if self.collectors < 1:
            raise ValueError("a floor needs at least one collector")
        if not 0.0 < self.answer_rate <= 1.0:
            raise ValueError(f"answer_rate must be within (0, 1], got {self.answer_rate}")
        if self.hours <= 0 or self.pacer_every_s <= 0:
            raise ValueError("hours and pacer_every_s must be positive")


@dataclass(frozen=True, slots=True)
class Result:
    """What one simulated shift measured."""

    pacer: str
    collectors: int
    answer_rate: float
    seconds: float
    placed: int
    answered: int
    abandoned: int
    talk_seconds: float

    @property
    def occupancy(self) -> float:
        """Share of logged-in time spent talking."""
        return self.talk_seconds / (self.collectors * self.seconds)

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(slots=True)
class _State:
    """The floor as it runs (mutable, private to one `simulate` call)."""

    ready: dict[int, float] = field(default_factory=dict)  # collector -> since; first = ready longest
    on_call: dict[int, float] = field(default_factory=dict)
    wrap_up: dict[int, float] = field(default_factory=dict)
    ringing: dict[int, float] = field(default_factory=dict)  # call -> dialled at
    waiting: dict[int, float] = field(default_factory=dict)  # call -> answered at; first = oldest
    placed: int = 0
    answered: int = 0
    dialled: deque[tuple[float, bool]] = field(default_factory=deque)  # (placed at, answered), not yet settled
    settled: int = 0  # dials old enough for their outcome to be known...
    settled_answered: int = 0  # ...and how many of them were answered
    abandoned: int = 0
    talk_seconds: float = 0.0


def simulate(floor: Floor, pacer: Pacer, seed: int) -> Result:
    """Run one shift of `floor` paced by `pacer`; deterministic in `seed`."""
    rng = random.Random(seed)
    end = floor.hours * 3600.0
    st = _State(ready={c: 0.0 for c in range(floor.collectors)})
    events: list[tuple[float, int, int, int]] = [(0.0, 0, _TICK, 0)]
    seq = 1
    prior_answered = floor.answer_rate * floor.prior_dials
    settle_s = max(support_end(floor.ring_to_answer), support_end(floor.unanswered))

    def push(at: float, kind: int, ref: int) -> None:
        nonlocal seq
        heapq.heappush(events, (at, seq, kind, ref))
        seq += 1

    def connect(collector: int, now: float) -> None:
        talk = floor.talk.sample(rng)
        st.on_call[collector] = now
        st.talk_seconds += min(talk, end - now)
        push(now + talk, _TALK_END, collector)

    while events:
        now, _, kind, ref = heapq.heappop(events)
        if now >= end:
            break
        if kind == _TICK:
            while st.dialled and st.dialled[0][0] <= now - settle_s:
                st.settled += 1
                st.settled_answered += st.dialled.popleft()[1]
            observed = Observed(
                answer_rate=(st.settled_answered + prior_answered) / (st.settled + floor.prior_dials),
                ring_to_answer=floor.ring_to_answer, talk=floor.talk, wrap_up=floor.wrap_up,
                unanswered=floor.unanswered)
            counts = CallCounts(st.placed, st.answered, st.abandoned)
            snapshot = Snapshot(
                now=now, observed=observed,
                ready=tuple([now - s for s in st.ready.values()]),
                on_call=tuple([now - s for s in st.on_call.values()]),
                wrap_up=tuple([now - s for s in st.wrap_up.values()]),
                ringing=tuple([now - s for s in st.ringing.values()]),
                waiting=tuple([now - s for s in st.waiting.values()]),
                window=counts, today=counts, target_abandon_rate=floor.target_abandon_rate)
            for _ in range(pacer.lines_to_dial(snapshot)):
                call = st.placed
                st.placed += 1
                st.ringing[call] = now
                answers = rng.random() < floor.answer_rate
                st.dialled.append((now, answers))
                if answers:
                    push(now + floor.ring_to_answer.sample(rng), _ANSWER, call)
                else:
                    push(now + floor.unanswered.sample(rng), _NO_ANSWER, call)
            push(now + floor.pacer_every_s, _TICK, 0)
        elif kind == _ANSWER:
            del st.ringing[ref]
            st.answered += 1
            if st.ready:
                collector = next(iter(st.ready))
                del st.ready[collector]
                connect(collector, now)
            else:
                st.waiting[ref] = now
                push(now + floor.abandon_after_s, _GIVE_UP, ref)
        elif kind == _NO_ANSWER:
            del st.ringing[ref]
        elif kind == _GIVE_UP:
            if st.waiting.pop(ref, None) is not None:
                st.abandoned += 1
        elif kind == _TALK_END:
            del st.on_call[ref]
            st.wrap_up[ref] = now
            push(now + floor.wrap_up.sample(rng), _WRAP_END, ref)
        else:  # _WRAP_END
            del st.wrap_up[ref]
            if st.waiting:
                call = next(iter(st.waiting))
                del st.waiting[call]
                connect(ref, now)
            else:
                st.ready[ref] = now
    return Result(pacer=pacer.name, collectors=floor.collectors, answer_rate=floor.answer_rate, seconds=end,
                  placed=st.placed, answered=st.answered, abandoned=st.abandoned, talk_seconds=st.talk_seconds)
