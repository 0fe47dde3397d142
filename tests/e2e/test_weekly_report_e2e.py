"""A week of work on the sandbox and its report: a client's batch is imported, a progressive
campaign calls its three debtors through the real PBX (two answer and talk to the collector,
one is busy), the collector records a promise to pay and a contact, the client's payment file
comes in paying the promise; the weekly report's figures equal what this test computes by hand
from what it did, and its PDF (pdftotext), XLSX cells and chart PNGs carry them."""
from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from cases import dispositions_store
from cases.batches import BatchImporter
from cases.payments_store import PaymentImporter
from cases.weekly_report import Week
from cases.weekly_report_files import PDF_COLUMNS, save_week, written
from cases.weekly_report_store import build_weekly_report, figures_by_group
from dialer import campaign_store
from dialer.campaigns import spec_from
from storage import repositories as repo
from storage.intake import Batch
from storage.models import Attempt, Case
from tests.batch_files import ZH_HEADERS, id_number
from tests.e2e.conftest import E2E_CALLER_ID, start_harness

pytestmark = pytest.mark.e2e

PASSWORD = "weekly-Report-2026"
DEBTORS = {  # account -> (own phone, arrears): 155554XXXXX answers after 1 s and talks 8 s; 15552 is busy
    "AC900001": ("15555400081", "1000.00"),
    "AC900002": ("15555400082", "2000.00"),
    "AC900003": ("15552000083", "3000.00"),
}


def _csv(rows: list[list[str]]) -> bytes:
    return "\n".join(",".join(row) for row in rows).encode("utf-8")


async def _until(predicate, timeout: float = 60.0, poll: float = 0.25, what: str = ""):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert loop.time() < deadline, f"timed out: {what}"
        await asyncio.sleep(poll)


