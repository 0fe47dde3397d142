"""Frequency caps over the history of past attempts.

Every check takes ``now`` and a history and returns None (the cap does not block) or a
``Blocked`` naming the rule and the instant it frees up.  A cap of N means at most N
such calls: the call being decided would be number N+1, so it is blocked once N exist.

"Per day" means the debtor's local calendar day.  With several candidate zones a cap is
checked in each zone's local day and blocks if it is reached in any of them (the most
cautious reading); ``next_allowed_at`` is then the latest of those zones' next midnights.
Attempts later than ``now`` are ignored (they cannot precede the decision).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Sequence

from .model import AttemptRecord, Blocked, Caps
from .zones import get_zone

RULE_ATTEMPTS_NUMBER_DAY = "attempts_per_number_per_day"
RULE_ATTEMPTS_CASE_DAY = "attempts_per_case_per_day"
RULE_CONNECTED_CASE_DAY = "connected_per_case_per_day"
RULE_UNANSWERED_NUMBER_DAY = "unanswered_per_number_per_day"
RULE_CASE_7D = "calls_per_case_7d"
RULE_QUIET = "quiet_period"
RULE_MIN_GAP = "min_gap"

WEEK = timedelta(days=7)


def local_day_bounds(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """UTC instants of the start of ``now``'s local day in ``zone`` and of the next one."""
    tz = get_zone(zone)
    day = now.astimezone(tz).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    return start, end.astimezone(timezone.utc)


def _daily_cap(
    rule: str,
    what: str,
    cap: int | None,
    now: datetime,
    zones: Iterable[str],
    attempts: Sequence[AttemptRecord],
    keep: Callable[[AttemptRecord], bool],
) -> Blocked | None:
    if cap is None:
        return None
    frees: list[datetime] = []
    for zone in sorted(zones):
        start, end = local_day_bounds(now, zone)
        count = sum(1 for a in attempts if keep(a) and start <= a.at < end and a.at <= now)
        if count >= cap:
            frees.append(end)
    if not frees:
        return None
    return Blocked(f"{what}: cap of {cap} per local day reached", rule, max(frees))


def _for_number(history: Sequence[AttemptRecord], case_id: str, number: str) -> list[AttemptRecord]:
    # Per-number rules protect the person behind the number: all cases count.
    return [a for a in history if a.number == number]


def _for_case(history: Sequence[AttemptRecord], case_id: str) -> list[AttemptRecord]:
    return [a for a in history if a.case_id == case_id]


def check_attempts_per_number(caps: Caps, now: datetime, zones: Iterable[str],
                              history: Sequence[AttemptRecord], case_id: str,
                              number: str) -> Blocked | None:
    """Attempts to this number (on any case) per local day."""
    return _daily_cap(RULE_ATTEMPTS_NUMBER_DAY, f"attempts to {number}",
                      caps.attempts_per_number_per_day, now, zones,
                      _for_number(history, case_id, number), lambda a: True)


def check_attempts_per_case(caps: Caps, now: datetime, zones: Iterable[str],
                            history: Sequence[AttemptRecord], case_id: str) -> Blocked | None:
    """Attempts on this case (all numbers) per local day."""
    return _daily_cap(RULE_ATTEMPTS_CASE_DAY, f"attempts on case {case_id}",
                      caps.attempts_per_case_per_day, now, zones,
                      _for_case(history, case_id), lambda a: True)


def check_connected_per_case(caps: Caps, now: datetime, zones: Iterable[str],
                             history: Sequence[AttemptRecord], case_id: str) -> Blocked | None:
    """Connected calls on this case per local day."""
    return _daily_cap(RULE_CONNECTED_CASE_DAY, f"connected calls on case {case_id}",
                      caps.connected_per_case_per_day, now, zones,
                      _for_case(history, case_id), lambda a: a.connected)


def check_unanswered_per_number(caps: Caps, now: datetime, zones: Iterable[str],
                                history: Sequence[AttemptRecord], case_id: str,
                                number: str) -> Blocked | None:
    """Unanswered attempts to this number per local day."""
    return _daily_cap(RULE_UNANSWERED_NUMBER_DAY, f"unanswered attempts to {number}",
                      caps.unanswered_per_number_per_day, now, zones,
                      _for_number(history, case_id, number), lambda a: not a.connected)


def check_case_7d(caps: Caps, now: datetime, history: Sequence[AttemptRecord],
                  case_id: str) -> Blocked | None:
    """At most N calls on the case in any rolling 7 days (window ``(now-7d, now]``)."""
    cap = caps.max_per_case_7d
    if cap is None:
        return None
    recent = sorted(a.at for a in _for_case(history, case_id) if now - WEEK < a.at <= now)
    if len(recent) < cap:
        return None
    # After the (len-cap+1) oldest calls age out, only cap-1 remain: room for one more.
    frees = recent[len(recent) - cap] + WEEK
    return Blocked(f"{len(recent)} calls on case {case_id} in 7 days (cap {cap})", RULE_CASE_7D, frees)


def check_quiet_period(caps: Caps, now: datetime, history: Sequence[AttemptRecord],
                       case_id: str) -> Blocked | None:
    """No call for N days after a conversation on the case."""
    days = caps.quiet_days_after_conversation
    if days is None:
        return None
    talks = [a.at for a in _for_case(history, case_id) if a.conversation and a.at <= now]
    return _until_after_last(talks, timedelta(days=days), now,
                             f"conversation on case {case_id} less than {days} days ago", RULE_QUIET)


def check_min_gap(caps: Caps, now: datetime, history: Sequence[AttemptRecord],
                  case_id: str, number: str) -> Blocked | None:
    """At least N minutes between attempts to the same number."""
    gap = caps.min_gap_minutes
    if gap is None:
        return None
    times = [a.at for a in _for_number(history, case_id, number) if a.at <= now]
    return _until_after_last(times, timedelta(minutes=gap), now,
                             f"last attempt to {number} less than {gap} min ago", RULE_MIN_GAP)


def _until_after_last(times: list[datetime], period: timedelta, now: datetime,
                      reason: str, rule: str) -> Blocked | None:
    """Blocked until `period` after the latest of `times` (None if none, or already past)."""
    if not times:
        return None
    frees = max(times) + period
    return Blocked(reason, rule, frees) if now < frees else None


def check_caps(caps: Caps, now: datetime, zones: Iterable[str],
               history: Sequence[AttemptRecord], case_id: str, number: str,
               *, skip_quiet: bool = False) -> Blocked | None:
    """All caps in a fixed order; the first that blocks wins."""
    zs = frozenset(zones)
    checks = (
        lambda: check_min_gap(caps, now, history, case_id, number),
        lambda: check_attempts_per_number(caps, now, zs, history, case_id, number),
        lambda: check_unanswered_per_number(caps, now, zs, history, case_id, number),
        lambda: check_attempts_per_case(caps, now, zs, history, case_id),
        lambda: check_connected_per_case(caps, now, zs, history, case_id),
        lambda: check_case_7d(caps, now, history, case_id),
        lambda: None if skip_quiet else check_quiet_period(caps, now, history, case_id),
    )
    for check in checks:
        blocked = check()
        if blocked is not None:
            return blocked
    return None
