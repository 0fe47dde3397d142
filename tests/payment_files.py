"""Payment files as the client sends them, made for tests: CSV (UTF-8, BOM, GBK) or .xlsx
(amounts as numbers, days as dates, as Excel keeps them)."""
from __future__ import annotations

import csv
import io
from datetime import date

PAY_ZH = ["账号", "姓名", "缴费金额", "缴费日期", "收据号"]
PAY_EN = ["Account", "Name", "Amount", "Payment date", "Receipt no"]


def pay_row(account: str, amount: str, paid_on: str, receipt: str, name: str = "") -> list[object]:
    return [account, name, amount, paid_on, receipt]


def pay_csv(rows: list[list[object]], encoding: str = "utf-8", headers: list[str] = PAY_ZH) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    text = out.getvalue()
    if encoding == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode(encoding)


def pay_xlsx(rows: list[list[object]], headers: list[str] = PAY_ZH) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(headers)
    for account, name, amount, paid_on, receipt in rows:
        try:
            typed_amount: object = float(str(amount))
        except ValueError:
            typed_amount = amount
        try:
            typed_day: object = date.fromisoformat(str(paid_on))
        except ValueError:
            typed_day = paid_on
        sheet.append([account, name, typed_amount, typed_day, receipt])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
