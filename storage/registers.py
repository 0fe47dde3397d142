"""The registers of what leaves the agency besides calls: letters (催缴函), SMS (短信) and
lawyer letters (律师函) sent from approved templates, and field visits (外访) with their
team, their times, their report and its photos and recordings (cases/registers.py holds the
rules, cases/registers_store.py applies them).

A template is never edited: a new text is a new template, approved by someone other than
its author, retired when it may no longer be used. A correspondence item is never deleted;
its reply is set once. A field visit's row is never deleted either: six months after the
visit (cases/registers.py: RETENTION) its free texts are blanked, its attachment files
removed and the row stays as a tombstone (`purged_at`) beside its ledger entry.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class RegisterTemplate(Base):
    """The text of a letter, SMS or lawyer letter the client allowed (委托方认可的格式及内容)."""

    __tablename__ = "register_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)  # letter | sms | lawyer_letter
    name: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    approved_by: Mapped[str | None] = mapped_column(String(64), default=None)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    retired_by: Mapped[str | None] = mapped_column(String(64), default=None)
    retired_reason: Mapped[str | None] = mapped_column(Text, default=None)


class CorrespondenceItem(Base):
    """One letter, SMS or lawyer letter sent for a case: to whom, when, how, and the reply."""

    __tablename__ = "correspondence_items"
    __table_args__ = (Index("ix_correspondence_items_case_sent", "case_id", "sent_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # the template's kind
    template_id: Mapped[int] = mapped_column(ForeignKey("register_templates.id"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(100))
    recipient_relation: Mapped[str] = mapped_column(String(16))  # debtor | family | third_party
    channel: Mapped[str] = mapped_column(String(16))  # post | registered_mail | courier | email | sms | in_person
    address: Mapped[str] = mapped_column(String(300))  # postal address, e-mail address or mobile number
    sent_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime)
    registered_by: Mapped[str] = mapped_column(String(64))
    reply: Mapped[str | None] = mapped_column(Text, default=None)
    reply_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    reply_registered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    reply_registered_by: Mapped[str | None] = mapped_column(String(64), default=None)


class FieldVisit(Base):
    """A field visit: requested, approved or refused, then departed, arrived, left,
    returned and reported; `purge_due_at` is when its data goes (the purge reads it by index)."""

    __tablename__ = "field_visits"
    __table_args__ = (Index("ix_field_visits_purge_due", "purged_at", "purge_due_at"),
                      Index("ix_field_visits_state", "state"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # cases/registers.py: VisitState
    reason: Mapped[str | None] = mapped_column(Text, default=None)  # blanked at purge
    address: Mapped[str | None] = mapped_column(String(300), default=None)  # blanked at purge
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    requested_by: Mapped[str] = mapped_column(String(64))
    # the team of two (以2人小组形式外访): two distinct users
    member_a_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    member_b_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decision_note: Mapped[str | None] = mapped_column(Text, default=None)  # the refusal's reason; blanked at purge
    departed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    left_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    report: Mapped[str | None] = mapped_column(Text, default=None)  # blanked at purge
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    reported_by: Mapped[str | None] = mapped_column(String(64), default=None)
    purge_due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    purged_by: Mapped[str | None] = mapped_column(String(64), default=None)


class VisitAttachment(Base):
    """A photo or recording of a visit, a private file under the visits directory
    (`path` relative to it); its SHA-256 and size stay after the purge removes the file."""

    __tablename__ = "visit_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visit_id: Mapped[int] = mapped_column(ForeignKey("field_visits.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # photo | recording
    media_type: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str | None] = mapped_column(String(200), default=None)  # as uploaded; blanked at purge
    path: Mapped[str | None] = mapped_column(String(300), default=None)  # blanked at purge
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
