"""Payments through the real console (API and pages, real sockets, SQLite), as its users
use them: a supervisor uploads the client's payment file and follows the import to its
summary and error report; a case's payments and balance are read within the reader's reach
(a collector: their own case only), each read audited; other roles may not import; a bad
upload is refused with a clear message and changes nothing."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import FormData
from sqlalchemy import select, update

from cases.batches import BatchImporter
from people.roles import Role
from storage.models import AuditEvent, Case
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import user_of
from tests.db_snapshot import snapshot
from tests.payment_files import pay_csv, pay_row, pay_xlsx

QUIET = ("login_attempts", "user_sessions")  # what signing in and being seen touch


def payment_file() -> bytes:
    return pay_xlsx([pay_row("AC000001", "200.50", "2026-11-28", "SJ-1"),
                     pay_row("AC000002", "1002.50", "2026-11-28", "SJ-2"),
                     pay_row("AC000404", "10", "2026-11-28", "SJ-3"),
                     pay_row("AC000001", "-3", "2026-11-28", "SJ-4")])


@pytest.fixture
async def book(db, clock, accounts):
    """Cases cu-AC000001..3 from a batch; cu-AC000001 is collector1's."""
    data = csv_bytes([good_row(n) for n in range(1, 4)])
    importer = BatchImporter(db, clock)
    await importer.run(await importer.start(client="cu", filename="B2026-11.csv", data=data, by="t"), data)
    collector = await accounts.user(user_of(Role.COLLECTOR))
    async with db.session() as s:
        await s.execute(update(Case).where(Case.id == "cu-AC000001").values(collector_id=collector.id,
                                                                              team_id=collector.team_id))


async def upload(browser, data: bytes, name: str = "缴费.xlsx", client: str | None = "cu"):
    form = FormData()
    if client is not None:
        form.add_field("client", client)
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await browser.post(f"/api/payments/imports?csrf_token={browser.csrf}", data=form)


async def finished(browser, href: str) -> dict:
    for _ in range(400):
        body = await (await browser.get(href)).json()
        if body["state"] not in ("checking", "importing"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"import not finished: {body}")


async def test_a_supervisor_imports_payments_and_reads_the_summary_and_errors(running, db, book):
    supervisor = await running.browser(Role.SUPERVISOR)
    resp = await upload(supervisor, payment_file())
    assert resp.status == 202, await resp.text()
    status = await finished(supervisor, (await resp.json())["href"])
    assert (status["state"], status["rows_imported"], status["rows_rejected"], status["amount_cents"]) \
        == ("done", 2, 2, 20050 + 100250)
    assert status["progress"] == {"rows_done": 4, "rows_total": 4}
    assert [(e["row"], e["column"]) for e in status["errors"]] == [(4, "账号"), (5, "缴费金额")]
    assert status["errors_total"] == 2 and status["by"] == user_of(Role.SUPERVISOR)
    report = await supervisor.get(status["errors_href"] + "?format=csv")
    assert report.headers["Content-Disposition"].startswith("attachment")
    assert "AC000404" in (await report.read()).decode("utf-8-sig")
    paid = await (await supervisor.get("/api/cases/cu-AC000001/payments")).json()
    assert (paid["arrears_cents"], paid["paid_cents"], paid["balance_cents"], paid["status"]) == \
        (100150, 20050, 80100, "open")
    [payment] = paid["payments"]
    assert (payment["paid_on"], payment["amount_cents"], payment["receipt_no"], payment["credit_rule"],
            payment["credited_to"]) == ("2026-11-28", 20050, "SJ-1", "none", None)
    settled = await (await supervisor.get("/api/cases/cu-AC000002/payments")).json()
    assert (settled["status"], settled["balance_cents"]) == ("settled", 0)
    listed = await (await supervisor.get("/api/cases?status=settled")).json()
    assert [c["id"] for c in listed] == ["cu-AC000002"]
    again = await finished(supervisor, (await (await upload(supervisor, payment_file(), "again.xlsx")).json())["href"])
    assert (again["rows_imported"], again["rows_unchanged"], again["rows_rejected"]) == (0, 2, 2)
    async with db.session() as s:
        viewed = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.payments_viewed"))).all()
        assert [(e.actor, e.subject) for e in viewed] == [(user_of(Role.SUPERVISOR), "case:cu-AC000001"),
                                                          (user_of(Role.SUPERVISOR), "case:cu-AC000002")]


