"""The recordings API: who/why required, hostile input refused, every access in the ledger."""
from __future__ import annotations

import io
import tarfile

import bagit
import pytest

from people.roles import Role
from recorder import ledger_store
from tests.console_kit import cheap_accounts, console, seed_users
from tests.integration.test_retrieval import A1, A2, A3, A4, seed_archive

WHO = {"X-Dunline-Reason": "complaint 2026-117"}  # who: the signed-in user


@pytest.fixture
async def accounts(db, clock):
    accounts = cheap_accounts(db, clock)
    await seed_users(accounts)
    return accounts


@pytest.fixture
async def archive(db, ledger, clock, tmp_path):
    return await seed_archive(db, ledger, clock, tmp_path)


@pytest.fixture
async def client(db, ledger, archive, accounts):
    async with console(db, accounts, store=archive, ledger=ledger) as running:
        yield await running.browser(Role.COMPLIANCE)


async def ledger_entries(db, action="access"):
    async with db.session() as s:
        return [e for e in await ledger_store.entries(s) if e.action == action]


async def attempt_ids(resp) -> list[str]:
    assert resp.status == 200, await resp.text()
    return [r["attempt_id"] for r in (await resp.json())["recordings"]]


async def test_search_filters_and_pages(client, db):
    assert await attempt_ids(await client.get("/api/cases/C-1/recordings", headers=WHO)) == [A3, A2, A1]
    assert await attempt_ids(await client.get("/api/recordings?phone=15550000001", headers=WHO)) == [A3, A1]
    assert await attempt_ids(await client.get(
        "/api/recordings?collector=bob&from=2026-11-01T10:30:00Z&to=2026-11-02", headers=WHO)) == [A4, A2]
    assert await attempt_ids(await client.get("/api/recordings?case=C-1&flag=no_signal_tx", headers=WHO)) == [A1]
    first = await (await client.get("/api/recordings?case=C-1&limit=2", headers=WHO)).json()
    rest = await client.get(f"/api/recordings?case=C-1&limit=2&cursor={first['next_cursor']}", headers=WHO)
    assert await attempt_ids(rest) == [A1]
    entries = await ledger_entries(db)
    assert len(entries) == 6 and entries[0].subject == "case:C-1"
    assert entries[0].detail_map()["who"] == "compliance1" and entries[0].detail_map()["returned"] == [A3, A2, A1]


async def test_the_query_may_carry_why_and_who_is_always_the_signed_in_user(client, db):
    resp = await client.get("/api/recordings/" + A4, params={"by": "qa.kim", "why": "audit"},
                            headers={"X-Dunline-User": "someone.else"})
    assert resp.status == 200 and (await resp.json())["number"] == "15550000009"
    [entry] = await ledger_entries(db)
    assert (entry.actor, entry.subject, entry.detail_map()["why"]) == ("compliance1", f"recording:{A4}", "audit")


@pytest.mark.parametrize("path,status", [
    ("/api/cases/..%2F..%2Fetc%2Fpasswd/recordings", 400),
    ("/api/recordings?case=../../etc/passwd", 400),
    ("/api/recordings?case=C-1%00", 400),
    ("/api/recordings?case=C-1&from=yesterday", 400),
    ("/api/recordings?case=C-1&to=2026-02-30", 400),
    ("/api/recordings?case=C-1&limit=100000", 400),
    ("/api/recordings?case=C-1&cursor=../x", 400),
    ("/api/recordings", 400),  # no filter at all
    ("/api/recordings/not-an-id", 400),
    (f"/api/recordings/{A1}/audio?leg=../../etc/passwd", 400),
    ("/api/cases/NOPE/recordings", 404),
    ("/api/recordings?case=NOPE", 404),
    ("/api/recordings/" + "f" * 32, 404),
    ("/api/recordings/" + "f" * 32 + "/audio", 404),
])
async def test_hostile_or_unknown_input_is_refused_and_not_logged(client, db, path, status):
    resp = await client.get(path, headers=WHO)
    assert resp.status == status, (path, resp.status, await resp.text())
    assert await ledger_entries(db) == []


@pytest.mark.parametrize("headers", [{}, {"X-Dunline-User": "qa.lee"}, {"X-Dunline-Reason": " "}])
async def test_without_a_reason_nothing_is_returned(client, db, headers):
    for path in ("/api/cases/C-1/recordings", f"/api/recordings/{A1}", f"/api/recordings/{A1}/audio"):
        resp = await client.get(path, headers=headers)
        assert resp.status == 400 and "who and why" in (await resp.json())["error"]
    assert (await client.post("/api/cases/C-1/export", headers=headers)).status == 400
    assert await ledger_entries(db) == [] and await ledger_entries(db, "export") == []


