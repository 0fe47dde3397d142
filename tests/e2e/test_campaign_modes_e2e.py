"""Campaign modes on the real sandbox: answering-machine detection (the PBX's AMD() on the
answered call, its verdict stored with the attempt: a machine is hung up on, not given to a
collector and not counted abandoned; a person is bridged), and preview (a collector takes
the campaign's next case in their reach and dials it; a paused campaign's dial is refused)."""
from __future__ import annotations

import asyncio
import inspect

import aiohttp
import pytest
from sqlalchemy import select

from storage import repositories as repo
from storage.models import Attempt, Case
from tests.e2e.conftest import E2E_CALLER_ID, start_harness

pytestmark = pytest.mark.e2e

PASSWORD = "campaign-Modes-2026"


async def _until(predicate, timeout: float = 30.0, poll: float = 0.2, what: str = ""):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(poll)


class Console:
    """A signed-in user of the console over HTTP (session cookie, CSRF token, Origin)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def sign_in(self, username: str) -> None:
        async with self.http.post(f"{self.base}/api/session", json={"username": username, "password": PASSWORD}) as r:
            assert r.status == 201, await r.text()
            self.http.headers["X-CSRF-Token"] = (await r.json())["csrf_token"]

    async def post(self, path: str, body=None) -> tuple[int, dict]:
        async with self.http.post(f"{self.base}{path}", json=body) as r:
            return r.status, await r.json()

    async def close(self) -> None:
        await self.http.close()


async def test_amd_verdicts_are_stored_and_a_preview_case_is_dialled_by_its_collector(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True, "campaign_tick_s": 0.25})
    service = h.service
    base = f"http://127.0.0.1:{service.settings.console.port}"
    boss, collector = Console(base), Console(base)
    try:
        me = await service.accounts.add_user(username="amy", display_name="Amy", role="collector", password=PASSWORD,
                                             by="test", phone="6001")
        await service.accounts.add_user(username="boss", display_name="Boss", role="supervisor",
                                        password=PASSWORD, by="test")
        async with service.db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            for case_id, number, segment in (("AMD-MACHINE", "15556000001", "AMD"),  # a voicemail greeting
                                             ("AMD-PERSON", "15550308001", "AMD"),  # "hello", then listens 8 s
                                             ("PV-1", "15555300041", "PREVIEW")):  # talks 6 s
                await repo.add_case(s, Case(id=case_id, client="e2e", debtor_name="Debtor " + case_id, segment=segment,
                                            timezone="Asia/Shanghai", collector_id=me.id, created_at=service.clock()),
                                    [repo.NewPhone(number)])
        await service.open_seats(("6001",))
        await _until(lambda: service.seats.floor.ready_count(service.seats.now()) == 1, what="the seat ready")
        await boss.sign_in("boss")
        await collector.sign_in("amy")

        async def campaign_attempts(cid: int) -> list[Attempt]:
            async with service.db.session() as s:
                return list((await s.scalars(select(Attempt).where(Attempt.campaign_id == cid))).all())

        # -- answering-machine detection ---------------------------------------------------
        status, amd = await boss.post("/api/campaigns", {"name": "amd-e2e", "mode": "progressive", "amd": True,
                                                         "selection": {"segments": ["AMD"]}})
        assert status == 201, amd
        assert (await boss.post(f"/api/campaigns/{amd['id']}/start"))[0] == 200

        async def both_over() -> list[Attempt]:
            done = await campaign_attempts(amd["id"])
            return done if len(done) == 2 and all(a.state == "ended" for a in done) else []
        done = {a.case_id: a for a in await _until(both_over, timeout=90, poll=0.5, what="both AMD calls over")}
        assert (await boss.post(f"/api/campaigns/{amd['id']}/stop"))[0] == 200
        machine, person = done["AMD-MACHINE"], done["AMD-PERSON"]
        assert machine.amd == "MACHINE" and machine.answered_at is not None
        assert not machine.bridged_seconds and machine.collector is None and not machine.abandoned
        assert person.amd == "HUMAN" and person.collector == "6001" and person.bridged_seconds > 3
        assert (await h.wait_recording(machine.id)).duration_s > 0, "the machine's answer is recorded too"

        # -- preview ---------------------------------------------------------------------------
        status, preview = await boss.post("/api/campaigns", {"name": "preview-e2e", "mode": "preview",
                                                             "selection": {"segments": ["PREVIEW"]}})
        assert status == 201
        status, body = await collector.post(f"/api/campaigns/{preview['id']}/next")
        assert status == 409, "a draft preview campaign gives no case"
        assert (await boss.post(f"/api/campaigns/{preview['id']}/start"))[0] == 200
        await asyncio.sleep(1.0)
        assert await campaign_attempts(preview["id"]) == [], "a preview campaign dials nothing by itself"
        status, body = await collector.post(f"/api/campaigns/{preview['id']}/next")
        assert status == 200 and body["case_id"] == "PV-1", body
        status, attempt = await collector.post(body["dial"])
        assert status == 201, attempt
        end = await h.wait_attempt(attempt["id"], until=lambda a: a.bridged_seconds is not None)
        assert end.campaign_id == preview["id"] and end.collector == "6001" and end.bridged_seconds > 3

        assert (await boss.post(f"/api/campaigns/{preview['id']}/pause"))[0] == 200
        status, refused = await collector.post(body["dial"])
        assert status == 409 and refused["rule"] == "campaign_not_running", refused
        assert len(await campaign_attempts(preview["id"])) == 1
    finally:
        await boss.close()
        await collector.close()
        await service.stop(drain_timeout=30)


async def test_a_number_dialled_on_a_collectors_phone_is_placed_through_the_policy(sandbox_info, tmp_path):
    """The phone's keypad: a number of one of the collector's cases is placed as their own call
    (policy, recording) and the debtor comes to their phone; a number of nobody's case, and
    one the policy refuses, are refused with the PBX's message; nothing else is dialled."""
    from asterisk_conf import sandbox

    h = await start_harness(sandbox_info, tmp_path)  # no seats: the answered debtor rings the phone
    service = h.service
    try:
        me = await service.accounts.add_user(username="kim", display_name="Kim", role="collector",
                                             password=PASSWORD, by="test", phone="6002")
        async with service.db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            for case_id, number, flags in (("KP-1", "15551400061", []),  # answers after 4 s, talks on
                                           ("KP-DISPUTED", "15551400062", ["dispute"])):
                await repo.add_case(s, Case(id=case_id, client="e2e", debtor_name="Debtor " + case_id, flags=flags,
                                            timezone="Asia/Shanghai", collector_id=me.id, created_at=service.clock()),
                                    [repo.NewPhone(number)])

        async def attempts() -> list[Attempt]:
            async with service.db.session() as s:
                return list((await s.scalars(select(Attempt))).all())

        async def refusals() -> list:
            async with service.db.session() as s:
                return [e for e in await repo.audit_events(s, subject="phone:6002") if e.action == "keypad.refused"]

        await asyncio.to_thread(sandbox.dial_from_phone, sandbox_info, "6002", "15551400061")
        placed = await _until(attempts, timeout=20, what="the keypad's call placed")
        assert [(a.case_id, a.number, a.collector) for a in placed] == [("KP-1", "15551400061", "6002")]
        end = await h.wait_attempt(placed[0].id, state="bound", timeout=30)
        await _until(lambda: service.monitor.tracker.get(end.id) is not None
                     and service.monitor.tracker.get(end.id).bridged_at is not None, timeout=30,
                     what="the debtor bridged to the collector's phone")
        await service.link.action("Hangup", Channel=end.id, Cause=16)
        done = await h.wait_attempt(end.id, until=lambda a: a.bridged_seconds is not None)
        assert done.bridged_seconds > 0 and (await h.wait_recording(end.id)).duration_s > 0

        async with service.db.session() as s:
            asked = [e for e in await repo.audit_events(s, subject="case:KP-1") if e.action == "case.dial_requested"]
        assert asked and asked[0].actor == "kim" and asked[0].detail.get("via") == "keypad"

        await asyncio.to_thread(sandbox.dial_from_phone, sandbox_info, "6002", "15551400062")
        refused = await _until(refusals, timeout=20, what="the disputed number refused")
        assert "dispute" in refused[-1].detail["reason"]
        await asyncio.to_thread(sandbox.dial_from_phone, sandbox_info, "6002", "13900000000")
        await _until(lambda: _count(refusals, 2), timeout=20, what="nobody's number refused")
        assert len(await attempts()) == 1, "only the keypad's allowed call was placed"
        assert h.carrier_calls("15551400062") == 0 and h.carrier_calls("13900000000") == 0
    finally:
        await service.stop(drain_timeout=30)


async def _count(fetch, at_least: int) -> bool:
    return len(await fetch()) >= at_least
