"""Quality control in a real browser (headless Chromium) on a console with real recordings
(ingested into a real archive, every play and score in a real ledger): a QC officer draws
last week's sample, opens a call, plays each side (the browser fetches the audio through the
recordings API with the reason `qc`, ledgered), is refused a fail without a comment, saves
the scorecard; the collector then finds it, with the comment, on their "my QC" page, and
their team lead on the team's. Screenshots in zh-CN and English."""
from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from selenium.webdriver.common.by import By

from cases.qc import parse_week
from people.roles import Role
from recorder import ledger_store
from recorder.archive import FilesystemArchive
from recorder.ledger import Signer
from recorder.ledger_store import Ledger
from recorder.witness import CheckpointWitness
from tests.browser.test_console_pages import shot, sign_in, submit, text_of, wait_for
from tests.console_kit import cheap_accounts, seed_users, user_of
from tests.live_console import LiveConsole
from tests.qc_kit import attempt_id, seed_calls

W48 = parse_week("2026-W48")  # the week before the console's clock (Monday 30 Nov 2026, noon in Beijing)
CALLS = [(attempt_id(n), f"QC-{n % 2}", "6001", W48.starts_at + timedelta(days=n % 7, hours=2 + n)) for n in range(1, 6)]
CALLS += [(attempt_id(9), "QC-9", "6002", W48.starts_at + timedelta(days=2))]  # another collector's


@pytest.fixture
def live(tmp_path):
    async def prepare(db, clock):
        accounts = cheap_accounts(db, clock)
        await seed_users(accounts)
        await accounts.add_user(username="collector2", display_name="collector two", role="collector",
                                password="correct horse battery", by="test", locale="en")
        await accounts.set_phone(user_of(Role.COLLECTOR), "6001", by="test")
        await accounts.set_phone("collector2", "6002", by="test")
        ledger = Ledger(db, Signer(Ed25519PrivateKey.generate()), clock, checkpoint_every=5,
                        witness=CheckpointWitness(FilesystemArchive(tmp_path / "archive"), retain_years=10))
        archive = await seed_calls(db, ledger, clock, tmp_path, CALLS)
        return {"accounts": accounts, "store": archive, "ledger": ledger}

    with LiveConsole(tmp_path, prepare) as console:
        yield console


def ledger_entries(live, action: str):
    async def read():
        async with live.db.session() as s:
            return [e for e in await ledger_store.entries(s) if e.action == action]
    return live.run(read())


def language(driver, live, code: str, path: str) -> None:
    """The language switch (a cookie, as the header's link sets it), then the page at `path`."""
    driver.get(f"{live.base}/lang/{code}?next={path}")
    wait_for(driver, lambda: driver.find_elements(By.ID, "me"))


def shot_at(driver, element_id: str, name: str) -> None:
    """A screenshot with that part of the page in view."""
    driver.execute_script("document.getElementById(arguments[0]).scrollIntoView()", element_id)
    shot(driver, name)


