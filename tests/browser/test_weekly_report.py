"""The weekly report's page in a real browser (headless Chromium): a supervisor opens it from
the reports page, reads the figures of the week (the integration test's week, its figures
computed by hand there), sees the charts load, goes a week back with the week picker and
forward with the link, in English and in Chinese; a client user sees only its own batch.
Screenshots of each page are kept in test-artifacts/screenshots/."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from selenium.webdriver.common.by import By

from people.roles import Role
from recorder.archive import FilesystemArchive
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
from tests.browser.conftest import screenshots_dir
from tests.browser.test_console_pages import sign_in, submit, text_of, wait_for
from tests.console_kit import cheap_accounts, seed_users, user_of
from tests.integration.test_weekly_report import seed_week
from tests.live_console import LiveConsole


@pytest.fixture
def live(tmp_path):
    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        await seed_users(accounts)
        ledger = Ledger(db, Signer(Ed25519PrivateKey.generate()), clock, checkpoint_every=5,
                        witness=CheckpointWitness(FilesystemArchive(tmp_path / "archive"), retain_years=10))
        await seed_week(db, accounts, ledger, clock, tmp_path)
        return {"accounts": accounts}

    with LiveConsole(tmp_path, prepare) as console:
        yield console


def whole_page_shot(driver, name: str) -> None:
    """The whole page, not only the window: the window made as tall as the page first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(900, min(int(height) + 40, 6000)))
    driver.save_screenshot(str(screenshots_dir() / f"{name}.png"))
    driver.set_window_size(1280, 900)


def charts_loaded(driver) -> bool:
    return all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
               for img in driver.find_elements(By.CSS_SELECTOR, "#charts img"))


def row_of(driver, table: str, label: str) -> list[str]:
    for row in driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr"):
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        if cells and cells[0] == label:
            return cells
    raise AssertionError(f"no row {label} in {table}")


def test_the_weekly_report_page_in_both_languages_and_a_clients_own(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.SUPERVISOR))  # the seeded users read English
    driver.get(f"{live.base}/reports")
    submit(driver, "weekly-report")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Weekly report 2026-W48", "the last complete week"
    assert row_of(driver, "by-collector", "collector1")[1:] == [
        "1", "CN¥1,000.00", "3", "1", "33.3%", "0:02:06", "1", "1", "100%", "CN¥200.00", "20%", "1"]
    assert row_of(driver, "by-batch", "Total")[1:] == [
        "3", "CN¥2,200.00", "5", "3", "60%", "0:03:40", "3", "1", "50%", "CN¥350.00", "15.9%", "3"]
    assert text_of(driver, "c-outside-rules").endswith("0") and text_of(driver, "c-unrecorded").endswith("0")
    assert text_of(driver, "c-verified").endswith("2")
    assert "No call broke the rules" in text_of(driver, "compliance-verdict")
    assert driver.find_element(By.ID, "download-pdf").get_attribute("href").endswith("/api/reports/weekly/2026-W48.pdf")
    wait_for(driver, lambda: charts_loaded(driver))
    whole_page_shot(driver, "weekly-report-en")

    driver.execute_script("document.getElementById('week').value = '2026-W47'")
    submit(driver, "show-week")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Weekly report 2026-W47"
    assert row_of(driver, "by-batch", "Total")[1] == "3" and "CN¥30.00" in row_of(driver, "by-batch", "Total")
    submit(driver, "next-week")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Weekly report 2026-W48"
    submit(driver, "next-week")  # the week in progress, so far
    assert driver.find_element(By.TAG_NAME, "h1").text == "Weekly report 2026-W49"
    assert not driver.find_elements(By.ID, "next-week"), "no link to a week that has not begun"
    submit(driver, "previous-week")

    submit(driver, "lang")
    assert driver.find_element(By.TAG_NAME, "h1").text == "每周欠费缴费统计报表 2026-W48"
    assert row_of(driver, "by-batch", "合计")[2] == "¥2,200.00" and "违规呼叫" in text_of(driver, "compliance")
    wait_for(driver, lambda: charts_loaded(driver))
    whole_page_shot(driver, "weekly-report-zh")

    sign_in(driver, live, user_of(Role.CLIENT))
    driver.get(f"{live.base}/reports/weekly?week=2026-W48")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "cu/B-1" in body and "other/B-9" not in body and "client cu" in body
    assert row_of(driver, "by-batch", "Total")[1:3] == ["2", "CN¥1,500.00"]
    wait_for(driver, lambda: charts_loaded(driver))
    whole_page_shot(driver, "client-weekly-report-en")
