"""Signing in and out over the API, and who am I.

    POST   /api/session   {"username", "password"}  -> 201 the user and the CSRF token; the cookie
    GET    /api/session                             -> the signed-in user and the CSRF token
    DELETE /api/session                             -> 204, the session is over

The cookie is HttpOnly, SameSite=Strict (no other site's page can send it), Secure behind
HTTPS. Signing in always starts a new session (the browser's old one, if any, ends): a
session id planted before sign-in is worth nothing after it. Too many failures: 429 with
Retry-After, and the password is not even checked.
"""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from console.deps import DEPS, principal
from console.endpoints import SESSION_COOKIE, Endpoint
from people.accounts import AccountError, Principal, SignedIn, SignInRefused
from people.roles import Permission, reach

SIGN_IN_BODY = {"type": "object", "additionalProperties": False, "required": ["username", "password"],
                "properties": {"username": {"type": "string", "maxLength": 64},
                               "password": {"type": "string", "maxLength": 256}}}


def me_json(who: Principal) -> dict[str, Any]:
    return {"username": who.username, "display_name": who.display_name, "role": who.role,
            "reach": reach(who.role).value, "team_id": who.team_id, "client": who.client,
            "locale": who.locale, "via": who.via, "csrf_token": who.csrf_token}


def client_ip(request: web.Request) -> str:
    return request.remote or "?"


async def start_session(request: web.Request, username: str, password: str) -> SignedIn:
    """Sign in (ending the browser's previous session, if any). Raises SignInRefused."""
    accounts = request.app[DEPS].accounts
    old = await accounts.session_principal(request.cookies.get(SESSION_COOKIE))
    if old is not None:
        await accounts.sign_out(old)
    return await accounts.sign_in(username, password, client_ip(request))


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="Strict", path="/",
                        secure=request.app[DEPS].security.secure_cookies)


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


async def sign_in(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="expected a JSON body {\"username\": ..., \"password\": ...}") from None
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        raise web.HTTPBadRequest(text="expected a JSON body {\"username\": ..., \"password\": ...}")
    try:
        signed = await start_session(request, body["username"], body["password"])
    except SignInRefused as exc:
        if exc.retry_after is not None:
            return web.json_response({"error": str(exc)}, status=429,
                                     headers={"Retry-After": str(int(exc.retry_after.total_seconds()) + 1)})
        return web.json_response({"error": str(exc)}, status=401)
    except AccountError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    response = web.json_response(me_json(signed.principal), status=201)
    set_session_cookie(request, response, signed.token)
    return response


async def whoami(request: web.Request) -> web.Response:
    return web.json_response(me_json(principal(request)))


async def sign_out(request: web.Request) -> web.Response:
    await request.app[DEPS].accounts.sign_out(principal(request))
    response = web.Response(status=204)
    clear_session_cookie(response)
    return response


ENDPOINTS = [
    Endpoint("POST", "/api/session", sign_in, None, "Sign in: a new session (cookie) and its CSRF token",
             body=SIGN_IN_BODY, csrf_exempt=True, tags=("session",),
             responses={201: "signed in", 400: "bad body", 401: "wrong user name or password",
                        403: "cross-site", 429: "too many failures: wait Retry-After seconds"}),
    Endpoint("GET", "/api/session", whoami, Permission.SIGNED_IN, "Who is signed in, and the CSRF token",
             tags=("session",), responses={200: "the user"}),
    Endpoint("DELETE", "/api/session", sign_out, Permission.SIGNED_IN, "Sign out", tags=("session",),
             produces="", responses={204: "signed out"}),
]
