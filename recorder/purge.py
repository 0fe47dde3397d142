"""The purge job: recordings past their retention and not held leave the store, their rows
stay as tombstones.

Order, for crash safety:
1. decide in the database (recorder.retention.plan_purge, pure, at the injected clock's now);
2. make the store's legal holds match the database for the keys involved (heals a crash
   between a hold/release commit and its store call), and finish deleting *leftovers*:
   objects of purged recordings no live recording references, still in the store because
   an earlier run crashed after its commit;
3. ask the store whether it would let each object go (its retain-until may be later than
   the row's, e.g. rounded up to the second): if not, the recording is kept this run;
4. one transaction: re-plan on fresh rows, then per recording the ledger "purge" entry,
   the audit event and `purged_at`;
5. only then delete the store objects. A crash here leaves files whose recording is
   purged: `recordings verify` names them `file_unexpected` until the next purge run
   deletes them (step 2).
An object shared with a live recording is never deleted; it goes with the last recording
that references it. Dry-run does steps 1-2's reading only and changes nothing.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from recorder.archive import ArchiveStore, ObjectMissing, RetentionError
from recorder.holds import hold_facts, recording_facts, require_who_why, sync_store_holds
from recorder.ledger_store import Ledger
from recorder.retention import (HoldFacts, PlannedPurge, Reason, RecordingFacts, held_keys, leftover_keys,
                                plan_purge)
from storage import repositories as repo
from storage import retention_repo as rrepo
from storage.models import Recording
from storage.names import recording_subject

DEFAULT_WHY = "retention period over"


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    attempt_id: str
    case_id: str
    retain_until: datetime
    reason: str  # a recorder.retention.Reason value, or "store_refuses" / "changed"
    detail: str
    deleted: tuple[str, ...] = ()  # store objects removed (or, in a dry run, that would be)
    shared: tuple[str, ...] = ()  # kept: another live recording references them


@dataclass
class PurgeReport:
    now: datetime
    dry_run: bool
    purged: list[PurgeOutcome] = field(default_factory=list)
    kept: list[PurgeOutcome] = field(default_factory=list)
    leftovers_deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "key: error"; retried on the next run
    store_holds_fixed: list[str] = field(default_factory=list)

    def render(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        lines = [f"purge at {self.now.isoformat()}{' (dry run: nothing changed)' if self.dry_run else ''}"]
        for o in self.purged:
            lines.append(f"{verb} recording {o.attempt_id} (case {o.case_id}): {o.detail}; "
                         f"files {len(o.deleted)}" + (f", {len(o.shared)} shared kept" if o.shared else ""))
        lines += [f"kept recording {o.attempt_id} (case {o.case_id}): {o.detail}" for o in self.kept]
        leftover_verb = "would finish deleting" if self.dry_run else "finished deleting"
        lines += [f"{leftover_verb} {key} (left by an interrupted purge)" for key in self.leftovers_deleted]
        lines += [f"store legal hold corrected: {key}" for key in self.store_holds_fixed]
        lines += [f"FAILED to delete {item} (will be retried by the next purge)" for item in self.failed]
        lines.append(f"{verb} {len(self.purged)}, kept {len(self.kept)}")
        return "\n".join(lines)


def _outcome(r: RecordingFacts, reason: str, detail: str, deleted: tuple[str, ...] = (),
             shared: tuple[str, ...] = ()) -> PurgeOutcome:
    return PurgeOutcome(r.attempt_id, r.case_id, r.retain_until, reason, detail, deleted, shared)


def _store_refusal(store: ArchiveStore, keys: tuple[str, ...], now: datetime) -> str | None:
    """Blocking: why the store would refuse to delete one of `keys` at `now`, or None."""
    for key in keys:
        try:
            retention = store.retention_of(key)
        except (ObjectMissing, FileNotFoundError):
            continue  # already gone: nothing to refuse
        if retention.legal_hold:
            return f"the store holds {key}"
        if now < retention.retain_until:
            return f"the store retains {key} until {retention.retain_until.isoformat()}"
    return None


def _delete_all(store: ArchiveStore, keys: list[str], now: datetime) -> tuple[list[str], list[str]]:
    """Blocking: delete each key; (deleted, failures as "key: error")."""
    deleted: list[str] = []
    failed: list[str] = []
    for key in keys:
        try:
            store.delete(key, now=now)
            deleted.append(key)
        except (ObjectMissing, FileNotFoundError):
            deleted.append(key)
        except (RetentionError, OSError) as exc:
            failed.append(f"{key}: {exc}")
    return deleted, failed


def _files_of(row: Recording) -> dict[str, dict[str, str]]:
    files = {"mixed": {"key": row.archive_path, "sha256": row.sha256}}
    for leg in row.legs or ():
        if leg.get("archive_path"):
            files[str(leg.get("leg"))] = {"key": str(leg["archive_path"]), "sha256": str(leg.get("sha256"))}
    if row.playback_path:
        files["playback"] = {"key": row.playback_path, "sha256": ""}  # derived; hashed in the ingest entry
    return files


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The rows and facts one decision is made on."""

    rows: dict[int, Recording]
    facts: list[RecordingFacts]
    holds: list[HoldFacts]


