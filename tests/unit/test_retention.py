"""Retention date arithmetic (pure)."""
from datetime import datetime, timezone

import pytest
from hypothesis import given, strategies as st

from recorder.retention import add_years


def test_three_years_after_the_call():
    call = datetime(2026, 11, 29, 10, 30, tzinfo=timezone.utc)
    assert add_years(call, 3) == datetime(2029, 11, 29, 10, 30, tzinfo=timezone.utc)


def test_leap_day_moves_forward_never_back():
    assert add_years(datetime(2028, 2, 29, tzinfo=timezone.utc), 3) == datetime(2031, 3, 1, tzinfo=timezone.utc)


def test_negative_retention_is_refused():
    with pytest.raises(ValueError):
        add_years(datetime(2026, 1, 1, tzinfo=timezone.utc), -1)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1),
                    timezones=st.just(timezone.utc)), st.integers(min_value=0, max_value=10))
def test_never_earlier_than_n_full_years(when, years):
    until = add_years(when, years)
    assert (until - when).days >= 365 * years

