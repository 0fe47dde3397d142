"""The console app served from its own thread and event loop, for clients that block:
schemathesis (requests) and Selenium (a real browser). `prepare(db, clock)` seeds the
database and returns what the app needs (accounts, and optionally dial/store/ledger)."""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from aiohttp.test_utils import unused_port

from console.api import make_app
from storage.clock import ManualClock
from storage.db import Database
from tests.console_kit import deps_for

NOON_BEIJING = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)
Prepare = Callable[[Database, ManualClock], Awaitable[dict[str, Any]]]


class LiveConsole:
    def __init__(self, tmp_path, prepare: Prepare, start: datetime = NOON_BEIJING) -> None:
        self.tmp_path = tmp_path
        self.prepare = prepare
        self.clock = ManualClock(start)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.parts: dict[str, Any] = {}

    def run(self, coro: Awaitable[Any], timeout: float = 60) -> Any:
        """Run a coroutine on the console's loop (seed or read its database) and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self.db = Database(f"sqlite+aiosqlite:///{self.tmp_path / 'console.db'}")
        await self.db.migrate()
        self.parts = await self.prepare(self.db, self.clock)
        self.port = unused_port()
        accounts = self.parts.pop("accounts")
        self.accounts = accounts
        self.runner = web.AppRunner(make_app(deps_for(self.db, accounts, self.port, **self.parts)),
                                    access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.db.close()

    def __enter__(self) -> LiveConsole:
        self.thread.start()
        self.run(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"
