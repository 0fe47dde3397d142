"""The client's payment records over the API: upload a file, follow its import, read a case's
payments and balance.

    POST /api/payments/imports  multipart `file` (+ `client`)     -> 202 {import_id, href}
    GET  /api/payments/imports/{import_id}                        -> state, progress, summary, errors
    GET  /api/payments/imports/{import_id}/errors[?format=csv]    -> the error report: row, column, problem
    GET  /api/cases/{case_id}/payments                            -> balance, each payment and its credit

The upload is read like a batch's (at most the intake's file limit) and imported in the
background (cases/payments_store.py: one transaction); while it runs, this process keeps its
rows done (`progress`), and the import's row keeps its state. A case's payments are read
within the reader's reach (console/scope.py) and every read is audited.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cases.batches import error_report_csv
from cases.payments import balance_cents
from cases.payments_store import (
    PaymentImporter, PaymentImportRefused, PaymentShown, import_errors, import_record, payments_of_case,
)
from console.batches_api import read_upload
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.params import CASE_ID_PARAM, case_id_of, id_number_of
from console.scope import case_scope
from people.roles import Permission
from storage import repositories as repo
from storage.names import case_subject
from storage.payments import PaymentImport

log = logging.getLogger(__name__)
IMPORTS = web.AppKey("payment_import_tasks", set)
PROGRESS = web.AppKey("payment_import_progress", dict)  # import id -> (rows done, rows in all), while running
IMPORT_ID = Param("import_id", "path", {"type": "string", "pattern": r"^[0-9]{1,12}$"})
CLIENT_SCHEMA = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9\-]{0,22}$"}
ERRORS_SHOWN = 1000


def run_import(app: web.Application, importer: PaymentImporter, import_id: int, data: bytes) -> None:
    """Import in the background, its progress kept for readers; the app waits for it at shutdown."""
    def progress(done: int, total: int) -> None:
        app[PROGRESS][import_id] = (done, total)

    async def work() -> None:
        try:
            await importer.run(import_id, data, progress=progress)
        except Exception:  # recorded on the import as failed; nothing of the file stored
            log.exception("payment import %s failed", import_id)
        finally:
            app[PROGRESS].pop(import_id, None)

    task = asyncio.create_task(work())
    app[IMPORTS].add(task)
    task.add_done_callback(app[IMPORTS].discard)


async def start_upload(request: web.Request) -> int:
    """Read the upload (a 400 for a bad body or client), record its import and start it."""
    deps, who = request.app[DEPS], principal(request)
    filename, data, fields = await read_upload(request, with_fields=True)
    client = (fields.get("client") or request.query.get("client", "")).strip()
    importer = PaymentImporter(deps.db, deps.clock)
    try:
        import_id = await importer.start(client=client, filename=filename, data=data, by=who.username)
    except PaymentImportRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    run_import(request.app, importer, import_id, data)
    return import_id


async def upload_payments(request: web.Request) -> web.Response:
    import_id = await start_upload(request)
    return web.json_response({"import_id": import_id, "href": f"/api/payments/imports/{import_id}"}, status=202)


async def import_of(request: web.Request) -> PaymentImport:
    import_id = id_number_of(request.match_info["import_id"])
    if import_id is None:
        raise web.HTTPBadRequest(text="invalid import id")
    record = await import_record(request.app[DEPS].db, import_id)
    if record is None:
        raise web.HTTPNotFound(text="no such payment import")
    return record


def progress_of(app: web.Application, record: PaymentImport) -> tuple[int, int]:
    """Rows done of rows in all: this process's count while it imports, else from the record."""
    running = app[PROGRESS].get(record.id)
    if running is not None and record.state in ("checking", "importing"):
        return running
    done = record.rows_total if record.state in ("done", "refused", "failed") else 0
    return done, record.rows_total


