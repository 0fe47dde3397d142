"""The case book over the API, as its users and an adversary use it: a supervisor uploads
a batch and follows its progress to the error report; a client user sees only their own
batches; a collector adds a traced phone to their own case (not to anyone else's); a team
lead returns a case with a reason, and the dialing policy then refuses it."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from aiohttp import FormData
from sqlalchemy import select, update

from people.roles import Role
from storage import repositories as repo
from storage.models import AuditEvent, Case
from tests.batch_files import bad_rows, good_row, xlsx_bytes
from tests.console_kit import user_of
from tests.db_snapshot import snapshot
from tests.policy_kit import verdict

NOON_BEIJING = datetime(2026, 12, 1, 4, 0, tzinfo=timezone.utc)


async def upload(browser, data: bytes, name: str, client: str = "cu"):
    form = FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    return await browser.post(f"/api/batches?client={client}&csrf_token={browser.csrf}", data=form)


async def finished(browser, href: str) -> dict:
    for _ in range(400):
        body = await (await browser.get(href)).json()
        if body["state"] not in ("checking", "importing"):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"import not finished: {body}")


async def test_a_supervisor_imports_a_batch_and_reads_its_error_report(running, db):
    supervisor = await running.browser(Role.SUPERVISOR)
    rows = [*[good_row(n) for n in range(1, 11)], *[b.cells for b in bad_rows()]]
    workbook = xlsx_bytes(rows)  # (a workbook saved again differs: it carries its save time)
    resp = await upload(supervisor, workbook, "B2026-11.xlsx")
    assert resp.status == 202, await resp.text()
    status = await finished(supervisor, (await resp.json())["href"])
    assert (status["state"], status["rows_imported"], status["rows_rejected"]) == ("done", 10, len(bad_rows()))
    assert status["rows_done"] == status["rows_total"] == 10 + len(bad_rows())
    errors = await (await supervisor.get(status["errors_href"])).json()
    assert {(e["row"], e["column"]) for e in errors} >= {(12, "本人电话"), (13, "欠费金额")}
    csv_resp = await supervisor.get(status["errors_href"] + "?format=csv")
    assert csv_resp.headers["Content-Disposition"].startswith("attachment")
    assert "row,column,problem" in (await csv_resp.read()).decode("utf-8-sig")
    [batch] = await (await supervisor.get("/api/batches")).json()
    assert (batch["code"], batch["cases"], batch["by_status"]) == ("B2026-11", 10, {"open": 10})
    again = await finished(supervisor, (await (await upload(supervisor, workbook, "x.xlsx")).json())["href"])
    assert again["state"] == "refused" and "already imported" in again["problem"]
    resaved = await finished(supervisor, (await (await upload(supervisor, xlsx_bytes(rows, title_rows=1), "y.xlsx")
                                                 ).json())["href"])
    assert resaved["rows_imported"] == 0 and resaved["rows_rejected"] == len(bad_rows()), "same rows: nothing new"


async def test_uploads_are_refused_to_other_roles_without_csrf_or_too_large(running, db):
    collector = await running.browser(Role.COLLECTOR)
    supervisor = await running.browser(Role.SUPERVISOR)
    before = await snapshot(db)
    assert (await upload(collector, xlsx_bytes([good_row(1)]), "b.xlsx")).status == 403
    form = FormData()
    form.add_field("file", b"x", filename="b.csv")
    no_token = await supervisor.session.post(f"{running.base}/api/batches?client=cu", data=form,
                                             headers={"Origin": supervisor.origin})
    assert no_token.status == 403
    bad_client = await upload(supervisor, b"a,b\n", "b.csv", client="../../x")
    assert bad_client.status == 400
    assert await snapshot(db) == before


async def test_a_client_user_sees_only_their_own_batches(running, db):
    supervisor = await running.browser(Role.SUPERVISOR)
    for client, code in (("cu", "B-CU"), ("other", "B-OTHER")):
        resp = await upload(supervisor, xlsx_bytes([good_row(1, batch=code)]), f"{code}.xlsx", client=client)
        await finished(supervisor, (await resp.json())["href"])
    client_user = await running.browser(Role.CLIENT)
    assert [b["code"] for b in await (await client_user.get("/api/batches")).json()] == ["B-CU"]
    other_import = (await (await supervisor.get("/api/batches")).json())
    assert len(other_import) == 2
    assert (await client_user.get("/api/batch-imports/2")).status == 404
    assert (await client_user.get("/api/batch-imports/1")).status == 200
    assert (await client_user.get("/api/cases")).status == 403, "no debtor data for the client"


async def test_a_collector_adds_a_traced_phone_to_their_own_case_only(running, db, accounts):
    collector_id = (await accounts.user(user_of(Role.COLLECTOR))).id
    async with db.session() as s:
        await repo.add_case(s, Case(id="C-MINE", client="cu", debtor_name="Mine", created_at=NOON_BEIJING,
                                    collector_id=collector_id), [repo.NewPhone("13800000001")])
    collector = await running.browser(Role.COLLECTOR)
    resp = await collector.post("/api/cases/C-MINE/phones",
                                json={"number": "+86 139 0000 0002", "relation": "family", "source": "tracing"})
    assert resp.status == 201
    added = await resp.json()
    assert (added["number"], added["relation"], added["kind"]) == ("139****0002", "family", "third_party")
    before = await snapshot(db)
    for body, status in (({"number": "13900000002", "relation": "own"}, 400),  # already on the case
                         ({"number": "123", "relation": "own"}, 400),
                         ({"number": "13900000003", "relation": "boss"}, 400),
                         ({"number": "13900000003", "relation": "own", "extra": 1}, 400)):
        assert (await collector.post("/api/cases/C-MINE/phones", json=body)).status == status, body
    not_mine = await collector.post("/api/cases/C-1/phones", json={"number": "13900000004", "relation": "own"})
    assert not_mine.status == 404, "another collector's case does not exist for this one"
    assert await snapshot(db) == before
    async with db.session() as s:
        [event] = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.phone_added"))).all()
        assert event.actor == user_of(Role.COLLECTOR)


async def test_a_returned_case_is_refused_by_the_policy_and_reopened_allowed(running, db, accounts):
    async with db.session() as s:
        await repo.approve_caller_id(s, "cu", "4008001000")
        await s.execute(update(Case).where(Case.id == "C-1").values(timezone="Asia/Shanghai"))
    assert type(await verdict(db, "C-1", NOON_BEIJING)).__name__ == "Allowed"
    lead = await running.browser(Role.TEAM_LEAD)
    assert (await lead.post("/api/cases/C-1/status", json={"status": "returned", "reason": "client recalled"})
            ).status == 404, "not the lead's team's case"
    supervisor = await running.browser(Role.SUPERVISOR)
    assert (await supervisor.post("/api/cases/C-1/status", json={"status": "returned", "reason": "x"})).status == 400
    resp = await supervisor.post("/api/cases/C-1/status", json={"status": "returned", "reason": "client recalled"})
    assert resp.status == 200 and (await resp.json())["before"] == "open"
    blocked = await verdict(db, "C-1", NOON_BEIJING)
    assert blocked.rule == "case_status"
    case = await (await supervisor.get("/api/cases/C-1")).json()
    assert (case["status"], case["status_reason"]) == ("returned", "client recalled")
    await supervisor.post("/api/cases/C-1/status", json={"status": "open", "reason": "client sent it back"})
    assert type(await verdict(db, "C-1", NOON_BEIJING)).__name__ == "Allowed"
    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.post("/api/cases/C-1/status", json={"status": "closed", "reason": "paid"})).status == 403
