"""Case reports by batch, arrears band and overdue band, as the client and the floor read
them: the numbers add up against the cases and calls stored, CSV and XLSX say the same,
a client user's report counts only their client's cases."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

from openpyxl import load_workbook

from cases.batches import BatchImporter
from people.roles import Role
from storage.models import Attempt
from tests.batch_files import csv_bytes, good_row


async def seeded(db, clock):
    """Batch B-1 of cu (6 cases: 3 small, 3 large; overdue 100 days before the clock) and
    batch B-2 of other (2 cases); calls: two cases of B-1 dialled, one of them answered."""
    importer = BatchImporter(db, clock)
    overdue = (clock().date() - timedelta(days=100)).isoformat()
    for client, batch, numbers in (("cu", "B-1", range(1, 7)), ("other", "B-2", range(7, 9))):
        rows = []
        for n in numbers:
            row = good_row(n, batch=batch)
            row[8] = "500.00" if n % 2 else "30000.00"
            row[9] = overdue
            rows.append(row)
        data = csv_bytes(rows)
        await importer.run(await importer.start(client=client, filename="b.csv", data=data, by="t"), data)
    async with db.session() as s:
        s.add_all([
            Attempt(id="a1", case_id="cu-AC000001", number="13800000001", state="ended", created_at=clock()),
            Attempt(id="a2", case_id="cu-AC000001", number="13800000001", state="ended", created_at=clock(),
                    answered_at=clock()),
            Attempt(id="a3", case_id="cu-AC000002", number="13800000002", state="ended", created_at=clock())])


async def test_by_batch_band_and_age_and_the_downloads_agree(running, db, clock):
    await seeded(db, clock)
    supervisor = await running.browser(Role.SUPERVISOR)
    by_batch = {r["group"]: r for r in await (await supervisor.get("/api/reports/cases?by=batch")).json()}
    assert (by_batch["cu/B-1"]["cases"], by_batch["cu/B-1"]["attempted"], by_batch["cu/B-1"]["contacted"],
            by_batch["cu/B-1"]["calls"]) == (6, 2, 1, 3)
    assert by_batch["cu/B-1"]["arrears_cents"] == 3 * 50_000 + 3 * 3_000_000
    assert by_batch["(no batch)"]["cases"] == 1  # C-1, the fixture's hand-made case
    assert by_batch["total"]["cases"] == 9 and by_batch["cu/B-1"]["contact_rate"] == 0.5
    bands = {r["group"]: r["cases"] for r in await (await supervisor.get("/api/reports/cases?by=arrears_band")
                                                    ).json()}
    assert bands["<1k"] == 4 + 1 and bands["20k-100k"] == 4  # (C-1 has no amount: the lowest band)
    ages = {r["group"]: r["cases"] for r in await (await supervisor.get("/api/reports/cases?by=overdue_band")).json()}
    assert ages["M4"] == 8 and ages["M1"] == 1
    as_csv = list(csv.reader(io.StringIO((await (await supervisor.get(
        "/api/reports/cases?by=batch&format=csv")).read()).decode("utf-8-sig"))))
    assert as_csv[0][:3] == ["group", "cases", "arrears"]
    assert ["cu/B-1", "6", "91500.0", "2", "1", "0.5", "3"] in as_csv, as_csv
    book = load_workbook(io.BytesIO(await (await supervisor.get("/api/reports/cases?by=batch&format=xlsx")).read()))
    sheet_rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert ["cu/B-1", 6, 91500, 2, 1, 0.5, 3] in sheet_rows and sheet_rows[-1][0] == "total"
    assert (await supervisor.get("/api/reports/cases?by=debtor")).status == 400
    page = await supervisor.get("/reports?by=overdue_band")
    assert page.status == 200 and "M4" in await page.text()


async def test_a_client_sees_only_their_own_and_a_collector_no_report(running, db, clock):
    await seeded(db, clock)
    client = await running.browser(Role.CLIENT)
    groups = [r["group"] for r in await (await client.get("/api/reports/cases?by=batch")).json()]
    assert groups == ["cu/B-1", "(no batch)", "total"]  # cu's own: its batch and C-1; never other's
    admin = await running.browser(Role.ADMIN)
    assert any(r["group"] == "other/B-2" for r in await (await admin.get("/api/reports/cases?by=batch")).json())
    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.get("/api/reports/cases")).status == 403
