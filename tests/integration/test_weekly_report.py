"""The weekly report on a real database: the rows read for a week and a scope give the
figures computed here by hand; the XLSX cells, the PDF's text (pdftotext) and the charts
carry them; the console serves them to the roles that may read reports, a client user only
its own client's; `dunline report weekly` writes the files 0640; bad weeks are 400s."""
from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from datetime import date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from cases.weekly_report import REPORT_ZONE, Grouping, Week
from cases.weekly_report_files import charts, money, rate, report_pdf, report_xlsx, talk
from cases.weekly_report_store import build_weekly_report, figures_by_group
from people.roles import Role
from recorder.archive import FilesystemArchive
from recorder.ingest import IngestSettings, ingest_attempt, spool_paths
from storage import repositories as repo
from storage.complaints import Complaint
from storage.dispositions import Disposition
from storage.intake import Batch
from storage.models import CANARY_CASE, CANARY_CLIENT, Attempt, AuditEvent, Case, IngestJob
from storage.payments import Payment
from storage.people import Team, User
from storage.repositories import ALL_CASES, CaseScope
from tests.integration.test_ingest import write_wav

W48 = Week(2026, 48)
PDFTOTEXT = shutil.which("pdftotext")
T1, T2, T3, T4, T5, T0 = (f"{n:x}" * 32 for n in (1, 2, 3, 4, 5, 15))
DECISION = {"allowed": True, "profile": "client-default", "zone": "Asia/Shanghai", "caller_id": "4008001000",
            "facts": {"case": {"status": "open", "flags": [], "region": None, "timezone": "Asia/Shanghai",
                               "care_approved_until": None},
                      "phone": {"kind": "debtor", "do_not_call": False, "refused": False, "retired": False}}}


def bj(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=REPORT_ZONE)


