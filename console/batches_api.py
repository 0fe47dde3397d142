"""A client's batches over the API: upload a file, follow its import, read its error report.

    POST /api/batches?client=C[&batch=B]  multipart `file`  -> 202 {import_id, href}
    GET  /api/batches                                        -> each batch: cases, arrears, by status
    GET  /api/batch-imports/{import_id}                      -> state and progress (rows_done / rows_total)
    GET  /api/batch-imports/{import_id}/errors[?format=csv]  -> the error report: row, column, problem

The upload is streamed (at most the intake's file limit) and imported in the background
(cases/batches.py): the page polls the import for its progress bar. A client user sees
only their own client's batches and imports.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from cases.batches import BatchImporter, ImportRefused, batch_summaries, error_report_csv, import_errors
from cases.intake_files import MAX_FILE_BYTES
from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.params import id_number_of
from console.scope import client_only
from people.roles import Permission
from storage.intake import BatchImport

log = logging.getLogger(__name__)
IMPORTS = web.AppKey("batch_import_tasks", set)
IMPORT_ID = Param("import_id", "path", {"type": "string", "pattern": r"^[0-9]{1,12}$"})


async def _import_record(request: web.Request) -> BatchImport:
    raw = request.match_info["import_id"]
    import_id = id_number_of(raw)
    if import_id is None:
        raise web.HTTPBadRequest(text="invalid import id")
    async with request.app[DEPS].db.session() as s:
        record = await s.get(BatchImport, import_id)
    only = client_only(principal(request))
    if record is None or (only is not None and record.client != only):
        raise web.HTTPNotFound(text="no such import")
    return record


async def read_upload(request: web.Request, with_fields: bool = False) -> Any:
    """The uploaded file (field `file`) of a multipart body, at most the intake's limit, as
    (file name, bytes), and with `with_fields` the other (short) text fields too; a
    malformed body is a 400."""
    try:
        filename, data, fields = await _read_file_part(request)
    except (ValueError, AssertionError, aiohttp.ClientPayloadError, HttpProcessingError) as exc:  # the parser's
        raise web.HTTPBadRequest(text=f"not a readable multipart upload ({type(exc).__name__})") from None
    return (filename, data, fields) if with_fields else (filename, data)


async def _read_file_part(request: web.Request) -> tuple[str, bytes, dict[str, str]]:
    if request.content_type != "multipart/form-data":
        raise web.HTTPBadRequest(text="send the file as multipart/form-data, field 'file'")
    reader = await request.multipart()
    fields: dict[str, str] = {}
    found: tuple[str, bytes] | None = None
    async for part in reader:
        name = getattr(part, "name", None)
        if name != "file":
            if name and len(fields) < 20 and not getattr(part, "filename", None):
                fields[name] = (await part.read_chunk(1024)).decode("utf-8", "replace")  # type: ignore[union-attr]
            continue
        chunks, size = [], 0
        while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_FILE_BYTES, actual_size=size)
            chunks.append(chunk)
        found = ((part.filename or "upload"), b"".join(chunks))  # type: ignore[union-attr]
    if found is None:
        raise web.HTTPBadRequest(text="no 'file' field in the upload")
    return found[0], found[1], fields


def run_import(app: web.Application, importer: BatchImporter, import_id: int, data: bytes,
               batch: str | None) -> None:
    """Import in the background; the app waits for it at shutdown."""
    task = asyncio.create_task(_run_import(importer, import_id, data, batch))
    app[IMPORTS].add(task)
    task.add_done_callback(app[IMPORTS].discard)


async def upload_batch(request: web.Request) -> web.Response:
    deps, who = request.app[DEPS], principal(request)
    client, batch = request.query.get("client", ""), request.query.get("batch") or None
    filename, data = await read_upload(request)
    importer = BatchImporter(deps.db, deps.clock)
    try:
        import_id = await importer.start(client=client, filename=filename, data=data, by=who.username)
    except ImportRefused as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    run_import(request.app, importer, import_id, data, batch)
    return web.json_response({"import_id": import_id, "href": f"/api/batch-imports/{import_id}"}, status=202)


async def _run_import(importer: BatchImporter, import_id: int, data: bytes, batch: str | None) -> None:
    try:
        await importer.run(import_id, data, batch=batch)
    except Exception:  # recorded on the import as failed; nothing of the file stored
        log.exception("batch import %s failed", import_id)


async def list_batches(request: web.Request) -> web.Response:
    return web.json_response(await batch_summaries(request.app[DEPS].db, client_only(principal(request))))


async def get_import(request: web.Request) -> web.Response:
    r = await _import_record(request)
    return web.json_response({
        "id": r.id, "client": r.client, "batch_id": r.batch_id, "file_name": r.file_name, "encoding": r.encoding,
        "state": r.state, "problem": r.problem, "rows_total": r.rows_total, "rows_done": r.rows_done,
        "rows_imported": r.rows_imported, "rows_unchanged": r.rows_unchanged, "rows_rejected": r.rows_rejected,
        "arrears_cents": r.arrears_cents, "by": r.by, "started_at": r.started_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "errors_href": f"/api/batch-imports/{r.id}/errors"})


async def get_import_errors(request: web.Request) -> web.Response:
    record = await _import_record(request)
    errors = await import_errors(request.app[DEPS].db, record.id)
    if request.query.get("format") == "csv":
        return web.Response(body=error_report_csv(errors), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": f'attachment; filename="import-{record.id}-errors.csv"'})
    return web.json_response([{"row": e.row, "column": e.column, "problem": e.problem} for e in errors])


async def finish_imports(app: web.Application) -> None:
    """On shutdown: let running imports end (each commits all of its rows or none)."""
    tasks = list(app[IMPORTS])
    if tasks:
        await asyncio.wait(tasks, timeout=60)


def setup(app: web.Application) -> None:
    app[IMPORTS] = set()
    app.on_cleanup.append(finish_imports)


P = Permission
TAGS = ("batches",)
ENDPOINTS = [
    Endpoint("POST", "/api/batches", upload_batch, P.BATCH_IMPORT, "Upload a batch file (.xlsx or CSV) to import",
             params=(Param("client", "query", {"type": "string", "pattern": r"^[a-z0-9][a-z0-9\-]{0,22}$"},
                           required=True, description="whose batch"),
                     Param("batch", "query", {"type": "string", "maxLength": 40},
                           description="the batch id, when the file has no batch column")),
             upload=True, tags=TAGS, responses={202: "importing: follow href", 400: "refused: why",
                                                413: "the file is too large"}),
    Endpoint("GET", "/api/batches", list_batches, P.BATCH_VIEW, "The batches: cases, arrears, by status", tags=TAGS),
    Endpoint("GET", "/api/batch-imports/{import_id}", get_import, P.BATCH_VIEW, "An import: state and progress",
             params=(IMPORT_ID,), tags=TAGS, responses={200: "the import", 404: "no such import"}),
    Endpoint("GET", "/api/batch-imports/{import_id}/errors", get_import_errors, P.BATCH_IMPORT,
             "An import's error report (row, column, problem); ?format=csv to download",
             params=(IMPORT_ID, Param("format", "query", {"type": "string", "enum": ["json", "csv"]})),
             tags=TAGS, responses={200: "the report", 404: "no such import"}),
]
