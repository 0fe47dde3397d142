"""Complaints in a real browser (headless Chromium): a team lead registers a debtor's complaint
against their team's case and sees it gathered (exactly that case's recordings, its calls with
their dispositions and notes, the time left), in English and in 中文; the list marks it due
soon and every page carries the banner once its deadline nears; a supervisor lets the case be
dialled, places the follow-up call from the complaint's page, records the outcome and closes
it. A screenshot of every page (zh-CN and English) is kept in test-artifacts/screenshots."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from cases.complaints_store import alarm_pass
from dialer.originate import DialSettings, place_call
from dialer.policy import profile
from people.roles import Role
from storage import repositories as repo
from storage.dispositions import Disposition
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.models import Attempt, Case, Recording
from tests.browser.test_console_pages import NoPbx, shot, sign_in, submit, text_of, wait_for
from tests.console_kit import cheap_accounts, seed_users, user_of
from tests.live_console import LiveConsole

MINE = ("b1" * 16, "b2" * 16)  # C-MINE's recorded calls
OTHER = "b3" * 16  # C-OTHER's


def recording(attempt_id: str, case_id: str, ended) -> Recording:
    return Recording(attempt_id=attempt_id, case_id=case_id, archive_path=f"2026/11/{attempt_id}.wav", sha256="0" * 64,
                     size_bytes=96_044, duration_s=42.0, legs=[], flags=[], call_ended_at=ended, created_at=ended,
                     retain_until=ended + timedelta(days=3 * 366))


@pytest.fixture
def live(tmp_path):
    link = NoPbx()

    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        ids = await seed_users(accounts)
        lead = await accounts.user(user_of(Role.TEAM_LEAD))
        yesterday = clock() - timedelta(days=1)
        async with db.session() as s:
            await repo.approve_caller_id(s, "cu", "4008001000")
            await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="王芳", timezone="Asia/Shanghai",
                                        amount_due_cents=1_234_50, created_at=clock(),
                                        collector_id=ids[Role.COLLECTOR], team_id=lead.team_id),
                                [repo.NewPhone("13800000001")])
            await repo.add_case(s, Case(id="C-OTHER", client="cu", debtor_name="李强", timezone="Asia/Shanghai",
                                        created_at=clock()), [repo.NewPhone("13800000002")])
            for n, (attempt_id, case_id, number) in enumerate(((MINE[0], "C-MINE", "13800000001"),
                                                               (MINE[1], "C-MINE", "13800000001"),
                                                               (OTHER, "C-OTHER", "13800000002"))):
                at = yesterday + timedelta(hours=n)
                s.add(Attempt(id=attempt_id, case_id=case_id, number=number, collector="6001", state="ended",
                              outcome="answered", created_at=at, answered_at=at, ended_at=at + timedelta(minutes=1)))
            await s.flush()
            for n, (attempt_id, case_id) in enumerate(((MINE[0], "C-MINE"), (MINE[1], "C-MINE"), (OTHER, "C-OTHER"))):
                s.add(recording(attempt_id, case_id, yesterday + timedelta(hours=n, minutes=1)))
            s.add(Disposition(attempt_id=MINE[0], case_id="C-MINE", code="negotiation_failed",
                              notes="债务人情绪激动，要求投诉", entered_by="collector1",
                              entered_at=yesterday + timedelta(minutes=2), effects=[]))
        writer = DurableWriter(db, Journal(tmp_path / "facts.journal"), clock)

        async def dial(case_id, number, *, requested_by=None, collector=None):
            return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                                    policy=profile("client-default"), writer=writer, number=number)

        return {"accounts": accounts, "dial": dial}

    with LiveConsole(tmp_path, prepare) as console:
        console.link = link
        yield console


def language(driver) -> str:
    return driver.find_element(By.TAG_NAME, "html").get_attribute("lang")


def both_languages(driver, name: str) -> None:
    """A screenshot of the page in its language, then in the other one (the page switched back after)."""
    for _ in range(2):
        shot(driver, f"{name}-{'zh' if language(driver) == 'zh-CN' else 'en'}")
        submit(driver, "lang")


def fill_registration(driver) -> None:
    Select(driver.find_element(By.ID, "source")).select_by_value("debtor")
    for element_id, value in (("case-id", "C-MINE"), ("collector", "collector1"),
                              ("summary", "催收员态度恶劣，晚上 21:30 之后还打电话 (13800000001)")):
        driver.find_element(By.ID, element_id).clear()
        driver.find_element(By.ID, element_id).send_keys(value)


def test_a_complaint_registered_gathered_alarmed_followed_up_and_closed(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.TEAM_LEAD))  # teamlead1 reads English
    driver.get(f"{live.base}/complaints")
    assert "No complaints" in driver.find_element(By.ID, "complaints").text
    submit(driver, "register-link")
    for _ in range(2):  # the form in each language (switching reloads it empty)
        fill_registration(driver)
        shot(driver, f"complaint-register-{'zh' if language(driver) == 'zh-CN' else 'en'}")
        submit(driver, "lang")
    fill_registration(driver)
    submit(driver, "register")
    assert "Complaint #1 registered" in text_of(driver, "message")
    assert text_of(driver, "time-left") == "24 h 0 min left"
    assert "138****0001" in text_of(driver, "summary"), "a team lead reads numbers masked"
    recordings = driver.find_elements(By.CSS_SELECTOR, "#recordings tbody tr")
    assert sorted(r.get_attribute("id") for r in recordings) == sorted(f"recording-{a}" for a in MINE)
    assert OTHER not in driver.page_source, "exactly that case's recordings, no other case's"
    assert "债务人情绪激动，要求投诉" in driver.find_element(By.ID, "attempts").text
    assert "the case is not dialled" in text_of(driver, "dialing")
    both_languages(driver, "complaint-page")

    # the deadline nears: the list marks it, every page carries the banner (and the service's
    # alarm pass, run here as its task would, raises the alarm)
    live.clock.advance(22 * 3600 + 60)
    assert [a.alarm.value for a in live.run(alarm_pass(live.db, live.clock))] == ["due_soon"]
    sign_in(driver, live, user_of(Role.TEAM_LEAD))  # yesterday's session has ended
    assert "0 overdue, 1 due soon" in text_of(driver, "complaint-alarms")
    driver.get(f"{live.base}/complaints")
    assert driver.find_element(By.ID, "complaint-1").get_attribute("data-stage") == "due_soon"
    both_languages(driver, "complaints-due-soon")
    live.clock.advance(2 * 3600)
    assert [a.alarm.value for a in live.run(alarm_pass(live.db, live.clock))] == ["overdue"]
    sign_in(driver, live, user_of(Role.TEAM_LEAD))  # two idle hours end a session
    driver.get(f"{live.base}/complaints")
    assert driver.find_element(By.ID, "complaint-1").get_attribute("data-stage") == "overdue"
    assert "1 overdue, 0 due soon" in text_of(driver, "complaint-alarms")
    both_languages(driver, "complaints-overdue")

    # a supervisor lets the case be dialled, calls back, records the outcome and closes it
    sign_in(driver, live, user_of(Role.SUPERVISOR))
    driver.get(f"{live.base}/complaints/1")
    phone_id = driver.find_element(By.CSS_SELECTOR, "#follow-up-phones button").get_attribute("id").split("-")[-1]
    submit(driver, f"follow-up-{phone_id}")
    assert "Not dialled: complaint" in text_of(driver, "message") and live.link.originated == []
    driver.find_element(By.ID, "allow-why").send_keys("the debtor asked to be called back")
    submit(driver, "allow-dialing")
    assert "dialing allowed by supervisor1" in text_of(driver, "dialing")
    submit(driver, f"follow-up-{phone_id}")
    assert "Follow-up call placed" in text_of(driver, "message") and len(live.link.originated) == 1
    assert "Follow-up call" in text_of(driver, "follow-up")
    driver.find_element(By.ID, "outcome-text").send_keys("已向债务人致歉，催收员已培训；回访满意")
    submit(driver, "save-outcome")
    submit(driver, "close")
    assert driver.find_element(By.ID, "stage").get_attribute("data-stage") == "closed"
    assert not driver.find_elements(By.ID, "complaint-alarms")
    history = driver.find_element(By.ID, "history").text
    for event in ("registered", "due-soon alarm", "overdue alarm", "dialing allowed by a supervisor",
                  "follow-up call", "outcome recorded", "closed"):
        assert event in history, event
    driver.get(f"{live.base}/complaints/1")  # the page itself, not the form's answer: the language link comes back to it
    both_languages(driver, "complaint-closed")
    wait_for(driver, lambda: language(driver) == "en")
