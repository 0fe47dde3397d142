"""Importing a client's batch file: read, check every row (cases/intake.py), then store
the good rows and the error report in one transaction — all of the file's good rows or
none of them. Re-importing the same file changes nothing (it is recognised by its SHA-256
and refused); a file that repeats rows already imported counts them as unchanged.

Progress is written to the import's row (`rows_done` of `rows_total`) as it goes, so the
console's progress bar and `dunline batch import` read the same thing.
"""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cases.intake import (
    CLIENT_PATTERN, BATCH_PATTERN, Checked, HeaderProblem, IntakeRow, RowError, StoredAccount, against_stored,
    case_id_of, check_rows, map_headers,
)
from cases.intake_files import UnreadableFile, read_table
from cases.rule_inputs import mark_listed_phones
from cases.refusals import Refused
from storage import repositories as repo
from storage.clock import Clock
from storage.db import Database
from storage.intake import Batch, BatchImport, BatchImportError
from storage.models import Case, Phone

Progress = Callable[[int, int], None]  # (rows done, rows in all)
CHUNK = 2000
_LOOKUP_CHUNK = 500


class ImportRefused(Refused):
    """The whole file is refused (unreadable, no usable header, no batch id, already
    imported); the message says why. Nothing of it is stored but the import's record."""


@dataclass(slots=True)
class ImportResult:
    import_id: int
    batch: str
    state: str
    rows_total: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    problem: str | None = None


def _default_batch(filename: str) -> str | None:
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem if BATCH_PATTERN.fullmatch(stem) else None


def check_file(data: bytes, filename: str, today: date, batch: str | None) -> tuple[Checked, str, str]:
    """Read and check a whole file (CPU work: callers run it off the event loop).
    Returns the checked rows, the batch id, and the encoding it was read in."""
    try:
        table = read_table(data, filename)
        headers = map_headers(table.headers)
    except (UnreadableFile, HeaderProblem) as exc:
        raise ImportRefused(str(exc)) from None
    checked = check_rows(table.rows, headers, today)
    named = checked.batch
    if batch and named and batch != named:
        raise ImportRefused(f"the file is batch {named!r}, not {batch!r}")
    chosen = batch or named or _default_batch(filename)
    if not chosen:
        raise ImportRefused("which batch is this? give the batch id (a 批次号 / batch column, or --batch)")
    if not BATCH_PATTERN.fullmatch(chosen):
        raise ImportRefused(f"not a batch id: {chosen!r}")
    checked.batch = chosen
    checked.errors.sort(key=lambda e: e.row)
    return checked, chosen, table.encoding


async def _stored_accounts(session: AsyncSession, client: str, accounts: Sequence[str]) -> dict[str, StoredAccount]:
    found: dict[str, StoredAccount] = {}
    for start in range(0, len(accounts), _LOOKUP_CHUNK):
        chunk = accounts[start:start + _LOOKUP_CHUNK]
        rows = await session.execute(
            select(Case.account, Batch.code, Case.intake_digest).outerjoin(Batch, Batch.id == Case.batch_id)
            .where(Case.client == client, Case.account.in_(chunk)))
        for account, code, digest in rows:
            found[account] = StoredAccount(code or "(no batch)", digest)
    return found


