"""Path parameters the API shares: a case number (the one pattern, recorder/retrieval_query.py's)."""
from __future__ import annotations

import re

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


def id_number_of(text: str | None) -> int | None:
    """A row id as typed in a path or query: 1 to 12 ASCII digits ("²" and "٣" are digits to
    str.isdigit, not to int), else None."""
    if text is None or not re.fullmatch(r"[0-9]{1,12}", text):
        return None
    return int(text)
