"""Payments: the client's records of what debtors paid, imported from their files
(cases/payments.py holds the rules). A payment is matched to a case by account; it is never
edited, deleted or offset against another (a correction is the client's next file).
`row_digest` makes a re-import change nothing: the same row of the same receipt is known.
Each payment is credited to the collector and campaign whose promise or contact preceded it
(`credit_rule` says which rule credited it)."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class PaymentImport(Base):
    """One payment file taken in: its progress and outcome (like a batch import)."""

    __tablename__ = "payment_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[str | None] = mapped_column(String(16), default=None)
    state: Mapped[str] = mapped_column(String(16), default="checking")  # checking | importing | done | refused | failed
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # of the imported rows
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    by: Mapped[str] = mapped_column(String(64))


class PaymentImportError(Base):
    __tablename__ = "payment_import_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("payment_imports.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(100))
    problem: Mapped[str] = mapped_column(Text)


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        # a receipt is registered once per client (two imports at once cannot both take it), and a
        # file's receipts are looked up by this index, not by a scan of every payment
        Index("uq_payments_client_receipt", "client", "receipt_no", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    account: Mapped[str] = mapped_column(String(40))
    amount_cents: Mapped[int] = mapped_column(BigInteger)  # > 0
    paid_on: Mapped[date] = mapped_column(Date, index=True)
    receipt_no: Mapped[str] = mapped_column(String(64))  # the client's receipt (registered, unique per client)
    client: Mapped[str] = mapped_column(String(64))
    row_digest: Mapped[str] = mapped_column(String(64), unique=True)  # re-import of the same row: nothing changes
    import_id: Mapped[int | None] = mapped_column(ForeignKey("payment_imports.id"), default=None)
    credited_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None, index=True)
    credited_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    credited_attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id"), default=None)
    credit_rule: Mapped[str] = mapped_column(String(16), default="none")  # promise | contact | none
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str] = mapped_column(String(64))