class BatchImporter:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def start(self, *, client: str, filename: str, data: bytes, by: str) -> int:
        """Record a new import (state `checking`) and return its id; `run` does the work."""
        if not CLIENT_PATTERN.fullmatch(client):
            raise ImportRefused(f"not a client name: {client!r} (lower-case letters, digits, '-')")
        async with self.db.session() as s:
            record = BatchImport(client=client, file_name=filename[-255:] or "upload",
                                 file_sha256=hashlib.sha256(data).hexdigest(), state="checking",
                                 started_at=self.clock(), by=by)
            s.add(record)
            await s.flush()
            return record.id

    async def run(self, import_id: int, data: bytes, *, batch: str | None = None,
                  progress: Progress | None = None) -> ImportResult:
        async with self.db.session() as s:
            record = await s.get(BatchImport, import_id)
            if record is None:
                raise LookupError(f"no import {import_id}")
            client, filename, by, sha = record.client, record.file_name, record.by, record.file_sha256
        today = self.clock().date()
        try:
            checked, code, encoding = await asyncio.to_thread(check_file, data, filename, today, batch)
        except ImportRefused as exc:
            return await self._refuse(import_id, batch or "", str(exc))
        total = len(checked.rows) + len({e.row for e in checked.errors})
        await self._progress(import_id, 0, total, encoding=encoding, state="importing")
        if progress:
            progress(0, total)
        try:
            return await self._store(import_id, client, code, sha, by, checked, total, progress)
        except ImportRefused as exc:
            return await self._refuse(import_id, code, str(exc))
        except Exception as exc:
            await self._finish(import_id, state="failed", problem=f"the database refused the import: {exc}"[:2000])
            raise

    async def _store(self, import_id: int, client: str, code: str, sha: str, by: str, checked: Checked,
                     total: int, progress: Progress | None) -> ImportResult:
        now = self.clock()
        async with self.db.session() as s:
            batch = await s.scalar(select(Batch).where(Batch.client == client, Batch.code == code))
            if batch is None:
                batch = Batch(client=client, code=code, created_at=now, created_by=by)
                s.add(batch)
                await s.flush()
            else:
                earlier = await s.scalar(select(BatchImport.id).where(
                    BatchImport.batch_id == batch.id, BatchImport.file_sha256 == sha, BatchImport.state == "done"))
                if earlier is not None:
                    raise ImportRefused(f"this file was already imported into batch {code} (import {earlier}); "
                                        "nothing changed")
            stored = await _stored_accounts(s, client, [r.account for r in checked.rows])
            sorted_rows = against_stored(checked.rows, stored, code, checked.account_column)
            errors = sorted(checked.errors + sorted_rows.errors, key=lambda e: e.row)
            done = 0
            for start in range(0, len(sorted_rows.new), CHUNK):
                chunk = sorted_rows.new[start:start + CHUNK]
                await self._insert_cases(s, client, batch.id, chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            for start in range(0, len(errors), CHUNK):
                await s.execute(insert(BatchImportError), [
                    {"import_id": import_id, "row": e.row, "column": e.column[:100], "problem": e.problem}
                    for e in errors[start:start + CHUNK]])
            rejected = len({e.row for e in errors})
            arrears = sum(r.arrears_cents for r in sorted_rows.new)
            await s.execute(update(BatchImport).where(BatchImport.id == import_id).values(
                batch_id=batch.id, state="done", rows_total=total, rows_done=total,
                rows_imported=len(sorted_rows.new), rows_unchanged=len(sorted_rows.unchanged), rows_rejected=rejected,
                arrears_cents=arrears, finished_at=self.clock()))
            await repo.audit(s, at=now, actor=by, action="batch.imported", subject=f"batch:{client}/{code}",
                             import_id=import_id, imported=len(sorted_rows.new),
                             unchanged=len(sorted_rows.unchanged), rejected=rejected)
        if progress:
            progress(total, total)
        return ImportResult(import_id, code, "done", total, len(sorted_rows.new), len(sorted_rows.unchanged),
                            rejected, errors)

    async def _insert_cases(self, s: AsyncSession, client: str, batch_id: int, rows: Sequence[IntakeRow]) -> None:
        now = self.clock()
        await s.execute(insert(Case), [{
            "id": case_id_of(client, r.account), "client": client, "debtor_name": r.debtor_name,
            "region": r.region, "timezone": r.timezone, "amount_due_cents": r.arrears_cents, "status": "open",
            "flags": [], "created_at": now, "batch_id": batch_id, "account": r.account, "id_number": r.id_number,
            "overdue_since": r.overdue_since, "segment": r.segment, "address": r.address,
            "intake_digest": r.digest} for r in rows])
        await s.execute(insert(Phone), [{
            "case_id": case_id_of(client, r.account), "number": p.number, "kind": p.relation.policy_kind,
            "relation": p.relation.value, "do_not_call": False, "refused": False}
            for r in rows for p in r.phones])
        await mark_listed_phones(s, [p.number for r in rows for p in r.phones])

    async def mark_interrupted(self) -> int:
        """At start: imports a stop cut short are failed (their transaction never committed:
        nothing of them is stored). Returns how many."""
        async with self.db.session() as s:
            result = await s.execute(
                update(BatchImport).where(BatchImport.state.in_(("checking", "importing")))
                .values(state="failed", finished_at=self.clock(),
                        problem="interrupted: the service stopped; nothing of the file was stored, import it again"))
            return result.rowcount or 0

    async def _progress(self, import_id: int, done: int, total: int, **values: object) -> None:
        async with self.db.session() as s:
            await s.execute(update(BatchImport).where(BatchImport.id == import_id)
                            .values(rows_done=done, rows_total=total, **values))

    async def _finish(self, import_id: int, **values: object) -> None:
        async with self.db.session() as s:
            await s.execute(update(BatchImport).where(BatchImport.id == import_id)
                            .values(finished_at=self.clock(), **values))

    async def _refuse(self, import_id: int, code: str, problem: str) -> ImportResult:
        await self._finish(import_id, state="refused", problem=problem)
        return ImportResult(import_id, code, "refused", problem=problem)


async def import_errors(db: Database, import_id: int) -> list[RowError]:
    async with db.session() as s:
        rows = await s.scalars(select(BatchImportError).where(BatchImportError.import_id == import_id)
                               .order_by(BatchImportError.row, BatchImportError.id))
        return [RowError(e.row, e.column, e.problem) for e in rows]


def error_report_csv(errors: Sequence[RowError]) -> bytes:
    """The error report as a CSV a clerk opens in Excel (UTF-8 with a BOM, so Chinese shows)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "column", "problem"])
    for e in errors:
        writer.writerow([e.row, _no_formula(e.column), _no_formula(e.problem)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _no_formula(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def batch_summaries(db: Database, client: str | None = None) -> list[dict[str, object]]:
    """Each batch: its cases, arrears, and how many are open / returned / closed."""
    async with db.session() as s:
        query = (select(Batch.id, Batch.client, Batch.code, Batch.created_at, Case.status,
                        func.count(Case.id), func.coalesce(func.sum(Case.amount_due_cents), 0))
                 .outerjoin(Case, Case.batch_id == Batch.id)
                 .group_by(Batch.id, Batch.client, Batch.code, Batch.created_at, Case.status)
                 .order_by(Batch.created_at.desc(), Batch.id.desc()))
        if client is not None:
            query = query.where(Batch.client == client)
        out: dict[int, dict[str, object]] = {}
        for batch_id, batch_client, code, created_at, status, count, amount in await s.execute(query):
            entry = out.setdefault(batch_id, {"id": batch_id, "client": batch_client, "code": code,
                                              "created_at": created_at.isoformat(), "cases": 0, "arrears_cents": 0,
                                              "by_status": {}})
            if status is not None:
                entry["cases"] = int(entry["cases"]) + count  # type: ignore[call-overload]
                entry["arrears_cents"] = int(entry["arrears_cents"]) + int(amount)  # type: ignore[call-overload]
                entry["by_status"][status] = count  # type: ignore[index]
        return list(out.values())
