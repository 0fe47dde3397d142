"""Every route of the console, declared once: its permission, its parameters, its body.

An `Endpoint` is registered through `register()`, which wraps its handler in the guard:
no handler runs unless the guard let the request through, and the guard is the only place
a request's permission is checked (against people/roles.py's matrix). The OpenAPI
document (console/openapi.py) is built from the same declarations, so it cannot drift.

The guard, in order:
1. a browser's cross-site request to the API (`Sec-Fetch-Site: cross-site|same-site`) is
   refused, so is a state change whose Origin (or Referer) is not this console's;
2. who asks: an `Authorization: Bearer` API token, else the session cookie;
3. nobody: pages redirect to the sign-in page, the API answers 401;
4. the role may not: 403, nothing read or changed;
5. a state change by a session must carry its CSRF token (header `X-CSRF-Token`, or the
   form field `csrf_token`).
Host headers are checked before all of this, for every request (console/security.py).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from markupsafe import escape

from console.deps import DEPS, PRINCIPAL
from people.accounts import Principal
from people.roles import Permission, may

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "dunline_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" | "query"
    schema: Mapping[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    permission: Permission | None  # None: public (no sign-in needed)
    summary: str
    params: tuple[Param, ...] = ()
    body: Mapping[str, Any] | None = None  # JSON schema of a JSON request body
    upload: bool = False  # a multipart/form-data upload (a file)
    page: bool = False  # an HTML page: not in the API document; signed out -> the sign-in page
    produces: str = "application/json"
    responses: Mapping[int, str] = field(default_factory=dict)
    csrf_exempt: bool = False  # signing in only: there is no session yet (the Origin is still checked)
    tags: tuple[str, ...] = ()


ENDPOINTS = web.AppKey("endpoints", list)
# what every page shows besides its own content (a banner): async (request, who) -> template
# values, asked by the guard for a signed-in user's page once it is let through; the values
# are in request[PAGE_EXTRAS] for the page's template (console/pages.py: render)
PAGE_HOOKS = web.AppKey("page_hooks", list)
PAGE_EXTRAS = web.RequestKey("page_extras", dict)


def refuse(endpoint: Endpoint, status: int, message: str, headers: Mapping[str, str] | None = None
           ) -> web.Response:
    if endpoint.page:
        page = (f'<!doctype html><html><head><meta charset="utf-8"><title>{status}</title>'
                f'<link rel="stylesheet" href="/static/dunline.css"></head><body><main>'
                f'<p class="message error" id="message">{escape(message)}</p><p><a href="/">dunline</a></p>'
                f'</main></body></html>')
        return web.Response(status=status, text=page, content_type="text/html", headers=headers)
    return web.json_response({"error": message}, status=status, headers=headers)


def _origin_of(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        return origin.lower()
    referer = request.headers.get("Referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}".lower()
    return "null" if origin == "null" else None


async def _who(request: web.Request) -> tuple[Principal | None, str | None]:
    """The signed-in user, or (None, why not) for a credential that was offered and is bad."""
    accounts = request.app[DEPS].accounts
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "Authorization: expected 'Bearer <API token>'"
        who = await accounts.token_principal(token.strip())
        return (who, None) if who else (None, "the API token is unknown, revoked or expired")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return await accounts.session_principal(cookie), None
    return None, None


async def _csrf_token_sent(request: web.Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()  # aiohttp keeps it: the handler reads the same form
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    if request.content_type == "multipart/form-data":
        return request.query.get(CSRF_FIELD)  # an upload's body is streamed to the handler, unread
    return None


async def json_object(request: web.Request, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The request's JSON object body, its keys limited to the schema's properties (400 otherwise).
    The values are the handler's to check: the schema documents them."""
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        body = None
    allowed = set(schema.get("properties", {}))
    if not isinstance(body, dict) or not set(body) <= allowed \
            or not set(schema.get("required", ())) <= set(body):
        raise web.HTTPBadRequest(text=f"expected a JSON object with {', '.join(sorted(allowed))}")
    return body


def guard(endpoint: Endpoint) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        security = request.app[DEPS].security
        unsafe = request.method not in SAFE_METHODS
        fetch_site = request.headers.get("Sec-Fetch-Site", "")
        if not endpoint.page and fetch_site in ("cross-site", "same-site"):
            return refuse(endpoint, 403, "cross-site request refused")
        bearer = "Authorization" in request.headers
        if unsafe:
            origin = _origin_of(request)
            if origin is None and not bearer:
                return refuse(endpoint, 403, "a state change needs an Origin (or Referer) header")
            if origin is not None and origin not in security.allowed_origins:
                return refuse(endpoint, 403, f"cross-site request refused (origin {origin[:80]})")
        who, bad_credential = await _who(request)
        if bad_credential:
            return refuse(endpoint, 401, bad_credential, {"WWW-Authenticate": "Bearer"})
        if who is None and endpoint.permission is not None:
            if endpoint.page:
                target = request.path_qs if request.method == "GET" else "/"
                raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
            return refuse(endpoint, 401, "sign in first", {"WWW-Authenticate": "Bearer"})
        if who is not None:
            request[PRINCIPAL] = who
        if endpoint.permission is not None and who is not None and not may(who.role, endpoint.permission):
            return refuse(endpoint, 403, f"your role ({who.role}) may not do this ({endpoint.permission.value})")
        if unsafe and who is not None and who.via == "session" and not endpoint.csrf_exempt:
            if not who.csrf_ok(await _csrf_token_sent(request)):
                return refuse(endpoint, 403, "missing or wrong CSRF token; reload the page")
        if endpoint.page and endpoint.permission is not None and who is not None:
            extras: dict[str, Any] = {}
            for hook in request.app.get(PAGE_HOOKS, ()):
                extras.update(await hook(request, who))
            request[PAGE_EXTRAS] = extras
        return await endpoint.handler(request)

    guarded.__name__ = getattr(endpoint.handler, "__name__", "guarded")
    return guarded


def register(app: web.Application, endpoints: list[Endpoint]) -> None:
    """Add the endpoints' routes, each behind the guard, and remember them (OpenAPI, tests)."""
    if ENDPOINTS not in app:
        app[ENDPOINTS] = []
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, guard(endpoint))
        app[ENDPOINTS].append(endpoint)