def play(driver, audio_id: str) -> int:
    """Fetch what an <audio> element plays, as the browser would (same origin, its cookie)."""
    src = driver.find_element(By.ID, audio_id).get_attribute("src")
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.arrayBuffer().then(b => done(r.status * 1000000"
        " + b.byteLength))).catch(() => done(-1));", src)


def test_a_scorecard_saved_by_qc_shows_on_the_collectors_page(browser, live):
    driver = browser
    sign_in(driver, live, user_of(Role.QC))  # qc1 reads English
    driver.find_element(By.LINK_TEXT, "QC queue").click()
    wait_for(driver, lambda: driver.find_elements(By.ID, "sample-form"))
    assert driver.find_element(By.ID, "sample-week").get_attribute("value") == "2026-W48", "last week by default"
    size = driver.find_element(By.ID, "sample-size")
    size.clear()
    size.send_keys("3")
    shot(driver, "qc-queue-sample-form-en")
    submit(driver, "sample-run")
    assert "2026-W48: 2 samples made (4 calls)" in text_of(driver, "message"), text_of(driver, "message")
    rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    assert len(rows) == 4 and sum("collector1" in r.text for r in rows) == 3
    first = next(r for r in rows if "collector1" in r.text).get_attribute("id").split("-")[1]
    shot(driver, "qc-queue-en")
    language(driver, live, "zh-CN", "/qc/queue")
    assert "质检队列" in driver.find_element(By.TAG_NAME, "h1").text
    shot(driver, "qc-queue-zh")
    language(driver, live, "en", "/qc/queue")

    driver.get(f"{live.base}/qc/items/{first}")
    assert "collector1" in text_of(driver, "collector")
    # each side and both, played through the recordings API with the reason qc
    for leg in ("mixed", "rx", "tx"):
        answer = play(driver, f"audio-{leg}")
        assert answer // 1000000 == 200 and answer % 1000000 > 8000, (leg, answer)
    plays = ledger_entries(live, "access")
    assert [(e.actor, e.detail_map()["why"], e.detail_map()["leg"]) for e in plays] == [
        ("qc1", "qc", "mixed"), ("qc1", "qc", "rx"), ("qc1", "qc", "tx")]
    shot(driver, "qc-item-en")

    # a fail without a comment is refused, nothing stored, the choices kept
    for key, result in (("greeting", "pass"), ("identity_verified", "pass"), ("no_threats", "pass"),
                        ("correct_amounts", "fail"), ("third_party_consent", "na"), ("care_handled", "na"),
                        ("allowed_hours", "pass")):
        driver.find_element(By.ID, f"item-{key}-{result}").click()
    shot_at(driver, "scorecard", "qc-scorecard-filled-en")
    submit(driver, "score-save")
    assert "say why an item failed" in text_of(driver, "message")
    assert driver.find_element(By.ID, "item-correct_amounts-fail").is_selected()
    assert ledger_entries(live, "qc_score") == []
    shot(driver, "qc-item-refused-en")
    driver.find_element(By.ID, "comments").send_keys("告知欠款 1500 元，实际为 1234.50 元 / said 1,500 yuan, owed 1,234.50")
    submit(driver, "score-save")
    assert "Score #1 saved: 81 (in the ledger)" in text_of(driver, "message"), text_of(driver, "message")
    [entry] = ledger_entries(live, "qc_score")
    assert entry.actor == "qc1" and entry.detail_map()["total"] == 81
    shot(driver, "qc-item-scored-en")
    shot_at(driver, "history", "qc-item-scores-en")
    language(driver, live, "zh-CN", f"/qc/items/{first}")
    assert "当前评分 #1：81 分" in text_of(driver, "current")
    shot(driver, "qc-item-scored-zh")
    shot_at(driver, "scorecard", "qc-scorecard-zh")

    # the collector finds it on their page, with the comment, and can play the call
    sign_in(driver, live, user_of(Role.COLLECTOR))
    driver.find_element(By.LINK_TEXT, "QC scores").click()
    wait_for(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "section.qc-score"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "My QC"
    [card] = driver.find_elements(By.CSS_SELECTOR, "section.qc-score")
    assert "QC score 81" in card.text and "said 1,500 yuan, owed 1,234.50" in card.text
    assert "Correct amounts" in card.text and "fail" in card.text
    answer = play(driver, "audio-1")
    assert answer // 1000000 == 200, answer
    assert [e.actor for e in ledger_entries(live, "access")][-1] == "collector1"
    shot(driver, "collector-my-qc-en")
    language(driver, live, "zh-CN", "/qc/scores")
    assert driver.find_element(By.TAG_NAME, "h1").text == "我的质检"
    assert "告知欠款 1500 元" in driver.find_element(By.CSS_SELECTOR, "section.qc-score").text
    shot(driver, "collector-my-qc-zh")
    driver.get(f"{live.base}/qc/report")
    assert "collector1" in text_of(driver, "report") and "collector2" not in text_of(driver, "report")
    shot(driver, "collector-qc-report-zh")
    driver.get(f"{live.base}/qc/queue")
    assert "may not" in driver.find_element(By.TAG_NAME, "body").text or "无权" in driver.find_element(
        By.TAG_NAME, "body").text

    # the team lead (team north: collector1's) sees the team's; a supervisor reads the report
    sign_in(driver, live, user_of(Role.TEAM_LEAD))
    driver.get(f"{live.base}/qc/scores")
    assert driver.find_element(By.TAG_NAME, "h1").text == "My team's QC"
    assert "collector1" in driver.find_element(By.CSS_SELECTOR, "section.qc-score").text
    shot(driver, "team-lead-qc-scores-en")
    sign_in(driver, live, user_of(Role.SUPERVISOR))
    driver.get(f"{live.base}/qc/report")
    report = text_of(driver, "report")
    assert "collector1" in report and "collector2" in report
    assert "81.0" in text_of(driver, "report-collector1")
    shot(driver, "supervisor-qc-report-en")
    language(driver, live, "zh-CN", "/qc/report")
    shot(driver, "supervisor-qc-report-zh")
