"""The recordings JSON API: compliance retrieval over HTTP, every access logged.

    GET  /api/recordings?case=&phone=&collector=&from=&to=&flag=&limit=&cursor=
    GET  /api/cases/{case_id}/recordings?...same filters...
    GET  /api/recordings/{attempt_id}                 metadata
    GET  /api/recordings/{attempt_id}/audio?leg=mixed|rx|tx   the stored WAV, streamed
    POST /api/cases/{case_id}/export                  a BagIt bag, streamed as a .tar

Every request names who asks and why: headers `X-Dunline-User` and `X-Dunline-Reason`
(preferred: they stay out of URLs and access logs), or query parameters `by` and `why`
where a browser cannot set headers (an <audio src=...>). Without them: 400 and nothing
is read. `from` is inclusive, `to` exclusive (ISO 8601, UTC when no zone); `flag` may
repeat (all must match); pages are newest first, `next_cursor` continues. Errors: 400 bad
input, 404 unknown case or recording, 410 audio purged or missing, 503 no archive wired.
Each successful search, read or export is one ledger entry (recorder.retrieval,
recorder.bagit); a refused request writes none.
"""
from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from console.deps import DEPS
from recorder.archive import CHUNK, ArchiveStore
from recorder.bagit import ExportError, export_case
from recorder.ledger_store import Ledger
from recorder.retrieval import RecordingPage, find_recordings, open_audio, recording_metadata
from recorder.retrieval_query import (
    AudioUnavailable, InvalidRequest, NotFound, RecordingQuery, Requester, check_attempt_id, check_case_number,
)

USER_HEADER = "X-Dunline-User"
REASON_HEADER = "X-Dunline-Reason"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _requester(request: web.Request) -> Requester:
    return Requester.of(request.headers.get(USER_HEADER) or request.query.get("by"),
                        request.headers.get(REASON_HEADER) or request.query.get("why"))


def _archive(request: web.Request) -> tuple[ArchiveStore, Ledger]:
    deps = request.app[DEPS]
    if deps.store is None or deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the recording archive is not configured")
    return deps.store, deps.ledger


def _guarded(handler: Handler) -> Handler:
    """Map retrieval's refusals to HTTP statuses (their text is the caller's message)."""
    async def run(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidRequest as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except NotFound as exc:
            raise web.HTTPNotFound(text=str(exc)) from None
        except AudioUnavailable as exc:
            raise web.HTTPGone(text=str(exc)) from None
        except ExportError as exc:
            raise web.HTTPInternalServerError(text=f"export failed: {exc}") from None
    return run


def _query(request: web.Request, case: str | None) -> RecordingQuery:
    q = request.query
    return RecordingQuery.from_text(
        case=case, phone=q.get("phone"), collector=q.get("collector"), ended_from=q.get("from"),
        ended_to=q.get("to"), flags=tuple(q.getall("flag", ())), limit=q.get("limit"),
        cursor=q.get("cursor"))


def _page_json(page: RecordingPage) -> web.Response:
    return web.json_response({"recordings": [r.as_json() for r in page.recordings],
                              "next_cursor": page.next_cursor})


async def search_recordings(request: web.Request) -> web.StreamResponse:
    query, requester = _query(request, request.query.get("case")), _requester(request)
    _, ledger = _archive(request)
    return _page_json(await find_recordings(request.app[DEPS].db, ledger, query, requester))


async def case_recordings(request: web.Request) -> web.StreamResponse:
    case_id = check_case_number(request.match_info["case_id"])
    query, requester = _query(request, case_id), _requester(request)
    _, ledger = _archive(request)
    return _page_json(await find_recordings(request.app[DEPS].db, ledger, query, requester))


async def recording(request: web.Request) -> web.StreamResponse:
    attempt_id, requester = check_attempt_id(request.match_info["attempt_id"]), _requester(request)
    _, ledger = _archive(request)
    info = await recording_metadata(request.app[DEPS].db, ledger, attempt_id, requester)
    return web.json_response(info.as_json())


async def recording_audio(request: web.Request) -> web.StreamResponse:
    attempt_id, requester = check_attempt_id(request.match_info["attempt_id"]), _requester(request)
    leg = request.query.get("leg", "mixed")
    store, ledger = _archive(request)
    _, handle = await open_audio(request.app[DEPS].db, store, ledger, attempt_id, leg, requester)
    try:
        response = web.StreamResponse(headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'inline; filename="{attempt_id}-{leg}.wav"'})
        await response.prepare(request)
        while block := await asyncio.to_thread(handle.read, CHUNK):
            await response.write(block)
        await response.write_eof()
        return response
    finally:
        handle.close()


async def export(request: web.Request) -> web.StreamResponse:
    case_id, requester = check_case_number(request.match_info["case_id"]), _requester(request)
    store, ledger = _archive(request)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="dunline-export-"))
    try:
        result = await export_case(request.app[DEPS].db, store, ledger, case_id, work, requester,
                                   as_tar=True)
        response = web.StreamResponse(headers={
            "Content-Type": "application/x-tar",
            "Content-Disposition": f'attachment; filename="{result.path.name}"',
            "X-Dunline-Payload-Oxum": result.payload_oxum,
            "X-Dunline-Ledger-Seq": str(result.ledger_seq)})
        response.content_length = result.path.stat().st_size
        await response.prepare(request)
        with result.path.open("rb") as handle:
            while block := await asyncio.to_thread(handle.read, CHUNK):
                await response.write(block)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def add_recording_routes(app: web.Application) -> None:
    app.router.add_get("/api/recordings", _guarded(search_recordings))
    app.router.add_get("/api/recordings/{attempt_id}", _guarded(recording))
    app.router.add_get("/api/recordings/{attempt_id}/audio", _guarded(recording_audio))
    app.router.add_get("/api/cases/{case_id}/recordings", _guarded(case_recordings))
    app.router.add_post("/api/cases/{case_id}/export", _guarded(export))
