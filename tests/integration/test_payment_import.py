"""Importing the client's payment records into a real database (SQLite): matched to cases by
account; bad rows reported by row, column and problem while the good ones are imported (as
batches do); re-importing changes nothing; a receipt is never re-used for other data; partial
payments lower the balance and a case paid in full is settled — and then the dialer's own
entry point (place_call, a stub PBX) refuses it with rule case_status. Each payment is
credited by the rule: the promise's collector and campaign, else the last connected call's,
else nobody. A file that is not one, or a database that refuses halfway, stores nothing."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from cases import dispositions_store
from cases.batches import BatchImporter
from cases.payments_store import PaymentImporter, import_errors, payments_for_case
from dialer.originate import DialBlocked, DialSettings, place_call
from dialer.policy import profile
from storage import repositories as repo
from storage.campaigns import Campaign
from storage.models import Attempt, AuditEvent, Case
from storage.payments import Payment, PaymentImport
from tests.batch_files import csv_bytes, good_row
from tests.console_kit import PASSWORD, cheap_accounts
from tests.db_snapshot import snapshot
from tests.payment_files import PAY_EN, pay_csv, pay_row, pay_xlsx

ROOT = Path(__file__).resolve().parents[2]
BEIJING = ZoneInfo("Asia/Shanghai")
PROMISED_CALL = "b" * 32
CONTACT_CALL = "c" * 32
OLD_CALL = "d" * 32


def beijing(day: int, hour: int = 10, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=BEIJING).astimezone(timezone.utc)


async def import_payments(db, clock, data: bytes, name: str = "pay.csv", client: str = "cu"):
    importer = PaymentImporter(db, clock)
    import_id = await importer.start(client=client, filename=name, data=data, by="tester")
    return await importer.run(import_id, data)


@pytest.fixture
async def book(db, clock):
    """Cases cu-AC000001..4 from a batch (arrears 1,001.50 .. 1,004.50, no calls yet), two
    collectors with phones (li 6001, wang 6002), a campaign; the clock at 10:00 Beijing on 30 Nov."""
    data = csv_bytes([good_row(n) for n in range(1, 5)])
    importer = BatchImporter(db, clock)
    await importer.run(await importer.start(client="cu", filename="B2026-11.csv", data=data, by="t"), data)
    accounts = cheap_accounts(db, clock)
    await accounts.add_team("north", by="test")
    ids = {}
    for name, phone in (("li", "6001"), ("wang", "6002")):
        user = await accounts.add_user(username=name, display_name=f"collector {name}", role="collector",
                                       password=PASSWORD, by="test", team="north")
        await accounts.set_phone(name, phone, by="test")
        ids[name] = user.id
    async with db.session() as s:
        campaign = Campaign(name="autumn", client="cu", mode="progressive", status="running", created_by="test",
                            created_at=clock())
        s.add(campaign)
        await s.flush()
        ids["autumn"] = campaign.id
        await repo.approve_caller_id(s, "cu", "4008001000")
    return ids


async def call(db, attempt_id: str, case_id: str, at: datetime, collector: str, *, campaign: int | None = None,
               bridged: float = 60.0) -> None:
    async with db.session() as s:
        case = await repo.get_case(s, case_id)
        phone = case.phones[0]
        s.add(Attempt(id=attempt_id, case_id=case_id, phone_id=phone.id, number=phone.number, collector=collector,
                      state="ended", outcome="answered", created_at=at - timedelta(seconds=20), answered_at=at,
                      ended_at=at + timedelta(minutes=3), bridged_seconds=bridged, campaign_id=campaign))


async def case_of(db, case_id: str) -> Case:
    async with db.session() as s:
        return await repo.get_case(s, case_id)


@pytest.mark.parametrize("kind", ["utf-8", "utf-8-sig", "gbk", "xlsx"])
async def test_payments_matched_by_account_and_every_bad_row_reported(db, clock, book, kind):
    rows = [pay_row("AC000001", "200.00", "2026-11-28", "SJ-0001", "债务人1"),
            pay_row("AC000002", "1,002.50", "2026-11-29", "SJ-0002"),
            pay_row("AC999999", "10", "2026-11-29", "SJ-0003"),  # no such case
            pay_row("AC000003", "一百", "2026-11-29", "SJ-0004"),
            pay_row("AC000003", "100", "2026-12-01", "SJ-0005"),  # tomorrow in Beijing
            pay_row("AC000003", "100", "2026-11-29", ""),
            pay_row("AC000004", "100", "2026-11-29", "SJ-0001")]  # the receipt of row 2 again
    data = pay_xlsx(rows) if kind == "xlsx" else pay_csv(rows, kind)
    result = await import_payments(db, clock, data, "pay.xlsx" if kind == "xlsx" else "pay.csv")
    assert (result.state, result.imported, result.unchanged, result.rejected) == ("done", 2, 0, 5)
    assert result.amount_cents == 20000 + 100250 and result.settled == ["cu-AC000002"]
    assert [(e.row, e.column) for e in result.errors] == [(4, "账号"), (5, "缴费金额"), (6, "缴费日期"), (7, "收据号"),
                                                          (8, "收据号")]
    assert "no case of client cu has account AC999999" in result.errors[0].problem
    assert "also on row 2" in result.errors[4].problem
    assert await import_errors(db, result.import_id) == result.errors
    first, second = await case_of(db, "cu-AC000001"), await case_of(db, "cu-AC000002")
    assert (first.paid_cents, first.status) == (20000, "open")
    assert (second.paid_cents, second.status) == (100250, "settled")
    async with db.session() as s:
        record = await s.get(PaymentImport, result.import_id)
        assert (record.state, record.rows_total, record.rows_imported, record.rows_rejected, record.amount_cents) \
            == ("done", 7, 2, 5, 120250)
        assert record.encoding == ("xlsx" if kind == "xlsx" else kind)
        [audit] = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "payment.imported"))).all()
        assert audit.actor == "tester" and audit.detail["imported"] == 2 and audit.detail["rejected"] == 5


async def test_english_headers(db, clock, book):
    data = pay_csv([pay_row("AC000001", "12.34", "2026/11/30", "R-1")], headers=PAY_EN)
    result = await import_payments(db, clock, data)
    assert (result.imported, result.errors) == (1, [])
    [p] = await payments_for_case(db, "cu-AC000001")
    assert (p.amount_cents, p.paid_on.isoformat(), p.receipt_no) == (1234, "2026-11-30", "R-1")


async def test_re_importing_changes_nothing(db, clock, book):
    rows = [pay_row("AC000001", "200", "2026-11-28", "SJ-1"), pay_row("AC000002", "300", "2026-11-28", "SJ-2"),
            pay_row("AC999999", "10", "2026-11-29", "SJ-3")]
    first = await import_payments(db, clock, pay_csv(rows, "gbk"))
    before = await snapshot(db, skip=("payment_imports", "payment_import_errors", "audit_events"))
    for data, name in ((pay_csv(rows, "gbk"), "again.csv"), (pay_xlsx(rows), "resaved.xlsx")):
        again = await import_payments(db, clock, data, name)
        assert (again.imported, again.unchanged, again.rejected) == (0, first.imported, first.rejected)
        assert await snapshot(db, skip=("payment_imports", "payment_import_errors", "audit_events")) == before
    assert (await case_of(db, "cu-AC000001")).paid_cents == 20000


async def test_a_receipt_already_registered_with_other_data_is_refused_never_overwritten(db, clock, book):
    await import_payments(db, clock, pay_csv([pay_row("AC000001", "200", "2026-11-28", "SJ-1")]))
    before = await snapshot(db, skip=("payment_imports", "payment_import_errors", "audit_events"))
    for changed in (pay_row("AC000001", "250", "2026-11-28", "SJ-1"), pay_row("AC000002", "200", "2026-11-28", "SJ-1"),
                    pay_row("AC000001", "200", "2026-11-27", "SJ-1")):
        result = await import_payments(db, clock, pay_csv([changed]))
        assert (result.imported, result.rejected) == (0, 1)
        assert "already registered with other data" in result.errors[0].problem
    assert await snapshot(db, skip=("payment_imports", "payment_import_errors", "audit_events")) == before
    # the same receipt number is another client's own business
    other = await import_payments(db, clock, pay_csv([pay_row("AC000001", "250", "2026-11-28", "SJ-1")]),
                                  client="other")
    assert "no case of client other" in other.errors[0].problem


async def test_partial_payments_lower_the_balance_and_the_full_one_settles_and_stops_the_dialer(
        db, clock, book, writer):
    from tests.integration.test_place_call_policy import RecordingLink

    link = RecordingLink()

    async def dial():
        return await place_call(db, link, DialSettings(), case_id="cu-AC000003", collector="6001", clock=clock,
                                writer=writer, policy=profile("client-default"))

    await import_payments(db, clock, pay_csv([pay_row("AC000003", "500", "2026-11-20", "R-1")]))
    await import_payments(db, clock, pay_csv([pay_row("AC000003", "500", "2026-11-25", "R-2")]))
    case = await case_of(db, "cu-AC000003")
    assert (case.amount_due_cents, case.paid_cents, case.status) == (100350, 100000, "open")
    await dial()  # 3.50 still owed: dialled
    assert len(link.originated) == 1
    clock.advance(3600)
    result = await import_payments(db, clock, pay_csv([pay_row("AC000003", "3.50", "2026-11-30", "R-3")]))
    assert result.settled == ["cu-AC000003"]
    case = await case_of(db, "cu-AC000003")
    assert (case.paid_cents, case.status, case.status_changed_at) == (100350, "settled", clock())
    assert "paid in full" in case.status_reason
    with pytest.raises(DialBlocked) as refused:
        await dial()
    assert refused.value.decision.rule == "case_status" and "settled" in refused.value.decision.reason
    assert len(link.originated) == 1, "never reached the PBX"
    async with db.session() as s:
        [changed] = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.status_changed"))).all()
        assert (changed.subject, changed.detail["before"], changed.detail["after"]) == \
            ("case:cu-AC000003", "open", "settled")
    # more money after settling: the balance goes below 0, nothing is offset, it stays settled
    await import_payments(db, clock, pay_csv([pay_row("AC000003", "10", "2026-11-30", "R-4")]))
    case = await case_of(db, "cu-AC000003")
    assert (case.paid_cents, case.status) == (101350, "settled")
    async with db.session() as s:
        assert len((await s.scalars(select(AuditEvent).where(AuditEvent.action == "case.status_changed"))).all()) == 1


async def test_each_payment_is_credited_to_the_promise_else_the_contact_else_nobody(db, clock, book):
    # case 1: wang talked to the debtor on 20 Nov; li's campaign call on 25 Nov got a promise
    await call(db, CONTACT_CALL, "cu-AC000001", beijing(20), "6002")
    await call(db, PROMISED_CALL, "cu-AC000001", beijing(25), "6001", campaign=book["autumn"])
    now = clock()
    clock.set(beijing(25, 10) + timedelta(minutes=4))
    await dispositions_store.record(db, clock, PROMISED_CALL, {"code": "promise_to_pay", "amount": "500",
                                                                "promise_date": "2026-11-28"}, by="li")
    clock.set(now)
    # case 2: only wang's contact (no campaign), 27 Nov; case 4: a contact 40 days before its payment
    await call(db, "e" * 32, "cu-AC000002", beijing(27), "6002")
    await call(db, OLD_CALL, "cu-AC000004", beijing(19, month=10), "6001", campaign=book["autumn"])
    rows = [pay_row("AC000001", "500", "2026-11-28", "R-1"), pay_row("AC000002", "100", "2026-11-28", "R-2"),
            pay_row("AC000003", "100", "2026-11-28", "R-3"), pay_row("AC000004", "100", "2026-11-28", "R-4"),
            pay_row("AC000001", "50", "2026-11-24", "R-5")]  # before the promise: the contact of 20 Nov
    result = await import_payments(db, clock, pay_csv(rows))
    assert result.credited == {"promise": 1, "contact": 2, "none": 2}
    async with db.session() as s:
        got = {p.receipt_no: (p.credit_rule, p.credited_user_id, p.credited_campaign_id, p.credited_attempt_id)
               for p in (await s.scalars(select(Payment))).all()}
    assert got == {
        "R-1": ("promise", book["li"], book["autumn"], PROMISED_CALL),
        "R-2": ("contact", book["wang"], None, "e" * 32),
        "R-3": ("none", None, None, None),
        "R-4": ("none", None, None, None),
        "R-5": ("contact", book["wang"], None, CONTACT_CALL),
    }
    [shown, earlier] = sorted(await payments_for_case(db, "cu-AC000001"), key=lambda p: p.receipt_no)
    assert (shown.credited_user, shown.credited_name, shown.credited_campaign) == ("li", "collector li", "autumn")


async def test_a_corrected_promise_does_not_take_the_credit(db, clock, book):
    await call(db, PROMISED_CALL, "cu-AC000001", beijing(25), "6001", campaign=book["autumn"])
    now = clock()
    clock.set(beijing(25) + timedelta(minutes=4))
    made = await dispositions_store.record(db, clock, PROMISED_CALL, {"code": "promise_to_pay", "amount": "500",
                                                                       "promise_date": "2026-11-28"}, by="li")
    await dispositions_store.record(db, clock, PROMISED_CALL, {"code": "contacted", "corrects": made.id}, by="li")
    clock.set(now)
    result = await import_payments(db, clock, pay_csv([pay_row("AC000001", "500", "2026-11-28", "R-1")]))
    assert result.credited == {"contact": 1}, "the call itself still counts as the contact"


@pytest.mark.parametrize("data, name, problem", [
    (b"\x00\x01binary\x00" * 50, "pay.csv", "binary"),
    (b"PK\x03\x04 not really a workbook", "pay.xlsx", "not a readable .xlsx"),
    (b"\xd0\xcf\x11\xe0old excel", "pay.xls", "old Excel"),
    ("账号,金额\nAC000001,100\n".encode(), "pay.csv", "required columns missing"),
    (b"", "pay.csv", "no header row"),
])
async def test_a_file_that_is_not_a_payment_file_is_refused_whole(db, clock, book, data, name, problem):
    await import_payments(db, clock, pay_csv([pay_row("AC000001", "200", "2026-11-28", "SJ-1")]))
    before = await snapshot(db, skip=("payment_imports",))
    result = await import_payments(db, clock, data, name)
    assert result.state == "refused" and problem in result.problem, result.problem
    assert await snapshot(db, skip=("payment_imports",)) == before


async def test_not_a_client_is_refused_before_anything_is_recorded(db, clock):
    from cases.payments_store import PaymentImportRefused

    with pytest.raises(PaymentImportRefused, match="not a client"):
        await PaymentImporter(db, clock).start(client="Bad Client", filename="p.csv", data=b"x", by="t")


async def test_the_database_refusing_halfway_stores_nothing_of_the_file(db, clock, book, monkeypatch):
    from cases import payments_store

    before = await snapshot(db, skip=("payment_imports",))

    async def failing(self, s, paid, by, now, import_id):
        raise RuntimeError("disk full")

    monkeypatch.setattr(payments_store.PaymentImporter, "_add_paid", failing)
    with pytest.raises(RuntimeError):
        await import_payments(db, clock, pay_csv([pay_row(f"AC00000{n}", "10", "2026-11-28", f"R-{n}")
                                                  for n in range(1, 5)]))
    assert await snapshot(db, skip=("payment_imports",)) == before
    async with db.session() as s:
        [record] = (await s.scalars(select(PaymentImport))).all()
        assert record.state == "failed" and "disk full" in record.problem


async def test_an_import_cut_short_by_a_stop_is_failed_at_the_next_start(db, clock):
    importer = PaymentImporter(db, clock)
    import_id = await importer.start(client="cu", filename="p.csv", data=b"x", by="tester")
    assert await importer.mark_interrupted() == 1
    async with db.session() as s:
        record = await s.get(PaymentImport, import_id)
        assert record.state == "failed" and "import it again" in record.problem
    assert await importer.mark_interrupted() == 0


async def test_the_cli_imports_and_lists_a_cases_payments(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path),
           "DUNLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"}
    batch = tmp_path / "B2026-11.csv"
    batch.write_bytes(csv_bytes([good_row(1), good_row(2)]))
    cli = [sys.executable, "-m", "dunline.cli"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True, timeout=120)

    assert run("batch", "import", str(batch), "--client", "cu").returncode == 0
    pay = tmp_path / "缴费.csv"
    pay.write_bytes(pay_csv([pay_row("AC000001", "1001.50", "2026-01-05", "R-1"),
                             pay_row("AC000002", "2.50", "2026-01-05", "R-2"),
                             pay_row("AC000009", "1", "2026-01-05", "R-3")], "gbk"))
    done = run("payment", "import", str(pay), "--client", "cu", "--errors", str(tmp_path / "err.csv"))
    assert done.returncode == 1, done.stderr
    assert "2 imported (1,004.00 yuan), 0 unchanged, 1 rows refused" in done.stdout
    assert "settled: cu-AC000001" in done.stdout and "none 2" in done.stdout
    assert "row 4, 账号: no case of client cu has account AC000009" in done.stdout
    assert "3/3 rows" in done.stderr
    assert "AC000009" in (tmp_path / "err.csv").read_text(encoding="utf-8-sig")
    assert (tmp_path / "err.csv").stat().st_mode & 0o777 == 0o640, "no other local user reads the report"
    again = run("payment", "import", str(pay), "--client", "cu")
    assert again.returncode == 1 and "0 imported (0.00 yuan), 2 unchanged, 1 rows refused" in again.stdout
    listed = run("payment", "list", "--case", "cu-AC000002")
    assert listed.returncode == 0, listed.stderr
    assert "arrears 1,002.50, paid 2.50, balance 1,000.00" in listed.stdout and "R-2" in listed.stdout
    assert run("payment", "list", "--case", "nope").returncode == 2
    assert run("payment", "import", str(tmp_path / "missing.csv"), "--client", "cu").returncode == 2
    errors = run("payment", "errors", "1")
    assert errors.returncode == 0 and "AC000009" in errors.stdout
