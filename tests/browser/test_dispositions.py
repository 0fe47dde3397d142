"""Dispositions in a real browser (headless Chromium) change the next dial's verdict, dialled
as the console dials (its dial button -> dialer.originate.place_call: the stored facts, the
policy, the write-ahead attempt; the PBX a stub that records what it was asked to place,
its answers reported through the attempt lifecycle as bind and the hang-up handler report
them). The clock is the console's injected one: no wall-clock time is asserted.

A collector dials at noon, the debtor answers and agrees to be called back at 21:30 (outside
the 08:00-21:00 window): entered in the call's form, the call at 21:30 goes through. On that
call the debtor disputes the debt: entered in its form, the next day's dial is refused with
rule `dispute`, until a supervisor clears it in the browser. Screenshots of each step are kept."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from dialer.originate import DialSettings, place_call
from dialer.policy import profile
from people.roles import Role
from storage import repositories as repo
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.lifecycle import Event, Report, Source
from storage.models import Attempt, Case
from tests.browser.test_console_pages import NoPbx, shot, sign_in, submit, text_of, wait_for
from tests.console_kit import cheap_accounts, seed_users, user_of
from tests.live_console import NOON_BEIJING, LiveConsole
from tests.policy_kit import rule_of, verdict

AGREED = datetime(2026, 11, 30, 13, 30, tzinfo=timezone.utc)  # 21:30 in Beijing
NEXT_NOON = NOON_BEIJING + timedelta(days=1)


@pytest.fixture
def live(tmp_path):
    link = NoPbx()
    parts: dict = {}

    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        ids = await seed_users(accounts)
        async with db.session() as s:
            await repo.approve_caller_id(s, "cu", "4008001000")
            await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="王芳", timezone="Asia/Shanghai",
                                        amount_due_cents=1_234_50, created_at=clock(),
                                        collector_id=ids[Role.COLLECTOR]), [repo.NewPhone("13800000001")])
        writer = DurableWriter(db, Journal(tmp_path / "facts.journal"), clock)
        parts["writer"] = writer

        async def dial(case_id, number, *, requested_by=None, collector=None):
            return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                                    policy=profile("client-default"), writer=writer, number=number)

        return {"accounts": accounts, "dial": dial}

    with LiveConsole(tmp_path, prepare) as console:
        console.link = link
        console.writer = parts["writer"]
        yield console


def answered_and_ended(live, attempt_id: str) -> None:
    """The debtor answers, bind records the call, a minute's conversation, hang-up."""
    async def reports() -> None:
        at = live.clock()
        for report in (Report(event=Event.ANSWERED, source=Source.AGI, at=at),
                       Report(event=Event.BOUND, source=Source.AGI, at=at, recording_name=attempt_id),
                       Report(event=Event.HUNG_UP, source=Source.AGI, at=at, answered=True, hangup_cause=16,
                              answered_seconds=60.0, bridged_seconds=58.0)):
            result = await live.writer.report(attempt_id, report)
            assert result is not None and not result.refused, (report.event, result)
    live.run(reports())


def latest_attempt(live) -> str:
    async def read() -> str:
        async with live.db.session() as s:
            return (await s.scalars(select(Attempt.id).order_by(Attempt.created_at.desc()).limit(1))).one()
    return live.run(read())


def dial_case(driver, live) -> str:
    driver.get(f"{live.base}/cases/C-MINE")
    phone_id = driver.find_element(By.CSS_SELECTOR, "button.dial").get_attribute("id").split("-")[1]
    submit(driver, f"dial-{phone_id}")
    return text_of(driver, "message")


def fill(driver, element_id: str, value: str) -> None:
    """Type into a field the person can see (a code's own fields appear only for that code);
    date and time pickers get their value as the picker would set it."""
    field = driver.find_element(By.ID, element_id)
    assert field.is_displayed(), f"{element_id} is hidden"
    if field.get_attribute("type") in ("date", "datetime-local"):
        driver.execute_script("arguments[0].value = arguments[1]", field, value)
        assert field.get_attribute("value") == value
    else:
        field.clear()
        field.send_keys(value)


def open_form(driver, attempt_id: str, code: str) -> None:
    summary = driver.find_element(By.ID, f"dispose-{attempt_id}")
    if driver.find_element(By.ID, f"dispo-form-{attempt_id}").is_displayed() is False:
        summary.click()
    Select(driver.find_element(By.ID, f"code-{attempt_id}")).select_by_value(code)


