"""SQLAlchemy models of the client's batches (委托批次): a batch, each import of a file
into it, and the rows an import refused (its error report). The cases a batch brought are
`cases` rows with `batch_id` (storage/models.py); cases/intake.py holds the row rules."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class Batch(Base):
    """A client's batch: `code` is the client's own batch id, unique per client."""

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("client", "code", name="uq_batches_client_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class BatchImport(Base):
    """One file imported into a batch: who, which file (its SHA-256), how far, what came of it.

    `state`: checking -> importing -> done | refused (the whole file: unreadable, no header,
    already imported) | failed (the database refused; nothing of it was stored)."""

    __tablename__ = "batch_imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), default=None, index=True)
    client: Mapped[str] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[str | None] = mapped_column(String(16), default=None)
    state: Mapped[str] = mapped_column(String(16), default="checking")
    problem: Mapped[str | None] = mapped_column(Text, default=None)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_done: Mapped[int] = mapped_column(Integer, default=0)  # progress
    rows_imported: Mapped[int] = mapped_column(Integer, default=0)
    rows_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rows_rejected: Mapped[int] = mapped_column(Integer, default=0)
    arrears_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # of the imported rows
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    by: Mapped[str] = mapped_column(String(64))


class BatchImportError(Base):
    """One problem of one refused row: the error report names row, column and problem."""

    __tablename__ = "batch_import_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("batch_imports.id"), index=True)
    row: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(100))
    problem: Mapped[str] = mapped_column(Text)
