"""Path parameters the API shares: a case number (the one pattern, recorder/retrieval_query.py's)."""
from __future__ import annotations

from aiohttp import web

from console.endpoints import Param
from recorder.retrieval_query import CASE_NUMBER

CASE_ID_SCHEMA = {"type": "string", "pattern": f"^{CASE_NUMBER.pattern}$"}
CASE_ID_PARAM = Param("case_id", "path", CASE_ID_SCHEMA)


def case_id_of(request: web.Request) -> str:
    case_id = request.match_info["case_id"]
    if not CASE_NUMBER.fullmatch(case_id):
        raise web.HTTPBadRequest(text="invalid case number")
    return case_id
