"""A baseline that reproduces VICIdial's adaptive dial level (dial method ADAPT_HARD_LIMIT),
so that "ours is better" is measured against what the reference open-source dialer does,
in the same simulator. Read from VICIdial 2.14's `AST_VDauto_dial.pl` (lines) and
`AST_VDadapt.pl` (`count_agents_lines`, `calculate_dial_level`); see also
../shared/notes/rules-and-pacing.md.

- Lines: round(level x (ready + talking agents)) minus the calls already up (ringing,
  waiting for an agent, talking). At level 1.0 this is progressive.
- Every second it samples ready agents, calls waiting and logged-in agents; every 15 s the
  level becomes level x (1 + (avg ready - avg waiting + differential target) / avg agents)
  over the last 15 samples, held within [1.0, 3.0] (`adaptive_maximum_level`). No model of
  answer rate or talk time: it reacts to agents after they have been idle.
- The abandon rate is only an emergency brake, counted since midnight (not over 30 days)
  and refreshed once a minute: when more than 50 calls were placed today and today's
  abandoned / answered is over the limit, the level is set back to 1.0.
- Left out: VICIdial's second brake (level halved when over 50 % of the last minute's
  calls dropped: it never fires at these rates), intensity (default 0), thresholds.

The average of agents is of all logged-in agents, paused ones (and those in wrap-up,
PAUSED in VICIdial's disposition screen) included, as `count_agents_lines` counts them;
the lines themselves count only ready and talking agents. Its state moves only with the
snapshots' `now`.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dialer.pacing.snapshot import CallCounts, Snapshot

ADAPT_EVERY_S = 15.0
DROPS_EVERY_S = 60.0
SAMPLES = 15
MIN_CALLS_TODAY = 50


@dataclass(frozen=True, slots=True)
class Sample:
    """One second's tally (`count_agents_lines`)."""

    ready: int
    waiting: int
    agents: int

    @classmethod
    def of(cls, snapshot: Snapshot) -> Sample:
        return cls(len(snapshot.ready), len(snapshot.waiting), snapshot.working + len(snapshot.paused))


def adapted_level(level: float, samples: list[Sample], today: CallCounts, target_rate: float, *,
                  maximum: float = 3.0, differential_target: float = 0.0) -> float:
    """`calculate_dial_level`: the new level from the last samples and today's drops."""
    n = len(samples)
    agents = sum(s.agents for s in samples) / n if n else 0.0
    differential = (sum(s.ready for s in samples) - sum(s.waiting for s in samples)) / n if n else 0.0
    moved = level * (1 + (differential + differential_target) / agents) if agents else level
    moved = round(min(maximum, max(1.0, moved)), 3)
    if today.placed > MIN_CALLS_TODAY and today.answered and today.abandoned / today.answered > target_rate:
        return 1.0
    return moved


def lines_at_level(level: float, snapshot: Snapshot) -> int:
    """`AST_VDauto_dial.pl`: goal calls = level x active agents, less the calls up."""
    goal = round(level * (len(snapshot.ready) + len(snapshot.on_call)))
    up = len(snapshot.on_call) + len(snapshot.ringing) + len(snapshot.waiting)
    return max(0, goal - up)


class VicidialAdaptive:
    """VICIdial's ADAPT_HARD_LIMIT dial method (see the module docstring)."""

    name = "vicidial"

    def __init__(self, *, maximum: float = 3.0, differential_target: float = 0.0) -> None:
        self.maximum, self.differential_target = maximum, differential_target
        self.level = 1.0
        self._samples: deque[Sample] = deque(maxlen=SAMPLES)
        self._adapted_at: float | None = None
        self._drops_at: float | None = None
        self._drops = CallCounts()  # today's counts as of the last once-a-minute refresh

    def lines_to_dial(self, snapshot: Snapshot) -> int:
        now = snapshot.now
        self._samples.append(Sample.of(snapshot))
        if self._drops_at is None or now - self._drops_at >= DROPS_EVERY_S:
            self._drops, self._drops_at = snapshot.today, now
        if self._adapted_at is None:
            self._adapted_at = now
        elif now - self._adapted_at >= ADAPT_EVERY_S:
            self.level = adapted_level(self.level, list(self._samples), self._drops, snapshot.target_abandon_rate,
                                       maximum=self.maximum, differential_target=self.differential_target)
            self._adapted_at = now
        return lines_at_level(self.level, snapshot)