async def test_audio_streams_the_stored_wav(client, db, archive):
    meta = await (await client.get(f"/api/recordings/{A2}", headers=WHO)).json()
    for leg, key in (("mixed", meta["archive_path"]), ("rx", meta["legs"][0]["archive_path"])):
        resp = await client.get(f"/api/recordings/{A2}/audio?leg={leg}", headers=WHO)
        assert resp.status == 200 and resp.content_type == "audio/wav"
        assert await resp.read() == archive.path_of(key).read_bytes()
    assert [e.detail_map()["what"] for e in await ledger_entries(db)] == ["metadata", "audio", "audio"]


async def test_export_streams_a_valid_bag_and_is_logged(client, db, tmp_path):
    resp = await client.post("/api/cases/C-2/export", headers=WHO)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(await resp.read())) as tar:
        [top] = {name.split("/")[0] for name in tar.getnames()}
        tar.extractall(tmp_path / "got", filter="data")
    bagit.Bag(str(tmp_path / "got" / top)).validate()
    [entry] = await ledger_entries(db, "export")
    assert entry.subject == "case:C-2" and str(entry.seq) == resp.headers["X-Dunline-Ledger-Seq"]
    assert (await client.post("/api/cases/NOPE/export", headers=WHO)).status == 404
    assert (await client.post("/api/cases/..%2Fx/export", headers=WHO)).status == 400
    assert len(await ledger_entries(db, "export")) == 1


async def test_without_an_archive_the_routes_say_so(db, accounts):
    async with console(db, accounts) as running:
        browser = await running.browser(Role.COMPLIANCE)
        assert (await browser.get("/api/recordings?case=C-1", headers=WHO)).status == 503


@pytest.mark.parametrize("query, parameter", [
    ("cursor=20261399T000000000000Z.5", "cursor"),  # the cursor's form, an impossible date
    ("cursor=99999999T999999999999Z.1", "cursor"),
    ("cursor=junk", "cursor"),
    ("from=9999-12-31T23:59:59-12:00", "from"),  # beyond what a datetime holds in UTC
    ("to=0001-01-01T00:00:00%2B14:00", "to"),
    ("from=8999-01-01&to=9999-01-01", "to"),
    ("from=1900-01-01", "from"),
    ("limit=1e9", "limit"), ("limit=0", "limit"),
    ("phone=1;2", "phone"), ("collector=" + "a" * 40, "collector"), ("flag=%00", "flag"),
    ("case=..", "case"), ("from=2026-02-01&to=2026-01-01", "from, to"),
])
async def test_a_bad_query_parameter_is_a_400_that_names_it(client, db, query, parameter):
    resp = await client.get("/api/recordings?" + query, headers=WHO)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"].startswith(f"{parameter}: ")
    assert await ledger_entries(db) == [], "nothing read, nothing logged"


async def test_a_bad_leg_is_a_400_that_names_it(client):
    resp = await client.get(f"/api/recordings/{A1}/audio?leg=../../etc", headers=WHO)
    assert resp.status == 400 and (await resp.json())["error"].startswith("leg: ")


async def test_qc_reads_numbers_masked_and_the_case_page_asks_why_before_listing(db, ledger, archive, accounts):
    async with console(db, accounts, store=archive, ledger=ledger) as running:
        qc = await running.browser(Role.QC)
        listed = await (await qc.get("/api/cases/C-1/recordings", headers=WHO)).json()
        assert {r["number"] for r in listed["recordings"]} == {"155****0001", "155****0002"}
        compliance = await running.browser(Role.COMPLIANCE)
        full = await (await compliance.get("/api/cases/C-1/recordings", headers=WHO)).json()
        assert "15550000001" in {r["number"] for r in full["recordings"]}
        before = len(await ledger_entries(db))
        ask = await qc.get("/cases/C-1/recordings")
        assert ask.status == 200 and 'name="why"' in await ask.text()
        assert len(await ledger_entries(db)) == before, "no reason, nothing listed, nothing logged"
        page = await qc.get("/cases/C-1/recordings?why=QC+sample+week+48")
        html = await page.text()
        assert page.status == 200 and html.count("<audio") == 3 and "15550000001" not in html
        assert "why=QC%20sample%20week%2048" in html or "why=QC+sample+week+48" in html
        [entry] = (await ledger_entries(db))[before:]
        assert entry.detail_map()["who"] == "qc1" and entry.detail_map()["why"] == "QC sample week 48"
