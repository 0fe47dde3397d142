"""Frequency caps (pure)."""
from datetime import datetime, timedelta, timezone

from dialer.policy import AttemptRecord, Caps
from dialer.policy.limits import (
    check_attempts_per_case,
    check_attempts_per_number,
    check_caps,
    check_case_7d,
    check_connected_per_case,
    check_min_gap,
    check_quiet_period,
    check_unanswered_per_number,
    local_day_bounds,
)

UTC = timezone.utc
SH = frozenset({"Asia/Shanghai"})
TX = frozenset({"America/Chicago", "America/Denver"})
NUM = "13812345678"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def att(at, case="C1", number=NUM, connected=False, conversation=False):
    return AttemptRecord(at, case, number, connected, conversation)


# Shanghai 2026-06-02 runs from 2026-06-01 16:00 UTC to 2026-06-02 16:00 UTC.
DAY_START = utc(2026, 6, 1, 16, 0)
NEXT_MIDNIGHT = utc(2026, 6, 2, 16, 0)


def test_local_day_bounds_follow_dst():
    start, end = local_day_bounds(utc(2026, 3, 8, 15, 0), "America/New_York")
    assert start == utc(2026, 3, 8, 5, 0) and end == utc(2026, 3, 9, 4, 0)  # a 23-hour day


def test_no_cap_means_no_block():
    history = [att(DAY_START + timedelta(hours=h)) for h in range(10)]
    assert check_caps(Caps(), utc(2026, 6, 2, 12), SH, history, "C1", NUM) is None


def test_attempts_per_number_per_local_day():
    caps = Caps(attempts_per_number_per_day=3)
    now = utc(2026, 6, 2, 6, 0)
    history = [att(utc(2026, 6, 2, h)) for h in (1, 2)]
    assert check_attempts_per_number(caps, now, SH, history, "C1", NUM) is None
    history.append(att(utc(2026, 6, 2, 3)))
    blocked = check_attempts_per_number(caps, now, SH, history, "C1", NUM)
    assert blocked.rule == "attempts_per_number_per_day"
    assert blocked.next_allowed_at == NEXT_MIDNIGHT
    # The same number on another case counts too; another number does not.
    mixed = [att(utc(2026, 6, 2, 1), case="C2"), att(utc(2026, 6, 2, 2)),
             att(utc(2026, 6, 2, 3), number="13900000000")]
    assert check_attempts_per_number(Caps(attempts_per_number_per_day=2), now, SH, mixed, "C1", NUM)
    # Yesterday's (local) calls do not count, even if the same UTC date.
    old = [att(utc(2026, 6, 1, 15, 59)) for _ in range(5)]
    assert check_attempts_per_number(caps, now, SH, old, "C1", NUM) is None


def test_daily_cap_with_ambiguous_zone_blocks_if_any_zone_is_full():
    caps = Caps(attempts_per_case_per_day=1)
    # 05:30 UTC on 06-15 is 00:30 in Chicago (06-15) but 23:30 in Denver (06-14).
    history = [att(utc(2026, 6, 15, 5, 30))]
    now = utc(2026, 6, 15, 15, 0)
    blocked = check_attempts_per_case(caps, now, TX, history, "C1")
    assert blocked is not None
    assert blocked.next_allowed_at == utc(2026, 6, 16, 5, 0)  # Chicago's next midnight


def test_attempts_per_case_counts_all_numbers_of_the_case():
    caps = Caps(attempts_per_case_per_day=2)
    now = utc(2026, 6, 2, 6)
    history = [att(utc(2026, 6, 2, 1), number="A"), att(utc(2026, 6, 2, 2), number="B"),
               att(utc(2026, 6, 2, 3), case="C9")]
    blocked = check_attempts_per_case(caps, now, SH, history, "C1")
    assert blocked.rule == "attempts_per_case_per_day"


