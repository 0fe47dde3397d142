"""The client's payment records (缴费记录), row by row, and whom each payment is credited to.
Pure: cells and facts in, typed rows, errors and credits out; no files, no database
(cases/intake_files.py reads the files, cases/payments_store.py stores the payments).

- **Headers** are mapped by name, Chinese or English, case and spacing ignored (`HEADERS`):
  the account (账号), the amount paid (缴费金额, yuan), the day it was paid (缴费日期) and the
  client's receipt number (收据号). Other columns are ignored and named; a missing one stops
  the whole file before any row is read.
- **A row** becomes a `PaymentRow` or a list of `RowError`s naming its row (as the
  spreadsheet numbers it), column and problem: the account as the batches write it, an
  amount above 0 in yuan with at most two decimals, a real day not after today (Beijing),
  a receipt number. A receipt twice in one file is an error naming its first row.
- **Against what is stored** (`against_stored`): the same row again (same `row_digest`:
  client, receipt, account, amount, day) is unchanged; a receipt this client already used
  for other data is an error (a payment is never edited: the client's receipt is its
  identity); an account with no case of this client is an error. Everything else is new.
- **The credit rule** (`credit`): who brought the money in; see its docstring.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from cases.intake import (
    MAX_ROWS, HeaderProblem, RowCells, RowError, cell_text, match_headers, parse_amount, parse_date,
)

# field -> the header names it goes by (compared after cases.intake.header_key)
HEADERS: dict[str, tuple[str, ...]] = {
    "account": ("账号", "账户", "合同号", "客户号", "account", "account no", "account number"),
    "amount": ("缴费金额", "还款金额", "实缴金额", "金额", "amount", "amount paid", "payment amount", "paid amount"),
    "paid_on": ("缴费日期", "还款日期", "到账日期", "日期", "paid on", "payment date", "date paid", "date"),
    "receipt": ("收据号", "凭证号", "收据编号", "票据号", "receipt", "receipt no", "receipt number"),
}
REQUIRED = ("account", "amount", "paid_on", "receipt")
RECEIPT_PATTERN = re.compile(r"[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-/#\u4e00-\u9fff]{0,63}")

CREDIT_ZONE = ZoneInfo("Asia/Shanghai")  # the floor's and the client's day
CREDIT_WINDOW_DAYS = 30
PROMISE_CODE = "promise_to_pay"  # cases.dispositions.Code.PROMISE_TO_PAY


@dataclass(frozen=True, slots=True)
class PaymentHeaders:
    """Which of the file's columns (by index) holds which field, and what was ignored."""

    columns: Mapping[str, int]
    names: Mapping[str, str]  # field -> the file's own header
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PaymentRow:
    row: int
    account: str
    amount_cents: int
    paid_on: date
    receipt_no: str


