"""What a pacer is told: one instant of the floor, as plain frozen values.

The snapshot is the whole input of a pacer: no clock is read, nothing is fetched. `now`
is seconds on whatever clock the caller keeps (simulation time in the simulator, the
injected clock in production); every other time is already an elapsed duration, so a
snapshot means the same thing whoever built it.

Collectors are given per state as the seconds each has spent in that state, because
that is all pacing needs of a collector and it keeps the snapshot cheap to build every
second (the simulator builds ~30 000 per simulated shift):

- ready:    signed in, phone registered, waiting for a call: the only ones a call may reach;
- reserved: held for one particular call (preview / manual); that call is not listed in
            `ringing`: it already has its collector;
- on_call:  talking (seconds since the call was connected);
- wrap_up:  after the call, entering the disposition;
- paused:   away (with a pause code); never counted as supply.

Calls are the ones the pacer's own dials put in flight: `ringing` (seconds since dialled,
not yet answered) and `waiting` (answered, no collector yet, seconds since answer; after
`ABANDON_AFTER_S` such a call hears the message and counts as abandoned).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from dialer.pacing.distributions import Clipped, Duration, Fixed, LogNormal, Mixture, Uniform

ABANDON_AFTER_S = 2.0  # an answered call that finds no ready collector within 2 s is abandoned
DEFAULT_TARGET_ABANDON_RATE = 0.03  # of answered calls, per campaign, over a rolling 30 days
NO_ANSWER_TIMEOUT_S = 26.0
# Unanswered dials: about a third fail within seconds (busy, congestion, invalid number), the
# rest ring out at the timeout. With this, progressive dialling in the simulator reproduces
# the progressive column of ../shared/notes/rules-and-pacing.md (unanswered dials ~18 s).
UNANSWERED = Mixture(((0.35, Uniform(2.0, 6.0)), (0.65, Fixed(NO_ANSWER_TIMEOUT_S))))
RING_TO_ANSWER = Clipped(LogNormal(12.0, 4.0), 1.0, NO_ANSWER_TIMEOUT_S - 1.0)
TALK = LogNormal(150.0, 150.0)
WRAP_UP = Uniform(10.0, 30.0)


@dataclass(frozen=True, slots=True)
class CallCounts:
    """Calls of one campaign over some period: placed, answered, and of those abandoned."""

    placed: int = 0
    answered: int = 0
    abandoned: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.abandoned <= self.answered <= self.placed:
            raise ValueError("need 0 <= abandoned <= answered <= placed, got "
                             f"{self.abandoned}, {self.answered}, {self.placed}")

    @property
    def rate(self) -> float:
        """Abandoned / answered (0 before any answer)."""
        return self.abandoned / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True)
class Observed:
    """What the campaign has measured of its own calls (fitted summaries or samples).

    `ring_to_answer`: dial to answer, of the dials that were answered; `unanswered`: how
    long a dial that is not answered stays in flight (busy or invalid numbers end in
    seconds, the others ring out at the no-answer timeout). The defaults are the figures
    of ../shared/notes/rules-and-pacing.md, for a campaign with no history yet."""

    answer_rate: float
    ring_to_answer: Duration = RING_TO_ANSWER
    talk: Duration = TALK
    wrap_up: Duration = WRAP_UP
    unanswered: Duration = UNANSWERED

    def __post_init__(self) -> None:
        if not 0.0 <= self.answer_rate <= 1.0 or math.isnan(self.answer_rate):
            raise ValueError(f"answer_rate must be within [0, 1], got {self.answer_rate}")


def _durations(name: str, values: tuple[float, ...]) -> None:
    # min/max rather than a loop: a snapshot is built every second (NaN fails both tests)
    if values and not (min(values) >= 0 and max(values) < math.inf and not any(map(math.isnan, values))):
        raise ValueError(f"{name}: elapsed seconds must be finite and >= 0, got {values!r}")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The floor of one campaign at `now` (see the module docstring for each field)."""

    now: float
    observed: Observed
    ready: tuple[float, ...] = ()
    reserved: tuple[float, ...] = ()
    on_call: tuple[float, ...] = ()
    wrap_up: tuple[float, ...] = ()
    paused: tuple[float, ...] = ()
    ringing: tuple[float, ...] = ()
    waiting: tuple[float, ...] = ()
    window: CallCounts = field(default_factory=CallCounts)  # rolling 30 days
    today: CallCounts = field(default_factory=CallCounts)  # since local midnight
    target_abandon_rate: float = DEFAULT_TARGET_ABANDON_RATE

    def __post_init__(self) -> None:
        for name in ("ready", "reserved", "on_call", "wrap_up", "paused", "ringing", "waiting"):
            _durations(name, getattr(self, name))
        if not 0.0 <= self.target_abandon_rate < 1.0:
            raise ValueError(f"target_abandon_rate must be within [0, 1), got {self.target_abandon_rate}")

    @property
    def working(self) -> int:
        """Collectors signed in and not paused: the floor the pacer works for."""
        return len(self.ready) + len(self.reserved) + len(self.on_call) + len(self.wrap_up)
