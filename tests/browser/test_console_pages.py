"""The console in a real browser (headless Chromium), as its users work: each role signs in
and opens the pages its role allows; a supervisor imports a batch with bad rows and reads
the error report; assigns it; compliance puts a number on the do-not-call list and the
case's next dial is refused with the rule, shown on the page; the language switches
between 中文 and English. A screenshot of every page is kept."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import Select

from dialer.originate import DialSettings, place_call
from dialer.policy import profile
from people.roles import Permission, Role, may
from storage import repositories as repo
from storage.durable import DurableWriter
from storage.journal import Journal
from storage.models import Case
from tests.batch_files import bad_rows, good_row, xlsx_bytes
from tests.browser.conftest import screenshots_dir
from tests.console_kit import PASSWORD, cheap_accounts, seed_users, user_of
from tests.live_console import LiveConsole

PAGES = {"/cases": Permission.CASE_VIEW, "/batches": Permission.BATCH_VIEW, "/assignment": Permission.ASSIGN,
         "/rules/do-not-call": Permission.SUPPRESSION_MANAGE, "/rules/caller-ids": Permission.CALLER_ID_MANAGE,
         "/users": Permission.USER_MANAGE, "/reports": Permission.REPORT_VIEW}


class NoPbx:
    """The PBX side of a dial the policy allowed: recorded, never placed."""

    def __init__(self) -> None:
        self.originated: list[str] = []

    async def originate(self, channel, **kw):
        self.originated.append(channel)
        return {"Response": "Success", "ActionID": f"a{len(self.originated)}"}


@pytest.fixture
def live(tmp_path):
    link = NoPbx()

    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        ids = await seed_users(accounts)
        async with db.session() as s:
            await repo.approve_caller_id(s, "cu", "4008001000")
            await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="王芳", timezone="Asia/Shanghai",
                                        amount_due_cents=1_234_50, created_at=clock(),
                                        collector_id=ids[Role.COLLECTOR]), [repo.NewPhone("13800000001")])
        writer = DurableWriter(db, Journal(tmp_path / "facts.journal"), clock)

        async def dial(case_id, number, *, requested_by=None, collector=None):
            return await place_call(db, link, DialSettings(), case_id=case_id, collector="6001", clock=clock,
                                    policy=profile("client-default"), writer=writer, number=number)

        return {"accounts": accounts, "dial": dial}

    with LiveConsole(tmp_path, prepare) as console:
        console.link = link
        yield console


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(screenshots_dir() / f"{name}.png"))


def sign_in(driver, live, username: str, password: str = PASSWORD) -> None:
    driver.delete_all_cookies()
    driver.get(f"{live.base}/login")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    submit(driver, "sign-in")
    wait_for(driver, lambda: driver.find_elements(By.ID, "me") or driver.find_elements(By.ID, "message"))


def submit(driver, button_id: str) -> None:
    """Click a button that loads a new page, and wait for that page."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button_id).click()

    def replaced() -> bool:
        try:
            page.tag_name  # noqa: B018  (asks the browser whether the old page is still there)
        except WebDriverException:  # stale, or "does not belong to the document": a new page
            return driver.execute_script("return document.readyState") == "complete"
        return False

    wait_for(driver, replaced)