def test_a_disposition_entered_in_the_browser_changes_the_next_dials_verdict(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.COLLECTOR))  # collector1 reads English
    assert "Call placed" in dial_case(driver, live)
    first = latest_attempt(live)
    answered_and_ended(live, first)
    assert rule_of(live.run(verdict(live.db, "C-MINE", AGREED))) == "window", "21:30 is outside the window"

    # the call's form: a code's own fields appear when it is chosen
    driver.get(f"{live.base}/cases/C-MINE")
    open_form(driver, first, "promise_to_pay")
    assert driver.find_element(By.ID, f"amount-{first}").is_displayed()
    assert not driver.find_element(By.ID, f"callback-at-{first}").is_displayed()
    fill(driver, f"amount-{first}", "-5")
    fill(driver, f"promise-date-{first}", "2026-12-05")
    shot(driver, "collector-disposition-promise-form")
    submit(driver, f"dispo-save-{first}")
    assert "Not done: amount: a sum in yuan above 0" in text_of(driver, "message")
    assert driver.find_elements(By.CSS_SELECTOR, f"#attempt-{first} li") == [], "nothing stored"
    shot(driver, "collector-disposition-refused")

    # the debtor agreed to a call at 21:30 her time
    open_form(driver, first, "call_back")
    assert not driver.find_element(By.ID, f"amount-{first}").is_displayed()
    fill(driver, f"callback-at-{first}", "2026-11-30T21:30")
    fill(driver, f"notes-{first}", "after her shift ends")
    shot(driver, "collector-disposition-call-back-form")
    submit(driver, f"dispo-save-{first}")
    message = text_of(driver, "message")
    assert "Saved #1 (call back at an agreed time): agreed time booked" in message, message
    assert "after her shift ends" in driver.find_element(By.ID, "disposition-1").text
    shot(driver, "collector-disposition-call-back-saved")

    # at 21:30 the call is allowed, through the console's own dial
    live.clock.set(AGREED + timedelta(minutes=1))
    sign_in(driver, live, user_of(Role.COLLECTOR))  # the noon session went idle
    assert "Call placed" in dial_case(driver, live), text_of(driver, "message")
    assert len(live.link.originated) == 2
    shot(driver, "collector-case-dialled-at-the-agreed-time")
    second = latest_attempt(live)
    answered_and_ended(live, second)

    # on that call the debtor disputes the debt
    driver.get(f"{live.base}/cases/C-MINE")
    open_form(driver, second, "dispute")
    fill(driver, f"notes-{second}", "says the roaming charges were never used")
    submit(driver, f"dispo-save-{second}")
    assert "case paused: dispute" in text_of(driver, "message"), text_of(driver, "message")
    assert "dispute" in text_of(driver, "flags")
    shot(driver, "collector-disposition-dispute-saved")

    # the next day: the dial is refused with rule dispute, and never reaches the PBX
    live.clock.set(NEXT_NOON)
    sign_in(driver, live, user_of(Role.COLLECTOR))
    message = dial_case(driver, live)
    assert "Not dialled: dispute" in message, message
    assert len(live.link.originated) == 2
    assert "dispute" in driver.find_element(By.ID, "decisions").text
    assert driver.find_elements(By.ID, "clear-dispute") == [], "a collector cannot clear it"
    shot(driver, "collector-case-dial-refused-dispute")

    # a supervisor clears it in the browser; the next dial goes through
    sign_in(driver, live, user_of(Role.SUPERVISOR))
    driver.get(f"{live.base}/cases/C-MINE")
    fill(driver, "clear-why-dispute", "the client confirms the charges")
    shot(driver, "supervisor-clear-dispute")
    submit(driver, "clear-dispute")
    wait_for(driver, lambda: "dispute" not in text_of(driver, "flags"))
    sign_in(driver, live, user_of(Role.COLLECTOR))
    assert "Call placed" in dial_case(driver, live), text_of(driver, "message")
    assert len(live.link.originated) == 3
    shot(driver, "collector-case-dialled-after-clearing")


def test_the_promises_due_page_lists_a_promise_on_its_date(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.COLLECTOR))
    dial_case(driver, live)
    call = latest_attempt(live)
    answered_and_ended(live, call)
    driver.get(f"{live.base}/cases/C-MINE")
    open_form(driver, call, "promise_to_pay")
    fill(driver, f"amount-{call}", "600")
    fill(driver, f"promise-date-{call}", "2026-12-05")
    submit(driver, f"dispo-save-{call}")
    assert "Saved #1 (promise to pay)" in text_of(driver, "message")
    driver.get(f"{live.base}/follow-ups")
    assert driver.find_elements(By.ID, "none"), "nothing due today"
    fill(driver, "due", "2026-12-05")
    submit(driver, "show")
    table = driver.find_element(By.CSS_SELECTOR, "table.follow-ups").text
    assert "C-MINE" in table and "600.00" in table
    assert "collector1" in driver.find_element(By.CSS_SELECTOR, "h2.collector").text
    shot(driver, "collector-promises-due")
    submit(driver, "lang")  # the same page in Chinese
    assert driver.find_element(By.TAG_NAME, "h1").text == "到期的承诺缴费"
    assert "C-MINE" in driver.find_element(By.CSS_SELECTOR, "table.follow-ups").text
    shot(driver, "collector-promises-due-zh")