async def seed_week(db, accounts, ledger, clock, tmp_path) -> dict[str, int]:
    """Week 2026-W48 (23-29 Nov, Beijing): client cu's batch B-1 (K1 open, K2 closed on the
    25th), client other's B-9 (K3), K4 returned before the week; five calls (two recorded and
    ingested for real, one still being archived), three promises (one corrected), four
    payments (one the week before), three complaints; a canary call that counts nowhere."""
    await accounts.set_phone("collector1", "6001", by="test")
    await accounts.add_team("south", by="test")
    await accounts.add_user(username="collector2", display_name="Collector Two", role="collector",
                            password="correct horse battery", by="test", team="south", phone="6002")
    async with db.session() as s:
        users = {u.username: u.id for u in (await s.execute(User.__table__.select())).all()}
        teams = {t.name: t.id for t in (await s.execute(Team.__table__.select())).all()}
        b1 = Batch(client="cu", code="B-1", created_at=bj(1, 9), created_by="t")
        b9 = Batch(client="other", code="B-9", created_at=bj(1, 9), created_by="t")
        s.add_all([b1, b9])
        await s.flush()
        for cid, client, batch, team, who, cents, status, changed in (
                ("K1", "cu", b1.id, "north", "collector1", 100_000, "open", None),
                ("K2", "cu", b1.id, "north", "collector2", 50_000, "closed", bj(25, 18)),
                ("K3", "other", b9.id, "south", "collector2", 70_000, "open", None),
                ("K4", "cu", None, None, None, 30_000, "returned", bj(10, 9))):
            await repo.add_case(s, Case(id=cid, client=client, debtor_name="D", batch_id=batch, team_id=teams.get(team),
                                        collector_id=users.get(who), amount_due_cents=cents, status=status,
                                        status_changed_at=changed, created_at=bj(1, 9), timezone="Asia/Shanghai"),
                                [repo.NewPhone("1380000000" + cid[1])])
        s.add(AuditEvent(at=bj(25, 18), actor="sup", action="case.status_changed", subject="case:K2",
                         detail={"before": "open", "after": "closed", "why": "paid"}))
        s.add(AuditEvent(at=bj(10, 9), actor="sup", action="case.status_changed", subject="case:K4",
                         detail={"before": "open", "after": "returned", "why": "back"}))
        await repo.add_case(s, Case(id=CANARY_CASE, client=CANARY_CLIENT, debtor_name="canary", created_at=bj(1, 9)),
                            [repo.NewPhone("15551000000")])
        for aid, cid, collector, at, bridged in ((T1, "K1", "6001", bj(23, 9), 125.5), (T2, "K1", None, bj(24, 10), None),
                                                 (T3, "K2", "6002", bj(25, 9, 30), 64.5),
                                                 (T4, "K3", "6002", bj(26, 11), 30.0), (T5, "K1", None, bj(28, 20), None),
                                                 (T0, "K1", "6001", bj(22, 20), 99.0)):
            answered = bridged is not None
            s.add(Attempt(id=aid, case_id=cid, number="1380000000" + cid[1], collector=collector, state="ended",
                          outcome="answered" if answered else "no_answer", created_at=at, decision=DECISION,
                          answered_at=at + timedelta(seconds=8) if answered else None,
                          ended_at=at + timedelta(seconds=10 + (bridged or 0)), bridged_seconds=bridged,
                          recording_name=aid if answered else None))
        s.add(Attempt(id="c" * 32, case_id=CANARY_CASE, number="15551000000", state="ended", created_at=bj(24, 3),
                      answered_at=bj(24, 3), decision={"canary": True}))
        s.add(IngestJob(attempt_id=T4, state="due", created_at=bj(26, 11), due_at=bj(26, 11, 1)))
        await s.flush()
        promise = dict(code="promise_to_pay", entered_by="collector1")
        d1 = Disposition(attempt_id=T1, case_id="K1", amount_cents=20_000, promise_date=date(2026, 11, 26),
                         entered_at=bj(23, 9, 5), **promise)
        d2 = Disposition(attempt_id=T3, case_id="K2", amount_cents=50_000, promise_date=date(2026, 11, 25),
                         entered_at=bj(25, 9, 35), **promise)
        d4 = Disposition(attempt_id=T4, case_id="K3", amount_cents=10_000, promise_date=date(2026, 12, 10),
                         entered_at=bj(26, 11, 5), **promise)
        s.add_all([d1, d2, d4])
        await s.flush()
        s.add(Disposition(attempt_id=T3, case_id="K2", amount_cents=40_000, promise_date=date(2026, 11, 25),
                          entered_at=bj(25, 9, 40), corrects_id=d2.id, **promise))
        for n, (cid, cents, day, who) in enumerate((("K1", 20_000, date(2026, 11, 25), "collector1"),
                                                    ("K2", 10_000, date(2026, 11, 28), "collector2"),
                                                    ("K3", 5_000, date(2026, 11, 29), "collector2"),
                                                    ("K1", 3_000, date(2026, 11, 16), None))):
            s.add(Payment(case_id=cid, account=cid, amount_cents=cents, paid_on=day, receipt_no=f"R{n}",
                          client="cu", row_digest=f"{n:064x}", credited_user_id=users.get(who),
                          imported_at=bj(30, 9), imported_by="t"))
        for cid, who, at in (("K1", "collector1", bj(24, 15)), ("K3", "collector2", bj(27, 9)),
                             (None, "collector2", bj(28, 9)), ("K1", "collector1", bj(30, 9))):
            s.add(Complaint(case_id=cid, collector_user_id=users[who], source="debtor", summary="rude",
                            registered_at=at, registered_by="t", deadline_at=at + timedelta(hours=24)))
    spool = tmp_path / "spool"
    spool.mkdir()
    archive = FilesystemArchive(tmp_path / "recordings")
    for aid in (T1, T3):
        files = spool_paths(spool, aid)
        write_wav(files["mixed"], 1, 6000)
        write_wav(files["rx"], 1, 6000)
        write_wav(files["tx"], 1, 5000)
        await ingest_attempt(db, archive, IngestSettings(spool_dir=spool), aid, clock, ledger)
    return users


@pytest.fixture
async def seeded(db, accounts, ledger, clock, tmp_path):
    return await seed_week(db, accounts, ledger, clock, tmp_path)


