"""Campaigns: a set of cases dialled in one mode (dialer/campaigns.py holds the rules).

A campaign names its cases by a selection (batches, assignment, filters), how to dial them
(mode: preview, progressive, predictive), which of a case's phones to try in which order,
the spacing between two attempts of one case, its caller-ID pool (a subset of the client's
approved pool) and its abandon target. `status` moves draft -> running <-> paused ->
stopped; every change is audited (`campaign.*`). An attempt placed for a campaign names it
(`attempts.campaign_id`), which is what its 30-day counts are taken from.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str | None] = mapped_column(String(64), default=None)  # None: any client's cases
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    phone_order: Mapped[list[str]] = mapped_column(JSON, default=list)
    retry_spacing_s: Mapped[int] = mapped_column(Integer, default=3600)
    caller_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: the client's whole pool
    amd: Mapped[bool] = mapped_column(Boolean, default=False)
    target_abandon_rate: Mapped[float] = mapped_column(Float, default=0.03)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_changed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