async def get_import(request: web.Request) -> web.Response:
    r = await import_of(request)
    errors = await import_errors(request.app[DEPS].db, r.id)
    done, total = progress_of(request.app, r)
    return web.json_response({
        "id": r.id, "client": r.client, "file_name": r.file_name, "encoding": r.encoding, "state": r.state,
        "problem": r.problem, "progress": {"rows_done": done, "rows_total": total},
        "rows_total": r.rows_total, "rows_imported": r.rows_imported, "rows_unchanged": r.rows_unchanged,
        "rows_rejected": r.rows_rejected, "amount_cents": r.amount_cents, "by": r.by,
        "started_at": r.started_at.isoformat(), "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "errors": [{"row": e.row, "column": e.column, "problem": e.problem} for e in errors[:ERRORS_SHOWN]],
        "errors_total": len(errors), "errors_href": f"/api/payments/imports/{r.id}/errors"})


async def get_import_errors(request: web.Request) -> web.Response:
    record = await import_of(request)
    errors = await import_errors(request.app[DEPS].db, record.id)
    if request.query.get("format") == "csv":
        return web.Response(body=error_report_csv(errors), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="payment-import-{record.id}-errors.csv"'})
    return web.json_response([{"row": e.row, "column": e.column, "problem": e.problem} for e in errors])


def payment_json(p: PaymentShown) -> dict[str, Any]:
    return {"id": p.id, "paid_on": p.paid_on.isoformat(), "amount_cents": p.amount_cents, "receipt_no": p.receipt_no,
            "credit_rule": p.credit_rule,
            "credited_to": {"username": p.credited_user, "name": p.credited_name} if p.credited_user else None,
            "campaign": p.credited_campaign, "attempt_id": p.credited_attempt_id, "import_id": p.import_id,
            "imported_at": p.imported_at.isoformat()}


async def case_payments(request: web.Request) -> web.Response:
    case_id, who, deps = case_id_of(request), principal(request), request.app[DEPS]
    async with deps.db.session() as s:
        try:
            case = await repo.get_case(s, case_id, case_scope(who))
        except repo.NotFound:
            raise web.HTTPNotFound(text=f"no case {case_id}") from None
        payments = await payments_of_case(s, case.id)
        await repo.audit(s, at=deps.clock(), actor=who.username, action="case.payments_viewed",
                         subject=case_subject(case.id))
    return web.json_response({
        "case_id": case.id, "status": case.status, "arrears_cents": case.amount_due_cents,
        "paid_cents": case.paid_cents, "balance_cents": balance_cents(case.amount_due_cents, case.paid_cents),
        "payments": [payment_json(p) for p in payments]})


async def finish_imports(app: web.Application) -> None:
    """On shutdown: let running imports end (each commits all of its rows or none)."""
    tasks = list(app[IMPORTS])
    if tasks:
        await asyncio.wait(tasks, timeout=60)


def setup(app: web.Application) -> None:
    app[IMPORTS] = set()
    app[PROGRESS] = {}
    app.on_cleanup.append(finish_imports)


P = Permission
TAGS = ("payments",)
ENDPOINTS = [
    Endpoint("POST", "/api/payments/imports", upload_payments, P.PAYMENT_IMPORT,
             "Upload the client's payment file (.xlsx or CSV: account, amount, day paid, receipt) to import",
             params=(Param("client", "query", CLIENT_SCHEMA,
                           description="whose payments (or the multipart field `client`)"),),
             upload=True, tags=TAGS, responses={202: "importing: follow href",
                                                400: "refused: why (a malformed upload, not a client)",
                                                413: "the file is too large"}),
    Endpoint("GET", "/api/payments/imports/{import_id}", get_import, P.PAYMENT_IMPORT,
             "A payment import: state, progress, summary and its errors", params=(IMPORT_ID,), tags=TAGS,
             responses={200: "the import", 400: "not an import id", 404: "no such import"}),
    Endpoint("GET", "/api/payments/imports/{import_id}/errors", get_import_errors, P.PAYMENT_IMPORT,
             "A payment import's error report (row, column, problem); ?format=csv to download",
             params=(IMPORT_ID, Param("format", "query", {"type": "string", "enum": ["json", "csv"]})),
             tags=TAGS, responses={200: "the report", 400: "not an import id", 404: "no such import"}),
    Endpoint("GET", "/api/cases/{case_id}/payments", case_payments, P.CASE_VIEW,
             "A case's payments: arrears, paid, balance, and whom each payment is credited to",
             params=(CASE_ID_PARAM,), tags=("cases", *TAGS),
             responses={200: "the payments", 400: "not a case number", 404: "no such case"}),
]
