"""The console's outer wall, for every request (routes or not): the Host header must name
this console (a DNS-rebinding page cannot reach it under another name), and every answer
carries headers that keep the pages out of frames, caches and other sites' referrers.
API errors are JSON: `{"error": "..."}`.
"""
from __future__ import annotations

from aiohttp import web

from console.deps import DEPS

SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; media-src 'self'; style-src 'self'; "
                                "script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    "Cache-Control": "no-store",
}


def _is_api(path: str) -> bool:
    return path.startswith("/api/") or path == "/metrics"


@web.middleware
async def outer_wall(request: web.Request, handler):  # type: ignore[no-untyped-def]
    host = (request.headers.get("Host") or "").lower()
    if host not in request.app[DEPS].security.allowed_hosts:
        return web.json_response({"error": "unknown Host"}, status=421)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and _is_api(request.path) and exc.content_type != "application/json":
            response = web.json_response({"error": exc.text or exc.reason}, status=exc.status,
                                         headers={k: v for k, v in exc.headers.items()
                                                  if k in ("Retry-After", "WWW-Authenticate", "Allow")})
        else:
            raise
    return response


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every answer, streamed ones and errors too."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
