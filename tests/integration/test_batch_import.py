"""Importing a client's batch into a real database: .xlsx and CSV (UTF-8, BOM, GBK) with
every kind of bad row, the error report naming row, column and problem, a 10 000-row
file, re-imports that change nothing, a file that is not one, and a database that refuses
the import halfway (nothing of it stored)."""
from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.batches import BatchImporter, ImportRefused, batch_summaries, error_report_csv, import_errors
from storage import repositories as repo
from storage.intake import BatchImport
from storage.models import AuditEvent, Case, Phone
from tests.batch_files import EN_HEADERS, ZH_HEADERS, bad_rows, csv_bytes, good_row, xlsx_bytes
from tests.db_snapshot import snapshot

ROOT = Path(__file__).resolve().parents[2]


async def import_file(db, clock, data: bytes, name: str, client: str = "cu", batch: str | None = None):
    importer = BatchImporter(db, clock)
    import_id = await importer.start(client=client, filename=name, data=data, by="tester")
    return await importer.run(import_id, data, batch=batch)


def mixed_rows():
    goods = [good_row(n) for n in range(1, 21)]
    return goods, [*goods, *[b.cells for b in bad_rows()]]


@pytest.mark.parametrize("kind", ["xlsx", "utf-8", "utf-8-sig", "gbk"])
async def test_good_rows_imported_and_every_bad_row_reported(db, clock, kind):
    goods, rows = mixed_rows()
    data = xlsx_bytes(rows) if kind == "xlsx" else csv_bytes(rows, kind)
    result = await import_file(db, clock, data, f"batch.{'xlsx' if kind == 'xlsx' else 'csv'}")
    assert (result.state, result.imported, result.rejected) == ("done", 20, len(bad_rows()))
    reported = {(e.row, e.column) for e in result.errors}
    for offset, bad in enumerate(bad_rows()):
        row = 2 + len(goods) + offset
        assert (row, bad.column) in reported, (bad.problem, sorted(reported))
        assert any(e.row == row and bad.problem in e.problem for e in result.errors), bad.problem
    async with db.session() as s:
        case = await repo.get_case(s, "cu-AC000003")
        assert (case.debtor_name, case.amount_due_cents, case.overdue_since.isoformat()) == ("债务人3", 100350,
                                                                                          "2026-03-01")
        assert [(p.number, p.relation, p.kind) for p in case.phones] == [
            ("13800000003", "own", "debtor"), ("13900000003", "family", "third_party")]
        assert await s.scalar(select(func.count()).select_from(Case).where(Case.client == "cu")) == 20
    assert await import_errors(db, result.import_id) == result.errors


async def test_english_headers_and_a_title_row_above_them(db, clock):
    data = xlsx_bytes([good_row(1), good_row(2)], headers=EN_HEADERS, title_rows=2)
    result = await import_file(db, clock, data, "en.xlsx")
    assert (result.state, result.imported, result.errors) == ("done", 2, [])


async def test_re_importing_the_same_file_changes_nothing(db, clock):
    data = csv_bytes(mixed_rows()[1], "gbk")
    first = await import_file(db, clock, data, "b.csv")
    before = await snapshot(db, skip=("batch_imports",))
    again = await import_file(db, clock, data, "b-again.csv")
    assert again.state == "refused" and "already imported" in again.problem
    assert await snapshot(db, skip=("batch_imports",)) == before
    # the same rows in another file (re-saved as xlsx): unchanged, the bad ones still refused
    resaved = await import_file(db, clock, xlsx_bytes(mixed_rows()[1]), "b.xlsx")
    assert (resaved.imported, resaved.unchanged, resaved.rejected) == (0, first.imported, first.rejected)
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Case)) == first.imported


async def test_an_account_of_another_batch_or_changed_data_is_refused_not_overwritten(db, clock):
    await import_file(db, clock, csv_bytes([good_row(1), good_row(2)]), "first.csv")
    before = await snapshot(db, skip=("batch_imports", "batch_import_errors", "audit_events"))
    moved = good_row(1, batch="B2026-12")
    changed = good_row(2)
    changed[8] = "99.00"
    result = await import_file(db, clock, csv_bytes([moved, good_row(3, batch="B2026-12")]), "second.csv")
    assert [(e.row, e.problem) for e in result.errors] == [(2, "account AC000001 is already in batch B2026-11")]
    again = await import_file(db, clock, csv_bytes([changed]), "third.csv")
    assert "imported with other data" in again.errors[0].problem
    async with db.session() as s:
        assert (await repo.get_case(s, "cu-AC000002")).amount_due_cents == 100250
    after = await snapshot(db, skip=("batch_imports", "batch_import_errors", "audit_events", "cases", "phones",
                                     "batches"))
    assert after == {k: v for k, v in before.items() if k in after}


