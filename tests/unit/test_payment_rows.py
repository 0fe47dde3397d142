"""The client's payment rows and the credit rule, pure: headers by name in Chinese or English,
every cell checked, the row digest, sorting against what is stored, and whom a payment is
credited to (promise, else contact, else nobody; 30 days; the payment day's end in Beijing)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cases.intake import HeaderProblem, RowError
from cases.payments import (
    CREDIT_WINDOW_DAYS, ContactFact, Credit, CreditRule, PaymentRow, PromiseFact, against_stored, balance_cents,
    check_rows, credit, credit_window, digest_of, map_headers, row_digest, settles,
)

BEIJING = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 12, 1)
ZH = ["账号", "缴费金额", "缴费日期", "收据号", "姓名"]


def rows(*cells_list):
    return [(n, cells) for n, cells in enumerate(cells_list, start=2)]


def check(*cells_list, headers=ZH):
    return check_rows(rows(*cells_list), map_headers(headers), TODAY)


@pytest.mark.parametrize("headers", [
    ["账号", "缴费金额", "缴费日期", "收据号"],
    ["合同号", "还款金额", "还款日期", "凭证号"],
    ["Account No", "Amount", "Payment Date", "Receipt No"],
    [" ACCOUNT ", "amount_paid", "paid on", "RECEIPT"],
    ["账户", "金额", "日期", "receipt number"],
])
def test_headers_by_name_in_either_language(headers):
    mapped = map_headers(headers)
    assert dict(mapped.columns) == {"account": 0, "amount": 1, "paid_on": 2, "receipt": 3}


def test_unknown_columns_are_named_and_a_missing_one_stops_the_file():
    assert map_headers([*ZH, "备注"]).ignored == ("姓名", "备注")
    with pytest.raises(HeaderProblem, match="receipt"):
        map_headers(["账号", "缴费金额", "缴费日期"])
    with pytest.raises(HeaderProblem, match="both mean amount"):
        map_headers(["账号", "缴费金额", "金额", "缴费日期", "收据号"])


def test_a_good_row_in_every_usual_form():
    checked = check(["AC000001", "1,234.50", "2026-11-30", "SJ-0001", "王芳"],
                    ["AC000002", "¥300", "2026/11/3", "SJ-0002", ""],
                    ["AC000003", "88元", "2026年11月2日", 20261102, ""],
                    ["AC000004", 12.5, datetime(2026, 10, 1), "收据/77#1", ""])
    assert checked.errors == []
    assert checked.rows == [
        PaymentRow(2, "AC000001", 123450, date(2026, 11, 30), "SJ-0001"),
        PaymentRow(3, "AC000002", 30000, date(2026, 11, 3), "SJ-0002"),
        PaymentRow(4, "AC000003", 8800, date(2026, 11, 2), "20261102"),
        PaymentRow(5, "AC000004", 1250, date(2026, 10, 1), "收据/77#1"),
    ]


@pytest.mark.parametrize("cells, column, problem", [
    (["", "100", "2026-11-30", "R1"], "账号", "missing"),
    (["AC 1;drop", "100", "2026-11-30", "R1"], "账号", "letters, digits"),
    (["AC1", "", "2026-11-30", "R1"], "缴费金额", "missing"),
    (["AC1", "一百", "2026-11-30", "R1"], "缴费金额", "not an amount"),
    (["AC1", "0", "2026-11-30", "R1"], "缴费金额", "more than 0"),
    (["AC1", "-5", "2026-11-30", "R1"], "缴费金额", "more than 0"),
    (["AC1", "10.005", "2026-11-30", "R1"], "缴费金额", "2 decimal places"),
    (["AC1", "100", "", "R1"], "缴费日期", "missing"),
    (["AC1", "100", "2026-02-30", "R1"], "缴费日期", "no such day"),
    (["AC1", "100", "30/11/2026", "R1"], "缴费日期", "not a date"),
    (["AC1", "100", "2026-12-02", "R1"], "缴费日期", "in the future"),
    (["AC1", "100", "2026-11-30", ""], "收据号", "missing"),
    (["AC1", "100", "2026-11-30", "R 1"], "收据号", "letters, digits"),
])
def test_every_bad_cell_is_named_with_its_row_and_column(cells, column, problem):
    checked = check(cells)
    assert checked.rows == []
    assert any(e.row == 2 and e.column == column and problem in e.problem for e in checked.errors), checked.errors


def test_every_problem_of_a_row_is_reported_not_just_the_first():
    checked = check(["", "abc", "tomorrow", ""])
    assert {e.column for e in checked.errors} == {"账号", "缴费金额", "缴费日期", "收据号"}


def test_a_receipt_twice_in_a_file_names_its_first_row_and_blank_lines_are_not_rows():
    checked = check(["AC1", "100", "2026-11-30", "R1"], ["", "", "", ""], ["AC2", "100", "2026-11-30", "R1"])
    assert [r.row for r in checked.rows] == [2]
    assert checked.errors == [RowError(4, "收据号", "receipt R1 is also on row 2")]


def test_the_digest_is_what_the_row_says_for_whose_client():
    row = PaymentRow(2, "AC1", 100, date(2026, 11, 30), "R1")
    moved = PaymentRow(9, "AC1", 100, date(2026, 11, 30), "R1")
    assert digest_of("cu", row) == digest_of("cu", moved) == row_digest("cu", "R1", "AC1", 100, date(2026, 11, 30))
    assert digest_of("other", row) != digest_of("cu", row)
    day = date(2026, 11, 30)
    for changed in (PaymentRow(2, "AC2", 100, day, "R1"), PaymentRow(2, "AC1", 101, day, "R1"),
                    PaymentRow(2, "AC1", 100, date(2026, 11, 29), "R1"), PaymentRow(2, "AC1", 100, day, "R2")):
        assert digest_of("cu", changed) != digest_of("cu", row)


def test_sorting_against_what_is_stored():
    same = PaymentRow(2, "AC1", 100, date(2026, 11, 30), "R1")
    other_data = PaymentRow(3, "AC1", 999, date(2026, 11, 30), "R2")
    unknown = PaymentRow(4, "AC9", 100, date(2026, 11, 30), "R3")
    new = PaymentRow(5, "AC2", 100, date(2026, 11, 30), "R4")
    receipts = {"R1": digest_of("cu", same), "R2": digest_of("cu", PaymentRow(0, "AC1", 100, date(2026, 11, 30), "R2"))}
    result = against_stored([same, other_data, unknown, new], "cu", {"AC1": "cu-AC1", "AC2": "cu-AC2"}, receipts,
                            "账号", "收据号")
    assert result.unchanged == [same]
    assert result.new == [(new, "cu-AC2")]
    assert [(e.row, e.column) for e in result.errors] == [(3, "收据号"), (4, "账号")]
    assert "never changed" in result.errors[0].problem and "no case of client cu" in result.errors[1].problem


def test_balance_and_settling():
    assert balance_cents(10000, 2500) == 7500
    assert balance_cents(10000, 12000) == -2000  # nothing offset: the records say more was paid
    assert balance_cents(None, 100) is None
    assert not settles(10000, 9999) and settles(10000, 10000) and settles(10000, 10001)
    assert not settles(None, 10 ** 9)


# -- the credit rule -----------------------------------------------------------------

PAID_ON = date(2026, 11, 20)


def at_beijing(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=BEIJING).astimezone(timezone.utc)


def promise(when: datetime, n: int = 1, user: int | None = 7, campaign: int | None = 3, corrected=False):
    return PromiseFact(n, f"p{n:031d}", when, user, campaign, corrected)


def contact(when: datetime, n: int = 1, bridged: float | None = 42.0, user: int | None = 8, campaign: int | None = 4):
    return ContactFact(f"c{n:031d}", when, bridged, user, campaign)


def test_a_promise_before_the_payment_takes_the_credit_over_a_later_contact():
    got = credit(PAID_ON, [promise(at_beijing(PAID_ON - timedelta(days=5)))],
                 [contact(at_beijing(PAID_ON - timedelta(days=1)))])
    assert got == Credit(CreditRule.PROMISE, 7, 3, "p" + "1".zfill(31))


def test_the_latest_promise_wins_and_a_corrected_one_never_counts():
    older = promise(at_beijing(PAID_ON - timedelta(days=9)), n=1, user=1)
    newer = promise(at_beijing(PAID_ON - timedelta(days=2)), n=2, user=2)
    assert credit(PAID_ON, [newer, older], []).user_id == 2
    assert credit(PAID_ON, [older, promise(newer.entered_at, n=2, user=2, corrected=True)], []).user_id == 1
    same_moment = promise(newer.entered_at, n=3, user=3)
    assert credit(PAID_ON, [newer, same_moment], []).user_id == 3, "a tie goes to the later row"


def test_without_a_promise_the_latest_connected_call_takes_it():
    calls = [contact(at_beijing(PAID_ON - timedelta(days=3)), n=1, user=1, campaign=None),
             contact(at_beijing(PAID_ON - timedelta(days=1)), n=2, user=2, campaign=9),
             contact(at_beijing(PAID_ON), n=3, bridged=0.0, user=3),  # answered, nobody talked to them
             contact(at_beijing(PAID_ON), n=4, bridged=None, user=4)]
    assert credit(PAID_ON, [], calls) == Credit(CreditRule.CONTACT, 2, 9, "c" + "2".zfill(31))
    assert credit(PAID_ON, [], calls[2:]) == Credit(CreditRule.NONE)


def test_nothing_before_the_payment_credits_nobody():
    assert credit(PAID_ON, [], []) == Credit(CreditRule.NONE, None, None, None)


def test_a_promise_by_someone_who_is_no_user_still_credits_its_campaign():
    assert credit(PAID_ON, [promise(at_beijing(PAID_ON), user=None)], []) == \
        Credit(CreditRule.PROMISE, None, 3, "p" + "1".zfill(31))


def test_the_window_ends_at_the_payment_days_end_in_beijing():
    last_second = at_beijing(PAID_ON, 23, 59, 59)
    next_day = at_beijing(PAID_ON + timedelta(days=1), 0, 0, 0)
    assert credit(PAID_ON, [promise(last_second)], []).rule is CreditRule.PROMISE
    assert credit(PAID_ON, [promise(next_day)], []).rule is CreditRule.NONE
    assert credit(PAID_ON, [], [contact(last_second)]).rule is CreditRule.CONTACT
    assert credit(PAID_ON, [], [contact(next_day)]).rule is CreditRule.NONE
    # 20:00 UTC on the payment day is already the next day in Beijing: after the payment
    utc_evening = datetime(PAID_ON.year, PAID_ON.month, PAID_ON.day, 20, 0, tzinfo=timezone.utc)
    assert credit(PAID_ON, [promise(utc_evening)], []).rule is CreditRule.NONE
    # and 17:00 UTC the day before is 01:00 on the payment day in Beijing: before it
    before = datetime(PAID_ON.year, PAID_ON.month, PAID_ON.day - 1, 17, 0, tzinfo=timezone.utc)
    assert credit(PAID_ON, [promise(before)], []).rule is CreditRule.PROMISE


def test_the_window_reaches_30_days_back_and_no_further():
    first_day = PAID_ON - timedelta(days=CREDIT_WINDOW_DAYS)
    assert CREDIT_WINDOW_DAYS == 30
    assert credit(PAID_ON, [promise(at_beijing(first_day, 0, 0, 0))], []).rule is CreditRule.PROMISE
    assert credit(PAID_ON, [promise(at_beijing(first_day - timedelta(days=1), 23, 59, 59))], []).rule \
        is CreditRule.NONE
    assert credit(PAID_ON, [], [contact(at_beijing(first_day - timedelta(days=1), 23, 59))]).rule is CreditRule.NONE
    # an old promise does not hide a recent contact
    got = credit(PAID_ON, [promise(at_beijing(first_day - timedelta(days=3)))],
                 [contact(at_beijing(PAID_ON - timedelta(days=2)))])
    assert got.rule is CreditRule.CONTACT
    since, until = credit_window(PAID_ON)
    assert (since, until) == (at_beijing(first_day, 0), at_beijing(PAID_ON + timedelta(days=1), 0))
    assert until - since == timedelta(days=CREDIT_WINDOW_DAYS + 1)
