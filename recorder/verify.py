"""`dunline recordings verify`: the archive checked against the ledger, the ledger against
what lies outside the database.

Nothing in the database is taken on trust:

1. the ledger's chain (every entry rehashed, every link), its checkpoints (signed by the
   **pinned** key: a key swapped in beside the archive signs nothing that counts), the
   witnesses the store keeps of every checkpoint (recorder/witness.py) and any heads an
   outside party kept (`--heads`): a rollback to an earlier checkpoint, a deleted
   checkpoint, a rewritten and re-signed chain each disagree with them and are named;
   entries older than `unsigned_max_age_s` that no checkpoint covers are named too;
2. what the archive must hold is derived from the ledger alone (recorder/ledger_state.py):
   every `recordings` row must match its `ingest` entry and every ingest entry must have
   its row (a deleted row is named, with its case); every legal-hold row must match the
   ledger's holds and releases; every QC score row must match its `qc_score` entry (its
   results and comments by `storage.qc.score_digest`, total, scorer, recording) and every
   such entry must have its row;
3. every file of the store is accounted for: each expected object is re-hashed (a shared,
   deduplicated file that changed names every recording that refers to it), its
   retention record (retain-until, legal hold) must be the ledger's, and any other file,
   dotfiles and retention records included, is named as unexpected.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from recorder import ledger_store
from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger import Checkpoint, Entry, Problem, verify_chain, verify_checkpoints, verify_heads
from recorder.ledger_state import LedgerState, ObjectExpectation, derive
from recorder.witness import CheckpointWitness, is_witness_key
from storage.db import Database
from storage.models import LegalHold, Recording
from storage.names import recording_subject
from storage.qc import QcScore, score_digest

DEFAULT_UNSIGNED_MAX_AGE_S = 180.0


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    witnesses: int = 0
    heads_given: int = 0
    files: int = 0
    recordings: int = 0
    unsigned_tail: int = 0  # entries after the last checkpoint (not yet sealed)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def kinds(self) -> set[str]:
        return {p.kind for p in self.problems}

    def render(self) -> str:
        lines = [f"ledger: {self.entries} entries, {self.checkpoints} signed checkpoints, "
                 f"{self.witnesses} witnessed outside the database"
                 + (f", {self.heads_given} heads given" if self.heads_given else "")
                 + (f", {self.unsigned_tail} entries after the last checkpoint" if self.unsigned_tail else ""),
                 f"archive: {self.files} files re-hashed for {self.recordings} recordings",
                 *(f"PROBLEM {p}" for p in self.problems),
                 "verify: OK" if self.ok else f"verify: FAILED ({len(self.problems)} problems)"]
        return "\n".join(lines)


def _witness_problems(checkpoints: Sequence[Checkpoint], witnessed: Sequence[Checkpoint],
                      public_key: Ed25519PublicKey) -> list[Problem]:
    """Every checkpoint in the database must have its witness outside it."""
    seen = {(w.seq, w.head_hash) for w in witnessed if w.signed_by(public_key)}
    return [Problem("checkpoint_unwitnessed", f"checkpoint at entry {c.seq}",
                    "no witness of it outside the database (added there alone?)")
            for c in checkpoints if (c.seq, c.head_hash) not in seen]


def _unsigned(entries: Sequence[Entry], signed_upto: int, now: datetime, max_age_s: float) -> list[Problem]:
    stale = [e for e in entries if e.seq > signed_upto and now - e.at > timedelta(seconds=max_age_s)]
    if not stale:
        return []
    return [Problem("unsigned_entries", f"entries {stale[0].seq}..{stale[-1].seq}",
                    f"{len(stale)} entries older than {max_age_s:g} s that no checkpoint covers")]


def _check_rows(rows: Sequence[Recording], state: LedgerState) -> list[Problem]:
    """Each recordings row agrees with its ingest entry, and each ingest entry has its row."""
    problems: list[Problem] = []
    by_attempt = {row.attempt_id: row for row in rows}
    for attempt_id, rec in sorted(state.recordings.items()):
        if attempt_id not in by_attempt:
            problems.append(Problem("recording_row_missing", recording_subject(attempt_id),
                                    f"case {rec.case_id}: its ingest entry {rec.ingest_seq} has no recordings row "
                                    "(searches and exports would omit it)"))
    for row in rows:
        subject = recording_subject(row.attempt_id)
        rec = state.recordings.get(row.attempt_id)
        if rec is None:
            problems.append(Problem("recording_unledgered", subject, "no ingest entry in the ledger"))
            continue
        if (row.purged_at is not None) != rec.purged:
            problems.append(Problem("recording_row_altered", subject,
                                    "purged in the table but not in the ledger, or the reverse"))
        key, sha = rec.files.get("mixed", ("", ""))
        if (row.sha256, row.archive_path, row.case_id) != (sha, key, rec.case_id):
            problems.append(Problem("recording_row_altered", subject, "hash, path or case differ from the ingest entry"))
        if row.retain_until < rec.retain_until:
            problems.append(Problem("recording_row_altered", subject,
                                    f"retained until {row.retain_until.isoformat()} in the table, "
                                    f"{rec.retain_until.isoformat()} by the ledger"))
    return problems


def _check_holds(rows: Sequence[LegalHold], state: LedgerState) -> list[Problem]:
    problems: list[Problem] = []
    by_id = {row.id: row for row in rows}
    for hold_id, hold in sorted(state.holds.items()):
        row = by_id.get(hold_id)
        if row is None:
            problems.append(Problem("hold_row_missing", f"legal hold #{hold_id}",
                                    "in the ledger, not in the legal_holds table"))
        elif hold.live != (row.released_at is None):
            problems.append(Problem("hold_row_altered", f"legal hold #{hold_id}",
                                    f"{'live' if hold.live else 'released'} by the ledger, "
                                    f"{'live' if row.released_at is None else 'released'} in the table"))
    for row in rows:
        if row.id not in state.holds:
            problems.append(Problem("hold_unledgered", f"legal hold #{row.id}", "no hold entry in the ledger"))
    return problems


def _check_qc_scores(rows: Sequence[tuple[QcScore, str | None]], entries: Sequence[Entry]) -> list[Problem]:
    """Each QC score row agrees with its qc_score entry, and each such entry has its row."""
    problems: list[Problem] = []
    ledgered: dict[int, Entry] = {}
    for entry in entries:
        if entry.action == "qc_score":
            score_id = entry.detail_map().get("score_id")
            if isinstance(score_id, int):
                ledgered[score_id] = entry
    for row, attempt_id in rows:
        what = f"QC score #{row.id}"
        entry = ledgered.pop(row.id, None)
        if entry is None:
            problems.append(Problem("qc_score_unledgered", what, "no qc_score entry in the ledger"))
            continue
        detail = entry.detail_map()
        if (entry.seq != row.ledger_seq or attempt_id is None or entry.subject != recording_subject(attempt_id)
                or detail.get("score_digest") != score_digest(row.version, row.items or {}, row.comments)
                or detail.get("total") != row.total or entry.actor != row.scored_by):
            problems.append(Problem("qc_score_altered", what,
                                    f"results, comments, total, scorer or recording differ from ledger entry {entry.seq}"))
    for score_id, entry in sorted(ledgered.items()):
        problems.append(Problem("qc_score_row_missing", f"QC score #{score_id}",
                                f"its ledger entry {entry.seq} ({entry.subject}) has no qc_scores row"))
    return problems


def _check_files(store: ArchiveStore, expected: dict[str, ObjectExpectation],
                 witness_keys: set[str]) -> list[Problem]:
    """Blocking: re-hash every expected object, compare its retention with the ledger's,
    and name every other file the store holds."""
    problems: list[Problem] = []
    for key, want in sorted(expected.items()):
        names = ", ".join(want.subjects)
        try:
            sha, _size = store.hash_of(key)
        except (ObjectMissing, FileNotFoundError):
            problems.append(Problem("file_missing", key, names))
            continue
        if sha != want.sha256:
            problems.append(Problem("file_changed", key, f"{names}: sha256 {sha} but the ledger says {want.sha256}"))
        try:
            retention = store.retention_of(key)
        except (ObjectMissing, FileNotFoundError):
            problems.append(Problem("retention_missing", key, f"{names}: no retention record"))
            continue
        if want.retain_until is not None and retention.retain_until < want.retain_until:
            problems.append(Problem("retention_shortened", key,
                                    f"{names}: retained until {retention.retain_until.isoformat()}, the ledger "
                                    f"says {want.retain_until.isoformat()}"))
        elif want.retain_until is not None and retention.retain_until > want.retain_until:
            problems.append(Problem("retention_unledgered", key,
                                    f"{names}: retained until {retention.retain_until.isoformat()}, longer than "
                                    f"the ledger's {want.retain_until.isoformat()}"))
        if retention.legal_hold != want.held:
            problems.append(Problem("legal_hold_mismatch", key,
                                    f"{names}: {'held' if retention.legal_hold else 'not held'} in the store, "
                                    f"{'held' if want.held else 'not held'} by the ledger"))
    accounted = set(expected) | witness_keys
    accounted |= {c for key in accounted for c in store.companions(key)}
    for name in store.all_files():
        if name not in accounted:
            problems.append(Problem("file_unexpected", name, "in the archive, not derivable from the ledger"))
    return problems


def _read_witnesses(store: ArchiveStore) -> tuple[list[Checkpoint], set[str], list[Problem]]:
    """Blocking: the checkpoints witnessed in the store, their keys, unreadable ones."""
    found: list[Checkpoint] = []
    keys: set[str] = set()
    problems: list[Problem] = []
    for read in CheckpointWitness(store, retain_years=0).read_all():
        if read.checkpoint is None:
            problems.append(Problem("witness_invalid", read.key, read.problem))
            continue
        found.append(read.checkpoint)
        keys.add(read.key)
    return found, keys, problems


async def verify_archive(db: Database, store: ArchiveStore, public_key: Ed25519PublicKey, *,
                         heads: Sequence[Checkpoint] = (), now: datetime | None = None,
                         unsigned_max_age_s: float = DEFAULT_UNSIGNED_MAX_AGE_S) -> VerifyReport:
    """Everything in the module docstring; `public_key` is the pinned key, `heads` the
    signed heads an outside party kept, `now` when unsigned entries count as old."""
    async with db.session() as session:
        entries = list(await ledger_store.entries(session))
        checkpoints = list(await ledger_store.checkpoints(session))
        rows = list((await session.scalars(select(Recording).order_by(Recording.id))).all())
        hold_rows = list((await session.scalars(select(LegalHold).order_by(LegalHold.id))).all())
        score_rows = [(sc, attempt_id) for sc, attempt_id in (await session.execute(
            select(QcScore, Recording.attempt_id).outerjoin(Recording, Recording.id == QcScore.recording_id)
            .order_by(QcScore.id))).all()]
    witnessed, witness_keys, witness_problems = await asyncio.to_thread(_read_witnesses, store)
    report = VerifyReport(entries=len(entries), checkpoints=len(checkpoints), witnesses=len(witnessed),
                          heads_given=len(heads), recordings=len(rows))
    by_seq = {e.seq: e for e in entries}
    report.problems += verify_chain(entries)
    report.problems += verify_checkpoints(checkpoints, by_seq, public_key)
    report.problems += witness_problems
    report.problems += verify_heads(witnessed, by_seq, public_key, source="witnessed checkpoint",
                                    kinds=("witness_invalid", "ledger_rolled_back", "ledger_rewritten"))
    report.problems += _witness_problems(checkpoints, witnessed, public_key)
    report.problems += verify_heads(heads, by_seq, public_key, source="given head",
                                    kinds=("given_invalid", "ledger_rolled_back", "ledger_rewritten"))
    signed_upto = max((c.seq for c in [*checkpoints, *witnessed] if c.signed_by(public_key)), default=0)
    report.unsigned_tail = max(0, len(entries) - signed_upto)
    if now is not None:
        report.problems += _unsigned(entries, signed_upto, now, unsigned_max_age_s)
    state = derive(entries)
    report.problems += _check_rows(rows, state)
    report.problems += _check_holds(hold_rows, state)
    report.problems += _check_qc_scores(score_rows, entries)
    expected = state.expected_objects()
    report.files = len(expected)
    report.problems += await asyncio.to_thread(_check_files, store, expected,
                                               {k for k in witness_keys if is_witness_key(k)})
    return report