async def test_ten_thousand_rows(db, clock):
    rows = [good_row(n) for n in range(1, 10_001)]
    rows[4999][8] = "not money"
    result = await import_file(db, clock, xlsx_bytes(rows), "big.xlsx")
    assert (result.imported, result.rejected) == (9_999, 1)
    assert result.errors[0].row == 5001
    async with db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Phone)) == sum(
            1 + (n % 3 == 0) + (n % 5 == 0) for n in range(1, 10_001) if n != 5000)
    [summary] = await batch_summaries(db)
    assert summary["cases"] == 9_999 and summary["by_status"] == {"open": 9_999}


@pytest.mark.parametrize("data, name, problem", [
    (b"\x00\x01\x02binary", "x.csv", "binary"),
    (b"PK\x03\x04not really a zip", "x.xlsx", "not a readable .xlsx"),
    (b"\xd0\xcf\x11\xe0old excel", "x.xls", "old Excel"),
    ("账号,姓名\nA1,张\n".encode(), "x.csv", "required columns missing"),
    ("\n\n".encode(), "x.csv", "no header row"),
    (b"\xff\xfe\xfa\xfb\x81", "x.csv", "neither UTF-8 nor GBK"),
])
async def test_a_file_that_is_not_a_batch_is_refused_whole(db, clock, data, name, problem):
    await import_file(db, clock, csv_bytes([good_row(1)]), "first.csv")
    before = await snapshot(db, skip=("batch_imports",))
    result = await import_file(db, clock, data, name, batch="B1")
    assert result.state == "refused" and problem in result.problem
    assert await snapshot(db, skip=("batch_imports",)) == before


async def test_a_batch_id_is_needed_and_must_agree(db, clock):
    rows = [good_row(1)[1:]]
    result = await import_file(db, clock, csv_bytes(rows, headers=ZH_HEADERS[1:]), "客户文件 (1).csv")
    assert result.state == "refused" and "which batch" in result.problem
    named = await import_file(db, clock, csv_bytes([good_row(1)]), "x.csv", batch="B-OTHER")
    assert named.state == "refused" and "is batch 'B2026-11'" in named.problem
    with pytest.raises(ImportRefused, match="client name"):
        await BatchImporter(db, clock).start(client="../etc", filename="x.csv", data=b"", by="t")


async def test_the_database_refusing_halfway_stores_nothing_of_the_file(db, clock, monkeypatch):
    from cases import batches

    before = await snapshot(db, skip=("batch_imports",))
    calls = 0
    real = batches.BatchImporter._insert_cases

    async def failing(self, s, client, batch_id, rows):
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk full")
        await real(self, s, client, batch_id, rows)

    monkeypatch.setattr(batches.BatchImporter, "_insert_cases", failing)
    monkeypatch.setattr(batches, "CHUNK", 10)
    with pytest.raises(RuntimeError):
        await import_file(db, clock, csv_bytes([good_row(n) for n in range(1, 31)]), "x.csv")
    assert await snapshot(db, skip=("batch_imports",)) == before
    async with db.session() as s:
        [record] = (await s.scalars(select(BatchImport))).all()
        assert record.state == "failed" and "disk full" in record.problem


async def test_the_error_report_opens_in_a_spreadsheet_without_running_formulas(db, clock):
    rows = [good_row(1), [*good_row(2)[:1], "=cmd|'/c calc'!A1", *good_row(2)[2:]]]
    result = await import_file(db, clock, csv_bytes(rows), "x.csv")
    report = error_report_csv(result.errors)
    assert report.startswith(b"\xef\xbb\xbf")
    cells = [c for row in csv.reader(io.StringIO(report.decode("utf-8-sig"))) for c in row]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)


async def test_the_cli_imports_with_progress_and_writes_the_error_report(tmp_path):
    file = tmp_path / "B2026-11.xlsx"
    file.write_bytes(xlsx_bytes(mixed_rows()[1]))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "DUNLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"}
    cli = [sys.executable, "-m", "dunline.cli", "batch"]
    done = subprocess.run([*cli, "import", str(file), "--client", "cu", "--errors", str(tmp_path / "err.csv")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "20 imported, 0 unchanged, 12 rows refused" in done.stdout
    assert "32/32 rows" in done.stderr
    report = (tmp_path / "err.csv").read_text(encoding="utf-8-sig")
    assert report.startswith("row,column,problem") and "本人电话" in report
    again = subprocess.run([*cli, "import", str(file), "--client", "cu"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 2 and "already imported" in again.stderr
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert "B2026-11" in listed.stdout and "open 20" in listed.stdout
    async_audit = subprocess.run([*cli, "errors", "1"], env=env, capture_output=True, text=True, timeout=60)
    assert async_audit.stdout.count("\n") == 13


async def test_an_import_cut_short_by_a_stop_is_failed_at_the_next_start(db, clock):
    importer = BatchImporter(db, clock)
    import_id = await importer.start(client="cu", filename="b.csv", data=b"x", by="tester")
    assert await importer.mark_interrupted() == 1
    async with db.session() as s:
        record = await s.get(BatchImport, import_id)
        assert record.state == "failed" and "import it again" in record.problem
    assert await importer.mark_interrupted() == 0