@dataclass(slots=True)
class CheckedPayments:
    """A file's rows after validation: good rows in file order, errors in file order."""

    rows: list[PaymentRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    account_column: str = "account"  # the file's own headers of these columns
    receipt_column: str = "receipt"


def map_headers(headers: Sequence[Any]) -> PaymentHeaders:
    return PaymentHeaders(*match_headers(headers, HEADERS, REQUIRED))


def row_digest(client: str, receipt_no: str, account: str, amount_cents: int, paid_on: date) -> str:
    """What a payment row says (not where it was): equal for the same payment imported again."""
    content = {"client": client, "receipt_no": receipt_no, "account": account, "amount_cents": amount_cents,
               "paid_on": paid_on.isoformat()}
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def digest_of(client: str, row: PaymentRow) -> str:
    return row_digest(client, row.receipt_no, row.account, row.amount_cents, row.paid_on)


def check_row(row: int, cells: Sequence[Any], headers: PaymentHeaders, today: date) -> PaymentRow | list[RowError]:
    """One data row: a good `PaymentRow`, or every problem found in it. `today` is the day in
    Beijing: a payment cannot be dated after it."""
    read = RowCells(row, cells, headers.columns, headers.names)
    errors, get, fail = read.errors, read.get, read.fail
    account = read.account()
    amount = 0
    try:
        amount = parse_amount(get("amount"))
    except ValueError as exc:
        fail("amount", "missing" if not get("amount") else str(exc))
    paid_on = today
    try:
        paid_on = parse_date(get("paid_on"))
        if paid_on > today:
            fail("paid_on", f"{paid_on.isoformat()} is in the future")
    except ValueError as exc:
        fail("paid_on", "missing" if not get("paid_on") else str(exc))
    receipt = get("receipt")
    if not receipt:
        fail("receipt", "missing: every payment is registered by its receipt number")
    elif not RECEIPT_PATTERN.fullmatch(receipt):
        fail("receipt", "letters, digits, '-', '_', '.', '/' or '#', at most 64")
    if errors:
        return errors
    return PaymentRow(row=row, account=account, amount_cents=amount, paid_on=paid_on, receipt_no=receipt)


def check_rows(rows: Iterable[tuple[int, Sequence[Any]]], headers: PaymentHeaders, today: date) -> CheckedPayments:
    """Every data row of a file: good rows, and the errors of bad ones (a receipt on a second
    row is an error naming the first)."""
    checked = CheckedPayments(account_column=headers.names["account"], receipt_column=headers.names["receipt"])
    first_row_of: dict[str, int] = {}
    count = 0
    for row, cells in rows:
        if not any(cell_text(c) for c in cells):
            continue  # blank lines are not rows
        count += 1
        if count > MAX_ROWS:
            checked.errors.append(RowError(row, "", f"more than {MAX_ROWS:,} rows: split the file"))
            break
        result = check_row(row, cells, headers, today)
        if isinstance(result, list):
            checked.errors.extend(result)
            continue
        first = first_row_of.setdefault(result.receipt_no, row)
        if first != row:
            checked.errors.append(RowError(row, checked.receipt_column,
                                           f"receipt {result.receipt_no} is also on row {first}"))
            continue
        checked.rows.append(result)
    return checked


@dataclass(slots=True)
class SortedPayments:
    new: list[tuple[PaymentRow, str]] = field(default_factory=list)  # (row, the case it pays)
    unchanged: list[PaymentRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def against_stored(rows: Sequence[PaymentRow], client: str, cases: Mapping[str, str],
                   receipts: Mapping[str, str], account_column: str, receipt_column: str) -> SortedPayments:
    """Good rows sorted against what is stored: `cases` maps this client's accounts to their
    case numbers, `receipts` this client's registered receipt numbers to their row digests.
    The same row again is unchanged; a receipt registered with other data, or an account
    with no case, is an error; the rest is new."""
    result = SortedPayments()
    for row in rows:
        known = receipts.get(row.receipt_no)
        if known is not None:
            if known == digest_of(client, row):
                result.unchanged.append(row)
            else:
                result.errors.append(RowError(
                    row.row, receipt_column,
                    f"receipt {row.receipt_no} is already registered with other data: a payment is never "
                    "changed (ask the client which is right)"))
            continue
        case_id = cases.get(row.account)
        if case_id is None:
            result.errors.append(RowError(row.row, account_column,
                                          f"no case of client {client} has account {row.account}"))
            continue
        result.new.append((row, case_id))
    return result


# -- the credit rule ----------------------------------------------------------------------

class CreditRule(StrEnum):
    PROMISE = "promise"
    CONTACT = "contact"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class PromiseFact:
    """A promise_to_pay disposition of the case: when it was entered, by whom (their user id,
    None when the name is no user's), the campaign of its call, whether it was corrected."""

    disposition_id: int
    attempt_id: str
    entered_at: datetime  # aware
    user_id: int | None
    campaign_id: int | None
    corrected: bool = False


@dataclass(frozen=True, slots=True)
class ContactFact:
    """A call of the case: when it was answered, how long the debtor was with a collector,
    that collector (the user whose phone took it; None when no user has that phone), its campaign."""

    attempt_id: str
    at: datetime  # aware: answered (else created)
    bridged_seconds: float | None
    user_id: int | None
    campaign_id: int | None


@dataclass(frozen=True, slots=True)
class Credit:
    rule: CreditRule
    user_id: int | None = None
    campaign_id: int | None = None
    attempt_id: str | None = None


NO_CREDIT = Credit(CreditRule.NONE)


def credit_window(paid_on: date) -> tuple[datetime, datetime]:
    """[from, until) in UTC: from 00:00 Beijing of the day `CREDIT_WINDOW_DAYS` days before the
    payment day, until the end of the payment day in Beijing (00:00 of the next day)."""
    until = datetime.combine(paid_on + timedelta(days=1), time(0), CREDIT_ZONE)
    since = datetime.combine(paid_on - timedelta(days=CREDIT_WINDOW_DAYS), time(0), CREDIT_ZONE)
    return since.astimezone(ZoneInfo("UTC")), until.astimezone(ZoneInfo("UTC"))


def credit(paid_on: date, promises: Iterable[PromiseFact], contacts: Iterable[ContactFact]) -> Credit:
    """Whom a payment of `paid_on` is credited to, from the facts of its case.

    The window: the payment day and the 30 days before it, by the day in Beijing — from 00:00
    of (paid_on − 30 days) until 24:00 of paid_on, Asia/Shanghai (`credit_window`). The
    client's file gives only the day, so anything on that day counts as before the payment.

    1. **promise**: the latest promise_to_pay disposition entered in the window (a corrected
       one never counts; a correction that is itself a promise does): credited to the user who
       entered it and the campaign of its call (None when the call was no campaign's).
    2. **contact**: else the latest call answered in the window on which the debtor was with a
       collector (bridged_seconds > 0): credited to that collector (the user whose phone took the
       call) and the call's campaign.
    3. **none**: else nobody.

    Ties (the same moment) go to the later row (higher disposition id, later attempt id). The
    credit is decided once, when the payment is imported, and kept on the payment."""
    since, until = credit_window(paid_on)
    promise = max((p for p in promises if not p.corrected and since <= p.entered_at < until),
                  key=lambda p: (p.entered_at, p.disposition_id), default=None)
    if promise is not None:
        return Credit(CreditRule.PROMISE, promise.user_id, promise.campaign_id, promise.attempt_id)
    contact = max((c for c in contacts if (c.bridged_seconds or 0) > 0 and since <= c.at < until),
                  key=lambda c: (c.at, c.attempt_id), default=None)
    if contact is not None:
        return Credit(CreditRule.CONTACT, contact.user_id, contact.campaign_id, contact.attempt_id)
    return NO_CREDIT


def settles(amount_due_cents: int | None, paid_cents: int) -> bool:
    """Is a case with this arrears paid in full? (A case without an amount never is.)"""
    return amount_due_cents is not None and paid_cents >= amount_due_cents


def balance_cents(amount_due_cents: int | None, paid_cents: int) -> int | None:
    """What is still owed: arrears − paid (below 0 when the client's records show more paid;
    nothing is offset), None without an amount."""
    return None if amount_due_cents is None else amount_due_cents - paid_cents
