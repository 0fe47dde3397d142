"""Batch files as clients send them, made for tests: .xlsx (openpyxl), CSV in UTF-8, with a
BOM, or GBK; good rows and every kind of bad row, each bad row with the column and the
problem the error report must name."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

ZH_HEADERS = ["批次号", "账号", "姓名", "身份证号", "本人电话", "家人电话", "单位电话", "第三方电话", "欠费金额",
              "逾期日期", "客户分类", "地区", "地址"]
EN_HEADERS = ["Batch", "Account", "Debtor name", "ID number", "Own phone", "Family phone", "Work phone",
              "Third party phone", "Arrears", "Overdue since", "Segment", "Region", "Address"]


def id_number(serial: int) -> str:
    first17 = f"110101199003{serial % 100000:05d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


def good_row(n: int, batch: str = "B2026-11") -> list[object]:
    return [batch, f"AC{n:06d}", f"债务人{n}", id_number(n), f"138{n:08d}", f"139{n:08d}" if n % 3 == 0 else "",
            f"0216{n:07d}" if n % 5 == 0 else "", "", f"{1000 + n % 5000}.50", "2026-03-01", "M2", "上海", "上海市黄浦区"]


@dataclass(frozen=True)
class BadRow:
    cells: list[object]
    column: str  # the Chinese header the report names ("" for the row as a whole)
    problem: str


def bad_rows(batch: str = "B2026-11") -> list[BadRow]:
    def row(n: int, **over: object) -> list[object]:
        cells = dict(zip(ZH_HEADERS, good_row(n, batch)))
        cells.update(over)
        return [cells[h] for h in ZH_HEADERS]

    return [
        BadRow(row(9001, 本人电话="12345"), "本人电话", "not a phone number"),
        BadRow(row(9002, 欠费金额="一千"), "欠费金额", "not an amount"),
        BadRow(row(9003, 欠费金额="-20"), "欠费金额", "more than 0"),
        BadRow(row(9004, 逾期日期="2026-13-01"), "逾期日期", "no such day"),
        BadRow(row(9005, 逾期日期="2099-01-01"), "逾期日期", "in the future"),
        BadRow(row(9006, 身份证号="110101199003071230"), "身份证号", "not a valid ID number"),
        BadRow(row(9007, 姓名=""), "姓名", "missing"),
        BadRow(row(9008, 本人电话=""), "", "no phone number"),
        BadRow(row(1, 姓名="重复的人"), "账号", "also on row"),  # the account of good row 1 again
        BadRow(row(9010, 批次号="B-OTHER"), "批次号", "one batch per file"),
        BadRow(row(9011, 本人电话="13800000001", 家人电话="13800000001"), "家人电话", "given twice"),
        BadRow(row(9012, 账号="AC 9012;drop"), "账号", "letters, digits"),
    ]


def csv_bytes(rows: list[list[object]], encoding: str = "utf-8", headers: list[str] = ZH_HEADERS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    text = out.getvalue()
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode(encoding)


def xlsx_bytes(rows: list[list[object]], headers: list[str] = ZH_HEADERS, title_rows: int = 0) -> bytes:
    """A workbook as Excel keeps it: phone numbers as numbers, dates as dates."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for _ in range(title_rows):
        sheet.append([])
    sheet.append(headers)
    for cells in rows:
        typed = []
        for header, value in zip(headers, cells):
            if header in ("本人电话", "Own phone") and isinstance(value, str) and value.isdigit():
                value = int(value)
            if header in ("逾期日期", "Overdue since") and isinstance(value, str) and len(value) == 10:
                try:
                    value = datetime.strptime(value, "%Y-%m-%d")
                except ValueError:
                    pass
            typed.append(value)
        sheet.append(typed)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
