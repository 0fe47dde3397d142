"""Importing a client's payment file (缴费记录): read, check every row (cases/payments.py), then
in one transaction store the new payments, each credited by the credit rule, add them to
their cases' paid amount, settle the cases paid in full, and keep the error report — all of
the file's good rows or none of them (the batch import's pattern, cases/batches.py).

Re-importing changes nothing: a row already stored (same digest) is counted unchanged. A
payment is never edited, deleted or offset against anything: a receipt already registered
with other data is a row error, and the client's next file is how they correct a record.
A case whose payments reach its arrears becomes `settled` (audited like any status change),
and the dialing policy never dials a case that is not open (rule `case_status`).
"""
from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cases.intake import CLIENT_PATTERN, HeaderProblem, RowError
from cases.intake_files import UnreadableFile, read_table
from cases.payments import (
    CREDIT_ZONE, PROMISE_CODE, CheckedPayments, ContactFact, Credit, PromiseFact, SortedPayments, against_stored,
    check_rows, credit, credit_window, digest_of, map_headers, settles,
)
from cases.refusals import Refused
from storage import repositories as repo
from storage.campaigns import Campaign
from storage.clock import Clock
from storage.db import Database
from storage.dispositions import Disposition
from storage.models import Attempt, Case
from storage.names import case_subject
from storage.payments import Payment, PaymentImport, PaymentImportError
from storage.people import User

Progress = Callable[[int, int], None]  # (rows done, rows in all)
CHUNK = 2000
_LOOKUP_CHUNK = 500
SETTLED = "settled"


class PaymentImportRefused(Refused):
    """The whole file is refused (unreadable, no usable header, not a client); the message
    says why. Nothing of it is stored but the import's record."""


@dataclass(slots=True)
class PaymentImportResult:
    import_id: int
    state: str
    rows_total: int = 0
    imported: int = 0
    unchanged: int = 0
    rejected: int = 0
    amount_cents: int = 0  # of the payments imported
    settled: list[str] = field(default_factory=list)  # the cases this file settled
    credited: dict[str, int] = field(default_factory=dict)  # rule -> payments imported
    errors: list[RowError] = field(default_factory=list)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentShown:
    """A stored payment as a case's page and the API show it."""

    id: int
    paid_on: date
    amount_cents: int
    receipt_no: str
    credit_rule: str
    credited_user: str | None  # username
    credited_name: str | None  # display name
    credited_campaign: str | None  # campaign name
    credited_attempt_id: str | None
    imported_at: datetime
    import_id: int | None


def today_in_beijing(clock: Clock) -> date:
    return clock().astimezone(CREDIT_ZONE).date()


def check_file(data: bytes, filename: str, today: date) -> tuple[CheckedPayments, str]:
    """Read and check a whole file (CPU work: callers run it off the event loop). Returns the
    checked rows and the encoding it was read in."""
    try:
        table = read_table(data, filename)
        headers = map_headers(table.headers)
    except (UnreadableFile, HeaderProblem) as exc:
        raise PaymentImportRefused(str(exc)) from None
    checked = check_rows(table.rows, headers, today)
    checked.errors.sort(key=lambda e: e.row)
    return checked, table.encoding


