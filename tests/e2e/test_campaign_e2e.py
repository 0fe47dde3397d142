"""A predictive campaign on the real sandbox: 4 collectors on their phones (4 baresip phones),
40 cases of mixed outcomes, the engine's pacer dialling through the real PBX to the fake
carrier.

- every answered call is bridged to a ready collector whose page shows that case (collector
  6001 in real headless Chromium: the page follows the floor's events and opens the case by
  itself; 6002-6004 read the very same event stream through the console over HTTP), or is
  abandoned with the message; the abandoned count equals what the carrier's own call log
  shows (an abandoned call ends after the message, long before the debtor's scripted talk);
- answer -> collector latency is measured on every bridged call, its p95 reported
  (test-artifacts/campaign-e2e.json; tests never assert on wall time);
- the policy is respected (a disputed case is refused with its rule, a do-not-call phone is
  never tried), no phone is dialled twice (the carrier's log: one call per number);
- pausing the campaign places no new call; a collector whose phone unregisters while the
  campaign runs gets no further call;
- the supervisor's wallboard (Chromium, zh-CN and English) shows the campaign's counts.
"""
from __future__ import annotations

import asyncio
import csv
import json
import math
import random
import threading

import aiohttp
import pytest
from selenium.webdriver.common.by import By
from sqlalchemy import select, update

from asterisk_conf import sandbox
from storage import repositories as repo
from storage.models import Attempt, Case, Phone, PolicyDecision
from tests.browser.conftest import browser, screenshots_dir  # noqa: F401  (the fixture)
from tests.browser.test_console_pages import submit
from tests.e2e.conftest import E2E_CALLER_ID, start_harness

pytestmark = pytest.mark.e2e

PASSWORD = "campaign-Floor-2026"
PHONES = ("6001", "6002", "6003", "6004")
TALK_S = 12  # carrier 155556XXXXX: answer after 1 s, talk 12 s, then the carrier hangs up
SEGMENT = "E2E-PREDICTIVE"


def _numbers() -> dict[str, tuple[str, str]]:
    """case id -> (number, what the carrier does)."""
    plan = ([("155556", "answers")] * 22 + [("155520", "busy")] * 6 + [("155530", "no answer")] * 4
            + [("155540", "congestion")] * 3 + [("156000", "unallocated")] * 3)
    random.Random(20261207).shuffle(plan)  # outcomes mixed as in a real batch, the same every run
    return {f"PR-{i:02d}": (f"{prefix}{i:05d}", kind) for i, (prefix, kind) in enumerate(plan)}


async def _until(predicate, timeout: float = 30.0, poll: float = 0.2, what: str = ""):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate() if asyncio.iscoroutinefunction(predicate) else predicate()
        if value:
            return value
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(poll)


def _carrier_rows(info) -> list[list[str]]:
    if not info.carrier_call_log.exists():
        return []
    with info.carrier_call_log.open(newline="") as handle:
        return list(csv.reader(handle))