async def _read(session: Any) -> Snapshot:
    rows = {r.id: r for r in await rrepo.all_recordings(session)}
    holds = [hold_facts(h) for h in await rrepo.live_holds(session)]
    return Snapshot(rows, [recording_facts(r) for r in rows.values()], holds)


async def run_purge(ledger: Ledger, store: ArchiveStore, *, by: str | None, why: str | None = DEFAULT_WHY,
                    dry_run: bool = False) -> PurgeReport:
    """Purge every recording whose retention is over and which no live hold covers."""
    by, why = require_who_why(by, why)
    now = ledger.clock()
    report = PurgeReport(now=now, dry_run=dry_run)
    async with ledger.db.session() as session:
        snap = await _read(session)
    facts, holds = snap.facts, snap.holds
    plan = plan_purge(facts, holds, now)
    report.kept = [_outcome(r, v.reason.value, v.detail) for r, v in plan.kept]
    leftovers = await asyncio.to_thread(lambda: sorted(leftover_keys(facts).intersection(store.keys())))
    if dry_run:
        report.purged = [_outcome(p.recording, p.verdict.reason.value, p.verdict.detail, p.delete, p.shared)
                         for p in plan.purge]
        report.leftovers_deleted = leftovers
        return report
    expired = [r for r in facts if r.live and r.retain_until <= now]
    sync = await asyncio.to_thread(sync_store_holds, store,
                                   [*leftovers, *(k for r in expired for k in r.keys)], held_keys(facts, holds))
    report.store_holds_fixed = list(sync.changed)
    report.leftovers_deleted, report.failed = await asyncio.to_thread(_delete_all, store, leftovers, now)
    cleared: dict[int, tuple[str, ...]] = {}
    for planned in plan.purge:
        refusal = await asyncio.to_thread(_store_refusal, store, planned.delete, now)
        if refusal is None:
            cleared[planned.recording.recording_id] = planned.delete
        else:
            report.kept.append(_outcome(planned.recording, "store_refuses", f"{refusal}; kept this run"))
    to_delete = await _commit_tombstones(ledger, cleared, report, by=by, why=why)
    _deleted, failed = await asyncio.to_thread(_delete_all, store, to_delete, now)
    report.failed += failed
    return report


async def _commit_tombstones(ledger: Ledger, cleared: dict[int, tuple[str, ...]], report: PurgeReport,
                             *, by: str, why: str) -> list[str]:
    """One transaction: re-plan on fresh rows; tombstone + ledger entry for each recording
    still purgeable with no more store objects to delete than were checked. Returns the
    keys to delete once committed."""
    if not cleared:
        return []
    to_delete: list[str] = []
    async with ledger.transaction() as session:
        snap = await _read(session)
        rows = snap.rows
        fresh = plan_purge(snap.facts, snap.holds, report.now, frozenset(cleared))
        planned = {p.recording.recording_id: p for p in fresh.purge}
        for recording_id, checked in cleared.items():
            p = planned.get(recording_id)
            if p is None or not set(p.delete) <= set(checked):
                facts = recording_facts(rows[recording_id])
                report.kept.append(_outcome(facts, "changed", "holds or recordings changed during the "
                                                              "run; decided again next run"))
                continue
            await _tombstone(ledger, session, rows[recording_id], p, by=by, why=why)
            report.purged.append(_outcome(p.recording, p.verdict.reason.value, p.verdict.detail,
                                          p.delete, p.shared))
            to_delete += p.delete
    return to_delete


async def _tombstone(ledger: Ledger, session: Any, row: Recording, planned: PlannedPurge, *,
                     by: str, why: str) -> None:
    now = ledger.clock()
    files = {kind: {**info, "deleted": info["key"] in planned.delete}
             for kind, info in _files_of(row).items()}
    subject = recording_subject(row.attempt_id)
    await ledger.append(session, actor=by, action="purge", subject=subject, detail={
        "case_id": row.case_id, "by": by, "why": why, "retain_until": row.retain_until.isoformat(),
        "reason": Reason.EXPIRED.value, "files": files, "shared_kept": list(planned.shared)})
    await rrepo.mark_purged(session, row.id, now)
    await repo.audit(session, at=now, actor=by, action="recording.purged", subject=row.attempt_id,
                     case_id=row.case_id, retain_until=row.retain_until.isoformat(), why=why,
                     deleted=list(planned.delete), shared_kept=list(planned.shared))
