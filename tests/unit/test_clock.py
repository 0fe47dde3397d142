"""The injected clocks."""
from datetime import datetime, timezone

from storage.clock import ManualClock, OffsetClock


def test_offset_clock_ticks_at_the_real_rate_from_its_start():
    ticks = iter([100.0, 100.0, 107.5])
    start = datetime(2026, 11, 30, 13, 0, tzinfo=timezone.utc)
    clock = OffsetClock(start, monotonic=lambda: next(ticks))
    assert clock() == start
    assert (clock() - start).total_seconds() == 7.5


def test_manual_clock_moves_only_when_told():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    first = clock()
    assert clock() == first
    clock.advance(60)
    assert (clock() - first).total_seconds() == 60
