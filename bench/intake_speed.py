"""Batch intake speed: rows per second of a 100 000-row client file imported for real.

Timed: `cases.batches.BatchImporter` on a CSV of 100 000 accounts (one to three phones
each): read, every cell checked, duplicates looked up against the database, cases and
phones inserted in one transaction, into a fresh SQLite database at the Alembic head.
The same file as .xlsx is timed too (openpyxl's reading dominates).

Baseline, same run, same rows: the floor of any importer — `csv.reader` over the bytes
and a raw `executemany` of the same case and phone rows into the same schema, no checks.
"""
from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from cases.batches import BatchImporter
from storage.clock import ManualClock
from storage.db import Database
from tests.batch_files import csv_bytes, good_row, xlsx_bytes

ROWS = 100_000
XLSX_ROWS = 20_000
NOW = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)


async def _fresh(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    return db


async def _import(path: Path, data: bytes, name: str) -> tuple[float, int]:
    db = await _fresh(path)
    try:
        importer = BatchImporter(db, ManualClock(NOW))
        started = time.perf_counter()
        result = await importer.run(await importer.start(client="cu", filename=name, data=data, by="bench"), data)
        return time.perf_counter() - started, result.imported
    finally:
        await db.close()


def _baseline(path: Path, data: bytes) -> float:
    asyncio.run(_migrate_only(path))
    started = time.perf_counter()
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))[1:]
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO cases (id, client, debtor_name, status, created_at, flags, amount_due_cents) "
                         "VALUES (?, 'cu', ?, 'open', '2026-12-03 02:00:00.000000', '[]', ?)",
                         ((f"cu-{r[1]}", r[2], int(float(r[8]) * 100)) for r in rows))
        conn.executemany("INSERT INTO phones (case_id, number, kind, do_not_call, refused) "
                         "VALUES (?, ?, 'debtor', 0, 0)",
                         ((f"cu-{r[1]}", number) for r in rows for number in (r[4], r[5], r[6]) if number))
    conn.close()
    return time.perf_counter() - started


async def _migrate_only(path: Path) -> None:
    db = await _fresh(path)
    await db.close()


def main() -> None:
    data = csv_bytes([good_row(n) for n in range(1, ROWS + 1)])
    xlsx = xlsx_bytes([good_row(n) for n in range(1, XLSX_ROWS + 1)])
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = _baseline(root / "baseline.db", data)
        seconds, imported = asyncio.run(_import(root / "csv.db", data, "bench.csv"))
        assert imported == ROWS
        xlsx_seconds, xlsx_imported = asyncio.run(_import(root / "xlsx.db", xlsx, "bench.xlsx"))
        assert xlsx_imported == XLSX_ROWS
    print(f"\nBatch intake, {ROWS:,} rows (one run; goal >= 5 000 rows/s)")
    print(f"{'what':<44} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'vs baseline':>12}")
    for label, rows, secs in (("baseline: csv.reader + raw executemany", ROWS, base),
                              ("dunline: CSV, every row checked, one txn", ROWS, seconds),
                              ("dunline: .xlsx (openpyxl read-only)", XLSX_ROWS, xlsx_seconds)):
        print(f"{label:<44} {rows:>8,} {secs:>8.2f} {rows / secs:>9,.0f} {(rows / secs) / (ROWS / base):>11.2f}×")


if __name__ == "__main__":
    main()
