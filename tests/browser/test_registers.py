"""The registers in a real browser (headless Chromium, zh-CN): a collector registers a
letter from an approved template on their case's page (a too-short address is refused with
the reason shown, nothing stored), asks for a field visit with a colleague; a supervisor
approves it from the visits under way; the team reports its departure and arrival, uploads a
photo and a recording, its leaving and return, and its report. Screenshots of each page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from sqlalchemy import select

from cases import registers_store
from people.roles import Role
from storage import repositories as repo
from storage.models import Case
from storage.registers import CorrespondenceItem, FieldVisit, VisitAttachment
from tests.browser.test_console_pages import shot, sign_in, submit, text_of
from tests.console_kit import PASSWORD, TEAM, cheap_accounts, seed_users
from tests.integration.test_registers import JPEG, REPORT, WAV
from tests.live_console import LiveConsole

ADDRESS = "北京市朝阳区建国路 88 号 3 单元 501"


@pytest.fixture
def live(tmp_path):
    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        ids = await seed_users(accounts)
        await accounts.add_user(username="collector2", display_name="李娜", role="collector", password=PASSWORD,
                                by="test", team=TEAM)
        async with db.session() as s:
            await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="王芳", timezone="Asia/Shanghai",
                                        amount_due_cents=1_234_50, created_at=clock(),
                                        collector_id=ids[Role.COLLECTOR]), [repo.NewPhone("13800000001")])
        template = await registers_store.create_template(db, clock, "letter", "首次催缴函",
                                                         "尊敬的客户：您的话费已逾期，请于七日内缴清。", by="compliance1")
        await registers_store.approve_template(db, clock, template.id, by="supervisor1")
        clock.advance(3600)
        return {"accounts": accounts, "visits_dir": tmp_path / "visits"}

    with LiveConsole(tmp_path, prepare) as console:
        yield console


def rows(live, model):
    async def read():
        async with live.db.session() as s:
            return (await s.scalars(select(model))).all()
    return live.run(read())


def as_user(driver, live, username: str) -> None:
    """Signed in, reading the console in Chinese (the seeded users' own language is English)."""
    sign_in(driver, live, username)
    driver.get(f"{live.base}/lang/zh-CN?next=/")


def test_a_letter_registered_and_a_field_visit_from_request_to_report(browser, live, tmp_path):
    driver = browser
    as_user(driver, live, "collector1")
    driver.get(f"{live.base}/cases/C-MINE")
    submit_link = driver.find_element(By.ID, "registers-link")
    submit_link.click()
    assert "函件与外访" in text_of(driver, "registers-title")
    driver.find_element(By.ID, "item-recipient").send_keys("王芳")
    Select(driver.find_element(By.ID, "item-channel")).select_by_value("registered_mail")
    driver.find_element(By.ID, "item-address").send_keys("北京")
    submit(driver, "item-save")
    assert "地址" in text_of(driver, "message") and rows(live, CorrespondenceItem) == []
    driver.find_element(By.ID, "item-recipient").send_keys("王芳")
    Select(driver.find_element(By.ID, "item-channel")).select_by_value("registered_mail")
    driver.find_element(By.ID, "item-address").send_keys(ADDRESS)
    submit(driver, "item-save")
    assert "已登记" in text_of(driver, "message")
    assert "挂号信" in driver.find_element(By.ID, "items").text
    shot(driver, "registers-case")

    driver.find_element(By.ID, "visit-reason").send_keys("电话长期无人接听，需上门核实")
    driver.find_element(By.ID, "visit-address").send_keys(ADDRESS)
    driver.find_element(By.ID, "visit-member-a").send_keys("collector1")
    driver.find_element(By.ID, "visit-member-b").send_keys("collector2")
    submit(driver, "visit-save")
    assert text_of(driver, "visit-state") == "待审批" and "collector2" in text_of(driver, "visit-team")

    as_user(driver, live, "supervisor1")
    driver.get(f"{live.base}/registers")
    shot(driver, "registers-overview")
    driver.find_element(By.CSS_SELECTOR, "#visits-under-way a[href^='/visits/']").click()
    Select(driver.find_element(By.ID, "decision")).select_by_value("approve")
    submit(driver, "decision-save")
    assert text_of(driver, "visit-state") == "已批准"
    visit_url = driver.current_url.removesuffix("/decision")  # the form re-renders the page at its own URL

    as_user(driver, live, "collector2")
    driver.get(visit_url)
    for step in ("departed", "arrived"):
        live.clock.advance(1200)
        submit(driver, "step-save")
        assert text_of(driver, "visit-state") == {"departed": "已出发", "arrived": "已到达"}[step]
    photo, recording = tmp_path / "门口.jpg", tmp_path / "谈话.wav"
    photo.write_bytes(JPEG)
    recording.write_bytes(WAV)
    for kind, path in (("photo", photo), ("recording", recording)):
        Select(driver.find_element(By.ID, "attachment-kind")).select_by_value(kind)
        driver.find_element(By.ID, "attachment-file").send_keys(str(path))
        submit(driver, "attach")
        assert "已上传" in text_of(driver, "message"), text_of(driver, "message")
    assert text_of(driver, "evidence-count") == "照片 1 张，录音 1 段"
    for _step in ("left", "returned"):
        live.clock.advance(1200)
        submit(driver, "step-save")
    assert text_of(driver, "visit-state") == "已回抵"
    driver.find_element(By.ID, "report-text").send_keys(REPORT)
    submit(driver, "report-save")
    assert text_of(driver, "visit-state") == "已报告" and REPORT in text_of(driver, "visit-report")
    shot(driver, "registers-visit")

    visit = rows(live, FieldVisit)[0]
    assert (visit.state, visit.returned_at - visit.departed_at) == ("reported", timedelta(seconds=3600))
    assert sorted(a.kind for a in rows(live, VisitAttachment)) == ["photo", "recording"]
    driver.get(f"{live.base}/lang/en?next=/visits/{visit.id}")
    assert text_of(driver, "visit-state") == "reported"
    shot(driver, "registers-visit-en")
