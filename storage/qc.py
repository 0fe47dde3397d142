"""Quality control: the week's sample of each collector's recorded calls, the QC queue it
fills, and the scorecards QC officers save (cases/qc.py holds the rules, cases/qc_store.py
the work).

A sample is made once per (ISO week, collector) and never changed: its seed and size, how
many recorded calls the week had for that collector and the SHA-256 of their sorted attempt
ids, so anyone can re-derive the same pick. Each picked recording is one queue item. Scores
are never edited: a revision is a new row naming the one it revises (`revises_id`, unique);
each row is written in the same transaction as its ledger entry (`ledger_seq`, action
`qc_score`), whose detail carries `score_digest()` of the row: `recordings verify` names a
score whose row no longer matches its entry.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime


class QcSample(Base):
    __tablename__ = "qc_samples"
    __table_args__ = (UniqueConstraint("week", "collector_user_id", name="uq_qc_samples_week_collector"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    week: Mapped[str] = mapped_column(String(8), index=True)  # ISO week, "2026-W49" (Asia/Shanghai)
    collector_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    collector_phone: Mapped[str] = mapped_column(String(32))  # the phone its calls were matched on
    seed: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)  # asked for; fewer when the week had fewer calls
    candidates: Mapped[int] = mapped_column(Integer)  # the week's recorded calls of the collector
    candidates_sha256: Mapped[str] = mapped_column(String(64))  # of their sorted attempt ids, one a line
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class QcItem(Base):
    """One sampled recording in the QC queue: pending until scored."""

    __tablename__ = "qc_queue"
    __table_args__ = (Index("ix_qc_queue_state_sample", "state", "sample_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("qc_samples.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), unique=True)
    state: Mapped[str] = mapped_column(String(8), default="pending")  # pending | scored


class QcScore(Base):
    __tablename__ = "qc_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("qc_queue.id"), index=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id"), index=True)
    version: Mapped[str] = mapped_column(String(16))  # the scorecard's version (cases/qc.py)
    items: Mapped[dict[str, str]] = mapped_column(JSON)  # item key -> pass | fail | na
    total: Mapped[int] = mapped_column(Integer)  # 0-100
    comments: Mapped[str] = mapped_column(Text, default="")
    scored_by: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revises_id: Mapped[int | None] = mapped_column(ForeignKey("qc_scores.id"), default=None, unique=True)
    ledger_seq: Mapped[int | None] = mapped_column(Integer, default=None)  # its qc_score entry


def score_digest(version: str, items: Mapping[str, str], comments: str) -> str:
    """The SHA-256 a score's ledger entry carries: its version, every item's result and the
    comments, as canonical JSON (what `recordings verify` recomputes from the row)."""
    text = json.dumps({"comments": comments, "items": dict(items), "version": version}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
