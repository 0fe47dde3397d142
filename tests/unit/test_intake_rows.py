"""The batch row rules without files or a database: header mapping (Chinese and English),
every kind of bad cell named by row and column, duplicates within a file and against what
is stored, and the parsers under hypothesis."""
from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.intake import (
    HeaderProblem, IntakeRow, Relation, StoredAccount, against_stored, case_id_of, cell_text, check_rows,
    map_headers, normalise_phone, parse_amount, parse_date, valid_id_number,
)

TODAY = date(2026, 12, 3)
ZH = ["批次号", "账号", "姓名", "身份证号", "本人电话", "家人电话", "单位电话", "第三方电话", "欠费金额", "逾期日期",
      "客户分类", "地区", "地址"]


def fix_check_digit(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


VALID_ID = fix_check_digit("11010119900307123")


def good(account="A1", **over):
    row = {"批次号": "B2026-11", "账号": account, "姓名": "张伟", "身份证号": VALID_ID,
           "本人电话": "13800138000", "家人电话": "", "单位电话": "", "第三方电话": "", "欠费金额": "1,234.50",
           "逾期日期": "2026-03-01", "客户分类": "M2", "地区": "北京", "地址": "北京市朝阳区"}
    row.update(over)
    return [row[h] for h in ZH]


def check(*rows, headers=ZH):
    return check_rows(((i, r) for i, r in enumerate(rows, start=2)), map_headers(headers), TODAY)


def test_chinese_and_english_headers_map_to_the_same_fields():
    zh = map_headers(ZH)
    en = map_headers(["Batch", "Account No", "Debtor Name", "ID number", "Own phone", "family_phone", "Work Phone",
                      "Third party phone", "Arrears", "Overdue since", "Segment", "Region", "Address"])
    assert zh.columns == en.columns
    assert map_headers(["  账号 ", "ＮＡＭＥ", "phone", "amount", "overdue since", "notes"]).ignored == ("notes",)


@pytest.mark.parametrize("headers, problem", [
    (["账号", "姓名", "本人电话", "欠费金额"], "overdue_since"),
    (["账号", "姓名", "欠费金额", "逾期日期"], "no phone column"),
    (["账号", "账户", "姓名", "本人电话", "欠费金额", "逾期日期"], "both mean account"),
])
def test_a_header_that_cannot_be_used_stops_the_file(headers, problem):
    with pytest.raises(HeaderProblem, match=problem):
        map_headers(headers)


def test_a_good_row_becomes_a_case_with_its_phones_and_relations():
    checked = check(good(本人电话="138 0013 8000；+86 139-0013-9000", 家人电话="02161234567", 第三方电话="+14155550123",
                         身份证号=VALID_ID))
    assert checked.errors == []
    [row] = checked.rows
    assert row.account == "A1" and row.arrears_cents == 123450 and row.overdue_since == date(2026, 3, 1)
    assert [(p.number, p.relation) for p in row.phones] == [
        ("13800138000", Relation.OWN), ("13900139000", Relation.OWN), ("02161234567", Relation.FAMILY),
        ("+14155550123", Relation.THIRD_PARTY)]
    assert [p.relation.policy_kind for p in row.phones] == ["debtor", "debtor", "third_party", "third_party"]
    assert checked.batch == "B2026-11" and case_id_of("cu", row.account) == "cu-A1"


@pytest.mark.parametrize("over, column, problem", [
    ({"账号": ""}, "账号", "missing"),
    ({"账号": "A 1;drop"}, "账号", "letters, digits"),
    ({"姓名": ""}, "姓名", "missing"),
    ({"身份证号": "110101199003071235"}, "身份证号", "not a valid ID number"),
    ({"本人电话": "12345"}, "本人电话", "not a phone number"),
    ({"本人电话": "13800138000", "家人电话": "+86 13800138000"}, "家人电话", "given twice"),
    ({"本人电话": ""}, "", "no phone number"),
    ({"欠费金额": ""}, "欠费金额", "missing"),
    ({"欠费金额": "abc"}, "欠费金额", "not an amount"),
    ({"欠费金额": "-5"}, "欠费金额", "more than 0"),
    ({"欠费金额": "12.345"}, "欠费金额", "2 decimal"),
    ({"欠费金额": "NaN"}, "欠费金额", "not an amount"),
    ({"欠费金额": "99999999999"}, "欠费金额", "a typo"),
    ({"逾期日期": "2026-02-30"}, "逾期日期", "no such day"),
    ({"逾期日期": "yesterday"}, "逾期日期", "not a date"),
    ({"逾期日期": "2027-01-01"}, "逾期日期", "in the future"),
    ({"地址": "x" * 301}, "地址", "longer than 300"),
    ({"姓名": "张\x00伟"}, "姓名", "control characters"),
    ({"批次号": "B2026-12"}, "批次号", "one batch per file"),
])
def test_each_bad_cell_is_named_by_row_column_and_problem(over, column, problem):
    checked = check(good("A0"), good(**over))
    assert [r.account for r in checked.rows] == ["A0"]
    assert [(e.row, e.column) for e in checked.errors] == [(3, column)]
    assert problem in checked.errors[0].problem


def test_every_problem_of_a_row_is_listed_not_only_the_first():
    checked = check(good(账号="", 欠费金额="x", 逾期日期="soon"))
    assert {e.column for e in checked.errors} == {"账号", "欠费金额", "逾期日期"} and checked.rows == []


def test_a_second_row_of_an_account_names_the_first_and_blank_lines_are_skipped():
    checked = check(good("A1"), [""] * len(ZH), good("A2"), good("A1", 姓名="李娜"))
    assert [r.account for r in checked.rows] == ["A1", "A2"]
    assert [(e.row, e.problem) for e in checked.errors] == [(5, "account A1 is also on row 2")]


def test_spreadsheet_cells_are_read_as_a_clerk_typed_them():
    assert cell_text(13800138000.0) == "13800138000"
    assert cell_text(datetime(2026, 3, 1)) == "2026-03-01" and cell_text(date(2026, 3, 1)) == "2026-03-01"
    assert cell_text(1234.5) == "1234.5" and cell_text(None) == ""
    checked = check(good(本人电话=13800138000.0, 欠费金额=1234.5, 逾期日期=datetime(2026, 3, 1)))
    assert checked.errors == [] and checked.rows[0].arrears_cents == 123450


def row_of(account, batch="B1"):
    checked = check(good(account, 批次号=batch))
    return checked.rows[0]


def test_against_stored_new_unchanged_or_an_error():
    same, changed, elsewhere, new = (row_of("S"), row_of("C"), row_of("E"), row_of("N"))
    stored = {"S": StoredAccount("B1", same.digest), "C": StoredAccount("B1", "another digest"),
              "E": StoredAccount("B0", same.digest)}
    result = against_stored([same, changed, elsewhere, new], stored, "B1", "账号")
    assert result.new == [new] and result.unchanged == [same]
    assert [(e.column, e.problem.split(":")[0]) for e in result.errors] == [
        ("账号", "account C was imported with other data"), ("账号", "account E is already in batch B0")]


def test_the_digest_is_of_the_content_not_the_row_number():
    a = check(good("A1")).rows[0]
    b = check(good("A0"), good("A1")).rows[1]
    assert a.row != b.row and a.digest == b.digest
    assert check(good("A1", 欠费金额="1234.51")).rows[0].digest != a.digest


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", "+86", "0086", "86"]),
       st.sampled_from(["", " ", "-"]))
def test_any_mobile_written_any_usual_way_is_the_same_number(number, prefix, sep):
    written = prefix + sep.join([number[:3], number[3:7], number[7:]])
    assert normalise_phone(written) == number


@given(st.text(max_size=30))
def test_the_parsers_never_raise_anything_but_value_error(text):
    assert normalise_phone(text) is None or normalise_phone(text)
    for parse in (parse_amount, parse_date):
        try:
            parse(text)
        except ValueError:
            pass
    valid_id_number(text)


@given(st.decimals(min_value="0.01", max_value="999999999.99", places=2))
def test_amounts_are_exact_in_cents(amount):
    assert parse_amount(f"¥{amount:,}") == int(amount * 100)


def test_id_number_check_digit():
    assert valid_id_number(VALID_ID) and valid_id_number("110101900307123")
    wrong = VALID_ID[:17] + ("0" if VALID_ID[17] != "0" else "1")
    assert not valid_id_number(wrong) and not valid_id_number("1101011990030712")
