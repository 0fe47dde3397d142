"""SQLAlchemy 2 models: the rows nothing may lose.

Case and Phone come from the client's batches; an Attempt is written *before* a call is
originated (write-ahead) and its id is the call's Asterisk ChannelId; a Recording is the
archived evidence of one answered attempt; AuditEvent is the append-only trail of who did
what. Times are stored as UTC.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

import storage.campaigns  # noqa: F401  (campaigns: the foreign key below resolves)
import storage.complaints  # noqa: F401  (complaints: one metadata, one migration history)
import storage.dial_leases  # noqa: F401  (per-number dial exclusion: one metadata, one migration history)
import storage.dispositions  # noqa: F401  (what came of each call: one metadata, one migration history)
import storage.intake  # noqa: F401  (batches: the foreign keys below resolve)
import storage.payments  # noqa: F401  (payments: one metadata, one migration history)
import storage.people  # noqa: F401  (users and teams: the foreign keys below resolve)
import storage.registers  # noqa: F401  (letters, SMS, lawyer letters, field visits: one metadata, one migration history)
import storage.qc  # noqa: F401  (quality control: one metadata, one migration history)
import storage.suppressions  # noqa: F401  (the do-not-call list: one metadata, one migration history)
from storage.base import Base, UtcDateTime  # noqa: F401  (re-exported)
from storage.names import ATTEMPT_ID_PATTERN  # noqa: F401  (re-exported: an attempt id)

# the reserved case of the watchdog's canary calls (test calls to a carrier test line)
CANARY_CASE = "CANARY"
CANARY_CLIENT = "dunline-canary"


class Case(Base):
    """One overdue account handed over by the client; `id` is the case number."""

    __tablename__ = "cases"
    __table_args__ = (
        # a collector's / a team's cases in case-number order: the case list pages without a sort
        Index("ix_cases_collector_case", "collector_id", "id"),
        Index("ix_cases_team_case", "team_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    client: Mapped[str] = mapped_column(String(64))
    debtor_name: Mapped[str] = mapped_column(String(200), index=True)  # found by its start
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)
    amount_due_cents: Mapped[int | None] = mapped_column(BigInteger, default=None)
    paid_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # the client's payments so far (balance: due - paid)
    status: Mapped[str] = mapped_column(String(32), default="open")
    campaign: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    # suppressions of the dialing policy: 'dispute', 'fraud', 'care'
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    care_approved_until: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # who works it (storage/people.py): a team, and within it a collector
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    collector_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # from the client's batch (cases/intake.py): the case number is `{client}-{account}`
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("batches.id"), default=None, index=True)
    account: Mapped[str | None] = mapped_column(String(40), default=None, index=True)
    id_number: Mapped[str | None] = mapped_column(String(18), default=None)
    overdue_since: Mapped[date | None] = mapped_column(Date, default=None, index=True)
    segment: Mapped[str | None] = mapped_column(String(64), default=None)
    address: Mapped[str | None] = mapped_column(String(300), default=None)
    intake_digest: Mapped[str | None] = mapped_column(String(64), default=None)  # the row as imported
    # returned to the client or closed: why, by whom, when (status says which)
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    phones: Mapped[list[Phone]] = relationship(back_populates="case", order_by="Phone.id")


class Phone(Base):
    """A number that may be dialled for a case (the debtor's or a third party's)."""

    __tablename__ = "phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    number: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="debtor")
    label: Mapped[str | None] = mapped_column(String(64), default=None)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # a third party who refused
    # whose number, as the client or a tracer said: own / family / work / third_party
    relation: Mapped[str | None] = mapped_column(String(16), default=None)
    added_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    added_by: Mapped[str | None] = mapped_column(String(64), default=None)  # None: from the batch
    # a wrong number (a disposition) or by hand: never dialled for this case again until lifted
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    retired_by: Mapped[str | None] = mapped_column(String(64), default=None)

    case: Mapped[Case] = relationship(back_populates="phones")


class Attempt(Base):
    """One call attempt. Written before Originate; `id` is the Asterisk ChannelId.

    `state` moves only as storage/lifecycle.py says (created -> originated -> answered ->
    bound -> ended; `unknown` when the outcome could not be learnt, never redialled until
    reconciled); every report goes through storage/attempt_reports.py.
    """

    __tablename__ = "attempts"
    __table_args__ = (Index("ix_attempts_case_created", "case_id", "created_at"),
                      Index("ix_attempts_campaign_created", "campaign_id", "created_at"))

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    phone_id: Mapped[int | None] = mapped_column(ForeignKey("phones.id"), default=None)
    number: Mapped[str] = mapped_column(String(32), index=True)
    collector: Mapped[str | None] = mapped_column(String(32), default=None, index=True)
    caller_id: Mapped[str | None] = mapped_column(String(32), default=None)
    state: Mapped[str] = mapped_column(String(16), default="created", index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    hangup_cause: Mapped[int | None] = mapped_column(Integer, default=None)
    dial_status: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    originated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    bound_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    answered_seconds: Mapped[float | None] = mapped_column(Float, default=None)  # answer -> hang-up
    bridged_seconds: Mapped[float | None] = mapped_column(Float, default=None)  # with a collector
    answer_to_bridge_s: Mapped[float | None] = mapped_column(Float, default=None)  # answer -> with a collector
    recorded_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    recording_name: Mapped[str | None] = mapped_column(String(255), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # the policy's verdict
    # when the PBX created the channel, by the PBX's own clock (the audit's independent witness)
    pbx_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    # answered with no collector ready within the floor's wait: the debtor heard the message
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    amd: Mapped[str | None] = mapped_column(String(16), default=None)  # answering-machine detection's verdict


class Appointment(Base):
    """A time the debtor or a third party agreed to be called (may be outside the window).
    A cancelled one (its disposition corrected) no longer counts; the row stays."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    agreed_by: Mapped[str] = mapped_column(String(64))
    recorded_attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(64), default=None)


