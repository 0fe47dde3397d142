"""Dispositions: what came of a call, coded (cases/dispositions.py holds the codes and
rules). One row per entry, kept with the attempt (and so with its recording): who entered
it and when, the effects it had on the dialing policy's inputs. Rows are never edited or
deleted: a correction is a new row naming the one it corrects (`corrects_id`, unique: a
row is corrected once, and a correction can itself be corrected)."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Disposition(Base):
    __tablename__ = "dispositions"
    __table_args__ = (
        Index("ix_dispositions_case_entered", "case_id", "entered_at"),
        # the promises due on a day (the follow-up list) without a scan of every disposition
        Index("ix_dispositions_promise_date", "promise_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id"), default=None)
    code: Mapped[str] = mapped_column(String(32))
    notes: Mapped[str] = mapped_column(Text, default="")
    amount_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)  # a promise to pay
    promise_date: Mapped[date | None] = mapped_column(Date, default=None)  # the debtor's date
    callback_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # an agreed time
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), default=None)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("dispositions.id"), default=None, unique=True)
    entered_by: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    effects: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # the changes it made
