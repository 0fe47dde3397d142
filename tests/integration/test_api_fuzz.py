"""The whole JSON API fuzzed from its own OpenAPI document (schemathesis, on loopback):
every operation, with the API token of a role that may call it, gets generated valid and
invalid parameters and bodies; no answer may be a 500 (an answer of 5xx must be one the
document declares, e.g. 503 when no archive is wired)."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings

from console.api import make_app
from recorder.archive import FilesystemArchive
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
from people.roles import Permission, Role, may
from storage import repositories as repo
from storage.clock import ManualClock
from storage.db import Database
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import cheap_accounts, deps_for, seed_users, user_of
from tests.integration.test_retrieval import seed_archive

START = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)


class LiveConsole:
    """The console app in its own thread and event loop (schemathesis calls it synchronously)."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.tokens: dict[Role, str] = {}

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    async def _start(self) -> None:
        from aiohttp import web
        from aiohttp.test_utils import unused_port

        from cases.batches import BatchImporter
        from dialer.originate import DialError

        self.db = Database(f"sqlite+aiosqlite:///{self.tmp_path / 'fuzz.db'}")
        await self.db.migrate()
        clock = ManualClock(START)
        ledger = Ledger(self.db, Signer(Ed25519PrivateKey.generate()), clock, checkpoint_every=5,
                        witness=CheckpointWitness(FilesystemArchive(self.tmp_path / "archive"), retain_years=10))
        archive = await seed_archive(self.db, ledger, clock, self.tmp_path)  # cases C-1, C-2, C-EMPTY, recorded
        accounts = cheap_accounts(self.db, clock)
        await seed_users(accounts)
        importer = BatchImporter(self.db, clock)
        data = csv_bytes([good_row(n) for n in range(1, 6)])
        await importer.run(await importer.start(client="cu", filename="b.csv", data=data, by="t"), data)
        async with self.db.session() as s:
            await repo.approve_caller_id(s, "cu", "4008001000")
        for role in Role:
            self.tokens[role] = await accounts.issue_token(user_of(role), "fuzz", by="test")

        async def no_such_line(case_id, number):
            raise DialError("the fuzz has no PBX")

        self.port = unused_port()
        self.runner = web.AppRunner(make_app(deps_for(self.db, accounts, self.port, dial=no_such_line,
                                                           store=archive, ledger=ledger)),
                                    access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.db.close()

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token_for(self, permission: str | None) -> str:
        """The token of the first role that may (the supervisor's when anyone may)."""
        if permission is None:
            return self.tokens[Role.SUPERVISOR]
        role = next(r for r in (Role.SUPERVISOR, Role.COMPLIANCE, Role.ADMIN, *Role) if may(r, Permission(permission)))
        return self.tokens[role]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    console = LiveConsole(tmp_path_factory.mktemp("fuzz"))
    console.start()
    yield console
    console.stop()


def _document() -> dict:
    """The document as the app serves it (built from the same declarations, no server needed)."""
    from console.endpoints import ENDPOINTS
    from console.openapi import document

    return document(make_app(deps_for(None, None, 1))[ENDPOINTS])  # type: ignore[arg-type]


schema = schemathesis.openapi.from_dict(_document())


def test_the_served_document_is_the_one_fuzzed(live):
    import json
    import urllib.request

    request = urllib.request.Request(f"{live.base}/api/openapi.json",
                                     headers={"Authorization": f"Bearer {live.tokens[Role.QC]}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert json.load(resp) == json.loads(json.dumps(_document()))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_500(case, live):
    operation = case.operation.definition.raw
    token = live.token_for(operation.get("x-permission"))
    response = case.call(base_url=live.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    declared = {int(s) for s in operation.get("responses", {}) if s.isdigit()}
    assert response.status_code != 500, (case.method, case.formatted_path, response.text[:500])
    assert response.status_code < 500 or response.status_code in declared, (case.method, case.formatted_path,
                                                                           response.status_code, response.text[:300])
