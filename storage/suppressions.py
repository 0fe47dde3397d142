"""The do-not-call list: numbers never to be dialled, for every client or for one. The
dialing policy reads each phone's `do_not_call`; cases/rule_inputs.py keeps that flag equal
to this list (on adding or removing an entry, and for every phone added later)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    client: Mapped[str | None] = mapped_column(String(64), default=None)  # None: every client
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))  # "manual", "import:<id>", "call:<attempt>"
    added_at: Mapped[datetime] = mapped_column(UtcDateTime)
    added_by: Mapped[str] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    removed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    removed_why: Mapped[str | None] = mapped_column(Text, default=None)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), default=None)  # raised on a case
