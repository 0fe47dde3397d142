"""Retention arithmetic (pure): a recording is kept N years after the call."""
from __future__ import annotations

from datetime import datetime


def add_years(when: datetime, years: int) -> datetime:
    """`when` plus whole calendar years; 29 February becomes 1 March (never earlier)."""
    if years < 0:
        raise ValueError("retention cannot be negative")
    try:
        return when.replace(year=when.year + years)
    except ValueError:  # 29 Feb in a non-leap target year
        return when.replace(year=when.year + years, month=3, day=1)
