"""Reports of the case book by batch, arrears band and overdue band (the client's
委托批次、欠费金额、逾期时间报表): cases, arrears, cases attempted and contacted, calls.
Aggregated in one pass over the cases in reach (the bands are cases/assignment.py's);
written as CSV (UTF-8 with a BOM, for Excel) or XLSX."""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from sqlalchemy import case as sql_case
from sqlalchemy import func, select

from cases.assignment import AMOUNT_BANDS, OVERDUE_BANDS, amount_band, overdue_band
from storage.db import Database
from storage.intake import Batch
from storage.models import Attempt, Case
from storage.repositories import CaseScope


class GroupBy(StrEnum):
    BATCH = "batch"
    ARREARS_BAND = "arrears_band"
    OVERDUE_BAND = "overdue_band"


@dataclass(slots=True)
class ReportRow:
    group: str
    cases: int = 0
    arrears_cents: int = 0
    attempted: int = 0  # cases dialled at least once
    contacted: int = 0  # cases with at least one answered call
    calls: int = 0

    @property
    def contact_rate(self) -> float:
        return self.contacted / self.attempted if self.attempted else 0.0


COLUMNS = ("group", "cases", "arrears", "attempted", "contacted", "contact_rate", "calls")


async def case_report(db: Database, scope: CaseScope, by: GroupBy, today: date) -> list[ReportRow]:
    calls = (select(Attempt.case_id, func.count(Attempt.id).label("calls"),
                    func.max(sql_case((Attempt.answered_at.is_not(None), 1), else_=0)).label("answered"))
             .group_by(Attempt.case_id).subquery())
    query = (select(Batch.client, Batch.code, Case.amount_due_cents, Case.overdue_since,
                    func.coalesce(calls.c.calls, 0), func.coalesce(calls.c.answered, 0))
             .select_from(Case).outerjoin(Batch, Batch.id == Case.batch_id)
             .outerjoin(calls, calls.c.case_id == Case.id).where(scope.criteria()))
    order = ([name for _, name in AMOUNT_BANDS] if by is GroupBy.ARREARS_BAND
             else [name for _, name in OVERDUE_BANDS] if by is GroupBy.OVERDUE_BAND else [])
    rows: dict[str, ReportRow] = {name: ReportRow(name) for name in order}
    async with db.session() as s:
        async for client, code, cents, since, n_calls, answered in await s.stream(query):
            if by is GroupBy.BATCH:
                key = f"{client}/{code}" if code else "(no batch)"
            elif by is GroupBy.ARREARS_BAND:
                key = amount_band(cents)
            else:
                key = overdue_band(since, today)
            row = rows.setdefault(key, ReportRow(key))
            row.cases += 1
            row.arrears_cents += cents or 0
            row.attempted += 1 if n_calls else 0
            row.contacted += 1 if answered else 0
            row.calls += n_calls
    if by is GroupBy.BATCH:
        return sorted(rows.values(), key=lambda r: (r.group == "(no batch)", r.group))
    return list(rows.values())


def total(rows: Sequence[ReportRow]) -> ReportRow:
    out = ReportRow("total")
    for r in rows:
        out.cases += r.cases
        out.arrears_cents += r.arrears_cents
        out.attempted += r.attempted
        out.contacted += r.contacted
        out.calls += r.calls
    return out


def _cells(r: ReportRow) -> list[object]:
    return [r.group, r.cases, round(r.arrears_cents / 100, 2), r.attempted, r.contacted, round(r.contact_rate, 4),
            r.calls]


def report_csv(rows: Sequence[ReportRow]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in [*rows, total(rows)]:
        writer.writerow(_cells(r))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def report_xlsx(rows: Sequence[ReportRow], title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(list(COLUMNS))
    for r in [*rows, total(rows)]:
        sheet.append(_cells(r))
    for cell in sheet["C"][1:]:
        cell.number_format = "#,##0.00"
    for cell in sheet["F"][1:]:
        cell.number_format = "0.0%"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