async def test_a_week_of_calls_promises_and_payments_is_what_the_weekly_report_says(sandbox_info, tmp_path):
    h = await start_harness(sandbox_info, tmp_path, floor={"seats": True, "campaign_tick_s": 0.25})
    service, db, clock = h.service, h.service.db, h.service.clock
    try:
        wei = await service.accounts.add_user(username="wei", display_name="Wei", role="collector",
                                              password=PASSWORD, by="test", phone="6001")
        # the client's batch, as a file
        rows = [ZH_HEADERS] + [["B2026-W49", account, f"债务人{n}", id_number(900 + n), phone, "", "", "", arrears,
                                "2026-06-01", "M5", "上海", "上海市"]
                               for n, (account, (phone, arrears)) in enumerate(DEBTORS.items(), start=1)]
        importer = BatchImporter(db, clock)
        batch_import = await importer.start(client="e2e", filename="batch.csv", data=_csv(rows), by="test")
        imported = await importer.run(batch_import, _csv(rows))
        assert imported.imported == 3, imported
        async with db.session() as s:
            await repo.approve_caller_id(s, "e2e", E2E_CALLER_ID)
            batch_id = await s.scalar(select(Batch.id).where(Batch.code == "B2026-W49"))
            await s.execute(update(Case).where(Case.batch_id == batch_id).values(collector_id=wei.id))
            case_of = {c.account: c.id for c in (await s.scalars(select(Case).where(Case.batch_id == batch_id))).all()}

        # the floor: Wei's phone waits; a progressive campaign over the batch
        await service.open_seats(("6001",))
        await _until(lambda: asyncio.sleep(0, service.seats.floor.ready_count(service.seats.now()) == 1),
                     what="the seat ready")
        async with db.session() as s:
            campaign = await campaign_store.create(s, spec_from({"name": "week49", "mode": "progressive",
                                                                 "client": "e2e", "selection": {"batches": [batch_id]}}),
                                                   by="test", now=clock())
            await campaign_store.change_status(s, campaign.id, "start", by="test", now=clock())

        async def all_three_over() -> list[Attempt]:
            async with db.session() as s:
                done = list((await s.scalars(select(Attempt).where(Attempt.campaign_id == campaign.id))).all())
            return done if len(done) == 3 and all(a.state == "ended" for a in done) else []
        attempts = {a.case_id: a for a in await _until(all_three_over, timeout=120, what="the three calls over")}
        async with db.session() as s:
            await campaign_store.change_status(s, campaign.id, "stop", by="test", now=clock())
        answered = [attempts[case_of["AC900001"]], attempts[case_of["AC900002"]]]
        for a in answered:
            await h.wait_recording(a.id)
        answered = [await h.wait_attempt(a.id, until=lambda x: x.bridged_seconds is not None) for a in answered]

        # what came of the calls: a promise to pay 500.00 by 2026-12-03, and a contact
        promise, contact = answered
        await dispositions_store.record(db, clock, promise.id, {"code": "promise_to_pay", "amount": "500.00",
                                                                "promise_date": "2026-12-03"}, by="wei")
        await dispositions_store.record(db, clock, contact.id, {"code": "contacted", "notes": "will call back"},
                                        by="wei")
        # the client's payment file: the promise is paid today
        payments = _csv([["账号", "缴费金额", "缴费日期", "收据号"], ["AC900001", "500.00", "2026-12-01", "R-900001"]])
        payer = PaymentImporter(db, clock)
        paid = await payer.run(await payer.start(client="e2e", filename="pay.csv", data=payments, by="test"), payments)
        assert paid.imported == 1, paid

        # -- the report, and the same figures by hand --------------------------------------------
        week = Week.of(clock())
        assert week.label == "2026-W49"
        report = await build_weekly_report(db, week, repo.ALL_CASES, clock())
        talk_s = round(sum(a.bridged_seconds for a in answered))
        by_hand = {"cases": 3, "arrears_cents": 600000, "attempts": 3, "contacts": 2, "talk_seconds": talk_s,
                   "promises": 1, "promised_cents": 50000, "promises_kept": 1, "promises_broken": 0,
                   "recovered_cents": 50000, "complaints": 0}
        for figures in (report.total, figures_by_group(report)["collector"]["wei"],
                        figures_by_group(report)["batch"]["e2e/B2026-W49"]):
            assert {k: getattr(figures, k) for k in by_hand} == by_hand, figures.group
            assert figures.contact_rate == pytest.approx(2 / 3)
            assert figures.promise_kept_rate == 1.0 and figures.recovery_rate == pytest.approx(50000 / 600000)
        assert (report.compliance.outside_rules, report.compliance.unrecorded) == (0, 0)
        assert report.compliance.answered == 2 and report.compliance.recordings_verified == 2

        # -- the files ----------------------------------------------------------------------------
        made = save_week(report, tmp_path / "reports", "zh-CN")
        for chart in ("recovery.png", "collectors.png"):
            if chart in made:
                assert made[chart].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert sum(1 for kind in made if kind.endswith(".png")) >= 2, made
        book = load_workbook(made["xlsx"])
        summary = {row[0]: row[2] for row in book["summary"].iter_rows(values_only=True) if row and len(row) > 2}
        assert summary["attempts"] == 3 and summary["contacts"] == 2 and summary["recovered_cents"] == 500.0
        assert summary["talk_seconds"] == talk_s and summary["arrears_cents"] == 6000.0
        compliance = {row[0]: row[2] for row in book["compliance"].iter_rows(values_only=True)}
        assert compliance["outside_rules"] == 0 and compliance["unrecorded"] == 0
        assert compliance["recordings_verified"] == 2
        pdftotext = shutil.which("pdftotext")
        assert pdftotext, "poppler-utils is installed by scripts/bootstrap.sh"
        text = subprocess.run([pdftotext, "-layout", str(made["pdf"]), "-"], capture_output=True, text=True,
                              check=True).stdout
        total_line = next(line for line in text.splitlines() if line.strip().startswith(("合计", "Total")))
        for key in PDF_COLUMNS:
            assert written(report.total, key) in total_line, (key, total_line)
    finally:
        await service.stop(drain_timeout=30)
