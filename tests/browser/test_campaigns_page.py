"""The campaigns page in real headless Chromium: a supervisor creates a campaign with the form
(a bad name is refused with the reason, nothing stored), starts and pauses it; a team lead
sees the campaigns but has no buttons. Screenshots in English and zh-CN."""
from __future__ import annotations

from selenium.webdriver.common.by import By

from dialer import campaign_store
from people.roles import Role
from tests.browser.test_console_pages import live, shot, sign_in, submit, text_of  # noqa: F401  (the fixture)
from tests.console_kit import user_of


def _stored(live):
    async def read(db):
        async with db.session() as s:
            return [(c.name, c.mode, c.status, c.selection, c.phone_order, c.retry_spacing_s, c.amd)
                    for c in await campaign_store.all_campaigns(s)]
    return live.run(read(live.db))


def test_a_supervisor_creates_starts_and_pauses_a_campaign(browser, live):
    sign_in(browser, live, user_of(Role.SUPERVISOR))
    browser.get(f"{live.base}/campaigns")
    assert text_of(browser, "no-campaigns")
    browser.find_element(By.ID, "campaign-name").send_keys("bad name!")
    browser.execute_script("document.getElementById('campaign-name').removeAttribute('pattern')")
    submit(browser, "create-campaign")
    assert "name" in text_of(browser, "message") and _stored(live) == []

    browser.get(f"{live.base}/campaigns")
    browser.find_element(By.ID, "campaign-name").send_keys("north-week49")
    browser.find_element(By.CSS_SELECTOR, "#campaign-mode option[value=predictive]").click()
    browser.find_element(By.ID, "campaign-segments").send_keys("A, B")
    browser.find_element(By.ID, "order-third_party").click()
    browser.find_element(By.ID, "campaign-retry").clear()
    browser.find_element(By.ID, "campaign-retry").send_keys("6")
    browser.find_element(By.ID, "campaign-amd").click()
    submit(browser, "create-campaign")
    assert "north-week49" in text_of(browser, "message")
    assert _stored(live) == [("north-week49", "predictive", "draft", {"segments": ["A", "B"]},
                              ["own", "work", "family", "third_party"], 6 * 3600, True)]
    row = browser.find_element(By.CSS_SELECTOR, "tr.campaign")
    campaign_id = row.get_attribute("id").removeprefix("campaign-")
    submit(browser, f"start-campaign-{campaign_id}")
    assert browser.find_element(By.ID, f"campaign-{campaign_id}").get_attribute("data-status") == "running"
    shot(browser, "campaigns-running-en")
    submit(browser, f"pause-campaign-{campaign_id}")
    assert browser.find_element(By.ID, f"campaign-{campaign_id}").get_attribute("data-status") == "paused"
    assert _stored(live)[0][2] == "paused"
    browser.get(f"{live.base}/campaigns")
    browser.find_element(By.ID, "lang").click()
    assert "已暂停" in browser.find_element(By.ID, f"campaign-{campaign_id}").text
    shot(browser, "campaigns-paused-zh")

    sign_in(browser, live, user_of(Role.TEAM_LEAD))
    browser.get(f"{live.base}/campaigns")
    assert browser.find_elements(By.ID, f"campaign-{campaign_id}")
    assert not browser.find_elements(By.ID, f"start-campaign-{campaign_id}")
    assert not browser.find_elements(By.ID, "new-campaign")
