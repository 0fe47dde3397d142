"""The console JSON API: hostile input changes nothing; blocked decisions are visible."""
from __future__ import annotations

import pytest

from dialer.originate import DialBlocked
from dialer.policy import Blocked
from people.roles import Role
from storage import repositories as repo
from storage.models import Attempt, Case
from tests.console_kit import cheap_accounts, console, seed_users, user_of


@pytest.fixture
async def accounts(db, clock):
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    return accounts


@pytest.fixture
async def client(db, clock, accounts):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-API", client="cu", debtor_name="Hu", created_at=clock()),
                            [repo.NewPhone("15551100001")])

    async def dial(case_id, number, *, requested_by=None, collector=None):
        from dialer.policy_store import record_decision

        decision = Blocked("debtor disputes the debt", "dispute", None)
        async with db.session() as s:
            await record_decision(s, at=clock(), case_id=case_id, number="15551100001", decision=decision)
        raise DialBlocked(decision)

    async with console(db, accounts, dial=dial, health=lambda: {"ready": False}) as running:
        yield await running.browser(Role.SUPERVISOR)


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


WATCHDOG = {"gate": "closed", "gate_open": False, "gate_reason": "ami_link: AMI link down",
            "gate_changed_at": None, "evaluated_at": None,
            "checks": {"ami_link": {"state": "critical", "reason": "AMI link down", "value": None},
                       "spool_disk": {"state": "ok", "reason": "", "value": 5e9}},
            "canary": {"passed": True, "reason": "ok", "seconds": 6.5, "attempt_id": None, "runs": 3}}


@pytest.fixture
async def gated_client(db, clock, accounts):
    from recorder.watchdog.gate import GateClosed

    async with db.session() as s:
        await repo.add_case(s, Case(id="C-G", client="cu", debtor_name="Ma", created_at=clock()),
                            [repo.NewPhone("15551100002")])

    async def dial(case_id, number, *, requested_by=None, collector=None):
        raise GateClosed("dialing gate closed: ami_link: AMI link down")

    health = {"ready": False, "ami": "down", "ingest_backlog": 0,
              "reasons": ["dialing gate closed: ami_link: AMI link down"], "watchdog": WATCHDOG}
    async with console(db, accounts, dial=dial, health=lambda: health) as running:
        yield await running.browser(Role.SUPERVISOR)


async def test_a_closed_gate_is_503_with_the_reason(gated_client):
    resp = await gated_client.post("/api/cases/C-G/dial")
    assert resp.status == 503 and resp.headers["Retry-After"]
    body = await resp.json()
    assert body["rule"] == "dialing_gate" and "AMI link down" in body["reason"]
    health = await gated_client.get("/healthz")
    assert health.status == 503 and "AMI link down" in (await health.json())["reasons"][0]
    status = await (await gated_client.get("/api/watchdog")).json()
    assert status["gate"] == "closed" and status["checks"]["ami_link"]["state"] == "critical"


async def test_metrics_expose_the_gate_every_check_and_the_calls(gated_client):
    resp = await gated_client.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert "dunline_gate_open 0.0" in text
    assert 'dunline_check_state{check="ami_link"} 2.0' in text
    assert 'dunline_check_value{check="spool_disk"} 5e+09' in text
    assert "dunline_canary_seconds 6.5" in text and "dunline_canary_runs_total 3.0" in text
    assert "dunline_recordings_total 0.0" in text


async def test_watchdog_status_without_a_watchdog_is_404(client):
    assert (await client.get("/api/watchdog")).status == 404
    assert (await client.get("/metrics")).status == 200


async def test_the_cli_shows_the_watchdog_and_exits_1_while_closed(gated_client, monkeypatch, capsys):
    import asyncio

    from dunline.cli import main

    monkeypatch.setenv("DUNLINE_CONSOLE_PORT", gated_client.base.rsplit(":", 1)[1])
    assert await asyncio.to_thread(main, ["watchdog", "status"]) == 1
    out = capsys.readouterr().out
    assert "dialing gate: CLOSED (ami_link: AMI link down)" in out
    assert "CRITICAL ami_link" in out and "last canary: passed in 6.5 s" in out
    monkeypatch.setenv("DUNLINE_CONSOLE_PORT", "1")
    assert await asyncio.to_thread(main, ["watchdog", "status"]) == 2


