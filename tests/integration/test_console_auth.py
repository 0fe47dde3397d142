"""Signing in, as an attacker tries it: no session, a forged or planted session, a
cross-site form, a foreign Host (DNS rebinding), a guessed password, a stolen database
copy, a revoked token. Each is refused and changes nothing; the audit's "who" is the
signed-in user, never a header."""
from __future__ import annotations

import pytest
from aiohttp import ClientSession
from yarl import URL

from people.roles import Role
from people.sessions import digest
from storage.models import AuditEvent
from storage.people import UserSession
from tests.console_kit import PASSWORD, user_of
from tests.db_snapshot import snapshot


async def test_no_session_no_data_and_nothing_changes(running, db):
    before = await snapshot(db)
    anonymous = await running.browser()
    for method, path in (("GET", "/api/cases"), ("GET", "/api/cases/C-1"), ("POST", "/api/cases/C-1/dial"),
                         ("GET", "/api/recordings?case=C-1&why=x"), ("GET", "/metrics"), ("GET", "/api/watchdog"),
                         ("GET", "/api/openapi.json"), ("DELETE", "/api/session")):
        resp = await anonymous.request(method, path)
        assert resp.status == 401, (method, path, resp.status)
        assert "error" in await resp.json()
    assert await snapshot(db) == before
    assert (await anonymous.get("/healthz")).status == 503  # the probe needs no sign-in, and says not ready


async def test_sign_in_refusals_say_the_same_and_are_counted(running, db, accounts):
    browser = await running.browser()
    wrong = await browser.sign_in(user_of(Role.SUPERVISOR), "not the password at all")
    unknown = await browser.sign_in("nobody.here", PASSWORD)
    await accounts.set_disabled(user_of(Role.QC), True, by="test", why="left the company")
    disabled = await browser.sign_in(user_of(Role.QC), PASSWORD)
    bodies = [await r.json() for r in (wrong, unknown, disabled)]
    assert [r.status for r in (wrong, unknown, disabled)] == [401, 401, 401]
    assert bodies[0] == bodies[1] == bodies[2], "a refusal never tells which accounts exist"
    assert "dunline_session" not in {c.key for c in browser.session.cookie_jar}


async def test_guessing_is_throttled_and_the_password_is_not_even_checked(running, clock):
    browser = await running.browser()
    name = user_of(Role.COMPLIANCE)
    for _ in range(5):
        assert (await browser.sign_in(name, "guess-guess-guess")).status == 401
    locked = await browser.sign_in(name, PASSWORD)  # the right one, while locked: refused all the same
    assert locked.status == 429 and int(locked.headers["Retry-After"]) >= 30
    other = await running.browser(Role.SUPERVISOR)  # other users are not locked out
    assert (await other.get("/api/cases")).status == 200
    clock.advance(31)
    assert (await browser.sign_in(name, "guess-guess-guess")).status == 401
    again = await browser.sign_in(name, PASSWORD)
    assert again.status == 429 and int(again.headers["Retry-After"]) >= 59, "each further failure waits twice as long"
    clock.advance(61)
    assert (await browser.sign_in(name, PASSWORD)).status == 201


async def test_a_planted_session_id_is_worthless_after_sign_in(running, db, accounts):
    """Session fixation: an attacker plants a cookie (theirs, or made up) in the victim's browser."""
    attacker = await running.browser(Role.COLLECTOR)
    planted = next(c.value for c in attacker.session.cookie_jar if c.key == "dunline_session")
    victim = await running.browser()
    victim.session.cookie_jar.update_cookies({"dunline_session": planted}, URL(running.base))
    assert (await victim.sign_in(user_of(Role.COMPLIANCE))).status == 201
    now = next(c.value for c in victim.session.cookie_jar if c.key == "dunline_session")
    assert now != planted, "sign-in always starts a new session"
    me = await (await victim.get("/api/session")).json()
    assert me["username"] == user_of(Role.COMPLIANCE)
    # the planted session was ended at the victim's sign-in: it is no one now
    async with ClientSession(cookies={"dunline_session": planted}) as replay:
        resp = await replay.get(f"{running.base}/api/session")
        assert resp.status == 401
    made_up = await running.browser()
    made_up.session.cookie_jar.update_cookies({"dunline_session": "made-up-by-the-attacker"}, URL(running.base))
    assert (await made_up.sign_in(user_of(Role.QC))).status == 201
    assert next(c.value for c in made_up.session.cookie_jar if c.key == "dunline_session") != "made-up-by-the-attacker"