class ApprovedCallerId(Base):
    """A work number the client approved for use as caller ID."""

    __tablename__ = "approved_caller_ids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    added_by: Mapped[str | None] = mapped_column(String(64), default=None)
    added_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class PolicyDecision(Base):
    """Every verdict of the dialing policy at origination time, allowed or blocked."""

    __tablename__ = "policy_decisions"
    __table_args__ = (Index("ix_policy_decisions_case_at", "case_id", "at"),
                      Index("ix_policy_decisions_at", "at"))  # the latest decision's time, read by every dial

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    number: Mapped[str] = mapped_column(String(32))
    allowed: Mapped[bool] = mapped_column(Boolean)
    rule: Mapped[str | None] = mapped_column(String(64), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    next_allowed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id"), default=None)


class Recording(Base):
    """The archived evidence of one answered attempt: mixed file plus each leg."""

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_case_ended", "case_id", "call_ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), unique=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    archive_path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_s: Mapped[float] = mapped_column(Float)
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    call_ended_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retain_until: Mapped[datetime] = mapped_column(UtcDateTime)
    store: Mapped[str] = mapped_column(String(8), default="fs")  # which ArchiveStore holds it
    playback_path: Mapped[str | None] = mapped_column(String(512), default=None)  # derived, compressed
    ledger_seq: Mapped[int | None] = mapped_column(Integer, default=None)  # its ingest entry
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)  # tombstone


class LegalHold(Base):
    """A hold on a whole case or one recording: nothing held is purged, whatever its age."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"), default=None, index=True)
    placed_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    released_by: Mapped[str | None] = mapped_column(String(64), default=None)
    release_reason: Mapped[str | None] = mapped_column(Text, default=None)
    released_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)


class LedgerEntry(Base):
    """One entry of the tamper-evident ledger (recorder/ledger.py): hash-linked, append-only.

    `detail` is the canonical JSON text exactly as hashed; `entry_hash` covers every
    column and `prev_hash`, so editing, removing or reordering a row breaks the chain.
    """

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(128), index=True)
    detail: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    salt: Mapped[str | None] = mapped_column(String(32), default=None)  # format 2; None: format 1


class LedgerCheckpoint(Base):
    """A signed statement of the ledger's head: `seq` entries ending in `head_hash`."""

    __tablename__ = "ledger_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(200))
    # the write-once copy outside the database (recorder/witness.py); None until written
    witness_key: Mapped[str | None] = mapped_column(String(512), default=None)


class IngestJob(Base):
    """The durable work of archiving one call's recording (recorder/ingest_jobs.py).

    Created when the recording starts (bind), `due` when the call is over, `archived` in the
    same transaction as its Recording row and ledger entry, or `resolved` by a person (who,
    why, and a ledger entry). A due job is retried with backoff across restarts; one due
    longer than the watchdog's reconcile time is a critical incident until it is archived
    or resolved.
    """

    __tablename__ = "ingest_jobs"

    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)  # recording | due | archived | resolved
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None, index=True)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(64), default=None)
    resolution: Mapped[str | None] = mapped_column(Text, default=None)


class JournalApplied(Base):
    """A record of the local journal (storage/journal.py) applied to the database, in the
    same transaction as its effect: a replay after a crash never applies it twice."""

    __tablename__ = "journal_applied"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AuditEvent(Base):
    """Append-only trail: every binding, rejection, recording, access and purge."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # set when the event went through the durable writer: a replay inserts it once
    event_id: Mapped[str | None] = mapped_column(String(36), default=None, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(128), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Count(Base):
    """One count /metrics reads (storage/counters.py): (name, label) -> value, changed in the
    transaction that changes what it counts."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
