"""The screen pop on the real sandbox in real headless Chromium: a collector signs in, opens
their seat from the floor page (their phone, a sandbox phone, answers), a debtor answers and is
bridged to them, and their page shows that case by itself; zh-CN and English screenshots."""
from __future__ import annotations

import asyncio

import pytest
from selenium.webdriver.common.by import By

from tests.browser.conftest import browser, screenshots_dir  # noqa: F401  (the fixture)
from tests.browser.test_console_pages import submit
from tests.e2e.conftest import start_harness

pytestmark = pytest.mark.e2e

PASSWORD = "floor-Page-2026-pop"


async def _until(predicate, timeout: float = 30.0, poll: float = 0.2):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(poll)


async def test_the_collectors_page_shows_the_case_the_moment_the_call_is_bridged(sandbox_info, tmp_path, browser):
    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True})
    service = h.service
    base = f"http://127.0.0.1:{service.settings.console.port}"
    try:
        await service.accounts.add_user(username="li", display_name="Li Collector", role="collector",
                                        password=PASSWORD, by="test", phone="6001", locale="zh-CN")
        await h.add_case("FL-POP", "15555300031")  # answer after 1 s, talk 6 s

        def sign_in_and_open_the_seat() -> None:
            browser.get(f"{base}/login")
            browser.find_element(By.ID, "username").send_keys("li")
            browser.find_element(By.ID, "password").send_keys(PASSWORD)
            submit(browser, "sign-in")
            browser.get(f"{base}/floor")
            submit(browser, "open-seat")

        await asyncio.to_thread(sign_in_and_open_the_seat)
        await _until(lambda: service.seats.floor.ready_count(service.seats.now()) == 1)
        await asyncio.to_thread(browser.get, f"{base}/floor")  # the page that waits for calls
        await asyncio.to_thread(browser.save_screenshot, str(screenshots_dir() / "floor-waiting-zh.png"))

        attempt = await service.dial("FL-POP")
        await _until(lambda: browser.current_url.endswith(f"/floor/calls/{attempt.id}"))
        title = await _until(lambda: browser.find_elements(By.ID, "case-title") and
                             browser.find_element(By.ID, "case-title").text)
        assert "FL-POP" in title
        assert browser.find_element(By.ID, "on-call").is_displayed()
        await asyncio.to_thread(browser.save_screenshot, str(screenshots_dir() / "floor-screen-pop-zh.png"))
        ended = await h.wait_attempt(attempt.id, until=lambda a: a.bridged_seconds is not None)
        assert ended.collector == "6001" and ended.bridged_seconds > 3

        def in_english() -> None:
            browser.find_element(By.ID, "lang").click()
        await asyncio.to_thread(in_english)
        await _until(lambda: "On a call" in browser.page_source)
        await asyncio.to_thread(browser.save_screenshot, str(screenshots_dir() / "floor-screen-pop-en.png"))
    finally:
        await service.stop(drain_timeout=30)