async def _cases_of(s: AsyncSession, client: str, accounts: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    unique = sorted(set(accounts))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        rows = await s.execute(select(Case.account, Case.id).where(
            Case.client == client, Case.account.in_(unique[start:start + _LOOKUP_CHUNK])))
        for account, case_id in rows:
            found[account] = case_id
    return found


async def _receipts_of(s: AsyncSession, client: str, receipts: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(receipts), _LOOKUP_CHUNK):
        rows = await s.execute(select(Payment.receipt_no, Payment.row_digest).where(
            Payment.client == client, Payment.receipt_no.in_(receipts[start:start + _LOOKUP_CHUNK])))
        for receipt, digest in rows:
            found[receipt] = digest
    return found


@dataclass(slots=True)
class _Facts:
    promises: dict[str, list[PromiseFact]] = field(default_factory=lambda: defaultdict(list))
    contacts: dict[str, list[ContactFact]] = field(default_factory=lambda: defaultdict(list))


async def credit_facts(s: AsyncSession, case_ids: Sequence[str], since: datetime, until: datetime) -> _Facts:
    """The promises and connected calls of these cases between `since` and `until` (read by the
    cases' own indexes), their people resolved to user ids: a disposition's by who entered it,
    a call's by the user whose phone took it."""
    facts = _Facts()
    fix = aliased(Disposition)
    corrected = exists().where(fix.corrects_id == Disposition.id)
    promise_rows: list = []
    contact_rows: list = []
    unique = sorted(set(case_ids))
    for start in range(0, len(unique), _LOOKUP_CHUNK):
        chunk = unique[start:start + _LOOKUP_CHUNK]
        promise_rows += (await s.execute(
            select(Disposition.id, Disposition.attempt_id, Disposition.case_id, Disposition.entered_at,
                   Disposition.entered_by, Attempt.campaign_id, corrected.label("corrected"))
            .join(Attempt, Attempt.id == Disposition.attempt_id)
            .where(Disposition.case_id.in_(chunk), Disposition.code == PROMISE_CODE,
                   Disposition.entered_at >= since, Disposition.entered_at < until))).all()
        # a call is answered after it is created: those created from a day before the window on
        contact_rows += (await s.execute(
            select(Attempt.id, Attempt.case_id, Attempt.answered_at, Attempt.created_at, Attempt.bridged_seconds,
                   Attempt.collector, Attempt.campaign_id)
            .where(Attempt.case_id.in_(chunk), Attempt.bridged_seconds > 0,
                   Attempt.created_at >= since - timedelta(days=1), Attempt.created_at < until))).all()
    by_name = {r.entered_by for r in promise_rows}
    by_phone = {r.collector for r in contact_rows if r.collector}
    user_of_name = dict((await s.execute(select(User.username, User.id).where(User.username.in_(by_name)))).all()) \
        if by_name else {}
    user_of_phone = dict((await s.execute(select(User.phone, User.id).where(User.phone.in_(by_phone)))).all()) \
        if by_phone else {}
    for r in promise_rows:
        facts.promises[r.case_id].append(PromiseFact(r.id, r.attempt_id, r.entered_at, user_of_name.get(r.entered_by),
                                                     r.campaign_id, bool(r.corrected)))
    for r in contact_rows:
        facts.contacts[r.case_id].append(ContactFact(r.id, r.answered_at or r.created_at, r.bridged_seconds,
                                                     user_of_phone.get(r.collector), r.campaign_id))
    return facts


class PaymentImporter:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def start(self, *, client: str, filename: str, data: bytes, by: str) -> int:
        """Record a new import (state `checking`) and return its id; `run` does the work."""
        if not isinstance(client, str) or not CLIENT_PATTERN.fullmatch(client):
            raise PaymentImportRefused(f"not a client name: {client!r} (lower-case letters, digits, '-')")
        async with self.db.session() as s:
            record = PaymentImport(client=client, file_name=filename[-255:] or "upload",
                                   file_sha256=hashlib.sha256(data).hexdigest(), state="checking",
                                   started_at=self.clock(), by=by)
            s.add(record)
            await s.flush()
            return record.id

    async def run(self, import_id: int, data: bytes, *, progress: Progress | None = None) -> PaymentImportResult:
        async with self.db.session() as s:
            record = await s.get(PaymentImport, import_id)
            if record is None:
                raise LookupError(f"no payment import {import_id}")
            client, filename, by = record.client, record.file_name, record.by
        try:
            checked, encoding = await asyncio.to_thread(check_file, data, filename, today_in_beijing(self.clock))
        except PaymentImportRefused as exc:
            return await self._refuse(import_id, str(exc))
        total = len(checked.rows) + len({e.row for e in checked.errors})
        await self._update(import_id, rows_total=total, encoding=encoding, state="importing")
        if progress:
            progress(0, total)
        try:
            return await self._store(import_id, client, by, checked, total, progress)
        except Exception as exc:
            await self._update(import_id, state="failed", finished_at=self.clock(),
                               problem=f"the database refused the import: {exc}"[:2000])
            raise

    async def _store(self, import_id: int, client: str, by: str, checked: CheckedPayments, total: int,
                     progress: Progress | None) -> PaymentImportResult:
        now = self.clock()
        async with self.db.session() as s:
            cases = await _cases_of(s, client, [r.account for r in checked.rows])
            receipts = await _receipts_of(s, client, [r.receipt_no for r in checked.rows])
            sorted_rows: SortedPayments = against_stored(checked.rows, client, cases, receipts,
                                                         checked.account_column, checked.receipt_column)
            errors = sorted(checked.errors + sorted_rows.errors, key=lambda e: e.row)
            credits = await self._credits(s, sorted_rows)
            done, paid = 0, defaultdict(int)
            for start in range(0, len(sorted_rows.new), CHUNK):
                chunk = sorted_rows.new[start:start + CHUNK]
                await s.execute(insert(Payment), [{
                    "case_id": case_id, "account": row.account, "amount_cents": row.amount_cents,
                    "paid_on": row.paid_on, "receipt_no": row.receipt_no, "client": client,
                    "row_digest": digest_of(client, row), "import_id": import_id,
                    "credited_user_id": c.user_id, "credited_campaign_id": c.campaign_id,
                    "credited_attempt_id": c.attempt_id, "credit_rule": c.rule.value,
                    "imported_at": now, "imported_by": by} for (row, case_id), c in zip(chunk, credits[start:])])
                for row, case_id in chunk:
                    paid[case_id] += row.amount_cents
                done += len(chunk)
                if progress:
                    progress(done, total)
            settled = await self._add_paid(s, paid, by, now, import_id)
            for start in range(0, len(errors), CHUNK):
                await s.execute(insert(PaymentImportError), [
                    {"import_id": import_id, "row": e.row, "column": e.column[:100], "problem": e.problem}
                    for e in errors[start:start + CHUNK]])
            rejected = len({e.row for e in errors})
            amount = sum(row.amount_cents for row, _ in sorted_rows.new)
            credited: dict[str, int] = defaultdict(int)
            for c in credits:
                credited[c.rule.value] += 1
            await s.execute(update(PaymentImport).where(PaymentImport.id == import_id).values(
                state="done", rows_total=total, rows_imported=len(sorted_rows.new),
                rows_unchanged=len(sorted_rows.unchanged), rows_rejected=rejected, amount_cents=amount,
                finished_at=self.clock()))
            await repo.audit(s, at=now, actor=by, action="payment.imported", subject=f"payments:{client}",
                             import_id=import_id, imported=len(sorted_rows.new), unchanged=len(sorted_rows.unchanged),
                             rejected=rejected, amount_cents=amount, settled=settled, credited=dict(credited))
        if progress:
            progress(total, total)
        return PaymentImportResult(import_id, "done", total, len(sorted_rows.new), len(sorted_rows.unchanged),
                                   rejected, amount, settled, dict(credited), errors)

    async def _credits(self, s: AsyncSession, sorted_rows: SortedPayments) -> list[Credit]:
        """The credit of each new payment, in order (the credit rule on its case's facts)."""
        if not sorted_rows.new:
            return []
        windows = [credit_window(row.paid_on) for row, _ in sorted_rows.new]
        facts = await credit_facts(s, [case_id for _, case_id in sorted_rows.new],
                                   min(w[0] for w in windows), max(w[1] for w in windows))
        return [credit(row.paid_on, facts.promises.get(case_id, ()), facts.contacts.get(case_id, ()))
                for row, case_id in sorted_rows.new]

    async def _add_paid(self, s: AsyncSession, paid: dict[str, int], by: str, now: datetime,
                        import_id: int) -> list[str]:
        """Add the payments to their cases (in the database, so a concurrent change is not
        lost) and settle the cases now paid in full. Returns the settled cases."""
        if not paid:
            return []
        table = Case.__table__
        await s.execute(update(table).where(table.c.id == bindparam("case_id"))
                        .values(paid_cents=table.c.paid_cents + bindparam("added")),
                        [{"case_id": case_id, "added": cents} for case_id, cents in paid.items()])
        settled: list[str] = []
        ids = sorted(paid)
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            rows = (await s.execute(select(Case.id, Case.amount_due_cents, Case.paid_cents, Case.status)
                                    .where(Case.id.in_(ids[start:start + _LOOKUP_CHUNK])))).all()
            for case_id, due, paid_cents, status in rows:
                if status == SETTLED or not settles(due, paid_cents):
                    continue
                why = f"paid in full: {paid_cents / 100:.2f} of {due / 100:.2f} (payment import {import_id})"
                await s.execute(update(Case).where(Case.id == case_id).values(
                    status=SETTLED, status_reason=why, status_changed_at=now))
                await repo.audit(s, at=now, actor=by, action="case.status_changed", subject=case_subject(case_id),
                                 before=status, after=SETTLED, why=why, import_id=import_id)
                settled.append(case_id)
        return settled

    async def mark_interrupted(self) -> int:
        """At start: imports a stop cut short are failed (their transaction never committed:
        nothing of them is stored). Returns how many."""
        async with self.db.session() as s:
            result = await s.execute(
                update(PaymentImport).where(PaymentImport.state.in_(("checking", "importing")))
                .values(state="failed", finished_at=self.clock(),
                        problem="interrupted: the service stopped; nothing of the file was stored, import it again"))
            return result.rowcount or 0

    async def _update(self, import_id: int, **values: object) -> None:
        async with self.db.session() as s:
            await s.execute(update(PaymentImport).where(PaymentImport.id == import_id).values(**values))

    async def _refuse(self, import_id: int, problem: str) -> PaymentImportResult:
        await self._update(import_id, state="refused", problem=problem, finished_at=self.clock())
        return PaymentImportResult(import_id, "refused", problem=problem)


async def import_record(db: Database, import_id: int) -> PaymentImport | None:
    async with db.session() as s:
        return await s.get(PaymentImport, import_id)


async def recent_imports(db: Database, limit: int = 20) -> list[PaymentImport]:
    async with db.session() as s:
        return list((await s.scalars(select(PaymentImport).order_by(PaymentImport.id.desc()).limit(limit))).all())


async def import_errors(db: Database, import_id: int) -> list[RowError]:
    async with db.session() as s:
        rows = await s.scalars(select(PaymentImportError).where(PaymentImportError.import_id == import_id)
                               .order_by(PaymentImportError.row, PaymentImportError.id))
        return [RowError(e.row, e.column, e.problem) for e in rows]


async def payments_of_case(s: AsyncSession, case_id: str) -> list[PaymentShown]:
    """A case's payments, by day paid then as imported, each with whom it is credited to."""
    rows = await s.execute(
        select(Payment, User.username, User.display_name, Campaign.name)
        .outerjoin(User, User.id == Payment.credited_user_id)
        .outerjoin(Campaign, Campaign.id == Payment.credited_campaign_id)
        .where(Payment.case_id == case_id).order_by(Payment.paid_on, Payment.id))
    return [PaymentShown(p.id, p.paid_on, p.amount_cents, p.receipt_no, p.credit_rule, username, name, campaign,
                         p.credited_attempt_id, p.imported_at, p.import_id)
            for p, username, name, campaign in rows]


async def payments_for_case(db: Database, case_id: str) -> list[PaymentShown]:
    async with db.session() as s:
        return await payments_of_case(s, case_id)