async def test_state_changes_need_the_sessions_csrf_token(running, db):
    browser = await running.browser(Role.SUPERVISOR)
    other = await running.browser(Role.COLLECTOR)
    before = await snapshot(db)
    browser.csrf = None  # the browser sends only what each attempt names
    for token in (None, "wrong", other.csrf):
        headers = {"X-CSRF-Token": token} if token else {}
        resp = await browser.post("/api/cases/C-1/dial", headers=headers)
        assert resp.status == 403 and "CSRF" in (await resp.json())["error"]
    form = await browser.post("/api/cases/C-1/dial", data={"csrf_token": "wrong"})
    assert form.status == 403
    assert await snapshot(db) == before


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1:1"},  # the same host on another port is another origin
    {"Referer": "https://evil.example/page"},
])
async def test_a_foreign_origin_is_refused_even_with_the_token(running, db, headers):
    browser = await running.browser(Role.SUPERVISOR)
    before = await snapshot(db)
    resp = await browser.session.post(f"{running.base}/api/cases/C-1/dial",
                                      headers={"X-CSRF-Token": browser.csrf, **headers})
    assert resp.status == 403 and "cross-site" in (await resp.json())["error"]
    assert await snapshot(db) == before


async def test_a_state_change_without_origin_or_referer_is_refused(running, db):
    browser = await running.browser(Role.SUPERVISOR)
    before = await snapshot(db)
    resp = await browser.session.post(f"{running.base}/api/cases/C-1/dial", headers={"X-CSRF-Token": browser.csrf})
    assert resp.status == 403
    assert await snapshot(db) == before


async def test_sign_in_from_a_foreign_page_is_refused(running):
    """Login CSRF: a foreign page cannot sign the victim into the attacker's account."""
    async with ClientSession() as http:
        resp = await http.post(f"{running.base}/api/session", json={"username": user_of(Role.QC), "password": PASSWORD},
                               headers={"Origin": "https://evil.example"})
        assert resp.status == 403


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.2:{port}", ""])
async def test_a_foreign_host_header_is_refused_everywhere(running, host):
    """DNS rebinding: a page on evil.example whose name now points at 127.0.0.1."""
    browser = await running.browser(Role.SUPERVISOR)
    for path in ("/healthz", "/api/cases", "/login", "/no-such-page"):
        resp = await browser.get(path, headers={"Host": host.format(port=running.port)})
        assert resp.status == 421, (host, path, resp.status)


async def test_a_cross_site_fetch_of_the_api_is_refused(running):
    browser = await running.browser(Role.COMPLIANCE)
    resp = await browser.get("/api/cases", headers={"Sec-Fetch-Site": "cross-site"})
    assert resp.status == 403
    assert (await browser.get("/api/cases", headers={"Sec-Fetch-Site": "same-origin"})).status == 200


async def test_api_tokens_act_as_their_user_and_stop_when_revoked(running, db, accounts):
    token = await accounts.issue_token(user_of(Role.SUPERVISOR), "nightly report", by="test")
    assert token.startswith("dl_")
    async with ClientSession() as script:
        auth = {"Authorization": f"Bearer {token}"}
        resp = await script.get(f"{running.base}/api/cases", headers=auth)
        assert resp.status == 200
        me = await (await script.get(f"{running.base}/api/session", headers=auth)).json()
        assert me["username"] == user_of(Role.SUPERVISOR) and me["via"] == "token"
        forbidden = await script.post(f"{running.base}/api/cases/C-1/export?why=x", headers=auth)
        assert forbidden.status == 403, "a token has its user's role, no more"
        for bad in ("Bearer dl_not-a-token", "Basic dXNlcjpwYXNz", "Bearer", token):
            resp = await script.get(f"{running.base}/api/cases", headers={"Authorization": bad})
            assert resp.status == 401
        [(row, _)] = await accounts.tokens(user_of(Role.SUPERVISOR))
        await accounts.revoke_token(row.id, by="test")
        assert (await script.get(f"{running.base}/api/cases", headers=auth)).status == 401
    async with db.session() as s:
        from sqlalchemy import select
        from storage.people import ApiToken

        stored = (await s.scalars(select(ApiToken))).all()
        assert token not in {t.digest for t in stored} and digest(token) in {t.digest for t in stored}


