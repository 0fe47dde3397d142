"""`dunline batch ...`: a client's batches from the command line (the audit names the
operator `cli:<login>`).

    dunline batch import FILE --client C [--batch B] [--errors OUT.csv]
    dunline batch list [--client C]
    dunline batch errors IMPORT_ID [--out OUT.csv]

`import` shows a progress bar on the terminal (plain progress lines when not a terminal),
then what came of each row; it exits 0 when every row was imported or unchanged, 1 when
some rows were refused (the error report lists them: row, column, problem), 2 when the
whole file was refused.
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path
from typing import Any

from dunline.cli_users import operator
from dunline.settings import load_settings


class ProgressBar:
    """Rows done of rows in all, on one terminal line (or a line per 10 % when piped)."""

    def __init__(self, stream: Any = sys.stderr, width: int = 30) -> None:
        self.stream, self.width = stream, width
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self.tty:
            filled = int(share * self.width)
            self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} rows")
            if done >= total:
                self.stream.write("\n")
        elif int(share * 10) != self._last_decile:
            self._last_decile = int(share * 10)
            self.stream.write(f"{done}/{total} rows\n")
        self.stream.flush()


def run_with_db(args: argparse.Namespace, work: Any) -> int:
    """Run `work(db, clock)` on the configured database (migrated) and close it (the client-file
    commands: batches, payments)."""
    from storage.clock import system_clock
    from storage.db import Database

    async def run() -> int:
        db = Database(load_settings(args.config).database.url)
        try:
            await db.migrate()
            return await work(db, system_clock)
        finally:
            await db.close()

    return asyncio.run(run())


def read_file(path: Path) -> bytes | None:
    """A client's file, or None after saying why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return None


def print_row_errors(errors: Any, report_to: str | None, more: str) -> None:
    """A file's refused rows: the CSV error report written to `report_to` if given, the first 20
    printed, `more` named as the way to the rest."""
    from cases.batches import error_report_csv

    if not errors:
        return
    if report_to:
        Path(report_to).write_bytes(error_report_csv(errors))
        print(f"error report: {report_to}")
    for e in errors[:20]:
        print(f"  row {e.row}, {e.column or '-'}: {e.problem}")
    if len(errors) > 20:
        print(f"  ... {len(errors) - 20} more ({more})")


def cmd_batch(args: argparse.Namespace) -> int:
    from cases.batches import BatchImporter, ImportRefused, batch_summaries, error_report_csv, import_errors

    async def do_import(db: Any, clock: Any) -> int:
        path = Path(args.file)
        if (data := read_file(path)) is None:
            return 2
        importer = BatchImporter(db, clock)
        try:
            import_id = await importer.start(client=args.client, filename=path.name, data=data, by=operator())
        except ImportRefused as exc:
            print(exc, file=sys.stderr)
            return 2
        result = await importer.run(import_id, data, batch=args.batch, progress=ProgressBar())
        if result.state == "refused":
            print(f"import {import_id} refused: {result.problem}", file=sys.stderr)
            return 2
        print(f"import {import_id} into batch {result.batch}: {result.imported} imported, "
              f"{result.unchanged} unchanged, {result.rejected} rows refused")
        print_row_errors(result.errors, args.errors, f"dunline batch errors {import_id} --out FILE")
        return 1 if result.rejected else 0

    async def do_list(db: Any, clock: Any) -> int:
        print(f"{'id':>4}  {'client':<14} {'batch':<20} {'cases':>7} {'arrears':>16}  by status")
        for b in await batch_summaries(db, args.client):
            states = ", ".join(f"{k} {v}" for k, v in sorted(b["by_status"].items()))  # type: ignore[union-attr]
            print(f"{b['id']:>4}  {b['client']:<14} {b['code']:<20} {b['cases']:>7} "
                  f"{int(b['arrears_cents']) / 100:>16,.2f}  {states}")  # type: ignore[call-overload]
        return 0

    async def do_errors(db: Any, clock: Any) -> int:
        if not re.fullmatch(r"[0-9]{1,12}", args.target):
            print("errors needs an import id", file=sys.stderr)
            return 2
        report = error_report_csv(await import_errors(db, int(args.target)))
        if args.out:
            Path(args.out).write_bytes(report)
        else:
            sys.stdout.write(report.decode("utf-8").lstrip("\ufeff"))
        return 0

    if args.action == "import":
        if not args.target or not args.client:
            print("batch import needs FILE and --client", file=sys.stderr)
            return 2
        args.file = args.target
        return run_with_db(args, do_import)
    if args.action == "errors":
        if not args.target:
            print("batch errors needs an import id", file=sys.stderr)
            return 2
        return run_with_db(args, do_errors)
    return run_with_db(args, do_list)


def add_batch_parser(sub: Any) -> None:
    batch = sub.add_parser("batch", help="a client's batches: import a file, list, error reports")
    batch.add_argument("action", choices=("import", "list", "errors"))
    batch.add_argument("target", nargs="?", help="import: the .xlsx or .csv file; errors: the import id")
    batch.add_argument("--client", help="whose batch (import), or only this client's (list)")
    batch.add_argument("--batch", help="the batch id, when the file has no 批次号 / batch column")
    batch.add_argument("--errors", help="import: write the error report (CSV) here")
    batch.add_argument("--out", help="errors: write the report here (default: print it)")
    batch.set_defaults(func=cmd_batch)