async def test_the_cli_shows_dials_held_back_with_the_gate_open_and_exits_0(db, clock, accounts, monkeypatch, capsys):
    import asyncio

    from dunline.cli import main

    held = {"rule": "ingest_backlog", "retry_after_s": 7,
            "reason": "busy: 140 recording(s) waiting, archiving 7.5/s; new dials held back until 25 or fewer wait"}
    watchdog = {**WATCHDOG, "gate": "open", "gate_open": True, "gate_reason": "canary passed",
                "checks": {"ingest_backlog": {"state": "warn", "reason": held["reason"], "value": 140}},
                "dials_held_back": held}
    health = {"ready": True, "ami": "connected", "ingest_backlog": 140, "reasons": [], "watchdog": watchdog}
    async with console(db, accounts, health=lambda: health) as running:
        monkeypatch.setenv("DUNLINE_CONSOLE_PORT", str(running.port))
        assert await asyncio.to_thread(main, ["watchdog", "status"]) == 0, "busy is not a closed gate"
    out = capsys.readouterr().out
    assert "dialing gate: OPEN" in out
    assert "dials held back (ingest_backlog, the gate stays open; retry after 7 s): busy: 140" in out


async def test_a_dial_the_busy_database_could_not_take_is_503_and_stores_nothing(db, clock, accounts):
    """The dial's write waited past SQLite's busy timeout (a burst of dials and hang-ups): a
    clear 503 with Retry-After, not a 500; nothing of the dial was stored."""
    from sqlalchemy.exc import OperationalError

    async with db.session() as s:
        await repo.add_case(s, Case(id="C-B", client="cu", debtor_name="Lu", created_at=clock()),
                            [repo.NewPhone("15551100003")])

    async def dial(case_id, number, *, requested_by=None, collector=None):
        raise OperationalError("INSERT INTO dial_leases ...", {}, Exception("database is locked"))

    async with console(db, accounts, dial=dial, health=lambda: {"ready": True}) as running:
        client = await running.browser(Role.SUPERVISOR)
        resp = await client.post("/api/cases/C-B/dial")
        assert resp.status == 503 and resp.headers["Retry-After"] == "2"
        assert (await resp.json())["rule"] == "database_busy"
    async with db.session() as s:
        assert await repo.attempts_for_case(s, "C-B") == []


async def test_a_placed_dial_whose_request_audit_the_busy_database_refuses_is_still_201(fast_db, clock, tmp_path):
    """The call was placed (its attempt and audit written by the dial, naming who asked), then
    another process held the database's write lock: the console's `case.dial_requested` entry
    cannot be written. The answer is the placed attempt (201), not a 500 that invites a
    second dial; the lock's holder let go, everything the dial wrote is there."""
    from contextlib import ExitStack

    from tests.tampers import write_locked

    db = fast_db  # a held lock fails a write in 0.1 s
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-L", client="cu", debtor_name="Lu", created_at=clock()),
                            [repo.NewPhone("15551100004")])
    held = ExitStack()

    async def dial(case_id, number, *, requested_by=None, collector=None):
        async with db.session() as s:
            case = await repo.get_case(s, case_id)
            attempt = Attempt(id="b" * 32, case_id=case_id, phone_id=case.phones[0].id, number=case.phones[0].number,
                              collector="6001", state="originated", created_at=clock())
            await repo.create_attempt(s, attempt)
            await repo.audit(s, at=clock(), actor="dialer", action="attempt.created", subject=attempt.id,
                             requested_by=requested_by)
        held.enter_context(write_locked(tmp_path / "d.db"))
        return attempt

    with held:
        async with console(db, accounts, dial=dial, health=lambda: {"ready": True}) as running:
            client = await running.browser(Role.SUPERVISOR)
            resp = await client.post("/api/cases/C-L/dial")
            assert resp.status == 201, await resp.text()
            assert (await resp.json())["id"] == "b" * 32
    async with db.session() as s:
        assert [a.id for a in await repo.attempts_for_case(s, "C-L")] == ["b" * 32]
        created = [e for e in await repo.audit_events(s) if e.action == "attempt.created"]
        assert created[-1].detail["requested_by"] == user_of(Role.SUPERVISOR)
        assert not [e for e in await repo.audit_events(s) if e.action == "case.dial_requested"]
