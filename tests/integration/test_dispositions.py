"""Dispositions through the real console (API and pages, real sockets, SQLite), and the next
dial through the console's own dial entry point (dialer.originate.place_call, its PBX a
stub that records what it was asked to originate): a dispute refuses the case with rule
`dispute` until a supervisor clears it; an agreed time lets a call through then, outside
the window; a third party's refusal and a wrong number stop that phone only; fraud and
illness pause the case; a promise is a follow-up on its date, by collector. Corrections
are new rows. Hostile input is refused with a clear message and changes nothing stored."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from dialer.originate import DialSettings, place_call
from dialer.policy import profile
from people.roles import Role
from storage import repositories as repo
from storage.dispositions import Disposition
from storage.models import CANARY_CASE, Appointment, Attempt, AuditEvent, Case
from tests.console_kit import PASSWORD, TEAM, console, user_of
from tests.db_snapshot import snapshot
from tests.policy_kit import rule_of, verdict

NOON_BEIJING = datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc)
EVENING = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # 21:30 in Beijing: outside 08:00-21:00
CALL = "a" * 32  # the answered call to the debtor's phone
THIRD_CALL = "b" * 32  # the answered call to the third party's phone
UNANSWERED = "c" * 32
QUIET = ("login_attempts", "user_sessions")  # what signing in and being seen touch


class NoPbx:
    """The PBX side of a dial the policy allowed: recorded, never placed."""

    def __init__(self) -> None:
        self.originated: list[str] = []

    async def originate(self, channel, **kw):
        self.originated.append(channel)
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


@pytest.fixture
async def mine(db, clock, accounts):
    """Case C-MINE of collector1 (¥1,234.50, Beijing): the debtor's phone and a third party's,
    each with an answered call half an hour ago, and an unanswered one; a second collector."""
    clock.set(NOON_BEIJING)
    collector = await accounts.user(user_of(Role.COLLECTOR))
    await accounts.add_user(username="collector2", display_name="another collector", role="collector",
                            password=PASSWORD, by="test", team=TEAM, locale="en")
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        case = await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="王芳", timezone="Asia/Shanghai",
                                           amount_due_cents=123_450, created_at=clock(), collector_id=collector.id,
                                           team_id=collector.team_id),
                                   [repo.NewPhone("13800000001"), repo.NewPhone("13900000002", kind="third_party")])
        await s.refresh(case, ["phones"])
        debtor, third = case.phones
        half_an_hour_ago = clock() - timedelta(minutes=30)
        for attempt_id, phone, answered in ((CALL, debtor, True), (THIRD_CALL, third, True),
                                            (UNANSWERED, debtor, False)):
            s.add(Attempt(id=attempt_id, case_id="C-MINE", phone_id=phone.id, number=phone.number, collector="6001",
                          state="ended", outcome="answered" if answered else "no_answer",
                          created_at=half_an_hour_ago, answered_at=half_an_hour_ago if answered else None,
                          ended_at=half_an_hour_ago + timedelta(minutes=3)))
    assert rule_of(await verdict(db, "C-MINE", clock())) is None
    return {"debtor": debtor.id, "third": third.id}


@pytest.fixture
async def running(db, clock, accounts, writer):
    """The console whose dial is place_call (the policy, the write-ahead attempt) on a stub PBX."""
    link = NoPbx()

    async def dial(case_id, number, *, requested_by=None, collector=None):
        return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                                policy=profile("client-default"), writer=writer, number=number)

    async with console(db, accounts, dial=dial) as app:
        app.link = link
        yield app


async def dispose(browser, attempt_id: str, **body):
    resp = await browser.post(f"/api/attempts/{attempt_id}/dispositions", json=body)
    answer = await resp.json()
    return resp.status, answer["error"] if resp.status >= 400 else answer


async def dial(browser, phone_id: int):
    resp = await browser.post(f"/api/cases/C-MINE/dial?phone={phone_id}")
    return resp.status, await resp.json()


async def rows(db, model, *where):
    async with db.session() as s:
        return list((await s.scalars(select(model).where(*where).order_by(model.id))).all())


async def test_a_dispute_refuses_the_next_dial_until_a_supervisor_clears_it(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    status, body = await dispose(collector, CALL, code="dispute", notes="says the bill was paid in October")
    assert status == 201, body
    assert body["changes"] == [{"change": "flag", "flag": "dispute"}]
    status, refusal = await dial(collector, mine["debtor"])
    assert (status, refusal["rule"]) == (409, "dispute"), refusal
    assert running.link.originated == [], "the refused dial never reached the PBX"
    assert (await dial(collector, mine["third"]))[1]["rule"] == "dispute", "the case is paused, every phone"
    # the collector may not clear it; a supervisor may
    assert (await collector.post("/api/cases/C-MINE/flags/dispute/clear", json={"why": "paid after all"})
            ).status == 403
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post("/api/cases/C-MINE/flags/dispute/clear",
                                  json={"why": "the client confirms the debt"})).status == 200
    status, attempt = await dial(collector, mine["debtor"])
    assert status == 201 and len(running.link.originated) == 1, attempt
    [row] = await rows(db, Disposition)
    assert (row.attempt_id, row.code, row.entered_by, row.entered_at) == (CALL, "dispute", "collector1", clock())
    [entered] = await rows(db, AuditEvent, AuditEvent.action == "disposition.entered")
    [flagged] = await rows(db, AuditEvent, AuditEvent.action == "case.flagged")
    assert entered.actor == flagged.actor == "collector1"
    assert flagged.detail["disposition_id"] == row.id and "paid in October" in flagged.detail["why"]


async def test_an_agreed_time_allows_a_call_then_outside_the_window(running, db, clock, mine):
    assert rule_of(await verdict(db, "C-MINE", EVENING)) == "window"
    collector = await running.browser(Role.COLLECTOR)
    status, body = await dispose(collector, CALL, code="call_back", callback_at="2026-11-30T21:30",
                                 notes="after her shift")
    assert status == 201 and body["changes"] == [
        {"change": "appointment", "at": "2026-11-30T21:30:00+08:00", "agreed_by": "debtor"}], body
    [appointment] = await rows(db, Appointment)
    assert (appointment.at, appointment.recorded_attempt_id, appointment.agreed_by) == (EVENING, CALL, "debtor")
    [row] = await rows(db, Disposition)
    assert row.appointment_id == appointment.id
    clock.set(EVENING + timedelta(minutes=2))  # within the appointment's tolerance
    collector = await running.browser(Role.COLLECTOR)  # a new shift: the morning's session has gone idle
    status, attempt = await dial(collector, mine["debtor"])
    assert status == 201, attempt
    clock.set(EVENING + timedelta(minutes=30))
    status, refusal = await dial(collector, mine["debtor"])
    assert (status, refusal["rule"]) == (409, "window"), "only near the agreed time"


async def test_a_correction_is_a_new_row_and_takes_back_the_agreed_time_it_made(running, db, clock, mine):
    from dialer.compliance import compliance_report

    collector = await running.browser(Role.COLLECTOR)
    _, first = await dispose(collector, CALL, code="call_back", callback_at="2026-11-30T21:30")
    status, second = await dispose(collector, CALL, code="contacted", corrects=first["id"],
                                   notes="no time was agreed: entered on the wrong call")
    assert status == 201 and second["changes"] == [{"change": "appointment_cancelled", "appointment_id": 1}], second
    assert rule_of(await verdict(db, "C-MINE", EVENING)) == "window"
    kept, fix = await rows(db, Disposition)
    assert (kept.id, kept.code, kept.appointment_id) == (first["id"], "call_back", 1), "nothing is edited"
    assert fix.corrects_id == kept.id
    [appointment] = await rows(db, Appointment)
    assert (appointment.cancelled_at, appointment.cancelled_by) == (clock(), "collector1")
    # a correction of a corrected one is refused: correct the correction
    before = await snapshot(db, skip=QUIET)
    status, text = await dispose(collector, CALL, code="promise_to_pay", amount="100", promise_date="2026-12-01",
                                 corrects=first["id"])
    assert status == 400 and f"#{first['id']} was already corrected by #{second['id']}" in text
    assert await snapshot(db, skip=QUIET) == before
    case = await (await collector.get("/api/cases/C-MINE")).json()
    [listed] = [a for a in case["attempts"] if a["id"] == CALL]
    assert [(d["id"], d["code"], d["corrects"], d["corrected_by"]) for d in listed["dispositions"]] == [
        (first["id"], "call_back", None, second["id"]), (second["id"], "contacted", first["id"], None)]
    # the compliance audit: a call at the agreed time before the correction is clean; one after it is not
    async with db.session() as s:
        s.add(Attempt(id="d" * 32, case_id="C-MINE", phone_id=mine["debtor"], number="13800000001", state="ended",
                      created_at=EVENING, caller_id="4008001000", decision={"facts": {}}))
    report = await compliance_report(db, NOON_BEIJING, EVENING + timedelta(hours=1), profile("client-default"))
    assert [(b.attempt_id, b.rule) for b in report.breaches] == [("d" * 32, "window")]


async def test_a_third_partys_refusal_and_a_wrong_number_stop_that_phone_only(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    status, body = await dispose(collector, THIRD_CALL, code="third_party_refused", notes="the brother hung up")
    assert status == 201 and body["changes"] == [{"change": "third_party_refused", "phone_id": mine["third"]}]
    assert rule_of(await verdict(db, "C-MINE", clock(), phone_index=1)) == "third_party_refused"
    assert rule_of(await verdict(db, "C-MINE", clock(), phone_index=0)) is None
    status, body = await dispose(collector, CALL, code="wrong_number", notes="a restaurant")
    assert status == 201 and body["changes"] == [{"change": "phone_retired", "phone_id": mine["debtor"]}]
    status, refusal = await dial(collector, mine["debtor"])
    assert (status, refusal["rule"]) == (409, "phone_retired")
    # only a supervisor puts it back
    lift = f"/api/cases/C-MINE/phones/{mine['debtor']}/retirement/lift"
    assert (await collector.post(lift, json={"why": "it is hers after all"})).status == 403
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post(lift, json={"why": "the client confirms the number"})).status == 200
    assert (await supervisor.post(lift, json={"why": "the client confirms the number"})).status == 400
    assert rule_of(await verdict(db, "C-MINE", clock())) is None
    # a refusal is a third party's: on the debtor's own number it is refused, and says why
    status, text = await dispose(collector, CALL, code="third_party_refused")
    assert status == 400 and "the debtor's own" in text


async def test_fraud_and_illness_pause_the_case(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    status, _ = await dispose(collector, CALL, code="illness_or_pregnancy", notes="in hospital, surgery next week")
    assert status == 201
    assert rule_of(await verdict(db, "C-MINE", clock())) == "care"
    assert (await dispose(collector, CALL, code="illness_or_pregnancy", notes="still in hospital"))[1]["changes"] \
        == [], "already flagged: nothing changes"
    status, body = await dispose(collector, THIRD_CALL, code="fraud", notes="sister says the ID was stolen")
    assert status == 201 and body["changes"] == [{"change": "flag", "flag": "fraud"}]
    async with db.session() as s:
        assert (await s.get(Case, "C-MINE")).flags == ["care", "fraud"]
    assert rule_of(await verdict(db, "C-MINE", clock())) in ("fraud", "care")


async def test_promises_are_follow_ups_due_on_their_date_by_collector(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    status, first = await dispose(collector, CALL, code="promise_to_pay", amount="500", promise_date="2026-12-05",
                                  notes="after payday")
    assert status == 201 and first["changes"] == []
    [row] = await rows(db, Disposition)
    assert (row.amount_cents, row.promise_date.isoformat()) == (50_000, "2026-12-05")

    async def due(browser, day: str | None = None):
        resp = await browser.get("/api/follow-ups" + (f"?due={day}" if day else ""))
        assert resp.status == 200, await resp.text()
        return {c["collector"]: [(p["case_id"], p["amount_cents"]) for p in c["promises"]]
                for c in (await resp.json())["collectors"]}

    assert await due(collector, "2026-12-05") == {"collector1": [("C-MINE", 50_000)]}
    assert await due(collector, "2026-12-04") == {} and await due(collector) == {}, "due on its date, not before"
    other = await running.browser(username="collector2")
    assert await due(other, "2026-12-05") == {}, "another collector's case is not theirs to follow up"
    supervisor = await running.browser(Role.SUPERVISOR)
    assert await due(supervisor, "2026-12-05") == {"collector1": [("C-MINE", 50_000)]}
    # a later promise replaces it; a corrected one is gone
    clock.advance(3600)
    _, later = await dispose(collector, THIRD_CALL, code="promise_to_pay", amount="1234.50",
                             promise_date="2026-12-08")
    assert await due(supervisor, "2026-12-05") == {}
    assert await due(supervisor, "2026-12-08") == {"collector1": [("C-MINE", 123_450)]}
    await dispose(collector, THIRD_CALL, code="negotiation_failed", corrects=later["id"])
    assert await due(supervisor, "2026-12-08") == {}
    assert await due(supervisor, "2026-12-05") == {"collector1": [("C-MINE", 50_000)]}, "the earlier one stands"
    clock.set(datetime(2026, 12, 5, 1, 0, tzinfo=timezone.utc))  # 09:00 on 5 December in Beijing
    collector = await running.browser(Role.COLLECTOR)
    assert await due(collector) == {"collector1": [("C-MINE", 50_000)]}, "today, by the injected clock"
    assert (await collector.get("/api/follow-ups?due=20261205")).status == 400
    assert (await collector.get("/api/follow-ups?due=2026-02-30")).status == 400


HOSTILE = [
    ({"code": "paid_in_full"}, "code: one of"),
    ({"code": "promise_to_pay", "amount": "-5", "promise_date": "2026-12-05"}, "amount: a sum in yuan above 0"),
    ({"code": "promise_to_pay", "amount": "0", "promise_date": "2026-12-05"}, "amount: a sum in yuan above 0"),
    ({"code": "promise_to_pay", "amount": "99999", "promise_date": "2026-12-05"}, "more than the arrears (1234.50"),
    ({"code": "promise_to_pay", "amount": "5", "promise_date": "2026-11-29"}, "not before today (2026-11-30"),
    ({"code": "promise_to_pay", "amount": "5"}, "promise_date: a date"),
    ({"code": "call_back", "callback_at": "2026-11-30T11:00"}, "a time still to come"),
    ({"code": "call_back", "callback_at": "<script>"}, "callback_at: a date and time"),
    ({"code": "dispute"}, "say what was said"),
    ({"code": "contacted", "notes": "x" * 2001}, "at most 2000 characters"),
    ({"code": "contacted", "notes": ["a"]}, "at most 2000 characters"),
    ({"code": "contacted", "corrects": 999}, "a disposition of this call"),
    ({"code": "contacted", "amount_cents": 5}, "expected a JSON object with"),
    ({"notes": "no code"}, "expected a JSON object with"),
    ([], "expected a JSON object with"),
]


@pytest.mark.parametrize("body, why", HOSTILE)
async def test_bad_input_is_refused_clearly_and_stores_nothing(running, db, mine, body, why):
    collector = await running.browser(Role.COLLECTOR)
    before = await snapshot(db, skip=QUIET)
    resp = await collector.post(f"/api/attempts/{CALL}/dispositions", json=body)
    text = (await resp.json())["error"]
    assert resp.status == 400 and why in text, text
    assert await snapshot(db, skip=QUIET) == before


async def test_a_conversation_on_an_unanswered_call_is_refused(running, db, mine):
    collector = await running.browser(Role.COLLECTOR)
    before = await snapshot(db, skip=QUIET)
    status, text = await dispose(collector, UNANSWERED, code="contacted")
    assert status == 400 and "needs an answered call" in text
    assert await snapshot(db, skip=QUIET) == before
    assert (await dispose(collector, UNANSWERED, code="not_contacted"))[0] == 201


async def test_someone_elses_call_a_role_that_may_not_and_a_forged_request_change_nothing(running, db, clock, mine):
    other, qc = await running.browser(username="collector2"), await running.browser(Role.QC)
    compliance, collector = await running.browser(Role.COMPLIANCE), await running.browser(Role.COLLECTOR)
    signed_out = await running.browser()
    before = await snapshot(db, skip=QUIET)  # after signing in (audited)
    status, text = await dispose(other, CALL, code="contacted")
    assert (status, text) == (404, "no such call"), "another collector's case: not there"
    assert (await dispose(qc, CALL, code="contacted"))[0] == 403
    assert (await dispose(compliance, CALL, code="contacted"))[0] == 403
    no_csrf = await collector.post(f"/api/attempts/{CALL}/dispositions", json={"code": "contacted"},
                                   headers={"X-CSRF-Token": ""})
    assert no_csrf.status == 403 and "CSRF" in (await no_csrf.json())["error"]
    cross_site = await collector.post(f"/api/attempts/{CALL}/dispositions", json={"code": "contacted"},
                                      headers={"Origin": "https://evil.example"})
    assert cross_site.status == 403
    assert (await dispose(signed_out, CALL, code="contacted"))[0] == 401
    assert (await dispose(collector, "f" * 32, code="contacted"))[0] == 404
    assert (await collector.post("/api/attempts/not-an-id/dispositions", json={"code": "contacted"})).status == 400
    assert await snapshot(db, skip=QUIET) == before


async def test_the_collector_who_made_the_call_may_record_it_and_nobody_records_the_canary(running, db, clock, mine):
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-POOL", client="cu", debtor_name="Li", timezone="Asia/Shanghai",
                                    created_at=clock()), [repo.NewPhone("13700000003")])
        case = await repo.get_case(s, "C-POOL")
        s.add(Attempt(id="e" * 32, case_id="C-POOL", phone_id=case.phones[0].id, number="13700000003",
                      collector="collector2", state="ended", created_at=clock(), answered_at=clock()))
        await repo.add_case(s, Case(id=CANARY_CASE, client="dunline-canary", debtor_name="canary", status="canary",
                                    created_at=clock()), [repo.NewPhone("15551000000")])
        s.add(Attempt(id="9" * 32, case_id=CANARY_CASE, number="15551000000", state="ended", created_at=clock(),
                      answered_at=clock(), decision={"canary": True}))
    other = await running.browser(username="collector2")
    assert (await dispose(other, "e" * 32, code="contacted"))[0] == 201, "they took the call: they record it"
    assert (await dispose(await running.browser(Role.COLLECTOR), "e" * 32, code="contacted"))[0] == 404
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await dispose(supervisor, "9" * 32, code="contacted"))[0] == 404, "the watchdog's test call"


async def test_a_case_and_a_call_show_their_dispositions_masked_as_the_reader_reads(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)
    await dispose(collector, CALL, code="contacted", notes="call her back on 13800000001 after six")
    attempt = await (await collector.get(f"/api/attempts/{CALL}")).json()
    [shown] = attempt["dispositions"]
    assert shown["notes"] == "call her back on 138****0001 after six" and shown["entered_by"] == "collector1"
    supervisor = await running.browser(Role.SUPERVISOR)
    case = await (await supervisor.get("/api/cases/C-MINE")).json()
    [listed] = [a for a in case["attempts"] if a["id"] == CALL]
    assert listed["dispositions"][0]["notes"] == "call her back on 13800000001 after six"


async def test_the_case_pages_form_records_refuses_in_the_readers_language_and_needs_csrf(running, db, clock, mine):
    collector = await running.browser(Role.COLLECTOR)  # collector1 reads English
    path = f"/cases/C-MINE/attempts/{CALL}/dispositions"
    ok = await collector.post(path, data={"code": "dispute", "notes": "disputes the roaming charges",
                                          "amount": "", "promise_date": "", "callback_at": "",
                                          "csrf_token": collector.csrf}, headers={"X-CSRF-Token": ""})
    page = await ok.text()
    assert ok.status == 200 and "Saved #1 (dispute): case paused: dispute" in page, page[-2000:]
    assert 'id="disposition-1"' in page and "disputes the roaming charges" in page
    before = await snapshot(db, skip=(*QUIET, "audit_events"))  # showing the page again is a view, audited
    bad = await collector.post(path, data={"code": "promise_to_pay", "amount": "-5", "promise_date": "2026-12-05",
                                           "csrf_token": collector.csrf}, headers={"X-CSRF-Token": ""})
    assert bad.status == 400 and "Not done: amount: a sum in yuan above 0" in await bad.text()
    collector.session.cookie_jar.update_cookies({"dunline_lang": "zh-CN"})
    zh = await collector.post(path, data={"code": "promise_to_pay", "amount": "-5", "promise_date": "2026-12-05",
                                          "csrf_token": collector.csrf}, headers={"X-CSRF-Token": ""})
    assert zh.status == 400 and "金额：大于 0 的元数" in await zh.text()
    forged = await collector.post(path, data={"code": "contacted"}, headers={"X-CSRF-Token": ""})
    assert forged.status == 403
    elsewhere = await collector.post(f"/cases/C-1/attempts/{CALL}/dispositions",
                                     data={"code": "contacted", "csrf_token": collector.csrf},
                                     headers={"X-CSRF-Token": ""})
    assert elsewhere.status == 404, "the call is not case C-1's (and C-1 is not theirs)"
    assert await snapshot(db, skip=(*QUIET, "audit_events")) == before
    assert len(await rows(db, AuditEvent, AuditEvent.action == "disposition.entered")) == 1


async def test_only_a_supervisor_is_offered_the_clear_dispute_form(running, db, mine):
    """`can.clear` in a template is dict.clear, always true: the page asks can["clear"]."""
    collector = await running.browser(Role.COLLECTOR)
    await dispose(collector, CALL, code="dispute", notes="not my contract")
    assert 'id="clear-dispute"' not in await (await collector.get("/cases/C-MINE")).text()
    supervisor = await running.browser(Role.SUPERVISOR)
    assert 'id="clear-dispute"' in await (await supervisor.get("/cases/C-MINE")).text()


async def test_a_team_lead_and_a_supervisor_record_dispositions_of_the_teams_calls(running, db, mine):
    lead = await running.browser(Role.TEAM_LEAD)
    assert (await dispose(lead, CALL, code="negotiation_failed", notes="refuses any plan"))[0] == 201
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await dispose(supervisor, THIRD_CALL, code="third_party_consented"))[0] == 201
    assert [(d.entered_by, d.code) for d in await rows(db, Disposition)] == [
        ("teamlead1", "negotiation_failed"), ("supervisor1", "third_party_consented")]
