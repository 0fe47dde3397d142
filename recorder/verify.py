"""`dunline recordings verify`: re-hash every archived file and check the ledger.

What is expected comes from the ledger, not from the recordings table: the `ingest`
entries name every file with its SHA-256, `purge` entries remove them. So a flipped byte
(hash differs), a deleted file (missing), a file nobody ingested (unexpected), an edited
ledger row (chain broken), a truncated ledger (checkpoint beyond the end) and an edited
recordings row (its hash no longer matches its ledger entry) are each named.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from recorder import ledger_store
from recorder.archive import ArchiveStore, ObjectMissing
from recorder.ledger import Entry, Problem, verify_chain, verify_checkpoints
from storage.db import Database
from storage.models import Recording
from storage.names import RECORDING_PREFIX, recording_subject


@dataclass(frozen=True, slots=True)
class ExpectedFile:
    key: str
    sha256: str
    subject: str  # the ledger subject that brought it in


@dataclass
class VerifyReport:
    entries: int = 0
    checkpoints: int = 0
    files: int = 0
    recordings: int = 0
    unsigned_tail: int = 0  # entries after the last checkpoint (not yet sealed)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        lines = [f"ledger: {self.entries} entries, {self.checkpoints} signed checkpoints"
                 + (f", {self.unsigned_tail} entries after the last checkpoint" if self.unsigned_tail else ""),
                 f"archive: {self.files} files re-hashed for {self.recordings} recordings",
                 *(f"PROBLEM {p}" for p in self.problems),
                 "verify: OK" if self.ok else f"verify: FAILED ({len(self.problems)} problems)"]
        return "\n".join(lines)


def expected_files(entries: Sequence[Entry]) -> dict[str, ExpectedFile]:
    """Every file the ledger says is in the archive now (ingested and not purged)."""
    live: dict[str, dict[str, ExpectedFile]] = {}
    for entry in entries:
        if not entry.subject.startswith(RECORDING_PREFIX):
            continue
        if entry.action == "ingest":
            files = entry.detail_map().get("files", {})
            live[entry.subject] = {info["key"]: ExpectedFile(info["key"], info["sha256"], entry.subject)
                                   for info in files.values()}
        elif entry.action == "purge":
            live.pop(entry.subject, None)
    merged: dict[str, ExpectedFile] = {}
    for files in live.values():
        merged.update(files)
    return merged


def _check_files(store: ArchiveStore, expected: dict[str, ExpectedFile]) -> list[Problem]:
    """Blocking: re-hash every expected file and list anything the store has besides."""
    problems: list[Problem] = []
    for key, want in sorted(expected.items()):
        try:
            sha, _size = store.hash_of(key)
        except (ObjectMissing, FileNotFoundError):
            problems.append(Problem("file_missing", key, want.subject))
            continue
        if sha != want.sha256:
            problems.append(Problem("file_changed", key, f"{want.subject}: sha256 {sha} "
                                                         f"but the ledger says {want.sha256}"))
    for key in store.keys():
        if key not in expected:
            problems.append(Problem("file_unexpected", key, "in the archive without a ledger entry"))
    return problems


def _check_rows(rows: Sequence[Recording], entries: Sequence[Entry]) -> list[Problem]:
    """Each live recordings row agrees with its ingest entry (hash, path, case)."""
    ingests = {e.subject: e for e in entries if e.action == "ingest"}
    purged = {e.subject for e in entries if e.action == "purge"}
    problems: list[Problem] = []
    for row in rows:
        subject = recording_subject(row.attempt_id)
        entry = ingests.get(subject)
        if entry is None:
            problems.append(Problem("recording_unledgered", subject, "no ingest entry in the ledger"))
            continue
        if (row.purged_at is None) == (subject in purged):
            problems.append(Problem("recording_row_altered", subject,
                                    "purged in the table but not in the ledger, or the reverse"))
        mixed = entry.detail_map().get("files", {}).get("mixed", {})
        detail = entry.detail_map()
        if (row.sha256, row.archive_path, row.case_id) != (mixed.get("sha256"), mixed.get("key"),
                                                           detail.get("case_id")):
            problems.append(Problem("recording_row_altered", subject,
                                    "hash, path or case differ from the ingest entry"))
    return problems


async def verify_archive(db: Database, store: ArchiveStore, public_key: Ed25519PublicKey) -> VerifyReport:
    async with db.session() as session:
        entries = list(await ledger_store.entries(session))
        checkpoints = list(await ledger_store.checkpoints(session))
        rows = list((await session.scalars(select(Recording).order_by(Recording.id))).all())
    report = VerifyReport(entries=len(entries), checkpoints=len(checkpoints), recordings=len(rows))
    report.problems += verify_chain(entries)
    report.problems += verify_checkpoints(checkpoints, {e.seq: e for e in entries}, public_key)
    last_signed = max((c.seq for c in checkpoints), default=0)
    report.unsigned_tail = max(0, len(entries) - last_signed)
    report.problems += _check_rows(rows, entries)
    expected = expected_files(entries)
    report.files = len(expected)
    report.problems += await asyncio.to_thread(_check_files, store, expected)
    return report