class EventReader:
    """A collector's console event stream (what their page's script follows), over HTTP."""

    def __init__(self, base: str, username: str) -> None:
        self.base, self.username = base, username
        self.shown: dict[str, str] = {}  # attempt id -> case id, as the stream announced them
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(headers={"Origin": self.base}, cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with self.http.post(f"{self.base}/api/session",
                                  json={"username": self.username, "password": PASSWORD}) as r:
            assert r.status == 201, await r.text()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with self.http.get(f"{self.base}/api/floor/events", timeout=aiohttp.ClientTimeout(total=None)) as r:
            assert r.status == 200
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    seat = json.loads(line[6:])
                    if seat["state"] in ("reserved", "on_call") and seat["attempt_id"] and seat["case_id"]:
                        self.shown.setdefault(seat["attempt_id"], seat["case_id"])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.http.close()


class PageWatcher(threading.Thread):
    """Collector 6001's page in Chromium: which call's case it showed (URL and title)."""

    def __init__(self, driver) -> None:
        super().__init__(daemon=True)
        self.driver, self.shown, self.halt = driver, {}, threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                url = self.driver.current_url
                if "/floor/calls/" in url:
                    attempt_id = url.rsplit("/", 1)[-1]
                    titles = self.driver.find_elements(By.ID, "case-title")
                    if titles and attempt_id not in self.shown:
                        self.shown[attempt_id] = titles[0].text
            except Exception:  # a page mid-load: look again
                pass
            self.halt.wait(0.1)


async def test_a_predictive_campaign_connects_every_answer_or_abandons_it_with_the_message(
        sandbox_info, tmp_path, browser):  # noqa: F811
    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True, "campaign_tick_s": 0.25})
    service = h.service
    base = f"http://127.0.0.1:{service.settings.console.port}"
    logged_before = len(_carrier_rows(sandbox_info))  # the carrier's log is the whole session's
    readers: list[EventReader] = []
    watcher = PageWatcher(browser)
    unregistered = False
    try:
        for i, phone in enumerate(PHONES):
            await service.accounts.add_user(username=f"col{i + 1}", display_name=f"Collector {i + 1}",
                                            role="collector", password=PASSWORD, by="test", phone=phone)
        await service.accounts.add_user(username="boss", display_name="Supervisor", role="supervisor",
                                        password=PASSWORD, by="test", locale="zh-CN")
        numbers = _numbers()
        async with service.db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            for case_id, (number, _) in numbers.items():
                await repo.add_case(s, Case(id=case_id, client="e2e", debtor_name="Debtor " + case_id,
                                            timezone="Asia/Shanghai", segment=SEGMENT, amount_due_cents=123400,
                                            created_at=service.clock()), [repo.NewPhone(number)])
            # within the selection but never to be dialled: a dispute, a do-not-call phone
            await repo.add_case(s, Case(id="PR-DISPUTE", client="e2e", debtor_name="Disputed", segment=SEGMENT,
                                        timezone="Asia/Shanghai", flags=["dispute"], created_at=service.clock()),
                                [repo.NewPhone("15555800901")])
            await repo.add_case(s, Case(id="PR-DNC", client="e2e", debtor_name="Do not call",
                                        segment=SEGMENT, timezone="Asia/Shanghai", created_at=service.clock()),
                                [repo.NewPhone("15555800902")])
            await s.execute(update(Phone).where(Phone.number == "15555800902").values(do_not_call=True))
            # outside the selection
            await repo.add_case(s, Case(id="OTHER-1", client="e2e", debtor_name="Other", segment="ELSEWHERE",
                                        timezone="Asia/Shanghai", created_at=service.clock()),
                                [repo.NewPhone("15555800903")])

        # collector 6001 signs in in Chromium and opens their seat; the others through the console
        def sign_in_and_open_the_seat() -> None:
            browser.get(f"{base}/login")
            browser.find_element(By.ID, "username").send_keys("col1")
            browser.find_element(By.ID, "password").send_keys(PASSWORD)
            submit(browser, "sign-in")
            browser.get(f"{base}/floor")
            submit(browser, "open-seat")
            browser.get(f"{base}/floor")

        await asyncio.to_thread(sign_in_and_open_the_seat)
        for i in (2, 3, 4):
            reader = EventReader(base, f"col{i}")
            await reader.start()
            readers.append(reader)
        await service.open_seats(PHONES[1:])
        await _until(lambda: service.seats.floor.ready_count(service.seats.now()) == 4, what="4 seats ready")
        watcher.start()

        boss = aiohttp.ClientSession(headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            async with boss.post(f"{base}/api/session", json={"username": "boss", "password": PASSWORD}) as r:
                csrf = (await r.json())["csrf_token"]
            boss.headers["X-CSRF-Token"] = csrf

            async def post(path: str, body=None) -> dict:
                async with boss.post(f"{base}{path}", json=body) as r:
                    assert r.status in (200, 201), (path, r.status, await r.text())
                    return await r.json()

            campaign = await post("/api/campaigns", {"name": "predictive-e2e", "mode": "predictive", "client": "e2e",
                                                     "selection": {"segments": [SEGMENT]}, "retry_spacing_s": 3600})
            cid = campaign["id"]

            async def attempts() -> list[Attempt]:
                async with service.db.session() as s:
                    return list((await s.scalars(select(Attempt).where(Attempt.campaign_id == cid)
                                                 .order_by(Attempt.created_at))).all())

            await post(f"/api/campaigns/{cid}/start")
            await _until(lambda: service.campaigns.placed >= 12, timeout=90, what="12 dials placed")

            # pause: from the moment the pause is stored, the campaign places no new call
            await post(f"/api/campaigns/{cid}/pause")
            at_pause = len(await attempts())
            await asyncio.sleep(3.0)  # a dozen engine ticks with ready collectors and cases left
            assert len(await attempts()) == at_pause, "a paused campaign placed a call"

            # 6004's phone unregisters (once it is not on a call): its seat is gone at once
            await _until(lambda: all(s.state.value not in ("reserved", "on_call") for s in service.seats.floor.seats()
                                     if s.collector == "6004"), timeout=40, what="6004 off its call")
            await asyncio.to_thread(sandbox.unregister_phone, sandbox_info, "6004")
            unregistered = True
            await _until(lambda: "6004" not in [s.collector for s in service.seats.floor.seats()], timeout=20,
                         what="6004's seat closed")
            await post(f"/api/campaigns/{cid}/start")
            resumed_at = service.clock()

            dialable = [c for c in numbers]
            await _until(lambda: service.campaigns.placed >= len(dialable), timeout=240, poll=0.5,
                         what="every dialable case dialled")

            async def all_over() -> bool:
                return all(a.state == "ended" for a in await attempts())
            await _until(all_over, timeout=120, poll=0.5, what="every call over")
            done = await attempts()
            board = await (await boss.get(f"{base}/api/campaigns/{cid}")).json()
        finally:
            await boss.close()

        # -- what the PBX and the carrier did --------------------------------------------------
        assert sorted(a.case_id for a in done) == sorted(dialable), "each dialable case dialled exactly once"
        rows = _carrier_rows(sandbox_info)[logged_before:]
        for case_id, (number, _) in numbers.items():
            assert sum(1 for row in rows if row[2] == number) == 1, f"{number} dialled more than once"
        for never in ("15555800901", "15555800902", "15555800903"):
            assert not any(row[2] == never for row in rows), f"{never} should never have been dialled"
        async with service.db.session() as s:
            refused = (await s.scalars(select(PolicyDecision).where(PolicyDecision.case_id == "PR-DISPUTE"))).all()
        assert refused and all(not d.allowed and d.rule == "dispute" for d in refused)

        answered = [a for a in done if a.answered_at is not None]
        assert {a.case_id for a in answered} == {c for c, (_, kind) in numbers.items() if kind == "answers"}
        abandoned = [a for a in answered if a.abandoned]
        connected = [a for a in answered if not a.abandoned]
        for a in connected:
            assert a.collector in PHONES and a.bridged_seconds and a.bridged_seconds > TALK_S - 4, a.id
            assert a.answer_to_bridge_s is not None, a.id
        for a in abandoned:
            assert not a.bridged_seconds, "an abandoned debtor was bridged to nobody"
        # the carrier's witness: a debtor abandoned hears the message and is hung up on long
        # before their scripted talk ends; a connected one talks to the end
        billsec = {row[2]: int(row[13]) for row in rows if row[2].startswith("155556") and row[14] == "ANSWERED"}
        carrier_cut_short = {n for n, secs in billsec.items() if secs < TALK_S - 4}
        assert carrier_cut_short == {a.number for a in abandoned}
        assert len(carrier_cut_short) == board["window"]["abandoned"]
        assert board["window"]["placed"] == len(done) and board["window"]["answered"] == len(answered)

        # no call reached 6004 after its phone unregistered
        assert not [a for a in done if a.collector == "6004" and a.created_at >= resumed_at]

        # every connected call's case was on its collector's page
        await asyncio.sleep(1.0)
        watcher.halt.set()
        watcher.join(5)
        # the last call on 6001's page is over: its wrap-up timer runs (zh-CN)
        wrap_up = await _until(lambda: browser.find_elements(By.ID, "wrap-up") and
                               browser.find_element(By.ID, "wrap-up").is_displayed() and
                               browser.find_element(By.ID, "wrap-up").text, timeout=10, what="the wrap-up timer")
        assert "话后处理" in wrap_up
        await asyncio.to_thread(browser.save_screenshot, str(screenshots_dir() / "screen-pop-wrap-up-zh.png"))
        shown = {**watcher.shown}
        for reader in readers:
            shown.update({a: f"stream:{c}" for a, c in reader.shown.items()})
        for a in connected:
            assert a.id in shown, f"{a.collector}'s page never showed case {a.case_id}"
            assert a.case_id in shown[a.id], (a.case_id, shown[a.id])
        assert any(a.collector == "6001" for a in connected), "the Chromium collector took calls"

        latencies = sorted(a.answer_to_bridge_s for a in connected)
        p95 = latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)] if latencies else None
        report = {"cases": len(numbers), "placed": len(done), "answered": len(answered),
                  "connected": len(connected), "abandoned": len(abandoned),
                  "abandon_rate": round(len(abandoned) / len(answered), 4) if answered else 0.0,
                  "answer_to_collector_p95_s": p95, "answer_to_collector_max_s": latencies[-1] if latencies else None}
        (screenshots_dir().parent / "campaign-e2e.json").write_text(json.dumps(report, indent=2))
        print("predictive campaign on the sandbox:", report)

        # the supervisor's wallboard shows the campaign's counts (zh-CN, then English)
        def wallboard() -> tuple[str, str]:
            browser.get(f"{base}/login")
            browser.delete_all_cookies()
            browser.get(f"{base}/login")
            browser.find_element(By.ID, "username").send_keys("boss")
            browser.find_element(By.ID, "password").send_keys(PASSWORD)
            submit(browser, "sign-in")
            browser.get(f"{base}/wallboard")
            row = browser.find_element(By.ID, f"campaign-{cid}")
            browser.save_screenshot(str(screenshots_dir() / "wallboard-campaign-zh.png"))
            placed = row.find_element(By.CLASS_NAME, "placed").text
            browser.find_element(By.ID, "lang").click()
            browser.find_element(By.ID, f"campaign-{cid}")
            browser.save_screenshot(str(screenshots_dir() / "wallboard-campaign-en.png"))
            return placed, browser.find_element(By.ID, f"campaign-{cid}").find_element(By.CLASS_NAME, "abandoned").text

        placed_text, abandoned_text = await asyncio.to_thread(wallboard)
        assert placed_text == str(len(done)) and abandoned_text == str(len(abandoned))
    finally:
        watcher.halt.set()
        for reader in readers:
            await reader.stop()
        await service.stop(drain_timeout=30)
        if unregistered:  # the session's sandbox is shared: the phone registers again
            await asyncio.to_thread(sandbox.register_phone, sandbox_info, "6004")
            await _until(lambda: "6004/sip:" in sandbox.asterisk_rx(sandbox_info, "pjsip show contacts"),
                         timeout=10, what="6004 registered again")
