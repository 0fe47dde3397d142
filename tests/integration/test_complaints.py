"""Complaints through the real console (API and pages, real sockets, SQLite) and the store:
a complaint registered with an injected clock raises its due-soon alarm at deadline - 2 h and
its overdue alarm at the deadline, each once, audited and POSTed to the webhook (a loopback
aiohttp server, through the service's own poster); its view gathers exactly its case's
recordings, calls, dispositions and notes; it pauses dialing of its case (place_call refuses
with rule `complaint`) until a supervisor allows dialing or it is closed; the follow-up call
is a dial of the case, linked; every role gets what the matrix gives, a team lead their
team's; bad input is refused clearly and changes nothing."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web
from sqlalchemy import select

from cases import complaints_store as store
from cases.complaints import WARN_BEFORE, Alarm, ComplaintRefused
from dialer.originate import DialBlocked, DialSettings, place_call
from dialer.policy import profile
from people.roles import Role
from storage import repositories as repo
from storage.complaints import Complaint
from storage.dispositions import Disposition
from storage.models import Attempt, AuditEvent, Case, PolicyDecision, Recording
from tests.console_kit import PASSWORD, console, user_of
from tests.db_snapshot import snapshot

NOON_BEIJING = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)
A1, A2, A3, A4 = "a1" * 16, "a2" * 16, "a3" * 16, "a4" * 16  # C-1: A1, A2 recorded, A4 not; C-2: A3
QUIET = ("login_attempts", "user_sessions")


class NoPbx:
    """The PBX side of a dial the policy allowed: recorded, never placed."""

    def __init__(self) -> None:
        self.originated: list[str] = []

    async def originate(self, channel, **kw):
        self.originated.append(channel)
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


def recording(attempt_id: str, case_id: str, ended: datetime) -> Recording:
    return Recording(attempt_id=attempt_id, case_id=case_id, archive_path=f"2026/11/{attempt_id}.wav",
                     sha256="0" * 64, size_bytes=96_044, duration_s=6.0, legs=[], flags=[], call_ended_at=ended,
                     created_at=ended, retain_until=ended + timedelta(days=3 * 366))


@pytest.fixture
async def book(db, clock, accounts):
    """C-1 (collector1's, team north, Beijing) with calls A1, A2 (recorded, A1 with a disposition's
    notes) and A4 (unanswered); C-2 (no team) with A3, recorded. An approved caller ID."""
    clock.set(NOON_BEIJING)
    collector = await accounts.user(user_of(Role.COLLECTOR))
    earlier = clock() - timedelta(days=1)
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        c1 = await repo.get_case(s, "C-1")
        c1.collector_id, c1.team_id, c1.timezone = collector.id, collector.team_id, "Asia/Shanghai"
        await repo.add_case(s, Case(id="C-2", client="cu", debtor_name="Zhao", timezone="Asia/Shanghai",
                                    created_at=clock()), [repo.NewPhone("15551100002")])
        for attempt_id, case_id, number, minutes, answered in (
                (A1, "C-1", "15551100001", 0, True), (A2, "C-1", "15551100001", 60, True),
                (A4, "C-1", "15551100001", 120, False), (A3, "C-2", "15551100002", 30, True)):
            at = earlier + timedelta(minutes=minutes)
            s.add(Attempt(id=attempt_id, case_id=case_id, number=number, collector="6001", state="ended",
                          outcome="answered" if answered else "no_answer", created_at=at,
                          answered_at=at if answered else None, ended_at=at + timedelta(minutes=2)))
        await s.flush()
        for attempt_id, case_id, minutes in ((A1, "C-1", 2), (A2, "C-1", 62), (A3, "C-2", 32)):
            s.add(recording(attempt_id, case_id, earlier + timedelta(minutes=minutes)))
        s.add(Disposition(attempt_id=A1, case_id="C-1", code="negotiation_failed", notes="debtor shouted; call 15551100001 later",
                          entered_by="collector1", entered_at=earlier + timedelta(minutes=3), effects=[]))


@pytest.fixture
async def running(db, clock, accounts, writer, book):
    """The console whose dial is place_call (the policy, the write-ahead attempt) on a stub PBX."""
    link = NoPbx()

    async def dial(case_id, number, *, requested_by=None, collector=None):
        return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                                policy=profile("client-default"), writer=writer, number=number)

    async with console(db, accounts, dial=dial) as app:
        app.link = link
        yield app


async def audits(db, action: str) -> list[AuditEvent]:
    async with db.session() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                     .order_by(AuditEvent.id))).all())


async def complaint(db, complaint_id: int) -> Complaint:
    async with db.session() as s:
        return await s.get(Complaint, complaint_id)


async def dial(db, clock, writer, link, case_id="C-1"):
    return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                            policy=profile("client-default"), writer=writer)


# -- the clock and the alarms -----------------------------------------------------------

async def test_the_alarms_at_deadline_minus_2_h_and_at_the_deadline_each_once_audited_and_posted(db, clock, book):
    c = await store.register(db, clock, {"source": "debtor", "summary": "called me names", "case_id": "C-1"},
                             by="supervisor1")
    assert c.deadline_at == NOON_BEIJING + timedelta(hours=24)
    [registered] = await audits(db, "complaint.registered")
    assert (registered.actor, registered.subject, registered.detail["case_id"]) == ("supervisor1", f"complaint:{c.id}",
                                                                                    "C-1")
    posted: list[dict] = []

    async def post(payload):
        posted.append(payload)

    warn = c.deadline_at - WARN_BEFORE
    for at in (NOON_BEIJING, warn - timedelta(seconds=1)):
        clock.set(at)
        assert await store.alarm_pass(db, clock, post) == [] and posted == []
    clock.set(warn)
    [due] = await store.alarm_pass(db, clock, post)
    assert (due.complaint_id, due.alarm) == (c.id, Alarm.DUE_SOON)
    assert posted == [{"event": "complaint.due_soon", "at": warn.isoformat(), "complaint_id": c.id, "case_id": "C-1",
                       "collector": None, "source": "debtor", "registered_at": NOON_BEIJING.isoformat(),
                       "deadline_at": c.deadline_at.isoformat(), "href": f"/complaints/{c.id}"}]
    assert (await complaint(db, c.id)).warned_at == warn
    for at in (warn, warn + timedelta(minutes=30), c.deadline_at - timedelta(seconds=1)):
        clock.set(at)
        assert await store.alarm_pass(db, clock, post) == [], "due soon is raised once"
    clock.set(c.deadline_at)
    [overdue] = await store.alarm_pass(db, clock, post)
    assert overdue.alarm is Alarm.OVERDUE and posted[-1]["event"] == "complaint.overdue" and len(posted) == 2
    clock.advance(3600)
    assert await store.alarm_pass(db, clock, post) == [], "overdue is raised once"
    stored = await complaint(db, c.id)
    assert (stored.warned_at, stored.overdue_at) == (warn, c.deadline_at)
    [soon_event], [late_event] = await audits(db, "complaint.due_soon"), await audits(db, "complaint.overdue")
    assert (soon_event.actor, soon_event.at, late_event.at) == ("complaints", warn, c.deadline_at)
    assert soon_event.subject == late_event.subject == f"complaint:{c.id}"


async def test_a_closed_complaint_raises_nothing_and_a_late_look_raises_only_overdue(db, clock, book):
    closed = await store.register(db, clock, {"source": "client", "summary": "wrong amount quoted", "case_id": "C-1"},
                                  by="supervisor1")
    await store.set_outcome(db, clock, closed.id, "the amount was checked and corrected", by="supervisor1")
    await store.close(db, clock, closed.id, by="supervisor1")
    late = await store.register(db, clock, {"source": "debtor", "summary": "rude", "collector": "collector1"},
                                by="supervisor1")
    clock.advance(30 * 3600)  # the service was down past both deadlines
    raised = await store.alarm_pass(db, clock)
    assert [(r.complaint_id, r.alarm, r.collector) for r in raised] == [(late.id, Alarm.OVERDUE, "collector1")]
    assert (await complaint(db, late.id)).warned_at is None


async def test_a_failed_post_still_marks_and_audits_the_alarm_once(db, clock, book, caplog):
    c = await store.register(db, clock, {"source": "debtor", "summary": "rude", "case_id": "C-1"}, by="supervisor1")
    calls = []

    async def broken(payload):
        calls.append(payload)
        raise RuntimeError("the webhook is down")

    clock.set(c.deadline_at)
    assert [r.alarm for r in await store.alarm_pass(db, clock, broken)] == [Alarm.OVERDUE]
    assert len(calls) == 1 and "not posted" in caplog.text
    assert await store.alarm_pass(db, clock, broken) == [] and len(calls) == 1
    assert len(await audits(db, "complaint.overdue")) == 1


async def test_the_loop_runs_a_pass_at_once_and_again_each_interval(db, clock, book):
    c = await store.register(db, clock, {"source": "debtor", "summary": "rude", "case_id": "C-1"}, by="supervisor1")
    clock.set(c.deadline_at - WARN_BEFORE)
    posted: list[dict] = []
    got = asyncio.Event()

    async def post(payload):
        posted.append(payload)
        got.set()

    task = asyncio.create_task(store.alarm_loop(db, clock, post, 0.05))
    try:
        await asyncio.wait_for(got.wait(), 5)
        got.clear()
        clock.set(c.deadline_at)
        await asyncio.wait_for(got.wait(), 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert [p["event"] for p in posted] == ["complaint.due_soon", "complaint.overdue"]


@pytest.mark.parametrize("own_url", [True, False])
async def test_the_services_poster_sends_the_alarm_to_the_complaints_webhook_else_the_watchdogs(
        tmp_path, clock, own_url):
    from dunline.service import Service
    from dunline.settings import load_settings

    received: list[tuple[str, dict]] = []
    got = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append((request.path, await request.json()))
        got.set()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/{where}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    settings = load_settings(env={}, overrides={
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"},
        "recording": {"archive_dir": str(tmp_path / "archive")},
        "watchdog": {"webhook_url": f"{base}/watchdog"},
        "complaints": {"webhook_url": f"{base}/complaints" if own_url else ""}})
    service = Service(settings, clock=clock)
    await service.db.migrate()
    try:
        async with service.db.session() as s:
            await repo.add_case(s, Case(id="C-9", client="cu", debtor_name="Qian", created_at=clock()), [])
        c = await store.register(service.db, clock, {"source": "client", "summary": "called at 22:00",
                                                     "case_id": "C-9"}, by="supervisor1")
        clock.set(c.deadline_at)
        await store.alarm_pass(service.db, clock, service.complaint_alarm_poster())
        await asyncio.wait_for(got.wait(), 5)
        [(path, payload)] = received
        assert path == ("/complaints" if own_url else "/watchdog")
        assert payload["event"] == "complaint.overdue" and payload["complaint_id"] == c.id
        assert payload["case_id"] == "C-9" and payload["deadline_at"] == c.deadline_at.isoformat()
        assert "summary" not in payload and "Qian" not in str(payload), "no debtor data leaves in an alarm"
    finally:
        await service.db.close()
        await runner.cleanup()


# -- the gathered view ------------------------------------------------------------------

async def test_the_view_gathers_exactly_that_cases_recordings_calls_and_notes(db, clock, book):
    c = await store.register(db, clock, {"source": "debtor", "summary": "shouted at me", "case_id": "C-1"},
                             by="supervisor1")
    other = await store.register(db, clock, {"source": "debtor", "summary": "too many calls", "case_id": "C-2"},
                                 by="supervisor1")
    g = await store.gather(db, clock, c.id, by="compliance1")
    assert {r.attempt_id for r in g.recordings} == {A1, A2}, "that case's recordings, not C-2's"
    assert all(r.case_id == "C-1" for r in g.recordings)
    assert [a.id for a in g.attempts] == [A1, A2, A4]
    assert [d.notes for d in g.dispositions[A1]] == ["debtor shouted; call 15551100001 later"]
    assert [e.action for e in g.history] == ["complaint.registered"]
    [viewed] = await audits(db, "complaint.viewed")
    assert viewed.actor == "compliance1" and sorted(viewed.detail["recordings"]) == sorted([A1, A2])
    g2 = await store.gather(db, clock, other.id, by="compliance1")
    assert [r.attempt_id for r in g2.recordings] == [A3] and [a.id for a in g2.attempts] == [A3]


async def test_the_api_view_lists_the_recordings_as_references_and_masks_numbers(running, db, clock):
    lead = await running.browser(Role.TEAM_LEAD)
    resp = await lead.post("/api/complaints", json={"source": "debtor", "summary": "he called 15551100001 at night",
                                                     "case_id": "C-1", "collector": "collector1"})
    body = await resp.json()
    assert resp.status == 201, body
    assert body["summary"] == "he called 155****0001 at night", "a team lead reads numbers masked"
    assert body["stage"] == "open" and body["seconds_left"] == 24 * 3600 and body["dialing_paused"] is True
    view = await (await lead.get(f"/api/complaints/{body['id']}")).json()
    assert [r["attempt_id"] for r in view["recordings"]] == [A1, A2]
    assert {r["href"] for r in view["recordings"]} == {f"/api/recordings/{A1}", f"/api/recordings/{A2}"}
    assert [call["id"] for call in view["calls"]] == [A1, A2, A4]
    assert view["calls"][0]["dispositions"][0]["notes"] == "debtor shouted; call 155****0001 later"
    assert view["case"]["id"] == "C-1" and view["collector"] == "collector1"
    supervisor = await running.browser(Role.SUPERVISOR)
    full = await (await supervisor.get(f"/api/complaints/{body['id']}")).json()
    assert full["summary"] == "he called 15551100001 at night"


# -- the pause of dialing ----------------------------------------------------------------

async def test_an_open_complaint_pauses_dialing_until_a_supervisor_allows_it(db, clock, writer, running):
    link = NoPbx()
    assert (await dial(db, clock, writer, link)).state  # allowed before the complaint
    lead = await running.browser(Role.TEAM_LEAD)
    created = await (await lead.post("/api/complaints", json={"source": "client", "summary": "too many calls",
                                                               "case_id": "C-1"})).json()
    clock.advance(3600)
    with pytest.raises(DialBlocked) as err:
        await dial(db, clock, writer, link)
    assert (err.value.decision.rule, err.value.decision.next_allowed_at) == ("complaint", None)
    assert len(link.originated) == 1, "the refused dial never reached the PBX"
    async with db.session() as s:
        last = (await s.scalars(select(PolicyDecision).order_by(PolicyDecision.id.desc()))).first()
    assert (last.allowed, last.rule) == (False, "complaint")
    # the console's dial refuses it with the rule, as any other
    resp = await lead.post("/api/cases/C-1/dial")
    assert resp.status == 409 and (await resp.json())["rule"] == "complaint"
    # a team lead may not lift it; a supervisor may, with a reason
    refused = await lead.post(f"/api/complaints/{created['id']}/allow-dialing", json={"why": "debtor asked for a call"})
    assert refused.status == 403
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post(f"/api/complaints/{created['id']}/allow-dialing", json={"why": "x"})).status == 400
    resp = await supervisor.post(f"/api/complaints/{created['id']}/allow-dialing",
                                 json={"why": "the debtor asked to be called back"})
    allowed = await resp.json()
    assert resp.status == 200 and allowed["dialing_paused"] is False and allowed["dialing_allowed_by"] == "supervisor1"
    again = await supervisor.post(f"/api/complaints/{created['id']}/allow-dialing", json={"why": "once more please"})
    assert again.status == 409
    [event] = await audits(db, "complaint.dialing_allowed")
    assert event.actor == "supervisor1" and event.detail["why"] == "the debtor asked to be called back"
    attempt = await dial(db, clock, writer, link)
    assert len(link.originated) == 2 and attempt.decision["facts"]["case"]["complaint_pause"] is False
    # the follow-up: that call of the case, linked
    resp = await lead.post(f"/api/complaints/{created['id']}/follow-up", json={"attempt_id": attempt.id})
    assert resp.status == 200 and (await resp.json())["follow_up_attempt_id"] == attempt.id
    for wrong, status in ((A3, 400), (A1, 400), ("f" * 32, 400)):  # another case's; before registration; none
        resp = await lead.post(f"/api/complaints/{created['id']}/follow-up", json={"attempt_id": wrong})
        assert resp.status == status, (wrong, await resp.text())
    assert (await complaint(db, created["id"])).follow_up_attempt_id == attempt.id


async def test_closing_ends_the_pause_and_a_complaint_against_a_collector_alone_pauses_no_case(db, clock, writer,
                                                                                               running):
    link = NoPbx()
    supervisor = await running.browser(Role.SUPERVISOR)
    against_collector = await supervisor.post("/api/complaints", json={"source": "client", "summary": "rude collector",
                                                                       "collector": "collector1"})
    assert against_collector.status == 201 and (await against_collector.json())["dialing_paused"] is False
    await dial(db, clock, writer, link)  # allowed: no complaint on the case
    created = await (await supervisor.post("/api/complaints", json={"source": "debtor", "summary": "disputes the fees",
                                                                     "case_id": "C-1"})).json()
    clock.advance(3600)
    with pytest.raises(DialBlocked, match="complaint"):
        await dial(db, clock, writer, link)
    close = f"/api/complaints/{created['id']}/close"
    resp = await supervisor.post(close)
    assert resp.status == 409 and "outcome" in (await resp.json())["error"], "closed only with its outcome"
    resp = await supervisor.post(f"/api/complaints/{created['id']}/outcome",
                                 json={"outcome": "fees explained; the client confirmed them"})
    assert resp.status == 200
    assert (await supervisor.post(f"/api/complaints/{created['id']}/outcome",
                                  json={"outcome": "changed my mind"})).status == 409, "the outcome is set once"
    resp = await supervisor.post(close)
    closed = await resp.json()
    assert resp.status == 200 and closed["stage"] == "closed" and closed["closed_by"] == "supervisor1"
    assert (await supervisor.post(close)).status == 409
    assert (await supervisor.post(f"/api/complaints/{created['id']}/follow-up",
                                  json={"attempt_id": A1})).status == 409, "a closed complaint takes no follow-up"
    await dial(db, clock, writer, link)
    assert len(link.originated) == 2
    [event] = await audits(db, "complaint.closed")
    assert event.detail["late"] is False


async def test_the_page_places_the_follow_up_call_and_links_it(db, clock, running):
    supervisor = await running.browser(Role.SUPERVISOR)
    created = await (await supervisor.post("/api/complaints", json={"source": "debtor", "summary": "rude",
                                                                     "case_id": "C-1"})).json()
    page = f"/complaints/{created['id']}"
    async with db.session() as s:
        phone_id = (await repo.get_case(s, "C-1")).phones[0].id
    clock.advance(3600)
    resp = await supervisor.post(f"{page}/follow-up", data={"phone": str(phone_id), "csrf_token": supervisor.csrf})
    text = await resp.text()
    assert resp.status == 409 and "complaint" in text and not running.link.originated, "paused: refused, not dialled"
    resp = await supervisor.post(f"{page}/allow-dialing", data={"why": "call back about the complaint",
                                                                "csrf_token": supervisor.csrf})
    assert resp.status == 200
    resp = await supervisor.post(f"{page}/follow-up", data={"phone": str(phone_id), "csrf_token": supervisor.csrf})
    text = await resp.text()
    assert resp.status == 200 and "Follow-up call placed" in text and len(running.link.originated) == 1
    linked = (await complaint(db, created["id"])).follow_up_attempt_id
    assert linked and linked in text
    # a collector may dial but handles no complaints: there is none for them
    collector = await running.browser(Role.COLLECTOR)
    resp = await collector.post(f"{page}/follow-up", data={"phone": str(phone_id), "csrf_token": collector.csrf})
    assert resp.status == 404 and len(running.link.originated) == 1


# -- roles, reach, bad input ------------------------------------------------------------

async def test_a_team_lead_handles_their_teams_complaints_only(running, db, accounts):
    await accounts.add_team("south", by="test")
    await accounts.add_user(username="collector9", display_name="c9", role="collector", password=PASSWORD, by="test",
                            team="south", locale="en")
    supervisor, lead = await running.browser(Role.SUPERVISOR), await running.browser(Role.TEAM_LEAD)
    theirs = await (await supervisor.post("/api/complaints", json={"source": "debtor", "summary": "rude",
                                                                    "case_id": "C-1"})).json()
    not_theirs = await (await supervisor.post("/api/complaints", json={"source": "debtor", "summary": "rude",
                                                                        "case_id": "C-2"})).json()
    south = await (await supervisor.post("/api/complaints", json={"source": "client", "summary": "rude",
                                                                   "collector": "collector9"})).json()
    north = await (await supervisor.post("/api/complaints", json={"source": "client", "summary": "rude",
                                                                   "collector": "collector1"})).json()
    listed = [c["id"] for c in await (await lead.get("/api/complaints")).json()]
    assert listed == [theirs["id"], north["id"]]
    for hidden in (not_theirs, south):
        assert (await lead.get(f"/api/complaints/{hidden['id']}")).status == 404
        assert (await lead.post(f"/api/complaints/{hidden['id']}/close")).status == 404
    for body in ({"case_id": "C-2"}, {"collector": "collector9"}):
        before = await snapshot(db, skip=QUIET)
        resp = await lead.post("/api/complaints", json={"source": "debtor", "summary": "rude", **body})
        assert resp.status == 400 and "within your reach" in (await resp.json())["error"]
        assert await snapshot(db, skip=QUIET) == before
    every = [c["id"] for c in await (await supervisor.get("/api/complaints?status=all")).json()]
    assert sorted(every) == sorted([theirs["id"], not_theirs["id"], south["id"], north["id"]])


@pytest.mark.parametrize("role, may", [(Role.COLLECTOR, False), (Role.QC, False), (Role.ADMIN, False),
                                       (Role.CLIENT, False), (Role.COMPLIANCE, True), (Role.TEAM_LEAD, True),
                                       (Role.SUPERVISOR, True)])
async def test_who_may_handle_complaints(running, db, role, may):
    browser = await running.browser(role)
    before = await snapshot(db, skip=QUIET)
    resp = await browser.post("/api/complaints", json={"source": "debtor", "summary": "rude", "case_id": "C-1"})
    if may:
        assert resp.status == 201
    else:
        assert resp.status == 403 and (await browser.get("/api/complaints")).status == 403
        assert await snapshot(db, skip=QUIET) == before


@pytest.mark.parametrize("body, problem", [
    ({"source": "debtor", "summary": "rude"}, "give the case or the collector"),
    ({"source": "neighbour", "summary": "rude", "case_id": "C-1"}, "source"),
    ({"source": "debtor", "summary": "no", "case_id": "C-1"}, "summary"),
    ({"source": "debtor", "summary": "nul\u0000here", "case_id": "C-1"}, "summary"),
    ({"source": "debtor", "summary": "rude", "case_id": "C-404"}, "no case C-404"),
    ({"source": "debtor", "summary": "rude", "collector": "qc1"}, "places no calls"),
    ({"source": "debtor", "summary": "rude", "collector": "nobody"}, "no user nobody"),
    ({"source": "debtor", "summary": "rude", "case_id": "C-1", "extra": 1}, "expected a JSON object"),
    ({"source": "debtor", "summary": ["rude"], "case_id": "C-1"}, "summary"),
])
async def test_bad_registrations_are_refused_clearly_and_store_nothing(running, db, body, problem):
    supervisor = await running.browser(Role.SUPERVISOR)
    before = await snapshot(db, skip=QUIET)
    resp = await supervisor.post("/api/complaints", json=body)
    assert resp.status == 400 and problem in (await resp.json())["error"], await resp.text()
    assert await snapshot(db, skip=QUIET) == before


async def test_the_pages_register_list_mark_the_stages_and_show_the_banner(running, db, clock):
    lead = await running.browser(Role.TEAM_LEAD)
    resp = await lead.post("/complaints", data={"source": "debtor", "summary": "shouted at me", "case_id": "C-1",
                                                "collector": "", "csrf_token": lead.csrf})
    assert resp.status == 303 and resp.headers["Location"] == "/complaints/1?registered=1"
    text = await (await lead.get("/complaints/1?registered=1")).text()
    assert "Complaint #1 registered" in text and "24 h 0 min left" in text
    assert A1 in text and A2 in text and "a3a3a3a3" not in text, "the case's recordings, not another's"
    resp = await lead.post("/complaints", data={"source": "debtor", "summary": "no", "case_id": "C-1",
                                                "csrf_token": lead.csrf})
    assert resp.status == 400 and "summary: 4 to 2000 characters" in await resp.text()
    no_csrf = await lead.post("/complaints", data={"source": "debtor", "summary": "shouted", "case_id": "C-1"},
                              headers={"X-CSRF-Token": ""})
    assert no_csrf.status == 403
    assert "complaint-alarms" not in await (await lead.get("/")).text(), "nothing due yet: no banner"
    clock.advance(22 * 3600)
    lead = await running.browser(Role.TEAM_LEAD)  # a new day's session
    page = await (await lead.get("/complaints")).text()
    assert 'data-stage="due_soon"' in page and "2 h 0 min left" in page
    home = await (await lead.get("/")).text()
    assert 'id="complaint-alarms"' in home and "0 overdue, 1 due soon" in home
    clock.advance(2 * 3600 + 60)
    lead = await running.browser(Role.TEAM_LEAD)
    page = await (await lead.get("/complaints")).text()
    assert 'data-stage="overdue"' in page and "overdue by 0 h 1 min" in page
    assert "1 overdue, 0 due soon" in await (await lead.get("/cases")).text()
    qc = await running.browser(Role.QC)
    assert "complaint-alarms" not in await (await qc.get("/cases")).text(), "only to those who handle complaints"
    # the outcome and the closing on the page
    resp = await lead.post("/complaints/1/close", data={"csrf_token": lead.csrf})
    assert resp.status == 409 and "record the outcome before closing" in await resp.text()
    resp = await lead.post("/complaints/1/outcome", data={"outcome": "apologised; collector coached",
                                                          "csrf_token": lead.csrf})
    assert resp.status == 200 and "apologised; collector coached" in await resp.text()
    resp = await lead.post("/complaints/1/close", data={"csrf_token": lead.csrf})
    text = await resp.text()
    assert resp.status == 200 and 'data-stage="closed"' in text and "complaint-alarms" not in text
    async with db.session() as s:
        c = await s.get(Complaint, 1)
    assert c.closed_by == "teamlead1" and c.outcome == "apologised; collector coached"


async def test_store_refusals_change_nothing(db, clock, book):
    c = await store.register(db, clock, {"source": "debtor", "summary": "rude", "case_id": "C-1"}, by="supervisor1")
    before = await snapshot(db)
    for attempt in (None, "not-an-id", A3, A1):
        with pytest.raises(ComplaintRefused):
            await store.link_follow_up(db, clock, c.id, attempt, by="supervisor1")
    with pytest.raises(LookupError):
        await store.close(db, clock, 999, by="supervisor1")
    with pytest.raises(ComplaintRefused, match="no_outcome"):
        await store.close(db, clock, c.id, by="supervisor1")
    with pytest.raises(ComplaintRefused, match="reason"):
        await store.allow_dialing(db, clock, c.id, "  ", by="supervisor1")
    assert await snapshot(db) == before
