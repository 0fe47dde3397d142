"""Quality control through the console (API and pages, the real app on loopback): QC draws the
week's sample, listens to each side through the recordings API with the reason `qc` (every
play an access in the ledger), saves a scorecard (its ledger entry), and the collector, their
lead and a supervisor each read what their reach gives them; hostile input stores nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from people.roles import Role
from recorder import ledger_store
from storage.qc import QcItem
from tests.console_kit import cheap_accounts, console
from tests.db_snapshot import snapshot
from tests.integration.test_qc import ALL_PASS, MINE_W49, archive, people, purged  # noqa: F401  (fixtures)


@pytest.fixture
async def running(db, clock, ledger, archive, people):  # noqa: F811
    async with console(db, cheap_accounts(db, clock), store=archive, ledger=ledger) as app:
        yield app


async def entries(db, action: str):
    async with db.session() as s:
        return [e for e in await ledger_store.entries(s) if e.action == action]


async def sampled(running, size: int = 2) -> dict:
    qc = await running.browser(Role.QC)
    resp = await qc.post("/api/qc/samples", json={"week": "2026-W49", "size": size, "seed": "console-test"})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def items_of(running, collector: str) -> list[dict]:
    qc = await running.browser(Role.QC)
    body = await (await qc.get("/api/qc/queue?week=2026-W49")).json()
    return [i for i in body["items"] if i["collector"] == collector]


async def test_qc_draws_the_weeks_sample_once(running, db, purged):  # noqa: F811
    qc = await running.browser(Role.QC)
    body = await sampled(running)
    mine = next(s for s in body["samples"] if s["collector"] == "collector1")
    assert mine["created"] and mine["candidates"] == 6 and set(mine["picked"]) <= set(MINE_W49)
    before = await snapshot(db)
    again = await qc.post("/api/qc/samples", json={"week": "2026-W49"})
    assert again.status == 200 and (await again.json())["created"] == 0
    for payload, status, words in (({"week": "2026-W50"}, 409, "is not over"), ({"week": "2026-W60"}, 400, "ISO week"),
                                   ({"week": "2026-W49", "size": 0}, 400, "size"),
                                   ({"week": "2026-W49", "size": True}, 400, "size"),
                                   ({"week": "2026-W49", "seed": "../x"}, 400, "seed"),
                                   ({"week": 49}, 400, "ISO week"), ({"weeks": "2026-W49"}, 400, "expected")):
        resp = await qc.post("/api/qc/samples", json=payload)
        assert resp.status == status and words in (await resp.json())["error"], (payload, await resp.text())
    assert await snapshot(db) == before


async def test_qc_listens_to_each_side_through_the_recordings_api_with_the_reason_qc(running, db, archive):  # noqa: F811
    await sampled(running)
    [first, _] = await items_of(running, "collector1")
    qc = await running.browser(Role.QC)
    item = await (await qc.get(f"/api/qc/items/{first['item_id']}")).json()
    assert item["legs"] == ["rx", "tx"] and "****" in item["number"], "QC reads numbers masked"
    for leg in ("mixed", "rx", "tx"):
        resp = await qc.get(f"/api/recordings/{item['attempt_id']}/audio?leg={leg}&why=qc")
        assert resp.status == 200 and resp.content_type == "audio/wav"
        assert (await resp.read())[:4] == b"RIFF"
    plays = await entries(db, "access")
    assert [(e.actor, e.detail_map()["why"], e.detail_map()["leg"]) for e in plays] == [
        ("qc1", "qc", "mixed"), ("qc1", "qc", "rx"), ("qc1", "qc", "tx")]
    assert {e.subject for e in plays} == {f"recording:{item['attempt_id']}"}
    page = await qc.get(f"/qc/items/{first['item_id']}")
    html = await page.text()
    for leg in ("mixed", "rx", "tx"):
        assert f'src="/api/recordings/{item["attempt_id"]}/audio?leg={leg}&amp;why=qc"' in html


async def test_a_score_saved_over_the_api_is_ledgered_and_the_collector_reads_it(running, db, archive):  # noqa: F811
    await sampled(running)
    [first, second] = await items_of(running, "collector1")
    [theirs, *_] = await items_of(running, "collector2")
    qc = await running.browser(Role.QC)
    url = f"/api/qc/items/{first['item_id']}/score"
    before = await snapshot(db)
    for payload, status in (({"items": {**ALL_PASS, "no_threats": "na"}}, 400),
                            ({"items": {**ALL_PASS, "greeting": "fail"}, "comments": ""}, 400),
                            ({"items": "all pass"}, 400), ({"items": ALL_PASS, "revises": 5}, 400),
                            ({"items": ALL_PASS, "by": "someone"}, 400)):
        resp = await qc.post(url, json=payload)
        assert resp.status == status, (payload, await resp.text())
    assert (await qc.post("/api/qc/items/99999/score", json={"items": ALL_PASS})).status == 404
    assert await snapshot(db) == before

    resp = await qc.post(url, json={"items": {**ALL_PASS, "greeting": "fail"}, "comments": "no agency name given"})
    assert resp.status == 201, await resp.text()
    score = await resp.json()
    assert score["total"] == 88 and score["ledger_seq"] is not None
    [entry] = await entries(db, "qc_score")
    assert entry.seq == score["ledger_seq"] and entry.actor == "qc1"
    assert (await qc.post(url, json={"items": ALL_PASS})).status == 409, "a second score must revise the first"
    resp = await qc.post(url, json={"items": ALL_PASS, "comments": "heard again: the name was given",
                                    "revises": score["id"]})
    assert resp.status == 201
    await qc.post(f"/api/qc/items/{theirs['item_id']}/score", json={"items": ALL_PASS})

    collector = await running.browser(Role.COLLECTOR)
    mine = (await (await collector.get("/api/qc/scores")).json())["scores"]
    assert [(s["item_id"], s["total"], s["comments"]) for s in mine] == [
        (first["item_id"], 100, "heard again: the name was given")]
    assert (await collector.get(f"/api/qc/items/{theirs['item_id']}")).status == 404, "not theirs: not there"
    assert (await collector.get(f"/api/qc/items/{first['item_id']}/audio?leg=tx")).status == 200
    assert (await collector.get(f"/api/qc/items/{second['item_id']}/audio")).status == 404, "not scored yet"
    assert (await collector.get(f"/api/qc/items/{theirs['item_id']}/audio")).status == 404
    [play] = [e for e in await entries(db, "access") if e.actor == "collector1"]
    assert play.detail_map()["why"] == "qc" and play.detail_map()["leg"] == "tx"
    assert (await collector.get("/api/qc/queue")).status == 403
    assert (await collector.post(url, json={"items": ALL_PASS})).status == 403

    lead = await running.browser(Role.TEAM_LEAD)  # team north: collector1's
    assert {s["collector"] for s in (await (await lead.get("/api/qc/scores")).json())["scores"]} == {"collector1"}
    supervisor = await running.browser(Role.SUPERVISOR)
    assert {s["collector"] for s in (await (await supervisor.get("/api/qc/scores")).json())["scores"]} == {
        "collector1", "collector2"}
    report = (await (await supervisor.get("/api/qc/report?from=2026-W49&to=2026-W49")).json())["collectors"]
    assert [(r["collector"], r["sampled"], r["scored"], r["average_total"]) for r in report] == [
        ("collector1", 2, 1, 100.0), ("collector2", 2, 1, 100.0)]
    own = (await (await collector.get("/api/qc/report")).json())["collectors"]
    assert [r["collector"] for r in own] == ["collector1"]
    assert (await supervisor.get("/api/qc/report?from=W49")).status == 400


async def test_the_scorecard_form_saves_and_the_collectors_page_shows_it(running, db, archive):  # noqa: F811
    qc = await running.browser(Role.QC)
    resp = await qc.post("/qc/samples", data={"week": "2026-W49", "size": "2", "seed": ""})
    assert resp.status == 200 and "samples made" in await resp.text()
    [first, _] = await items_of(running, "collector1")
    form = {f"item.{k}": v for k, v in ALL_PASS.items()}
    refused = await qc.post(f"/qc/items/{first['item_id']}/score", data={**form, "item.no_threats": "fail"})
    assert refused.status == 400 and "say why an item failed" in await refused.text()
    async with db.session() as s:
        assert (await s.get(QcItem, first["item_id"])).state == "pending"
    saved = await qc.post(f"/qc/items/{first['item_id']}/score",
                          data={**form, "item.correct_amounts": "fail", "comments": "说成了 1500 元"})
    assert saved.status == 200 and "saved: 81" in await saved.text()
    collector = await running.browser(Role.COLLECTOR)
    page = await (await collector.get("/qc/scores")).text()
    assert "My QC" in page and "说成了 1500 元" in page and "QC score 81" in page
    assert f'/api/qc/items/{first["item_id"]}/audio?leg=mixed' in page
    report = await (await collector.get("/qc/report")).text()
    assert 'id="report-collector1"' in report and "collector2" not in report


@pytest.mark.parametrize("path", ["/api/qc/items/0", "/api/qc/items/abc", "/api/qc/items/1%2F..",
                                  "/api/qc/items/99999999999999", "/api/qc/queue?week=bogus", "/api/qc/queue?state=x",
                                  "/api/qc/scores?week=2026-W99"])
async def test_hostile_paths_are_refused_and_change_nothing(running, db, path):
    qc = await running.browser(Role.QC)
    before = await snapshot(db, skip=("audit_events",))
    resp = await qc.get(path)
    assert resp.status in (400, 404), (path, resp.status)
    assert await snapshot(db, skip=("audit_events",)) == before