async def test_a_cases_payments_are_read_within_the_readers_reach(running, db, book):
    supervisor = await running.browser(Role.SUPERVISOR)
    await finished(supervisor, (await (await upload(supervisor, payment_file())).json())["href"])
    collector = await running.browser(Role.COLLECTOR)
    mine = await collector.get("/api/cases/cu-AC000001/payments")
    assert mine.status == 200 and (await mine.json())["paid_cents"] == 20050
    assert (await collector.get("/api/cases/cu-AC000002/payments")).status == 404, "not theirs: not there"
    assert (await collector.get("/api/cases/nope!/payments")).status == 400
    qc = await running.browser(Role.QC)
    assert (await qc.get("/api/cases/cu-AC000002/payments")).status == 200
    for role in (Role.CLIENT, Role.ADMIN):
        assert (await (await running.browser(role)).get("/api/cases/cu-AC000001/payments")).status == 403


async def test_imports_are_refused_to_other_roles_and_bad_uploads_change_nothing(running, db, book):
    supervisor = await running.browser(Role.SUPERVISOR)
    others = {role: await running.browser(role) for role in (Role.COLLECTOR, Role.TEAM_LEAD, Role.QC,
                                                             Role.COMPLIANCE, Role.ADMIN, Role.CLIENT)}
    before = await snapshot(db, skip=QUIET)
    for role, browser in others.items():
        assert (await upload(browser, payment_file())).status == 403, role
        assert (await browser.get("/api/payments/imports/1")).status == 403, role
    no_client = await upload(supervisor, payment_file(), client=None)
    assert no_client.status == 400 and "not a client" in (await no_client.json())["error"]
    assert (await upload(supervisor, payment_file(), client="../x")).status == 400
    not_multipart = await supervisor.post("/api/payments/imports?client=cu", data=b"account,amount")
    assert not_multipart.status == 400
    assert (await supervisor.get("/api/payments/imports/99")).status == 404
    assert await snapshot(db, skip=QUIET) == before
    refused = await finished(supervisor, (await (await upload(supervisor, b"\x00\x01" * 100, "p.csv")).json())["href"])
    assert refused["state"] == "refused" and "binary" in refused["problem"]
    assert await snapshot(db, skip=(*QUIET, "payment_imports")) == \
        {k: v for k, v in before.items() if k != "payment_imports"}


async def test_the_pages_import_a_file_and_the_case_page_shows_the_balance(running, db, book):
    supervisor = await running.browser(Role.SUPERVISOR)
    page = await supervisor.get("/payments")
    assert page.status == 200 and 'id="upload"' in await page.text()
    form = FormData()
    form.add_field("client", "cu")
    form.add_field("file", pay_csv([pay_row("AC000001", "200.50", "2026-11-28", "SJ-1")], "gbk"), filename="p.csv")
    posted = await supervisor.post(f"/payments/upload?csrf_token={supervisor.csrf}", data=form)
    assert posted.status == 303 and posted.headers["Location"].startswith("/payments/imports/")
    for _ in range(200):
        html = await (await supervisor.get(posted.headers["Location"])).text()
        if 'data-state="done"' in html:
            break
        await asyncio.sleep(0.05)
    assert "1 imported (CN¥200.50)" in html
    case_page = await (await supervisor.get("/cases/cu-AC000001")).text()
    assert 'id="balance"' in case_page and "801.00" in case_page and "SJ-1" in case_page
    bad = FormData()
    bad.add_field("file", b"x", filename="p.csv")
    refused = await supervisor.post(f"/payments/upload?csrf_token={supervisor.csrf}", data=bad)
    assert refused.status == 400 and "not a client" in await refused.text()
    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.get("/payments")).status == 403
    own = await (await collector.get("/cases/cu-AC000001")).text()
    assert "SJ-1" in own and "801.00" in own