def text_of(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def wait_for(driver, predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {driver.current_url}")


def test_each_role_signs_in_and_opens_what_its_role_allows(browser, live):
    driver = browser
    driver.get(f"{live.base}/cases")
    assert "/login" in driver.current_url, "signed out: to the sign-in page"
    shot(driver, "login-zh")
    sign_in(driver, live, user_of(Role.SUPERVISOR), "wrong password!")
    assert "用户名或密码错误" in text_of(driver, "message")
    for role in Role:
        sign_in(driver, live, user_of(role))
        assert user_of(role) in text_of(driver, "me") or role.value in text_of(driver, "me")
        shot(driver, f"{role.value}-home")
        for path, permission in PAGES.items():
            driver.get(f"{live.base}{path}")
            body = driver.find_element(By.TAG_NAME, "body").text
            if may(role, permission):
                assert "may not" not in body and "/login" not in driver.current_url, (role, path, body[:200])
                shot(driver, f"{role.value}{path.replace('/', '-')}")
            else:
                assert "may not" in body, (role, path, body[:200])
        driver.get(f"{live.base}/")
        submit(driver, "sign-out")
        wait_for(driver, lambda: "/login" in driver.current_url)


def test_a_collector_sees_only_their_case_masked_and_switches_language(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.COLLECTOR))
    driver.get(f"{live.base}/cases")
    rows = driver.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
    assert len(rows) == 1 and "C-MINE" in rows[0].text and "138****0001" in rows[0].text
    money = {"案件": "¥1,234.50", "Cases": "CN¥1,234.50"}
    first = driver.find_element(By.TAG_NAME, "h1").text
    for _ in range(2):  # the user's own language (English for this collector), then the other one
        title = driver.find_element(By.TAG_NAME, "h1").text
        assert money[title] in driver.find_element(By.ID, "cases").text
        shot(driver, f"collector-cases-{'zh' if title == '案件' else 'en'}")
        submit(driver, "lang")
    assert driver.find_element(By.TAG_NAME, "h1").text == first, "switched back"


def test_a_supervisor_imports_a_batch_with_bad_rows_reads_the_report_and_assigns_it(browser, live, tmp_path):
    driver = browser
    file = tmp_path / "B2026-11.xlsx"
    file.write_bytes(xlsx_bytes([*[good_row(n) for n in range(1, 13)], *[b.cells for b in bad_rows()]]))
    sign_in(driver, live, user_of(Role.SUPERVISOR))
    driver.get(f"{live.base}/batches")
    driver.find_element(By.ID, "client").send_keys("cu")
    driver.find_element(By.ID, "file").send_keys(str(file))
    shot(driver, "supervisor-batch-upload")
    submit(driver, "import")
    wait_for(driver, lambda: driver.find_element(By.ID, "state").get_attribute("data-state") == "done")
    assert "12" in text_of(driver, "summary") and str(len(bad_rows())) in text_of(driver, "summary")
    errors = driver.find_element(By.ID, "errors").text
    for bad in bad_rows():
        assert bad.problem in errors, bad.problem
    assert "本人电话" in errors and "欠费金额" in errors
    shot(driver, "supervisor-batch-errors")
    driver.get(f"{live.base}/assignment")
    Select(driver.find_element(By.ID, "rule")).select_by_value("amount_band")
    submit(driver, "run-assign")
    assert "12" in text_of(driver, "message")
    assert "12" in driver.find_element(By.ID, "workload").text or "13" in driver.find_element(By.ID, "workload").text
    shot(driver, "supervisor-assignment")


def test_a_do_not_call_entry_refuses_the_next_dial_with_its_rule(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.COLLECTOR))
    driver.get(f"{live.base}/cases/C-MINE")
    phone_id = driver.find_element(By.CSS_SELECTOR, "button.dial").get_attribute("id").split("-")[1]
    submit(driver, f"dial-{phone_id}")
    assert "Call placed" in text_of(driver, "message") and len(live.link.originated) == 1  # the collector reads English
    shot(driver, "collector-case-dialled")
    sign_in(driver, live, user_of(Role.COMPLIANCE))
    driver.get(f"{live.base}/rules/do-not-call")
    driver.find_element(By.ID, "dnc-number").send_keys("138 0000 0001")
    driver.find_element(By.ID, "dnc-why").send_keys("debtor asked in writing")
    submit(driver, "dnc-add")
    assert "138" in driver.find_element(By.ID, "dnc").text
    shot(driver, "compliance-dnc")
    live.clock.advance(3600)  # past the gap between calls: only the list can refuse now
    sign_in(driver, live, user_of(Role.COLLECTOR))
    driver.get(f"{live.base}/cases/C-MINE")
    assert "DNC" in driver.find_element(By.ID, "phones").text
    submit(driver, f"dial-{phone_id}")
    message = text_of(driver, "message")
    assert "do_not_call" in message and "Not dialled" in message, message
    assert "13800000001" not in driver.find_element(By.TAG_NAME, "body").text, "a collector reads numbers masked"
    assert len(live.link.originated) == 1, "the refused dial never reached the PBX"
    assert "do_not_call" in driver.find_element(By.ID, "decisions").text
    shot(driver, "collector-case-dial-refused")
