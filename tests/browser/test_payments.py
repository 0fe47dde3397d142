"""Payments in a real browser (headless Chromium): a supervisor imports the client's payment
file with a bad row, reads the summary and the error report, and finds the case's balance
lowered on its page, each payment with its receipt and whom it is credited to (the promise's
collector and campaign); the case paid in full reads settled; the collector whose case it is
reads the same on their own case's page, in English. A screenshot of every page is kept."""
from __future__ import annotations

from datetime import timedelta

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from cases import dispositions_store
from cases.batches import BatchImporter
from people.roles import Role
from storage import repositories as repo
from storage.campaigns import Campaign
from storage.models import Attempt, Case
from tests.batch_files import csv_bytes, good_row
from tests.browser.test_console_pages import shot, sign_in, submit, text_of, wait_for
from tests.console_kit import cheap_accounts, seed_users, user_of
from tests.live_console import LiveConsole
from tests.payment_files import pay_row, pay_xlsx

PROMISED_CALL = "b" * 32


@pytest.fixture
def live(tmp_path):
    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        ids = await seed_users(accounts)
        await accounts.set_phone(user_of(Role.COLLECTOR), "6001", by="test")
        data = csv_bytes([good_row(n) for n in range(1, 4)])
        importer = BatchImporter(db, clock)
        await importer.run(await importer.start(client="cu", filename="B2026-11.csv", data=data, by="t"), data)
        async with db.session() as s:
            await s.execute(Case.__table__.update().where(Case.__table__.c.id == "cu-AC000001")
                            .values(collector_id=ids[Role.COLLECTOR]))
            campaign = Campaign(name="冬季回款", client="cu", mode="progressive", status="running", created_by="t",
                                created_at=clock())
            s.add(campaign)
            await s.flush()
            case = await repo.get_case(s, "cu-AC000001")
            called = clock() - timedelta(days=2)
            s.add(Attempt(id=PROMISED_CALL, case_id=case.id, phone_id=case.phones[0].id, number=case.phones[0].number,
                          collector="6001", state="ended", outcome="answered", created_at=called, answered_at=called,
                          ended_at=called + timedelta(minutes=4), bridged_seconds=200.0, campaign_id=campaign.id))
        now = clock()
        clock.set(now - timedelta(days=2) + timedelta(minutes=5))
        await dispositions_store.record(db, clock, PROMISED_CALL, {"code": "promise_to_pay", "amount": "300",
                                                                    "promise_date": "2026-11-29"},
                                        by=user_of(Role.COLLECTOR))
        clock.set(now)
        return {"accounts": accounts}

    with LiveConsole(tmp_path, prepare) as console:
        yield console


def state_of(driver) -> str | None:
    """The import's state, or None while the page is being refreshed (it reloads itself each second)."""
    try:
        return driver.find_element(By.ID, "state").get_attribute("data-state")
    except WebDriverException:
        return None


def test_a_supervisor_imports_payments_and_the_case_page_shows_the_balance(browser, live, tmp_path):
    driver = browser
    file = tmp_path / "缴费记录-2026-11.xlsx"
    file.write_bytes(pay_xlsx([pay_row("AC000001", "300.00", "2026-11-29", "SJ20261129-01", "债务人1"),
                               pay_row("AC000002", "1002.50", "2026-11-29", "SJ20261129-02", "债务人2"),
                               pay_row("AC000099", "50", "2026-11-29", "SJ20261129-03", "查无此人")]))
    sign_in(driver, live, user_of(Role.SUPERVISOR))
    driver.get(f"{live.base}/lang/zh-CN?next=/payments")
    driver.find_element(By.ID, "client").send_keys("cu")
    driver.find_element(By.ID, "file").send_keys(str(file))
    shot(driver, "supervisor-payments-upload")
    submit(driver, "import")
    wait_for(driver, lambda: state_of(driver) == "done")
    summary = text_of(driver, "summary")
    assert "导入 2 笔" in summary and "¥1,302.50" in summary and "拒绝 1 行" in summary, summary
    errors = text_of(driver, "errors")
    assert "AC000099" in errors and "账号" in errors
    shot(driver, "supervisor-payments-errors")

    driver.get(f"{live.base}/cases/cu-AC000001")
    assert text_of(driver, "paid") == "¥300.00"
    assert text_of(driver, "balance") == "¥701.50", "arrears ¥1,001.50 less ¥300.00"
    row = driver.find_element(By.CSS_SELECTOR, "#payments tbody tr").text
    assert "SJ20261129-01" in row and "¥300.00" in row and "2026年11月29日" in row
    assert "承诺缴费" in row and "collector one" in row and "冬季回款" in row, row
    shot(driver, "supervisor-case-payments-zh")

    driver.get(f"{live.base}/cases/cu-AC000002")
    assert text_of(driver, "status").startswith("已结清") and text_of(driver, "balance") == "¥0.00"
    shot(driver, "supervisor-case-settled-zh")

    sign_in(driver, live, user_of(Role.COLLECTOR))  # reads English
    driver.get(f"{live.base}/cases/cu-AC000001")
    assert text_of(driver, "balance") == "CN¥701.50"
    assert "promise to pay" in driver.find_element(By.ID, "payments").text
    shot(driver, "collector-case-payments-en")
    driver.get(f"{live.base}/payments")
    assert "may not" in driver.find_element(By.TAG_NAME, "body").text
