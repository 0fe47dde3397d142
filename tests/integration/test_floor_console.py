"""The floor in the console, through the real app (the PBX played by a recorder of AMI actions;
the real one is tests/e2e/test_floor_e2e.py): a seat only on one's own phone, pause codes,
the wallboard by reach, listen / whisper / barge by role and team, the screen pop (the case of
the call on my seat, whoever's it is, and its disposition), the live events."""
from __future__ import annotations

import asyncio
import json

import pytest

from dialer.floor import Floor, SeatState
from dialer.seats import SeatKeeper
from dialer.supervision import Supervision
from people.roles import Role
from storage import repositories as repo
from storage.models import Attempt, Case
from tests.console_kit import cheap_accounts, console, seed_users, user_of
from tests.integration.test_seat_keeper import RecordingLink

CALL = "c" * 32


@pytest.fixture
async def floor_app(db, clock):
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    await accounts.add_team("south", by="test")
    await accounts.add_user(username="collector2", display_name="Other team", role="collector",
                            password="correct horse battery", by="test", team="south")
    for name, phone in ((user_of(Role.COLLECTOR), "6001"), ("collector2", "6002"),
                        (user_of(Role.SUPERVISOR), "6009"), (user_of(Role.TEAM_LEAD), "6008")):
        await accounts.set_phone(name, phone, by="test")
    async with db.session() as s:  # a case nobody on the floor is assigned; a call of it
        await repo.add_case(s, Case(id="C-F", client="cu", debtor_name="Wu", created_at=clock(),
                                    amount_due_cents=123456), [repo.NewPhone("15551100009")])
        case = await repo.get_case(s, "C-F")
        await repo.create_attempt(s, Attempt(id=CALL, case_id="C-F", phone_id=case.phones[0].id,
                                             number="15551100009", state="bound", created_at=clock(),
                                             answered_at=clock(), collector="6001"))
    link, ledger = RecordingLink(), []

    async def record(**kw):
        ledger.append(kw)

    loop = asyncio.get_running_loop()
    floor = Floor()
    keeper = SeatKeeper(link, floor, now=loop.time, audit=lambda **kw: _nothing())
    supervision = Supervision(link, floor, now=loop.time, record=record)
    async with console(db, accounts, seats=keeper, supervision=supervision) as app:
        app.keeper, app.link, app.ledger, app.floor = keeper, link, ledger, floor
        yield app


async def _nothing():
    return None


def _seat_on_call(floor: Floor, phone: str = "6001", seat_id: str = "seat-a") -> None:
    floor.open(seat_id, phone, 0.0)
    floor.answered(seat_id, f"PJSIP/{phone}-00000001", 0.0)
    floor.reserve(CALL, 1.0, prefer=phone)
    floor.bridged(seat_id, 1.0)


async def test_a_collector_opens_a_seat_on_their_own_phone_only(floor_app, db):
    collector = await floor_app.browser(Role.COLLECTOR)
    resp = await collector.post("/api/floor/seat")
    assert resp.status == 201 and (await resp.json())["phone"] == "6001"
    assert [o["channel"] for o in floor_app.link.originated] == ["PJSIP/6001"]
    qc = await floor_app.browser(Role.QC)
    assert (await qc.post("/api/floor/seat")).status == 403
    lead = await floor_app.browser(Role.TEAM_LEAD)
    assert len(floor_app.link.originated) == 1
    assert (await lead.post("/api/floor/seat")).status == 201  # a lead who takes calls, on their phone 6008
    assert floor_app.link.originated[-1]["channel"] == "PJSIP/6008"


