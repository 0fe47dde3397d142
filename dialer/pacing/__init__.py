"""Pacing: how many lines to dial now, from a snapshot of the floor.

Pure: no asyncio, no I/O, no clock (the snapshot carries `now`). The seam is
`Pacer.lines_to_dial(snapshot) -> int`; `PACERS` names the ones we have, for the
simulator's command line and the benchmark.
"""
from collections.abc import Callable

from .distributions import Clipped, Duration, Empirical, Exponential, Fixed, LogNormal, Mixture, Uniform
from .pacer import Pacer, Progressive, uncovered_ready
from .predictive import Predictive
from .snapshot import ABANDON_AFTER_S, DEFAULT_TARGET_ABANDON_RATE, CallCounts, Observed, Snapshot
from .vicidial import VicidialAdaptive

PACERS: dict[str, Callable[[], Pacer]] = {
    "progressive": Progressive,
    "vicidial": VicidialAdaptive,
    "predictive": Predictive,
}

__all__ = [
    "ABANDON_AFTER_S", "CallCounts", "Clipped", "DEFAULT_TARGET_ABANDON_RATE", "Duration", "Empirical",
    "Exponential", "Fixed", "LogNormal", "Mixture", "Observed", "PACERS", "Pacer", "Predictive", "Progressive",
    "Snapshot", "Uniform", "VicidialAdaptive", "uncovered_ready",
]
