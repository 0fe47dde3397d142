"""The console under test: the real app on a loopback port, users of every role, and a
`Browser` that signs in and sends what a browser on the console's own pages sends (its
Origin, the session cookie, the CSRF token)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse, ClientSession, CookieJar, web
from aiohttp.test_utils import unused_port

from console.api import make_app
from console.deps import ConsoleDeps, WebSecurity
from people.accounts import Accounts
from people.passwords import PasswordHasher
from people.roles import Role
from storage.clock import Clock
from storage.db import Database

PASSWORD = "correct horse battery"
TEAM = "north"
CLIENT = "cu"


def cheap_accounts(db: Database, clock: Clock) -> Accounts:
    """Accounts with fast password hashing (the suite signs in hundreds of times)."""
    return Accounts(db, clock, PasswordHasher(time_cost=1, memory_cost_kib=1024, parallelism=1))


def user_of(role: Role | str) -> str:
    return f"{Role(role).value.replace('_', '')}1"


async def seed_users(accounts: Accounts) -> dict[Role, int]:
    """One user per role (`collector1`, `teamlead1`, ...); the collector and lead in team north,
    the client user of client `cu`. Returns their ids."""
    await accounts.add_team(TEAM, by="test")
    ids = {}
    for role in Role:
        user = await accounts.add_user(
            username=user_of(role), display_name=f"{role.value} one", role=role.value, password=PASSWORD, by="test",
            team=TEAM if role in (Role.COLLECTOR, Role.TEAM_LEAD) else None,
            client=CLIENT if role is Role.CLIENT else None, locale="en")
        ids[role] = user.id
    return ids


async def people_and_one_case(db: Database, clock: Clock) -> Accounts:
    """Users of every role (seed_users) and case C-1 of client cu with one phone, unassigned."""
    from storage import repositories as repo
    from storage.models import Case

    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-1", client=CLIENT, debtor_name="Hu", created_at=clock()),
                            [repo.NewPhone("15551100001")])
    return accounts


def deps_for(db: Database, accounts: Accounts, port: int, **parts: Any) -> ConsoleDeps:
    async def no_dial(case_id: str, number: str | None) -> Any:
        raise AssertionError("this test places no call")

    parts.setdefault("dial", no_dial)
    parts.setdefault("health", lambda: {"ready": False, "reasons": ["test"]})
    return ConsoleDeps(db=db, accounts=accounts, security=WebSecurity.build(port), **parts)


class Browser:
    """A browser on the console's own pages: its own cookie jar, its Origin on every state
    change, the CSRF token of its session once signed in."""

    def __init__(self, session: ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.csrf: str | None = None

    @property
    def origin(self) -> str:
        return self.base

    async def sign_in(self, username: str, password: str = PASSWORD) -> ClientResponse:
        resp = await self.session.post(f"{self.base}/api/session", json={"username": username, "password": password},
                                       headers={"Origin": self.origin})
        if resp.status == 201:
            self.csrf = (await resp.json())["csrf_token"]
        return resp

    async def request(self, method: str, path: str, **kwargs: Any) -> ClientResponse:
        headers = dict(kwargs.pop("headers", None) or {})
        if method not in ("GET", "HEAD"):
            headers.setdefault("Origin", self.origin)
            if self.csrf:
                headers.setdefault("X-CSRF-Token", self.csrf)
        return await self.session.request(method, f"{self.base}{path}", headers=headers,
                                          allow_redirects=False, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.request("POST", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.request("DELETE", path, **kwargs)


class Console:
    """The running console app and the browsers opened on it (closed with it)."""

    def __init__(self, port: int, app: web.Application) -> None:
        self.port = port
        self.app = app
        self.base = f"http://127.0.0.1:{port}"
        self._sessions: list[ClientSession] = []

    async def browser(self, role: Role | str | None = None, *, username: str | None = None) -> Browser:
        """A new browser, signed in as the role's user (or `username`), or not signed in."""
        session = ClientSession(cookie_jar=CookieJar(unsafe=True))
        self._sessions.append(session)
        browser = Browser(session, self.base)
        name = username or (user_of(role) if role is not None else None)
        if name is not None:
            resp = await browser.sign_in(name)
            assert resp.status == 201, await resp.text()
        return browser

    async def close(self) -> None:
        for session in self._sessions:
            await session.close()


@asynccontextmanager
async def console(db: Database, accounts: Accounts, **parts: Any) -> AsyncIterator[Console]:
    """The console app on 127.0.0.1 at a free port (its Host and Origin allowed)."""
    port = unused_port()
    app = make_app(deps_for(db, accounts, port, **parts))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    running = Console(port, app)
    try:
        yield running
    finally:
        await running.close()
        await runner.cleanup()
