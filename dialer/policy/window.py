"""The calling window: local wall-clock hours per weekday, holidays, last-dial margin.

A new call is inside the window in zone Z when, with ``local = now`` seen in Z:
``local.date()`` is not a holiday, ``local.weekday()`` has a window, and
``start <= local.time() < end - last_dial_margin``.  With several candidate zones the
call must be inside the window in *every* one (the FDCPA rule for an unclear zone).
All conversions go through ``zoneinfo``; DST is never modelled as a fixed offset.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

from .model import WEEKDAYS, PolicySettings
from .zones import get_zone

SEARCH_DAYS = 14


def _effective_end(end: time, margin_min: int) -> time:
    """``end - margin`` as a wall-clock time (validated settings keep it after start)."""
    minutes = end.hour * 60 + end.minute - margin_min
    return time(minutes // 60, minutes % 60, end.second, end.microsecond)


def zone_violation(now: datetime, zone: str, settings: PolicySettings) -> str | None:
    """Why ``now`` is outside the window in ``zone``, or None when inside."""
    local = now.astimezone(get_zone(zone))
    day = local.date()
    if day in settings.holidays:
        return f"{day.isoformat()} is a holiday in {zone}"
    w = settings.windows[local.weekday()]
    if w is None:
        return f"no calls on {WEEKDAYS[local.weekday()]} in {zone}"
    t = local.time().replace(tzinfo=None)
    if t < w.start or t >= w.end:
        return f"{t:%H:%M} is outside {w.start:%H:%M}-{w.end:%H:%M} in {zone}"
    if t >= _effective_end(w.end, settings.last_dial_margin_min):
        return (
            f"{t:%H:%M} is within the last {settings.last_dial_margin_min} min "
            f"before {w.end:%H:%M} in {zone}"
        )
    return None


def window_violation(now: datetime, zones: Iterable[str], settings: PolicySettings) -> str | None:
    """The first reason (sorted by zone) ``now`` is outside the window, or None."""
    for zone in sorted(zones):
        reason = zone_violation(now, zone, settings)
        if reason is not None:
            return reason
    return None


def in_window(now: datetime, zones: Iterable[str], settings: PolicySettings) -> bool:
    """True when ``now`` is inside the window in every zone (and zones is non-empty)."""
    zs = frozenset(zones)
    return bool(zs) and window_violation(now, zs, settings) is None


def _openings(zone: str, around: date, settings: PolicySettings) -> list[datetime]:
    """Instants at which the window opens in ``zone`` on days near ``around``."""
    tz = get_zone(zone)
    out: list[datetime] = []
    for offset in range(-1, SEARCH_DAYS + 2):
        day = around + timedelta(days=offset)
        w = settings.windows[day.weekday()]
        if w is None or day in settings.holidays:
            continue
        wall = datetime.combine(day, w.start, tzinfo=tz)
        early = wall.replace(fold=1).astimezone(timezone.utc)
        late = wall.replace(fold=0).astimezone(timezone.utc)
        out.append(late)
        if early < late:
            # The start falls in a spring-forward gap: the window really opens at the
            # transition, somewhere between the two readings (whole minutes).
            t = early
            while t < late:
                out.append(t)
                t += timedelta(minutes=1)
    return out


def next_window_open(
    now: datetime, zones: Iterable[str], settings: PolicySettings
) -> datetime | None:
    """The earliest instant >= ``now`` inside the window in every zone.

    Returns ``now`` itself when already inside; None when no such instant exists within
    ~``SEARCH_DAYS`` days (e.g. every weekday closed) or when ``zones`` is empty.  The
    intersection of the zones' windows always opens at some zone's opening instant,
    so only those instants need checking.
    """
    zs = sorted(frozenset(zones))
    if not zs:
        return None
    if window_violation(now, zs, settings) is None:
        return now
    limit = now + timedelta(days=SEARCH_DAYS)
    candidates: set[datetime] = set()
    for zone in zs:
        around = now.astimezone(get_zone(zone)).date()
        candidates.update(t for t in _openings(zone, around, settings) if now < t <= limit)
    for t in sorted(candidates):
        if window_violation(t, zs, settings) is None:
            return t
    return None