async def test_pause_needs_a_known_code_and_ready_ends_it(floor_app):
    floor_app.floor.open("seat-a", "6001", 0.0)
    floor_app.floor.answered("seat-a", "PJSIP/6001-01", 0.0)
    collector = await floor_app.browser(Role.COLLECTOR)
    assert (await collector.post("/api/floor/pause", json={"code": "nap"})).status == 400
    assert floor_app.floor.get("seat-a").state is SeatState.READY
    assert (await (await collector.post("/api/floor/pause", json={"code": "lunch"})).json())["paused"] == 1
    assert floor_app.floor.get("seat-a").pause_code == "lunch"
    assert (await (await collector.post("/api/floor/ready")).json())["ready"] == 1
    assert floor_app.floor.get("seat-a").state is SeatState.READY


async def test_the_wallboard_by_reach(floor_app):
    _seat_on_call(floor_app.floor)
    floor_app.floor.open("seat-b", "6002", 0.0)
    floor_app.floor.answered("seat-b", "PJSIP/6002-01", 0.0)
    sup = await floor_app.browser(Role.SUPERVISOR)
    board = await (await sup.get("/api/floor")).json()
    assert sorted(s["phone"] for s in board["seats"]) == ["6001", "6002"]
    on_call = next(s for s in board["seats"] if s["phone"] == "6001")
    assert (on_call["state"], on_call["case_id"], on_call["user"]) == ("on_call", "C-F", user_of(Role.COLLECTOR))
    lead = await floor_app.browser(Role.TEAM_LEAD)  # team north: collector1 only
    assert [s["phone"] for s in (await (await lead.get("/api/floor")).json())["seats"]] == ["6001"]
    collector = await floor_app.browser(Role.COLLECTOR)
    assert (await collector.get("/api/floor")).status == 403


async def test_listen_whisper_barge_by_role_and_team_from_ones_own_phone(floor_app):
    _seat_on_call(floor_app.floor)
    collector = await floor_app.browser(Role.COLLECTOR)
    assert (await collector.post(f"/api/calls/{CALL}/monitor", json={"mode": "listen"})).status == 403
    sup = await floor_app.browser(Role.SUPERVISOR)
    assert (await sup.post(f"/api/calls/{CALL}/monitor", json={"mode": "shout"})).status == 400
    resp = await sup.post(f"/api/calls/{CALL}/monitor", json={"mode": "whisper"})
    assert resp.status == 201, await resp.text()
    assert floor_app.link.originated[-1]["channel"] == "PJSIP/6009", "the supervisor's own phone"
    assert floor_app.ledger[-1]["action"] == "monitor" and floor_app.ledger[-1]["actor"] == user_of(Role.SUPERVISOR)
    assert (await sup.post(f"/api/calls/{'e' * 32}/monitor", json={"mode": "listen"})).status == 404
    # a lead of another team: not their call
    floor_app.floor.gone("seat-a")
    _seat_on_call(floor_app.floor, phone="6002", seat_id="seat-b")
    lead = await floor_app.browser(Role.TEAM_LEAD)
    assert (await lead.post(f"/api/calls/{CALL}/monitor", json={"mode": "listen"})).status == 404
    assert len(floor_app.ledger) == 1


async def test_the_screen_pop_shows_the_call_on_my_seat_and_takes_its_disposition(floor_app, db):
    _seat_on_call(floor_app.floor)
    collector = await floor_app.browser(Role.COLLECTOR)
    assert (await collector.get("/cases/C-F")).status == 404, "not assigned to them"
    page = await collector.get(f"/floor/calls/{CALL}")
    text = await page.text()
    assert page.status == 200 and "C-F" in text and 'id="on-call"' in text
    other = await floor_app.browser(username="collector2")
    assert (await other.get(f"/floor/calls/{CALL}")).status == 404, "not on their seat"
    resp = await collector.post(f"/api/attempts/{CALL}/dispositions", json={"code": "contacted", "notes": "ok"})
    assert resp.status == 201, await resp.text()
    async with db.session() as s:
        pops = [e for e in await repo.audit_events(s, subject="case:C-F") if e.action == "case.viewed"]
    assert pops and pops[-1].detail.get("screen_pop") == CALL and pops[-1].actor == user_of(Role.COLLECTOR)


