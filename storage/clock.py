"""Injected time: code asks a clock for "now", so tests and the demo run at any hour.

A clock is any zero-argument callable returning an aware UTC ``datetime``.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The real wall clock, in UTC."""
    return datetime.now(timezone.utc)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when


class OffsetClock:
    """Real time, shifted: starts at `start` and ticks at the real rate.

    For running the real PBX "at" another hour (e2e tests of the call window, the demo at
    night): durations stay true while the wall-clock hour is the one asked for.
    """

    def __init__(self, start: datetime, monotonic: Callable[[], float] | None = None) -> None:
        import time

        if start.tzinfo is None:
            raise ValueError("OffsetClock needs an aware datetime")
        self._monotonic = monotonic or time.monotonic
        self._start = start
        self._t0 = self._monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=self._monotonic() - self._t0)