async def test_a_disabled_users_token_and_sessions_stop(running, accounts):
    browser = await running.browser(Role.COLLECTOR)
    token = await accounts.issue_token(user_of(Role.COLLECTOR), "phone app", by="test")
    await accounts.set_disabled(user_of(Role.COLLECTOR), True, by="admin1", why="left")
    assert (await browser.get("/api/cases")).status == 401
    async with ClientSession() as script:
        resp = await script.get(f"{running.base}/api/cases", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 401


async def test_sessions_end_when_idle_at_their_age_at_sign_out_and_at_a_new_password(running, clock, accounts):
    idle = await running.browser(Role.QC)
    clock.advance(2 * 3600 + 1)
    assert (await idle.get("/api/cases")).status == 401, "two hours without a request"
    old = await running.browser(Role.QC)
    for _ in range(13):
        clock.advance(3600 - 1)
        status = (await old.get("/api/cases")).status
    assert status == 401, "twelve hours after sign-in, however busy"
    leaving = await running.browser(Role.QC)
    assert (await leaving.delete("/api/session")).status == 204
    assert (await leaving.get("/api/cases")).status == 401
    changed = await running.browser(Role.QC)
    await accounts.set_password(user_of(Role.QC), "a brand new passphrase", by="test")
    assert (await changed.get("/api/cases")).status == 401


async def test_the_cookie_is_httponly_strict_and_no_copy_of_the_database_signs_in(running, db):
    browser = await running.browser()
    resp = await browser.sign_in(user_of(Role.COMPLIANCE))
    cookie = resp.cookies["dunline_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    async with db.session() as s:
        from sqlalchemy import select

        ids = set((await s.scalars(select(UserSession.id))).all())
    assert cookie.value not in ids and digest(cookie.value) in ids
    async with ClientSession(cookies={"dunline_session": digest(cookie.value)}) as thief:
        assert (await thief.get(f"{running.base}/api/session")).status == 401


async def test_secure_cookies_behind_https(db, accounts):
    import dataclasses

    from aiohttp import web
    from aiohttp.test_utils import unused_port

    from console.api import make_app
    from console.deps import WebSecurity
    from tests.console_kit import deps_for

    port = unused_port()
    deps = deps_for(db, accounts, port)
    security = WebSecurity.build(port, public_url="https://dunline.example.com")
    assert security.secure_cookies and "https://dunline.example.com" in security.allowed_origins
    app = make_app(dataclasses.replace(deps, security=security))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with ClientSession() as http:
            resp = await http.post(f"http://127.0.0.1:{port}/api/session",
                                   json={"username": user_of(Role.QC), "password": PASSWORD},
                                   headers={"Origin": "https://dunline.example.com", "Host": "dunline.example.com"})
            assert resp.status == 201 and resp.cookies["dunline_session"]["secure"]
    finally:
        await runner.cleanup()


async def test_the_audit_names_the_signed_in_user_not_a_header(running, db):
    browser = await running.browser(Role.SUPERVISOR)
    resp = await browser.get("/api/cases/C-1", headers={"X-Dunline-User": "someone.else"})
    assert resp.status == 200
    async with db.session() as s:
        from sqlalchemy import select

        viewed = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.viewed"))).all()
    assert [(e.actor, e.subject) for e in viewed] == [(user_of(Role.SUPERVISOR), "case:C-1")]


async def test_every_answer_keeps_out_of_frames_and_caches(running):
    browser = await running.browser(Role.SUPERVISOR)
    for path in ("/api/cases", "/healthz", "/api/nothing-here"):
        resp = await browser.get(path)
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


async def test_the_admin_disables_a_user_on_the_users_page_and_their_session_ends(running, db):
    collector = await running.browser(Role.COLLECTOR)
    admin = await running.browser(Role.ADMIN)
    refused = await admin.post(f"/users/{user_of(Role.COLLECTOR)}/disable", data={"why": "x"})
    assert refused.status == 400 and (await collector.get("/api/cases")).status == 200
    done = await admin.post(f"/users/{user_of(Role.COLLECTOR)}/disable", data={"why": "left the company"})
    assert done.status == 200
    assert (await collector.get("/api/cases")).status == 401
    assert (await admin.post(f"/users/{user_of(Role.ADMIN)}/disable", data={"why": "oops mistake"})).status == 400
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post(f"/users/{user_of(Role.QC)}/disable", data={"why": "a grudge"})).status == 403


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
async def test_no_open_redirect_after_sign_in_or_a_language_switch(running, target):
    from urllib.parse import quote

    browser = await running.browser()
    switched = await browser.get(f"/lang/en?next={quote(target, safe='')}")
    assert switched.status == 303 and switched.headers["Location"] == "/"
    signed = await browser.session.post(
        f"{running.base}/login", data={"username": user_of(Role.QC), "password": PASSWORD, "next": target},
        headers={"Origin": browser.origin}, allow_redirects=False)
    assert signed.status == 303 and signed.headers["Location"] == "/"


async def test_the_sign_in_form_refuses_a_foreign_origin(running, db):
    browser = await running.browser()
    forged = await browser.session.post(f"{running.base}/login",
                                        data={"username": user_of(Role.QC), "password": PASSWORD},
                                        headers={"Origin": "https://evil.example"}, allow_redirects=False)
    assert forged.status == 403 and "dunline_session" not in {c.key for c in browser.session.cookie_jar}
