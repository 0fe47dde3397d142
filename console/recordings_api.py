"""The recordings JSON API: compliance retrieval over HTTP, every access logged.

    GET  /api/recordings?case=&phone=&collector=&from=&to=&flag=&limit=&cursor=
    GET  /api/cases/{case_id}/recordings?...same filters...
    GET  /api/recordings/{attempt_id}                 metadata
    GET  /api/recordings/{attempt_id}/audio?leg=mixed|rx|tx   the stored WAV, streamed
    POST /api/cases/{case_id}/export                  a BagIt bag, streamed as a .tar

Who asks is the signed-in user (the guard, console/endpoints.py); why is the header
`X-Dunline-Reason` (preferred: it stays out of URLs and access logs), or the query
parameter `why` where a browser cannot set headers (an <audio src=...>). Without a
reason: 400 and nothing is read. `from` is inclusive, `to` exclusive (ISO 8601, UTC when no zone); `flag` may
repeat (all must match); pages are newest first, `next_cursor` continues. Errors: 400 bad
input, 404 unknown case or recording, 410 audio purged or missing, 503 no archive wired.
Each successful search, read or export is one ledger entry (recorder.retrieval,
recorder.bagit); a refused request writes none.
"""
from __future__ import annotations

import asyncio
import functools
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from console.deps import DEPS, principal
from console.endpoints import Endpoint, Param
from console.params import CASE_ID_PARAM
from console.scope import phone_shown
from people.roles import Permission
from recorder.archive import CHUNK, ArchiveStore
from recorder.bagit import ExportError, export_case
from recorder.ledger_store import Ledger
from recorder.retrieval import RecordingPage, find_recordings, open_audio, recording_metadata
from recorder.retrieval_query import (
    AUDIO_LEGS, AudioUnavailable, InvalidRequest, NotFound, RecordingQuery, Requester, check_attempt_id, check_case_number,
)

REASON_HEADER = "X-Dunline-Reason"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _requester(request: web.Request) -> Requester:
    return Requester.of(principal(request).username,
                        request.headers.get(REASON_HEADER) or request.query.get("why"))


def _archive(request: web.Request) -> tuple[ArchiveStore, Ledger]:
    deps = request.app[DEPS]
    if deps.store is None or deps.ledger is None:
        raise web.HTTPServiceUnavailable(text="the recording archive is not configured")
    return deps.store, deps.ledger


def _errors_mapped(handler: Handler) -> Handler:
    """Map retrieval's refusals to HTTP statuses (their text is the caller's message)."""
    @functools.wraps(handler)
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


def shown_json(request: web.Request, item: Any) -> dict[str, Any]:
    """A recording's JSON with the debtor's number as the reader may see it."""
    body = item.as_json()
    body["number"] = phone_shown(principal(request), body["number"]) if body.get("number") else body.get("number")
    return body


def _page_json(request: web.Request, page: RecordingPage) -> web.Response:
    return web.json_response({"recordings": [shown_json(request, r) for r in page.recordings],
                              "next_cursor": page.next_cursor})


async def search_recordings(request: web.Request) -> web.StreamResponse:
    query, requester = _query(request, request.query.get("case")), _requester(request)
    _, ledger = _archive(request)
    return _page_json(request, await find_recordings(request.app[DEPS].db, ledger, query, requester))


async def case_recordings(request: web.Request) -> web.StreamResponse:
    case_id = check_case_number(request.match_info["case_id"])
    query, requester = _query(request, case_id), _requester(request)
    _, ledger = _archive(request)
    return _page_json(request, await find_recordings(request.app[DEPS].db, ledger, query, requester))


async def recording(request: web.Request) -> web.StreamResponse:
    attempt_id, requester = check_attempt_id(request.match_info["attempt_id"]), _requester(request)
    _, ledger = _archive(request)
    info = await recording_metadata(request.app[DEPS].db, ledger, attempt_id, requester)
    return web.json_response(shown_json(request, info))


async def recording_audio(request: web.Request) -> web.StreamResponse:
    attempt_id, requester = check_attempt_id(request.match_info["attempt_id"]), _requester(request)
    leg = request.query.get("leg", "mixed")
    store, ledger = _archive(request)
    _, handle = await open_audio(request.app[DEPS].db, store, ledger, attempt_id, leg, requester)
    return await stream_wav(request, handle, f"{attempt_id}-{leg}.wav")


async def stream_wav(request: web.Request, handle: Any, filename: str) -> web.StreamResponse:
    """An opened recording (its access already ledgered) streamed to the reader, then closed."""
    try:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav",
                                               "Content-Disposition": f'inline; filename="{filename}"'})
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


CASE = CASE_ID_PARAM
ATTEMPT = Param("attempt_id", "path", {"type": "string"})
WHY = Param("why", "query", {"type": "string", "maxLength": 500},
            description="why (or the header X-Dunline-Reason): required, goes into the ledger")
FILTERS = tuple(Param(name, "query", {"type": "string"}, description=text) for name, text in (
    ("phone", "a number called"), ("collector", "who took the call"), ("from", "ended at or after (ISO 8601)"),
    ("to", "ended before (ISO 8601)"), ("flag", "a recording flag (may repeat)"), ("limit", "page size (1-500)"),
    ("cursor", "next_cursor of the previous page")))
ANSWERS = {400: "bad input, or no reason given", 404: "no such case or recording",
           503: "no recording archive wired to this service"}
TAGS = ("recordings",)
P = Permission

ENDPOINTS = [
    Endpoint("GET", "/api/recordings", _errors_mapped(search_recordings), P.RECORDING_ACCESS, "Search recordings",
             params=(Param("case", "query", {"type": "string"}, description="a case number"), *FILTERS, WHY),
             tags=TAGS, responses={200: "a page of recordings", **ANSWERS}),
    Endpoint("GET", "/api/recordings/{attempt_id}", _errors_mapped(recording), P.RECORDING_ACCESS,
             "A recording's metadata", params=(ATTEMPT, WHY), tags=TAGS, responses={200: "the recording", **ANSWERS}),
    Endpoint("GET", "/api/recordings/{attempt_id}/audio", _errors_mapped(recording_audio), P.RECORDING_ACCESS,
             "A recording's audio (WAV)", params=(ATTEMPT, Param("leg", "query", {"enum": list(AUDIO_LEGS)}), WHY),
             tags=TAGS, produces="audio/wav",
             responses={200: "the WAV", 410: "purged or missing in the store", **ANSWERS}),
    Endpoint("GET", "/api/cases/{case_id}/recordings", _errors_mapped(case_recordings), P.RECORDING_ACCESS,
             "A case's recordings", params=(CASE, *FILTERS, WHY), tags=TAGS,
             responses={200: "a page of recordings", **ANSWERS}),
    Endpoint("POST", "/api/cases/{case_id}/export", _errors_mapped(export), P.RECORDING_EXPORT,
             "Export a case's recordings as a BagIt bag (.tar)", params=(CASE, WHY), tags=TAGS,
             produces="application/x-tar", responses={200: "the bag", **ANSWERS}),
]