async def test_my_events_carry_my_seat_and_its_case_never_anothers(floor_app):
    collector = await floor_app.browser(Role.COLLECTOR)
    resp = await collector.get("/api/floor/events")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    floor_app.keeper._changed(floor_app.floor.open("seat-b", "6002", 0.0))  # another's
    floor_app.floor.open("seat-a", "6001", 0.0)
    floor_app.floor.answered("seat-a", "PJSIP/6001-01", 0.0)
    seat = await floor_app.keeper.take(CALL, 0.0)
    assert seat.seat_id == "seat-a"
    events = []
    while not events:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode()
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    assert events[0]["phone"] == "6001" and events[0]["state"] == "reserved" and events[0]["case_id"] == "C-F"
    resp.close()


async def test_the_wallboard_and_floor_pages_do_what_their_forms_say(floor_app):
    """The pages' forms take the same road as the API (own phone, reach, codes)."""
    _seat_on_call(floor_app.floor)
    sup = await floor_app.browser(Role.SUPERVISOR)
    page = await sup.get("/wallboard")
    assert page.status == 200 and "C-F" in await page.text()
    resp = await sup.post(f"/wallboard/calls/{CALL}/monitor", data={"mode": "listen", "csrf_token": sup.csrf})
    assert resp.status == 200 and floor_app.link.originated[-1]["channel"] == "PJSIP/6009"
    assert (await sup.post(f"/wallboard/calls/{CALL}/monitor", data={"mode": "x", "csrf_token": sup.csrf})).status == 400
    lead = await floor_app.browser(Role.TEAM_LEAD)
    floor_app.floor.gone("seat-a")
    _seat_on_call(floor_app.floor, phone="6002", seat_id="seat-b")  # another team's call
    resp = await lead.post(f"/wallboard/calls/{CALL}/monitor", data={"mode": "listen", "csrf_token": lead.csrf})
    assert resp.status == 404 and len(floor_app.ledger) == 1
    collector = await floor_app.browser(Role.COLLECTOR)
    assert (await collector.get("/wallboard")).status == 403
    floor_page = await collector.get("/floor")
    assert floor_page.status == 200 and "6001" in await floor_page.text()
    resp = await collector.post("/floor/seat", data={"csrf_token": collector.csrf})
    assert resp.status == 200 and floor_app.link.originated[-1]["channel"] == "PJSIP/6001"
    assert (await collector.post("/floor/pause", data={"code": "nap", "csrf_token": collector.csrf})).status == 400


async def test_the_wallboards_campaign_buttons_start_and_pause_and_only_for_a_supervisor(floor_app, db, clock):
    from dialer import campaign_store
    from dialer.campaigns import spec_from

    async with db.session() as s:
        campaign = await campaign_store.create(s, spec_from({"name": "wb", "mode": "progressive"}), by="test",
                                               now=clock())
    sup = await floor_app.browser(Role.SUPERVISOR)
    page = await sup.get("/wallboard")
    assert f'id="start-campaign-{campaign.id}"' in await page.text()
    resp = await sup.post(f"/wallboard/campaigns/{campaign.id}/start", data={"csrf_token": sup.csrf})
    assert resp.status == 200 and f'id="pause-campaign-{campaign.id}"' in await resp.text()
    assert (await sup.post(f"/wallboard/campaigns/{campaign.id}/start", data={"csrf_token": sup.csrf})).status == 409
    assert (await sup.post(f"/wallboard/campaigns/{campaign.id}/nap", data={"csrf_token": sup.csrf})).status == 404
    lead = await floor_app.browser(Role.TEAM_LEAD)
    assert f'pause-campaign-{campaign.id}' not in await (await lead.get("/wallboard")).text()
    assert (await lead.post(f"/wallboard/campaigns/{campaign.id}/pause", data={"csrf_token": lead.csrf})).status == 403
    async with db.session() as s:
        assert (await campaign_store.get(s, campaign.id)).status == "running"
