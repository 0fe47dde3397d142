"""Call window, zones and settings validation (pure)."""
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest

from dialer.policy import (
    Caps,
    DayWindow,
    PolicySettingsError,
    candidate_zones,
    every_day,
    in_window,
    next_window_open,
    profile,
    validate_settings,
    window_violation,
    with_overrides,
)

UTC = timezone.utc
NY = frozenset({"America/New_York"})
SH = frozenset({"Asia/Shanghai"})
TX = frozenset({"America/Chicago", "America/Denver"})
BASE = profile("client-default")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- zones -------------------------------------------------------------------------

def test_explicit_timezone_wins():
    assert candidate_zones("Europe/Paris", "CA", "+8613812345678") == {"Europe/Paris"}


def test_invalid_timezone_is_unknown_and_does_not_fall_back():
    assert candidate_zones("Mars/Olympus", "CA", "+8613812345678") == frozenset()


@pytest.mark.parametrize("region", ["Guangdong", "广东", "beijing", " Inner  Mongolia ", "CN"])
def test_chinese_regions_are_shanghai(region):
    assert candidate_zones(None, region, "") == SH


def test_us_states():
    assert candidate_zones(None, "CA", "") == {"America/Los_Angeles"}
    assert candidate_zones(None, "ny", "") == NY
    assert candidate_zones(None, "TX", "") == TX


def test_a_third_party_is_judged_by_its_own_number_first():
    # the debtor lives in New York; the reference's number is a Chinese mobile
    assert candidate_zones("America/New_York", None, "+8613812345678", third_party=True) == SH
    assert candidate_zones("America/New_York", None, "+8613812345678") == NY
    # a number that says nothing: the case's evidence is all there is
    assert candidate_zones("America/New_York", None, "+999", third_party=True) == NY


def test_unknown_region_falls_back_to_number():
    assert candidate_zones(None, "Atlantis", "13812345678") == SH


@pytest.mark.parametrize("number", ["+8613812345678", "8613812345678", "13812345678",
                                    "138 1234 5678", "008613812345678"])
def test_chinese_numbers(number):
    assert candidate_zones(None, None, number) == SH


def test_nanp_numbers_including_an_ambiguous_area_code():
    assert candidate_zones(None, None, "+1 212 555 0100") == NY
    assert candidate_zones(None, None, "+1 (850) 555-0100") == {"America/New_York", "America/Chicago"}
    assert candidate_zones(None, None, "+1 999 555 0100") == frozenset()


def test_unknown_number_has_no_zone():
    assert candidate_zones(None, None, "+44 20 7946 0000") == frozenset()
    assert candidate_zones(None, None, "12345") == frozenset()


def test_client_regions_override():
    extra = (("HQ", frozenset({"Asia/Tokyo"})),)
    assert candidate_zones(None, "hq", "", extra) == {"Asia/Tokyo"}


# --- window ------------------------------------------------------------------------

def test_shanghai_hours():
    # 08:00 Shanghai = 00:00 UTC; 21:00 = 13:00 UTC.
    assert not in_window(utc(2026, 6, 1, 23, 59), SH, BASE)
    assert in_window(utc(2026, 6, 2, 0, 0), SH, BASE)
    assert in_window(utc(2026, 6, 2, 12, 59), SH, BASE)
    assert not in_window(utc(2026, 6, 2, 13, 0), SH, BASE)


def test_dst_spring_forward_day_opens_at_local_eight():
    # 2026-03-08: New York goes EST -> EDT at 02:00; 08:00 EDT is 12:00 UTC.
    assert not in_window(utc(2026, 3, 8, 11, 59), NY, BASE)
    assert in_window(utc(2026, 3, 8, 12, 0), NY, BASE)  # a fixed -05:00 offset says 07:00
    # The day before (EST) 12:00 UTC is still 07:00 local.
    assert not in_window(utc(2026, 3, 7, 12, 0), NY, BASE)
    assert in_window(utc(2026, 3, 7, 13, 0), NY, BASE)
    assert next_window_open(utc(2026, 3, 8, 6, 0), NY, BASE) == utc(2026, 3, 8, 12, 0)
    assert next_window_open(utc(2026, 3, 7, 6, 0), NY, BASE) == utc(2026, 3, 7, 13, 0)


def test_dst_fall_back_day():
    # 2026-11-01: EDT -> EST; 08:00 EST is 13:00 UTC; 21:00 EST is 02:00 UTC next day.
    assert not in_window(utc(2026, 11, 1, 12, 30), NY, BASE)
    assert in_window(utc(2026, 11, 1, 13, 0), NY, BASE)
    assert in_window(utc(2026, 11, 2, 1, 59), NY, BASE)
    assert not in_window(utc(2026, 11, 2, 2, 0), NY, BASE)


def test_window_start_inside_the_dst_gap():
    s = with_overrides(BASE, windows=every_day(time(2, 30), time(21, 0)))
    # 02:30 does not exist on 2026-03-08 in New York; the window opens at 03:00 EDT.
    assert next_window_open(utc(2026, 3, 8, 5, 0), NY, s) == utc(2026, 3, 8, 7, 0)
    assert not in_window(utc(2026, 3, 8, 6, 59), NY, s)  # 01:59 EST
    assert in_window(utc(2026, 3, 8, 7, 0), NY, s)