async def test_the_figures_by_hand(db, clock, seeded):
    report = await build_weekly_report(db, W48, ALL_CASES, clock())
    t = report.total
    assert (t.cases, t.arrears_cents) == (3, 220_000)  # K1, K2 (closed in the week), K3; not K4, C-1, the canary
    assert (t.attempts, t.contacts, t.talk_seconds) == (5, 3, 220)
    assert (t.promises, t.promised_cents, t.promises_kept, t.promises_broken, t.promises_pending) == (
        3, 20_000 + 40_000 + 10_000, 1, 1, 1)
    assert (t.recovered_cents, t.complaints) == (35_000, 3)
    assert (t.contact_rate, t.promise_kept_rate, t.recovery_rate) == (0.6, 0.5, 35_000 / 220_000)
    c = report.compliance
    assert (c.attempts, c.outside_rules, c.answered, c.recorded, c.in_ingest, c.unrecorded,
            c.recordings_verified) == (5, 0, 3, 2, 1, 0, 2)
    assert c.clean
    groups = figures_by_group(report)
    one, two = groups["collector"]["collector1"], groups["collector"]["collector2"]
    assert (one.cases, one.attempts, one.contacts, one.talk_seconds, one.promises, one.recovered_cents,
            one.complaints) == (1, 3, 1, 126, 1, 20_000, 1)
    assert (two.cases, two.attempts, two.contacts, two.talk_seconds, two.promises, two.recovered_cents,
            two.complaints) == (2, 2, 2, 95, 2, 15_000, 2)
    assert set(groups["batch"]) == {"cu/B-1", "other/B-9", None}  # None: the complaint without a case
    assert (groups["batch"]["cu/B-1"].cases, groups["batch"]["cu/B-1"].recovered_cents) == (2, 30_000)
    assert (groups["team"]["north"].attempts, groups["team"]["south"].complaints) == (4, 2)
    assert [(r.week.label, r.recovered_cents) for r in report.recovery_by_week][-2:] == [
        ("2026-W47", 3_000), ("2026-W48", 35_000)]


async def test_a_clients_report_counts_only_its_own_cases(db, clock, seeded):
    report = await build_weekly_report(db, W48, CaseScope(client="cu"), clock())
    t = report.total
    assert (t.cases, t.arrears_cents, t.attempts, t.recovered_cents, t.complaints) == (2, 150_000, 4, 30_000, 1)
    assert report.scope == "client cu" and report.compliance.recorded == 2 and report.compliance.in_ingest == 0
    assert {f.group for f in report.groups[Grouping.BATCH]} == {"cu/B-1"}
    assert [r.recovered_cents for r in report.recovery_by_week][-2:] == [3_000, 30_000]
    nobody = await build_weekly_report(db, W48, CaseScope(), clock())
    assert nobody.total.cases == nobody.total.attempts == nobody.total.complaints == 0


async def test_the_xlsx_cells_and_the_pdf_text_carry_the_figures(db, clock, seeded):
    report = await build_weekly_report(db, W48, ALL_CASES, clock())
    book = load_workbook(io.BytesIO(report_xlsx(report, "zh-CN")))
    assert book.sheetnames == ["summary", "batch", "team", "collector", "compliance", "weeks"]
    rows = {r[0]: r for r in book["collector"].iter_rows(values_only=True)}
    assert rows["collector1"][:7] == ("collector1", 1, 1000.0, 3, 1, 1 / 3, 126)
    assert rows["合计"][1:4] == (3, 2200.0, 5) and rows["合计"][13:16] == (350.0, 35_000 / 220_000, 3)
    assert book["collector"].cell(2, 6).number_format == "0.0%" and book["collector"].cell(2, 3).number_format == "#,##0.00"
    compliance = {r[0]: r[2] for r in book["compliance"].iter_rows(min_row=2, values_only=True)}
    assert compliance == {"attempts": 5, "outside_rules": 0, "not_allowed": 0, "outside_window": 0, "answered": 3,
                          "recorded": 2, "in_ingest": 1, "unrecorded": 0, "recordings_verified": 2}
    assert list(book["weeks"].iter_rows(values_only=True))[-1] == ("2026-W48", 350.0)
    english = load_workbook(io.BytesIO(report_xlsx(report, "en")))
    assert "Total" in {r[0] for r in english["batch"].iter_rows(values_only=True)}

    made = charts(report, "zh-CN")
    assert [c.name for c in made] == ["recovery", "collectors"]
    for c in made:
        assert c.png.startswith(b"\x89PNG\r\n\x1a\n") and b"<svg" in c.svg[:500]
    if PDFTOTEXT is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is needed: scripts/bootstrap.sh installs it")
        pytest.skip("pdftotext (poppler-utils) is not installed here: the PDF's text is not read back")
    for locale, words in (("zh-CN", ("每周欠费缴费统计报表", "按催收员", "违规呼叫", "合计")),
                          ("en", ("Weekly arrears and payments report", "By collector", "Total"))):
        pdf = report_pdf(report, locale, [c.png for c in made])
        assert pdf.startswith(b"%PDF")
        text = subprocess.run([PDFTOTEXT, "-layout", "-", "-"], input=pdf, capture_output=True, check=True,
                              timeout=60).stdout.decode()
        for word in words:
            assert word in text, (locale, word)
        total_line = next(line for line in text.splitlines() if line.split()[:1] == [words[-1]]
                          and money(220_000) in line)
        t = report.total
        assert total_line.split()[1:] == [str(t.cases), money(t.arrears_cents), str(t.attempts), str(t.contacts),
                                          rate(t.contact_rate), talk(t.talk_seconds), str(t.promises),
                                          str(t.promises_kept), rate(t.promise_kept_rate), money(t.recovered_cents),
                                          rate(t.recovery_rate), str(t.complaints)]
        assert total_line.split()[1:] == ["3", "2,200.00", "5", "3", "60.0%", "0:03:40", "3", "1", "50.0%", "350.00",
                                          "15.9%", "3"]
        assert any(line.split()[:2] == ["collector1", "1"] and "200.00" in line for line in text.splitlines())


