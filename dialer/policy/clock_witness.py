"""The audit does not trust the dialer's clock alone (pure).

Every call window is judged by the time the dialer wrote with its decision. A dialer whose
clock is hours off would call at night and pass its own audit; so the compliance report
also checks that clock against two witnesses it does not control:

- **order**: decisions are written one after the other, so their times must never run
  backwards (more than `backwards_tolerance_s`): a clock set back shows here even with no
  PBX record;
- **the PBX's clock**: for every call that reached the PBX, the time the PBX itself created
  the channel (its own clock: AMI event timestamps, the hang-up record's CDR start) must be
  within `tolerance_s` of the dialer's decision time.

Calls with no PBX time (the Originate failed before a channel existed, the link was down
when the call ended) cannot be checked this way; they are counted and listed, not
judged. Each finding names the call and both times.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .audit import Breach

CLOCK_RULES = ("clock_order", "clock_vs_pbx")


@dataclass(frozen=True, slots=True)
class TimedDecision:
    """One stored decision, in the order it was written; `attempt_id` empty if blocked."""

    key: str  # what names it in a finding: the attempt id, else "decision #<id>"
    at: datetime


@dataclass(frozen=True, slots=True)
class TimedCall:
    attempt_id: str
    decided_at: datetime  # the dialer's clock
    pbx_started_at: datetime | None  # the PBX's clock


@dataclass(frozen=True, slots=True)
class ClockFindings:
    checked: dict[str, int] = field(default_factory=dict)
    breaches: tuple[Breach, ...] = ()
    unverified: tuple[str, ...] = ()  # calls without a PBX time


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def check_clock(decisions: Sequence[TimedDecision], calls: Sequence[TimedCall], *, tolerance_s: float = 60.0,
                backwards_tolerance_s: float = 1.0) -> ClockFindings:
    breaches: list[Breach] = []
    latest: TimedDecision | None = None
    for decision in decisions:
        if latest is not None and (latest.at - decision.at).total_seconds() > backwards_tolerance_s:
            breaches.append(Breach(decision.key, "clock_order",
                                   f"decided at {decision.at.isoformat()}, {_span((latest.at - decision.at).total_seconds())} "
                                   f"before {latest.key} that was written earlier: the dialer's clock went back"))
        if latest is None or decision.at > latest.at:
            latest = decision
    unverified: list[str] = []
    checked_pbx = 0
    for call in calls:
        if call.pbx_started_at is None:
            unverified.append(call.attempt_id)
            continue
        checked_pbx += 1
        skew = (call.pbx_started_at - call.decided_at).total_seconds()
        if abs(skew) > tolerance_s:
            way = "later" if skew > 0 else "earlier"
            breaches.append(Breach(call.attempt_id, "clock_vs_pbx",
                                   f"the dialer decided at {call.decided_at.isoformat()}, the PBX made the call "
                                   f"at {call.pbx_started_at.isoformat()} ({_span(skew)} {way}): the call window "
                                   "was judged by a wrong clock"))
    return ClockFindings(checked={"clock_order": len(decisions), "clock_vs_pbx": checked_pbx},
                         breaches=tuple(breaches), unverified=tuple(unverified))
