"""Back-pressure, not a closed gate, while ingest is only busy: the real console and
`Service.dial`, a real ingest runner holding a backlog above the high-water mark (its
analyses waiting) and the watchdog loop judging it. New dials get 503 with Retry-After and
the rule `ingest_backlog`; the gate stays open, nothing is an incident; once the backlog is
down to the low-water mark dials go through again."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from dunline.service import Service
from dunline.settings import load_settings
from people.roles import Role
from recorder.ingest import IngestSettings
from recorder.ingest_pool import analyse_in_thread
from recorder.ingest_runner import IngestRunner
from recorder.ledger_store import Ledger
from recorder.watchdog.checks import PbxUptime, State
from recorder.watchdog.gate import DialingGate, GateState
from recorder.watchdog.runner import Watchdog, WatchdogSettings
from storage import repositories as repo
from storage.models import Case
from tests.console_kit import console, people_and_one_case
from tests.integration.test_durable_ingest import bound_call, hang_up
from tests.integration.test_watchdog_runner import ScriptedProbes, wait_for

CALLS = 12
HIGH, LOW = 10, 3


class Link:
    """The AMI link as place_call sees it: every Originate accepted."""

    connected = True

    def __init__(self) -> None:
        self.originated: list[dict] = []

    async def originate(self, channel, **kw):
        self.originated.append({"channel": channel, **kw})
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


class World:
    pass


@pytest.fixture
async def service(tmp_path, clock):
    settings = load_settings(env={}, overrides={
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
        "recording": {"archive_dir": str(tmp_path / "archive")}})
    svc = Service(settings, clock=clock)
    await svc.db.migrate()
    yield svc
    await svc.db.close()


async def test_a_busy_backlog_holds_dials_back_with_503_and_the_gate_stays_open(service, clock, tmp_path, signer):
    accounts = await people_and_one_case(service.db, clock)
    async with service.db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        await s.execute(update(Case).where(Case.id == "C-1").values(timezone="Asia/Shanghai"))  # 10:00 there
    service.link = Link()
    spool = tmp_path / "spool"
    spool.mkdir()
    w = World()
    w.db, w.clock, w.writer, w.spool = service.db, clock, service.writer, spool
    release = asyncio.Event()

    async def held(files):  # analyses wait: the backlog stays above the mark, jobs are in flight
        await release.wait()
        return await analyse_in_thread(files)

    runner = IngestRunner(service.db, service.archive, IngestSettings(spool_dir=spool, close_timeout_s=0.2), clock,
                          Ledger(service.db, signer, clock, checkpoint_every=50), service.writer, workers=2,
                          idle_poll_s=0.05, on_failure=service._recording_incident, analyse=held)
    service._ingest = runner
    for n in range(CALLS):
        await bound_call(w, f"{n:032x}")
        await hang_up(w, f"{n:032x}")

    class Probes(ScriptedProbes):
        async def ingest_backlog(self):
            return runner.backlog()

    changes = []

    async def record(change):
        changes.append(change)

    service.watchdog = dog = Watchdog(Probes(uptime=PbxUptime(clock(), None)), WatchdogSettings(interval_s=0.05, ingest_high_water=HIGH,
                                                                 ingest_low_water=LOW), clock,
                                      gate=DialingGate(GateState.OPEN, ""), on_change=record)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(dog.run())]
    try:
        async with console(service.db, accounts, dial=service.dial, health=service.health) as app:
            supervisor = await app.browser(Role.SUPERVISOR)
            await wait_for(lambda: dog.held_back() is not None, timeout=10)
            resp = await supervisor.post("/api/cases/C-1/dial")
            body = await resp.json()
            assert resp.status == 503 and body["rule"] == "ingest_backlog", body
            assert int(resp.headers["Retry-After"]) == body["retry_after_s"] >= 1
            assert "busy" in body["reason"]
            assert service.link.originated == [], "no call placed"
            assert dog.gate.is_open and changes == [], "the gate stayed open: no close, no alarm"
            backlog = dog.results["ingest_backlog"]
            assert backlog.state is State.WARN and backlog.value >= HIGH
            assert dog.results["unrecorded_calls"].state is State.OK, "back-pressure is not an incident"
            status = await (await supervisor.get("/api/watchdog")).json()
            assert status["gate_open"] and status["dials_held_back"]["rule"] == "ingest_backlog"
            assert "dunline_dials_held_back 1.0" in await (await supervisor.get("/metrics")).text()
            async with service.db.session() as s:
                held_events = [e for e in await repo.audit_events(s) if e.action == "dial.held_back"]
            assert [e.subject for e in held_events] == ["C-1"]

            release.set()  # ingest catches up
            await wait_for(lambda: dog.held_back() is None, timeout=30)
            assert runner.backlog().pending <= LOW, "let go only at the low-water mark"
            resp = await supervisor.post("/api/cases/C-1/dial")
            assert resp.status == 201, await resp.text()
            assert len(service.link.originated) == 1
            assert dog.gate.is_open and changes == []
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_stuck_backlog_closes_the_gate(service, clock, tmp_path, signer):
    """Nothing archived for `ingest_stall_s` while recordings wait (here: the analyses never
    return): not busy but stuck, critical as before, and the gate closes."""
    spool = tmp_path / "spool"
    spool.mkdir()
    never = asyncio.Event()

    async def hung(files):
        await never.wait()

    runner = IngestRunner(service.db, service.archive, IngestSettings(spool_dir=spool), clock,
                          Ledger(service.db, signer, clock, checkpoint_every=50), service.writer, workers=2,
                          idle_poll_s=0.05, analyse=hung)
    service._ingest = runner
    w = World()
    w.db, w.clock, w.writer, w.spool = service.db, clock, service.writer, spool
    for n in range(3):
        await bound_call(w, f"{n:032x}")
        await hang_up(w, f"{n:032x}")

    class Probes(ScriptedProbes):
        async def ingest_backlog(self):
            return runner.backlog()

    changes = []

    async def record(change):
        changes.append(change)

    dog = Watchdog(Probes(uptime=PbxUptime(clock(), None)),
                   WatchdogSettings(interval_s=0.05, ingest_stall_s=0.3), clock,
                   gate=DialingGate(GateState.OPEN, ""), on_change=record)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(dog.run())]
    try:
        await wait_for(lambda: not dog.gate.is_open, timeout=10)
        assert "stuck: nothing archived" in changes[-1].reason and "3 recording(s) waiting" in changes[-1].reason
        assert dog.held_back() is None, "3 waiting is below the high-water mark: a closed gate, not back-pressure"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_facts_waiting_a_moment_for_a_busy_database_hold_dials_back_as_database_busy(service, clock):
    """The console and `Service.dial` with the watchdog judging a journal whose oldest fact
    waited under `journal_stuck_s`: 503 with the rule `database_busy`, the gate open."""
    accounts = await people_and_one_case(service.db, clock)
    service.link = Link()

    probes = ScriptedProbes(uptime=PbxUptime(clock(), None), journaled=2, journal_age=0.5)
    service.watchdog = dog = Watchdog(probes, WatchdogSettings(interval_s=0.05), clock,
                                      gate=DialingGate(GateState.OPEN, ""))
    task = asyncio.create_task(dog.run())
    try:
        async with console(service.db, accounts, dial=service.dial, health=service.health) as app:
            supervisor = await app.browser(Role.SUPERVISOR)
            await wait_for(lambda: dog.held_back() is not None, timeout=10)
            resp = await supervisor.post("/api/cases/C-1/dial")
            body = await resp.json()
            assert resp.status == 503 and body["rule"] == "database_busy", body
            assert service.link.originated == [] and dog.gate.is_open
            async with service.db.session() as s:
                [held] = [e for e in await repo.audit_events(s) if e.action == "dial.held_back"]
            assert held.detail["rule"] == "database_busy"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