async def test_the_console_serves_it_and_a_client_sees_only_its_own(running, db, clock, seeded):
    supervisor = await running.browser(Role.SUPERVISOR)
    resp = await supervisor.get("/api/reports/weekly?week=2026-W48&by=collector")
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert list(body["groups"]) == ["collector"] and body["total"]["recovered_cents"] == 35_000
    assert {r["group"]: r["attempts"] for r in body["groups"]["collector"]} == {"collector1": 3, "collector2": 2}
    assert body["compliance"]["recordings_verified"] == 2 and body["compliance"]["outside_rules"] == 0
    default = await (await supervisor.get("/api/reports/weekly")).json()
    assert default["week"] == "2026-W48" and set(default["groups"]) == {"batch", "team", "collector"}
    pdf = await supervisor.get("/api/reports/weekly/2026-W48.pdf?lang=en")
    assert pdf.status == 200 and pdf.content_type == "application/pdf" and (await pdf.read()).startswith(b"%PDF")
    assert 'filename="dunline-weekly-2026-W48.pdf"' in pdf.headers["Content-Disposition"]
    xlsx = await supervisor.get("/api/reports/weekly/2026-W48.xlsx")
    sheet = load_workbook(io.BytesIO(await xlsx.read()))["batch"]
    assert ("other/B-9", 1, 700.0) == next(r for r in sheet.iter_rows(values_only=True) if r[0] == "other/B-9")[:3]
    png = await supervisor.get("/api/reports/weekly/2026-W48/recovery.png")
    assert png.content_type == "image/png" and (await png.read()).startswith(b"\x89PNG")
    svg = await supervisor.get("/api/reports/weekly/2026-W48/collectors.svg")
    assert svg.content_type == "image/svg+xml" and b"<svg" in (await svg.read())[:500]
    page = await supervisor.get("/reports/weekly?week=2026-W48")
    html = await page.text()
    assert page.status == 200 and "other/B-9" in html and 'id="chart-recovery" src="data:image/png;base64,' in html
    assert 'href="/api/reports/weekly/2026-W48/recovery.png"' in html

    client = await running.browser(Role.CLIENT)  # client1, of client cu
    mine = await (await client.get("/api/reports/weekly?week=2026-W48")).json()
    assert mine["scope"] == "client cu" and mine["total"]["arrears_cents"] == 150_000
    assert [r["group"] for r in mine["groups"]["batch"]] == ["cu/B-1"]
    assert mine["total"]["recovered_cents"] == 30_000 and mine["total"]["complaints"] == 1
    their_page = await (await client.get("/reports/weekly?week=2026-W48")).text()
    assert "other/B-9" not in their_page and "cu/B-1" in their_page
    their_xlsx = load_workbook(io.BytesIO(await (await client.get("/api/reports/weekly/2026-W48.xlsx")).read()))
    cells = {c for sheet in their_xlsx for row in sheet.iter_rows(values_only=True) for c in row}
    assert "other/B-9" not in cells and 700.0 not in cells and 50.0 not in cells  # K3's arrears, its payment
    if PDFTOTEXT:
        their_pdf = await (await client.get("/api/reports/weekly/2026-W48.pdf")).read()
        text = subprocess.run([PDFTOTEXT, "-layout", "-", "-"], input=their_pdf, capture_output=True, check=True,
                              timeout=60).stdout.decode()
        assert "cu/B-1" in text and "other/B-9" not in text and "700.00" not in text

    collector = await running.browser(Role.COLLECTOR)
    assert (await collector.get("/api/reports/weekly?week=2026-W48")).status == 403
    assert (await collector.get("/api/reports/weekly/2026-W48.pdf")).status == 403


