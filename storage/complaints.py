"""Complaints: registered against a case and/or a collector, from the client or a debtor; a
24-hour clock from registration (cases/complaints.py holds the rules). While a complaint is
open its case is not dialled unless a supervisor decided otherwise (`dialing_allowed_by`).
Rows are never deleted; the outcome and the closing are set once."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_open_deadline", "closed_at", "deadline_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    collector_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None, index=True)
    source: Mapped[str] = mapped_column(String(16))  # client | debtor
    summary: Mapped[str] = mapped_column(Text)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_by: Mapped[str] = mapped_column(String(64))
    deadline_at: Mapped[datetime] = mapped_column(UtcDateTime)  # registered_at + 24 h
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # the alarm before the deadline
    overdue_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # the alarm at the deadline
    dialing_allowed_by: Mapped[str | None] = mapped_column(String(64), default=None)  # a supervisor's decision
    dialing_allowed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    follow_up_attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id"), default=None)
    outcome: Mapped[str | None] = mapped_column(Text, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)
