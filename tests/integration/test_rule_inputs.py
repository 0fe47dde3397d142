"""Every input of the dialing policy set through the API by the role that may, audited
with who and why, and the policy's verdict on the next dial changing with it: dispute and
fraud (raised by a collector, cleared by a supervisor), care (approved for some days), a
third party's refusal, the do-not-call list (by hand, from a case, imported, applied to a
later batch), the client's caller IDs, an agreed time backed by a recorded call."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import FormData
from sqlalchemy import select

from people.roles import Role
from storage import repositories as repo
from storage.models import Attempt, AuditEvent, Case
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import user_of
from tests.db_snapshot import snapshot
from tests.policy_kit import rule_of, verdict

NOON_BEIJING = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
async def mine(db, clock, accounts):
    """Case C-MINE of the collector, dialable at noon Beijing: a debtor's and a third party's phone."""
    clock.set(NOON_BEIJING)
    collector_id = (await accounts.user(user_of(Role.COLLECTOR))).id
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="Mine", timezone="Asia/Shanghai",
                                    created_at=clock(), collector_id=collector_id),
                            [repo.NewPhone("13800000001"), repo.NewPhone("13900000002", kind="third_party")])
    assert rule_of(await verdict(db, "C-MINE", clock())) is None
    return "C-MINE"


async def audited(db, action: str) -> list[AuditEvent]:
    async with db.session() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_dispute_raised_by_the_collector_cleared_only_by_a_supervisor(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    resp = await collector.post(f"/api/cases/{mine}/flags", json={"flag": "dispute", "why": "says it is paid"})
    assert resp.status == 200
    assert rule_of(await verdict(db, mine, clock())) == "dispute"
    assert (await collector.post(f"/api/cases/{mine}/flags/dispute/clear", json={"why": "ok now"})).status == 403
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post(f"/api/cases/{mine}/flags/fraud/clear", json={"why": "none"})).status == 400
    assert (await supervisor.post(f"/api/cases/{mine}/flags/dispute/clear",
                                  json={"why": "client confirmed the debt"})).status == 200
    assert rule_of(await verdict(db, mine, clock())) is None
    [raised], [cleared] = await audited(db, "case.flagged"), await audited(db, "case.unflagged")
    assert (raised.actor, raised.detail["why"]) == (user_of(Role.COLLECTOR), "says it is paid")
    assert (cleared.actor, cleared.detail["why"]) == (user_of(Role.SUPERVISOR), "client confirmed the debt")


async def test_care_needs_a_supervisors_approval_that_runs_out(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    await collector.post(f"/api/cases/{mine}/flags", json={"flag": "care", "why": "in hospital"})
    assert rule_of(await verdict(db, mine, clock())) == "care"
    assert (await collector.post(f"/api/cases/{mine}/care-approval", json={"days": 7, "why": "x" * 5})).status == 403
    supervisor = await running.browser(Role.SUPERVISOR)
    for days in (0, 91, "7", True):
        assert (await supervisor.post(f"/api/cases/{mine}/care-approval",
                                      json={"days": days, "why": "recovering"})).status == 400, days
    assert (await supervisor.post(f"/api/cases/{mine}/care-approval",
                                  json={"days": 7, "why": "out of hospital"})).status == 200
    assert rule_of(await verdict(db, mine, clock())) is None
    assert rule_of(await verdict(db, mine, clock() + timedelta(days=8))) == "care"


async def test_a_third_partys_refusal_blocks_that_phone_only(running, db, clock, mine):
    async with db.session() as s:
        debtor_phone, third_phone = [p.id for p in (await repo.get_case(s, mine)).phones]
    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.post(f"/api/cases/{mine}/phones/{debtor_phone}/refusal",
                                 json={"why": "debtor refuses"})).status == 400
    assert (await collector.post(f"/api/cases/{mine}/phones/{third_phone}/refusal",
                                 json={"why": "the brother refuses"})).status == 200
    assert rule_of(await verdict(db, mine, clock(), phone_index=1)) == "third_party_refused"
    assert rule_of(await verdict(db, mine, clock(), phone_index=0)) is None


async def test_the_do_not_call_list_by_hand_from_a_case_and_imported(running, db, clock, mine):
    compliance = await running.browser(Role.COMPLIANCE)
    resp = await compliance.post("/api/suppressions", json={"number": "+86 138 0000 0001", "why": "debtor asked",
                                                            "client": "cu"})
    assert resp.status == 201
    entry = (await resp.json())["result"]
    assert rule_of(await verdict(db, mine, clock())) == "do_not_call"
    assert (await compliance.post("/api/suppressions", json={"number": "13800000001", "why": "again",
                                                             "client": "cu"})).status == 400
    # a later batch with the listed number: its phone is do-not-call from the start
    supervisor = await running.browser(Role.SUPERVISOR)
    row = good_row(77)
    row[4] = "13800000001"
    form = FormData()
    form.add_field("file", csv_bytes([row]), filename="b.csv")
    await supervisor.post(f"/api/batches?client=cu&csrf_token={supervisor.csrf}", data=form)
    async with db.session() as s:
        for _ in range(100):
            case = await s.get(Case, "cu-AC000077")
            if case is not None:
                break
            await asyncio.sleep(0.05)
    assert rule_of(await verdict(db, "cu-AC000077", clock())) == "do_not_call"
    assert (await compliance.post(f"/api/suppressions/{entry}/remove", json={"why": "entered by mistake"})
            ).status == 200
    assert rule_of(await verdict(db, mine, clock())) is None
    # a list file: good numbers listed, a bad line reported
    form = FormData()
    form.add_field("file", "号码,原因\n13900000002,投诉\nnot-a-number,x\n".encode("gbk"), filename="dnc.csv")
    resp = await compliance.post(f"/api/suppressions/import?why=client+list&csrf_token={compliance.csrf}", data=form)
    body = await resp.json()
    assert resp.status == 201 and body["added"] == 1 and body["errors"][0]["row"] == 3
    assert rule_of(await verdict(db, mine, clock(), phone_index=1)) == "do_not_call"
    # a collector puts a phone on the list when the debtor asks on a call; cannot take it off
    collector = await running.browser(Role.COLLECTOR)
    async with db.session() as s:
        debtor_phone = (await repo.get_case(s, mine)).phones[0].id
    assert (await collector.post(f"/api/cases/{mine}/phones/{debtor_phone}/do-not-call",
                                 json={"why": "asked on the call"})).status == 201
    assert rule_of(await verdict(db, mine, clock())) == "do_not_call"
    assert (await collector.get("/api/suppressions")).status == 403


async def test_caller_ids_are_the_admins_and_no_pool_means_no_call(running, db, clock, mine):
    admin = await running.browser(Role.ADMIN)
    [pool] = await (await admin.get("/api/caller-ids")).json()
    assert (await admin.post(f"/api/caller-ids/{pool['id']}/withdraw", json={"why": "number retired"})).status == 200
    assert rule_of(await verdict(db, mine, clock())) == "caller_id"
    assert (await admin.post("/api/caller-ids", json={"client": "cu", "number": "4008", "why": "new line"})
            ).status == 400
    assert (await admin.post("/api/caller-ids", json={"client": "cu", "number": "02161230000",
                                                      "why": "new work line"})).status == 201
    assert rule_of(await verdict(db, mine, clock())) is None
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post("/api/caller-ids", json={"client": "cu", "number": "02161230001",
                                                           "why": "sneaky"})).status == 403


async def test_an_agreed_time_needs_the_recorded_call_it_was_agreed_in(running, db, clock, mine):
    evening = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # 21:30 Beijing: outside the window
    assert rule_of(await verdict(db, mine, evening)) == "window"
    collector = await running.browser(Role.COLLECTOR)
    before = await snapshot(db, skip=("login_attempts", "user_sessions"))
    no_call = await collector.post(f"/api/cases/{mine}/appointments",
                                   json={"at": "2026-11-30T21:30:00+08:00", "agreed_by": "debtor", "attempt_id": "x"})
    assert no_call.status == 400
    naive = await collector.post(f"/api/cases/{mine}/appointments",
                                 json={"at": "2026-11-30T21:30:00", "agreed_by": "debtor", "attempt_id": "x"})
    assert naive.status == 400 and "offset" in await naive.text()
    assert await snapshot(db, skip=("login_attempts", "user_sessions")) == before
    async with db.session() as s:
        s.add(Attempt(id="call-1", case_id=mine, number="13800000001", state="ended", created_at=clock(),
                      answered_at=clock(), outcome="answered"))
    ok = await collector.post(f"/api/cases/{mine}/appointments",
                              json={"at": "2026-11-30T21:30:00+08:00", "agreed_by": "debtor", "attempt_id": "call-1"})
    assert ok.status == 201
    assert rule_of(await verdict(db, mine, evening)) != "window"