@pytest.mark.parametrize("path", ["/api/reports/weekly?week=2026-48", "/api/reports/weekly?week=2025-W53",
                                  "/api/reports/weekly?week=2026-W50", "/api/reports/weekly?by=debtor",
                                  "/api/reports/weekly/2026-W99.pdf", "/api/reports/weekly/nonsense.xlsx",
                                  "/api/reports/weekly/2026-W48/pie.png", "/api/reports/weekly/2026-W48.pdf?lang=fr",
                                  "/reports/weekly?week=next"])
async def test_a_bad_week_or_chart_is_a_clear_400(running, path):
    supervisor = await running.browser(Role.SUPERVISOR)
    resp = await supervisor.get(path)
    assert resp.status == 400, (path, resp.status)
    if path.startswith("/api/"):
        assert (await resp.json())["error"]


async def test_the_command_writes_the_weeks_files_0640(db, clock, seeded, tmp_path, monkeypatch, capsys):
    import asyncio

    from dunline.cli import build_parser
    from dunline.cli_reports import cmd_report as cmd

    async def cmd_report(args, clock):  # the command runs its own event loop: in a thread of its own here
        return await asyncio.to_thread(cmd, args, clock)

    monkeypatch.setenv("DUNLINE_DATABASE_URL", str(db.engine.url))
    out = tmp_path / "reports" / "2026-W48"
    args = build_parser().parse_args(["report", "weekly", "--week", "2026-W48", "--out", str(out)])
    assert await cmd_report(args, clock) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["collectors-2026-W48.png", "collectors-2026-W48.svg", "recovery-2026-W48.png",
                     "recovery-2026-W48.svg", "weekly-2026-W48.pdf", "weekly-2026-W48.xlsx"]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    assert stat.S_IMODE(out.stat().st_mode) == 0o750
    said = capsys.readouterr().out
    assert "3 cases, 5 attempts, 3 contacts, 3 promises, recovered 350.00" in said
    assert "0 calls outside the rules, 0 unrecorded, 2 of 2 recordings verified" in said
    # no week: the last complete one; a client's own; a bad week
    default = build_parser().parse_args(["report", "weekly", "--out", str(tmp_path / "d"), "--client", "cu"])
    assert await cmd_report(default, clock) == 0 and (tmp_path / "d" / "weekly-2026-W48.xlsx").exists()
    assert await cmd_report(build_parser().parse_args(["report", "weekly", "--week", "2026-W60"]), clock) == 2
    assert await cmd_report(build_parser().parse_args(["report", "weekly", "--week", "2026-W50"]), clock) == 2


async def test_the_service_writes_the_week_just_ended_once(db, clock, seeded, tmp_path):
    from dunline.report_task import write_week_if_missing

    written = await write_week_if_missing(db, clock, tmp_path / "weekly", "en")
    assert written == tmp_path / "weekly" / "2026-W48"
    pdf = written / "weekly-2026-W48.pdf"
    assert stat.S_IMODE(pdf.stat().st_mode) == 0o640 and len(list(written.iterdir())) == 6
    before = pdf.stat().st_mtime_ns
    assert await write_week_if_missing(db, clock, tmp_path / "weekly", "en") is None
    assert pdf.stat().st_mtime_ns == before, "written once"
    clock.advance(7 * 24 * 3600)
    assert await write_week_if_missing(db, clock, tmp_path / "weekly", "en") == tmp_path / "weekly" / "2026-W49"


async def test_a_call_outside_the_window_counts_unless_the_debtor_agreed_to_its_time(db, clock, seeded):
    from sqlalchemy import update

    from storage.models import Appointment

    async with db.session() as s:
        s.add(Attempt(id="d" * 32, case_id="K1", number="13800000001", state="ended", outcome="no_answer",
                      created_at=bj(27, 21, 30), decision=DECISION))
        s.add(Appointment(case_id="K1", at=bj(27, 21, 32), agreed_by="debtor", recorded_attempt_id=T1,
                          created_at=bj(23, 9, 6)))
    agreed = await build_weekly_report(db, W48, ALL_CASES, clock())
    assert (agreed.compliance.attempts, agreed.compliance.outside_rules) == (6, 0)
    async with db.session() as s:
        await s.execute(update(Appointment).values(cancelled_at=bj(27, 12), cancelled_by="collector1"))
    cancelled = await build_weekly_report(db, W48, ALL_CASES, clock())
    assert (cancelled.compliance.outside_window, cancelled.compliance.outside_rules_ids) == (1, ("d" * 32,))
    assert not cancelled.compliance.clean