def test_connected_calls_per_case():
    caps = Caps(connected_per_case_per_day=3)
    now = utc(2026, 6, 2, 8)
    history = [att(utc(2026, 6, 2, h), connected=h % 2 == 0) for h in range(1, 7)]
    blocked = check_connected_per_case(caps, now, SH, history, "C1")
    assert blocked.rule == "connected_per_case_per_day"
    assert check_connected_per_case(caps, now, SH, history[:4], "C1") is None


def test_unanswered_per_number():
    caps = Caps(unanswered_per_number_per_day=6)
    now = utc(2026, 6, 2, 9)
    history = [att(utc(2026, 6, 2, h)) for h in range(1, 7)]
    assert check_unanswered_per_number(caps, now, SH, history, "C1", NUM).rule == "unanswered_per_number_per_day"
    answered = history[:5] + [att(utc(2026, 6, 2, 7), connected=True)]
    assert check_unanswered_per_number(caps, now, SH, answered, "C1", NUM) is None


def test_rolling_seven_days():
    caps = Caps(max_per_case_7d=7)
    base = utc(2026, 6, 1, 2)
    history = [att(base + timedelta(days=d)) for d in range(7)]  # 06-01 .. 06-07
    now = utc(2026, 6, 7, 12)
    blocked = check_case_7d(caps, now, history, "C1")
    assert blocked.rule == "calls_per_case_7d"
    assert blocked.next_allowed_at == base + timedelta(days=7)
    assert check_case_7d(caps, base + timedelta(days=7), history, "C1") is None
    assert check_case_7d(caps, now, history[:6], "C1") is None
    # Nine calls in the window: the third oldest must age out first.
    nine = history + [att(utc(2026, 6, 7, 3)), att(utc(2026, 6, 7, 4))]
    assert check_case_7d(caps, now, nine, "C1").next_allowed_at == history[2].at + timedelta(days=7)


def test_quiet_period_after_conversation():
    caps = Caps(quiet_days_after_conversation=7)
    talk = utc(2026, 6, 1, 3)
    history = [att(talk, connected=True, conversation=True), att(utc(2026, 6, 2, 3))]
    blocked = check_quiet_period(caps, utc(2026, 6, 7, 3), history, "C1")
    assert blocked.rule == "quiet_period" and blocked.next_allowed_at == talk + timedelta(days=7)
    assert check_quiet_period(caps, talk + timedelta(days=7), history, "C1") is None
    assert check_quiet_period(caps, utc(2026, 6, 2), [att(talk, connected=True)], "C1") is None


def test_min_gap():
    caps = Caps(min_gap_minutes=15)
    last = utc(2026, 6, 2, 3, 0)
    history = [att(utc(2026, 6, 2, 2, 0)), att(last)]
    blocked = check_min_gap(caps, utc(2026, 6, 2, 3, 14), history, "C1", NUM)
    assert blocked.rule == "min_gap" and blocked.next_allowed_at == last + timedelta(minutes=15)
    assert check_min_gap(caps, utc(2026, 6, 2, 3, 15), history, "C1", NUM) is None
    assert check_min_gap(caps, utc(2026, 6, 2, 3, 1), history, "C1", "other") is None


def test_future_attempts_are_ignored_and_zero_cap_blocks():
    caps = Caps(min_gap_minutes=15)
    assert check_min_gap(caps, utc(2026, 6, 2, 3), [att(utc(2026, 6, 2, 4))], "C1", NUM) is None
    assert check_attempts_per_case(Caps(attempts_per_case_per_day=0), utc(2026, 6, 2, 3), SH, [], "C1")


def test_check_caps_skips_quiet_period_on_request():
    caps = Caps(quiet_days_after_conversation=7, min_gap_minutes=15)
    history = [att(utc(2026, 6, 1, 3), connected=True, conversation=True)]
    now = utc(2026, 6, 3)
    assert check_caps(caps, now, SH, history, "C1", NUM).rule == "quiet_period"
    assert check_caps(caps, now, SH, history, "C1", NUM, skip_quiet=True) is None
