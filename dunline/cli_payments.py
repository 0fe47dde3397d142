"""`dunline payment ...`: the client's payment records from the command line (the audit names
the operator `cli:<login>`).

    dunline payment import FILE --client C [--errors OUT.csv]
    dunline payment list --case CASE_ID
    dunline payment errors IMPORT_ID [--out OUT.csv]

`import` shows a progress bar, then what came of the file (imported, unchanged, refused
rows, the amount, the cases it settled, the credits by rule) and the first errors; it exits
0 when every row was imported or unchanged, 1 when some rows were refused, 2 when the whole
file was refused. `list` shows a case's balance and each payment with whom it is credited to.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from dunline.cli_batches import ProgressBar, print_row_errors, read_file, run_with_db
from dunline.cli_users import operator


def _yuan(cents: int | None) -> str:
    return "-" if cents is None else f"{cents / 100:,.2f}"


def cmd_payment(args: argparse.Namespace) -> int:
    from cases.batches import error_report_csv
    from cases.payments_store import PaymentImporter, PaymentImportRefused, import_errors

    async def do_import(db: Any, clock: Any) -> int:
        path = Path(args.target)
        if (data := read_file(path)) is None:
            return 2
        importer = PaymentImporter(db, clock)
        try:
            import_id = await importer.start(client=args.client, filename=path.name, data=data, by=operator())
        except PaymentImportRefused as exc:
            print(exc, file=sys.stderr)
            return 2
        result = await importer.run(import_id, data, progress=ProgressBar())
        if result.state == "refused":
            print(f"payment import {import_id} refused: {result.problem}", file=sys.stderr)
            return 2
        credited = ", ".join(f"{rule} {n}" for rule, n in sorted(result.credited.items())) or "-"
        print(f"payment import {import_id} for {args.client}: {result.imported} imported "
              f"({_yuan(result.amount_cents)} yuan), {result.unchanged} unchanged, {result.rejected} rows refused")
        print(f"credited: {credited}; settled: {', '.join(result.settled) or '-'}")
        print_row_errors(result.errors, args.errors, f"dunline payment errors {import_id} --out FILE")
        return 1 if result.rejected else 0

    async def do_list(db: Any, clock: Any) -> int:
        from cases.payments import balance_cents
        from cases.payments_store import payments_of_case
        from storage import repositories as repo
        from storage.models import Case
        from storage.names import case_subject

        async with db.session() as s:
            case = await s.get(Case, args.case)
            if case is None:
                print(f"no case {args.case}", file=sys.stderr)
                return 2
            payments = await payments_of_case(s, case.id)
            await repo.audit(s, at=clock(), actor=operator(), action="case.payments_viewed",
                             subject=case_subject(case.id), cli=True)
        print(f"case {case.id} ({case.status}): arrears {_yuan(case.amount_due_cents)}, paid {_yuan(case.paid_cents)}, "
              f"balance {_yuan(balance_cents(case.amount_due_cents, case.paid_cents))}")
        if not payments:
            print("no payments")
            return 0
        print(f"{'paid on':<10}  {'amount':>14}  {'receipt':<20} {'credit':<8} {'to':<16} campaign")
        for p in payments:
            print(f"{p.paid_on.isoformat():<10}  {_yuan(p.amount_cents):>14}  {p.receipt_no:<20} {p.credit_rule:<8} "
                  f"{p.credited_user or '-':<16} {p.credited_campaign or '-'}")
        return 0

    async def do_errors(db: Any, clock: Any) -> int:
        report = error_report_csv(await import_errors(db, int(args.target)))
        if args.out:
            Path(args.out).write_bytes(report)
        else:
            sys.stdout.write(report.decode("utf-8").lstrip("\ufeff"))
        return 0

    if args.action == "import":
        if not args.target or not args.client:
            print("payment import needs FILE and --client", file=sys.stderr)
            return 2
        return run_with_db(args, do_import)
    if args.action == "errors":
        if not args.target or not re.fullmatch(r"[0-9]{1,12}", args.target):
            print("payment errors needs an import id", file=sys.stderr)
            return 2
        return run_with_db(args, do_errors)
    if not args.case:
        print("payment list needs --case CASE_ID", file=sys.stderr)
        return 2
    return run_with_db(args, do_list)


def add_payment_parser(sub: Any) -> None:
    payment = sub.add_parser("payment", help="the client's payment records: import a file, a case's payments")
    payment.add_argument("action", choices=("import", "list", "errors"))
    payment.add_argument("target", nargs="?", help="import: the .xlsx or .csv file; errors: the import id")
    payment.add_argument("--client", help="import: whose payments (the client of the cases)")
    payment.add_argument("--case", help="list: the case number")
    payment.add_argument("--errors", help="import: write the error report (CSV) here")
    payment.add_argument("--out", help="errors: write the report here (default: print it)")
    payment.set_defaults(func=cmd_payment)
