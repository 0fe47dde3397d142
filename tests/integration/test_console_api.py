"""The console JSON API: hostile input changes nothing; blocked decisions are visible."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer

from console.api import ConsoleDeps, make_app
from dialer.originate import DialBlocked
from dialer.policy import Blocked
from storage import repositories as repo
from storage.models import Case


@pytest.fixture
async def client(db, clock):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-API", client="cu", debtor_name="Hu", created_at=clock()),
                            [repo.NewPhone("15551100001")])

    async def dial(case_id, number):
        from dialer.policy_store import record_decision

        decision = Blocked("debtor disputes the debt", "dispute", None)
        async with db.session() as s:
            await record_decision(s, at=clock(), case_id=case_id, number="15551100001", decision=decision)
        raise DialBlocked(decision)

    app = make_app(ConsoleDeps(db=db, dial=dial, health=lambda: {"ready": False}))
    async with TestClient(TestServer(app, host="127.0.0.1")) as c:
        yield c


async def test_blocked_dial_is_409_and_shows_on_the_case(client):
    resp = await client.post("/api/cases/C-API/dial")
    assert resp.status == 409
    assert (await resp.json())["rule"] == "dispute"
    case = await (await client.get("/api/cases/C-API")).json()
    assert case["decisions"][0]["rule"] == "dispute" and case["decisions"][0]["allowed"] is False


@pytest.mark.parametrize("path", ["/api/cases/..%2F..%2Fetc%2Fpasswd", "/api/cases/%00x",
                                  "/api/cases/" + "A" * 200, "/api/attempts/not-an-id"])
async def test_hostile_ids_are_400(client, path):
    resp = await client.get(path)
    assert resp.status == 400, (path, resp.status, await resp.text())


async def test_unknown_case_is_404_and_health_not_ready(client):
    assert (await client.get("/api/cases/NOPE")).status == 404
    assert (await client.get("/healthz")).status == 503
    assert (await client.post("/api/cases/C-API/dial?number=abc")).status == 400