def test_ambiguous_zone_needs_both_windows():
    # Summer: Chicago is UTC-5, Denver UTC-6.
    assert not in_window(utc(2026, 6, 15, 13, 30), TX, BASE)  # 08:30 Chicago, 07:30 Denver
    assert in_window(utc(2026, 6, 15, 14, 0), TX, BASE)  # 09:00 / 08:00
    assert in_window(utc(2026, 6, 16, 1, 59), TX, BASE)  # 20:59 / 19:59
    assert not in_window(utc(2026, 6, 16, 2, 0), TX, BASE)  # 21:00 Chicago
    assert next_window_open(utc(2026, 6, 15, 13, 30), TX, BASE) == utc(2026, 6, 15, 14, 0)
    reason = window_violation(utc(2026, 6, 15, 13, 30), TX, BASE)
    assert reason is not None and "America/Denver" in reason


def test_holiday_uses_the_debtors_local_date():
    s = with_overrides(BASE, holidays=frozenset({date(2026, 7, 4)}))
    assert not in_window(utc(2026, 7, 4, 14, 0), NY, s)
    # 00:30 UTC on the 5th is still 20:30 on the 4th in New York.
    assert not in_window(utc(2026, 7, 5, 0, 30), NY, s)
    assert "holiday" in window_violation(utc(2026, 7, 5, 0, 30), NY, s)
    assert in_window(utc(2026, 7, 3, 14, 0), NY, s)
    assert next_window_open(utc(2026, 7, 4, 14, 0), NY, s) == utc(2026, 7, 5, 12, 0)


def test_last_dial_margin():
    s = with_overrides(BASE, last_dial_margin_min=30)
    # Shanghai 20:29 = 12:29 UTC.
    assert in_window(utc(2026, 6, 2, 12, 29), SH, s)
    assert not in_window(utc(2026, 6, 2, 12, 30), SH, s)
    assert "last 30 min" in window_violation(utc(2026, 6, 2, 12, 30), SH, s)


def test_closed_weekday_and_per_weekday_hours():
    windows = list(every_day(time(8), time(21)))
    windows[6] = None  # Sunday closed
    windows[5] = DayWindow(time(9), time(18))  # Saturday short
    s = with_overrides(BASE, windows=tuple(windows))
    sat_10 = utc(2026, 6, 6, 2, 0)  # Saturday 10:00 Shanghai
    assert in_window(sat_10, SH, s)
    assert not in_window(utc(2026, 6, 6, 10, 0), SH, s)  # Saturday 18:00
    assert not in_window(utc(2026, 6, 7, 2, 0), SH, s)  # Sunday
    assert next_window_open(utc(2026, 6, 6, 10, 0), SH, s) == utc(2026, 6, 8, 0, 0)  # Monday 08:00


def test_next_window_open_is_now_when_inside_and_none_when_never():
    now = utc(2026, 6, 2, 3, 0)
    assert next_window_open(now, SH, BASE) == now
    closed = replace(BASE, windows=(None,) * 7)
    assert next_window_open(now, SH, closed) is None
    assert next_window_open(now, frozenset(), BASE) is None
    assert not in_window(now, frozenset(), BASE)


# --- settings validation -----------------------------------------------------------

@pytest.mark.parametrize("changes, needle", [
    ({"windows": every_day(time(21), time(8))}, "windows[mon]"),
    ({"windows": (None,) * 6}, "windows"),
    ({"caps": {"attempts_per_number_per_day": -1}}, "caps.attempts_per_number_per_day"),
    ({"caps": {"min_gap_minutes": 1.5}}, "caps.min_gap_minutes"),
    ({"last_dial_margin_min": -5}, "last_dial_margin_min"),
    ({"last_dial_margin_min": 13 * 60}, "last_dial_margin_min"),
    ({"appointment_tolerance_min": -1}, "appointment_tolerance_min"),
    ({"extra_regions": (("HQ", frozenset({"Mars/Base"})),)}, "unknown zone 'Mars/Base'"),
    ({"caller_id_pool": ("", )}, "caller_id_pool"),
    ({"caller_id_pool": ("1", "1")}, "caller_id_pool"),
    ({"holidays": frozenset({datetime(2026, 1, 1)})}, "holidays"),
    ({"name": " "}, "name"),
    ({"bogus": 1}, "overrides"),
    ({"caps": {"bogus": 1}}, "caps"),
])
def test_bad_settings_name_the_setting(changes, needle):
    with pytest.raises(PolicySettingsError) as info:
        with_overrides(BASE, **changes)
    assert needle in str(info.value)


def test_zero_caps_are_valid_and_profiles_validate():
    assert with_overrides(BASE, caps=Caps(attempts_per_number_per_day=0)).caps.attempts_per_number_per_day == 0
    for name in ("client-default", "cn-banking-2026", "us-reg-f"):
        assert validate_settings(profile(name)) is profile(name)


def test_profiles_figures():
    cn = profile("cn-banking-2026")
    assert cn.windows[0] == DayWindow(time(8), time(22))
    assert cn.caps.unanswered_per_number_per_day == 6 and cn.caps.connected_per_case_per_day == 3
    us = profile("us-reg-f")
    assert us.caps.max_per_case_7d == 7 and us.caps.quiet_days_after_conversation == 7
    assert BASE.caps.attempts_per_number_per_day == 3 and BASE.caps.min_gap_minutes == 15
    with pytest.raises(PolicySettingsError, match="profile"):
        profile("nope")


def test_window_is_checked_each_minute_of_a_day():
    # Sweep a whole Shanghai day minute by minute: exactly 13 h are open.
    start = utc(2026, 6, 1, 16, 0)  # 00:00 Shanghai
    open_minutes = sum(in_window(start + timedelta(minutes=m), SH, BASE) for m in range(24 * 60))
    assert open_minutes == 13 * 60
