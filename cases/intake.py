"""A client's batch (委托批次), row by row: which column is which, what a good row is, and
what is wrong with a bad one. Pure: cells in, typed rows or errors out; no files, no
database (cases/intake_files.py reads the files, cases/batches.py stores the rows).

- **Headers** are mapped by name, Chinese or English, case and spacing ignored
  (`HEADERS`); unknown columns are ignored and named, a missing required one stops the
  whole file before any row is read.
- **A row** becomes an `IntakeRow` or a list of `RowError`s naming its row (as the
  spreadsheet numbers it), column and problem. Phones come from typed columns (own,
  family, work, third party), several numbers to a cell allowed; an own phone is the
  debtor's, every other is a third party's for the dialing policy.
- **Duplicates**: a second row of the same account in a file is an error naming the
  first; a number twice in one row is an error. Against what is stored (`against_stored`):
  an account already in another batch is an error; the same row again (same digest) is
  unchanged; the same account with other data is an error (re-importing changes nothing:
  corrections are made on the case).
"""
from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Relation(StrEnum):
    """Whose phone a number is, as the client's file says."""

    OWN = "own"
    FAMILY = "family"
    WORK = "work"
    THIRD_PARTY = "third_party"

    @property
    def policy_kind(self) -> str:
        """The dialing policy's kind: the debtor's own number, or a third party's."""
        return "debtor" if self is Relation.OWN else "third_party"


# field -> the header names it goes by (compared after `_header_key`)
HEADERS: dict[str, tuple[str, ...]] = {
    "batch": ("批次号", "委托批次", "批次", "batch", "batch id", "batch no"),
    "account": ("账号", "账户", "合同号", "客户号", "account", "account no", "account number"),
    "debtor_name": ("姓名", "客户姓名", "债务人", "债务人姓名", "name", "debtor", "debtor name"),
    "id_number": ("身份证号", "身份证号码", "证件号码", "id number", "id no", "national id"),
    "arrears": ("欠款金额", "欠费金额", "欠费", "欠款", "arrears", "amount", "amount due", "arrears amount"),
    "overdue_since": ("逾期日期", "逾期开始日期", "逾期起始日", "overdue since", "overdue date"),
    "segment": ("客户分类", "分类", "segment"),
    "region": ("地区", "区域", "region"),
    "address": ("地址", "住址", "address"),
    "timezone": ("时区", "timezone", "time zone"),
    "phone_own": ("本人电话", "本人手机", "手机", "电话", "own phone", "phone", "mobile"),
    "phone_family": ("家人电话", "亲属电话", "家庭电话", "family phone"),
    "phone_work": ("单位电话", "工作电话", "work phone"),
    "phone_third_party": ("第三方电话", "联系人电话", "third party phone", "contact phone"),
}
REQUIRED = ("account", "debtor_name", "arrears", "overdue_since")
PHONE_FIELDS: dict[str, Relation] = {
    "phone_own": Relation.OWN, "phone_family": Relation.FAMILY,
    "phone_work": Relation.WORK, "phone_third_party": Relation.THIRD_PARTY,
}
MAX_ROWS = 200_000
MAX_ARREARS = Decimal("10000000000")  # ten billion: more is a typo
ACCOUNT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,39}")
BATCH_PATTERN = re.compile(r"[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9_.\-\u4e00-\u9fff]{0,39}")
CLIENT_PATTERN = re.compile(r"[a-z0-9][a-z0-9\-]{0,22}")
_PHONE_SPLIT = re.compile(r"[;,/、，；]+")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class HeaderProblem(ValueError):
    """The file's header row cannot be used: nothing of it is imported."""


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as the spreadsheet numbers it (the header is row 1 when it is the first)
    column: str  # the file's own header of the column ("" for the row as a whole)
    problem: str


@dataclass(frozen=True, slots=True)
class IntakePhone:
    number: str
    relation: Relation


@dataclass(frozen=True, slots=True)
class IntakeRow:
    row: int
    account: str
    debtor_name: str
    id_number: str | None
    phones: tuple[IntakePhone, ...]
    arrears_cents: int
    overdue_since: date
    segment: str | None = None
    region: str | None = None
    address: str | None = None
    timezone: str | None = None

    @property
    def digest(self) -> str:
        """What the row says (not where it was): equal for the same account re-imported unchanged."""
        content = {
            "account": self.account, "debtor_name": self.debtor_name, "id_number": self.id_number,
            "phones": [[p.number, p.relation.value] for p in self.phones], "arrears_cents": self.arrears_cents,
            "overdue_since": self.overdue_since.isoformat(), "segment": self.segment, "region": self.region,
            "address": self.address, "timezone": self.timezone,
        }
        return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """Which of the file's columns (by index) holds which field, and what was ignored."""

    columns: Mapping[str, int]
    names: Mapping[str, str]  # field -> the file's own header
    ignored: tuple[str, ...] = ()


@dataclass(slots=True)
class Checked:
    """A file's rows after validation: good rows in file order, errors in file order."""

    rows: list[IntakeRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    batch: str | None = None  # the batch id the file's rows named (when it has the column)
    account_column: str = "account"  # the file's own header of the account column


def header_key(text: Any) -> str:
    """A header as compared with the names a field goes by (width, case, spaces, '_' folded)."""
    value = unicodedata.normalize("NFKC", str(text or "")).strip().lower()
    return re.sub(r"[\s_]+", " ", value)


def match_headers(headers: Sequence[Any], names_of: Mapping[str, Sequence[str]], required: Iterable[str]
                  ) -> tuple[dict[str, int], dict[str, str], tuple[str, ...]]:
    """A file's header row matched by name to the fields `names_of` (field -> the names it goes
    by, Chinese first, an English one among them): (field -> column, field -> the header as
    written, the headers ignored). HeaderProblem for a field named twice or a required one missing.
    The one matcher of every client file (batches here, payments in cases/payments.py)."""
    aliases = {header_key(alias): name for name, names in names_of.items() for alias in names}
    columns: dict[str, int] = {}
    written: dict[str, str] = {}
    ignored: list[str] = []
    for index, header in enumerate(headers):
        key = header_key(header)
        if not key:
            continue
        name = aliases.get(key)
        if name is None:
            ignored.append(str(header).strip())
            continue
        if name in columns:
            raise HeaderProblem(f"columns {written[name]!r} and {str(header).strip()!r} both mean {name}")
        columns[name] = index
        written[name] = str(header).strip()
    missing = [name for name in required if name not in columns]
    if missing:
        def english(name: str) -> str:
            return next((alias for alias in names_of[name] if alias.isascii()), names_of[name][-1])
        wanted = "; ".join(f"{name} ({' / '.join(names_of[name][:2])} / {english(name)})" for name in missing)
        raise HeaderProblem(f"required columns missing: {wanted}")
    return columns, written, tuple(ignored)


def map_headers(headers: Sequence[Any]) -> HeaderMap:
    columns, names, ignored = match_headers(headers, HEADERS, REQUIRED)
    if not any(name in columns for name in PHONE_FIELDS):
        raise HeaderProblem("no phone column (本人电话 / own phone, 家人电话, 单位电话, 第三方电话)")
    return HeaderMap(columns, names, ignored)


def cell_text(value: Any) -> str:
    """A cell as text: spreadsheets give numbers and dates, CSV gives strings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return unicodedata.normalize("NFKC", str(value)).strip()


def normalise_phone(raw: str) -> str | None:
    """A dialable number (digits, or + and digits for abroad), or None if it is not one.
    Chinese mobiles (1[3-9] + 9 digits) and landlines with their area code (0 + 9–11
    digits) are accepted with or without +86; other countries need their + prefix."""
    text = re.sub(r"[\s\-()]", "", raw)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif len(text) == 13 and text.startswith("86"):
        text = text[2:]
    if re.fullmatch(r"1[3-9]\d{9}", text) or re.fullmatch(r"0[1-9]\d{8,10}", text):
        return text
    if re.fullmatch(r"\+[1-9]\d{7,14}", text):
        return text
    return None


def valid_id_number(value: str) -> bool:
    """A resident ID number: 18 characters with a good check character (GB 11643), or the old 15 digits."""
    if re.fullmatch(r"\d{15}", value):
        return True
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == value[17]


def parse_amount(raw: str) -> int:
    """Yuan as written (`1,234.50`, `¥1234`, `1234元`) -> cents; ValueError saying why not."""
    text = re.sub(r"[,\s¥￥]|元$|^CNY|^RMB", "", raw)
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {raw!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an amount: {raw!r}")
    if amount <= 0:
        raise ValueError("must be more than 0")
    if amount >= MAX_ARREARS:
        raise ValueError(f"{raw} is more than {MAX_ARREARS:,} (a typo?)")
    if amount != amount.quantize(Decimal("0.01")):
        raise ValueError("more than 2 decimal places")
    return int(amount * 100)


def parse_date(raw: str) -> date:
    text = raw.strip()
    match = (re.fullmatch(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T][\d:.]+)?", text)
             or re.fullmatch(r"(\d{4})年(\d{1,2})月(\d{1,2})日?", text)
             or re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text))
    if not match:
        raise ValueError(f"not a date: {raw!r} (write 2026-03-01)")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise ValueError(f"no such day: {raw!r}") from None


def _numbers_in(cell: str) -> list[str]:
    """The numbers of a cell: split at ; , / 、 and, unless a piece reads as one number
    with its spaces ("138 0013 8000"), at spaces too."""
    out: list[str] = []
    for piece in _PHONE_SPLIT.split(cell):
        piece = piece.strip()
        if not piece:
            continue
        out.extend([piece] if normalise_phone(piece) else piece.split())
    return out


def _text(value: str, limit: int) -> str | None:
    if not value:
        return None
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("holds control characters")
    return value


class RowCells:
    """One data row of a client's file: its cells by field, and every problem found in it (the
    rows of batches here and of payments in cases/payments.py are read the same way)."""

    def __init__(self, row: int, cells: Sequence[Any], columns: Mapping[str, int], names: Mapping[str, str]) -> None:
        self.row, self.cells, self.columns, self.names = row, cells, columns, names
        self.errors: list[RowError] = []

    def get(self, name: str) -> str:
        index = self.columns.get(name)
        return cell_text(self.cells[index]) if index is not None and index < len(self.cells) else ""

    def fail(self, name: str, problem: str) -> None:
        self.errors.append(RowError(self.row, self.names.get(name, name), problem))

    def account(self) -> str:
        """The account cell, checked (a problem noted when it is missing or malformed)."""
        account = self.get("account")
        if not account:
            self.fail("account", "missing")
        elif not ACCOUNT_PATTERN.fullmatch(account):
            self.fail("account", "letters, digits, '-', '_' or '.', at most 40")
        return account


def check_row(row: int, cells: Sequence[Any], headers: HeaderMap, today: date) -> IntakeRow | list[RowError]:
    """One data row: a good `IntakeRow`, or every problem found in it."""
    read = RowCells(row, cells, headers.columns, headers.names)
    errors, get, fail = read.errors, read.get, read.fail
    account = read.account()
    name = get("debtor_name")
    if not name:
        fail("debtor_name", "missing")
    id_number = get("id_number").upper() or None
    if id_number is not None and not valid_id_number(id_number):
        fail("id_number", "not a valid ID number (18 characters, check digit)")
    arrears = 0
    try:
        arrears = parse_amount(get("arrears"))
    except ValueError as exc:
        fail("arrears", "missing" if not get("arrears") else str(exc))
    overdue = today
    try:
        overdue = parse_date(get("overdue_since"))
        if overdue > today:
            fail("overdue_since", f"{overdue.isoformat()} is in the future")
    except ValueError as exc:
        fail("overdue_since", "missing" if not get("overdue_since") else str(exc))
    texts: dict[str, str | None] = {}
    for field_name, limit in (("debtor_name", 200), ("segment", 64), ("region", 64), ("address", 300)):
        try:
            texts[field_name] = _text(get(field_name), limit)
        except ValueError as exc:
            fail(field_name, str(exc))
    zone = get("timezone") or None
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            fail("timezone", f"unknown time zone {zone!r} (e.g. Asia/Shanghai)")
    phones: list[IntakePhone] = []
    seen: set[str] = set()
    for field_name, relation in PHONE_FIELDS.items():
        for raw in _numbers_in(get(field_name)):
            number = normalise_phone(raw)
            if number is None:
                fail(field_name, f"not a phone number: {raw!r}")
            elif number in seen:
                fail(field_name, f"{raw} is given twice in this row")
            else:
                seen.add(number)
                phones.append(IntakePhone(number, relation))
    if not phones and not any(e.column in {headers.names.get(f) for f in PHONE_FIELDS} for e in errors):
        errors.append(RowError(row, "", "no phone number"))
    if errors:
        return errors
    return IntakeRow(row=row, account=account, debtor_name=name, id_number=id_number, phones=tuple(phones),
                     arrears_cents=arrears, overdue_since=overdue, segment=texts.get("segment"),
                     region=texts.get("region"), address=texts.get("address"), timezone=zone)


def check_rows(rows: Iterable[tuple[int, Sequence[Any]]], headers: HeaderMap, today: date,
               batch: str | None = None) -> Checked:
    """Every data row of a file: good rows, and the errors of bad ones (a second row of an
    account is an error naming the first; a row naming another batch is an error)."""
    checked = Checked(batch=batch, account_column=headers.names["account"])
    first_row_of: dict[str, int] = {}
    batch_column = headers.columns.get("batch")
    count = 0
    for row, cells in rows:
        if not any(cell_text(c) for c in cells):
            continue  # blank lines are not rows
        count += 1
        if count > MAX_ROWS:
            checked.errors.append(RowError(row, "", f"more than {MAX_ROWS:,} rows: split the file"))
            break
        result = check_row(row, cells, headers, today)
        batch_problem = None
        if batch_column is not None:
            named = cell_text(cells[batch_column]) if batch_column < len(cells) else ""
            if named and checked.batch is None:
                if BATCH_PATTERN.fullmatch(named):
                    checked.batch = named
                else:
                    batch_problem = f"not a batch id: {named!r}"
            elif named and named != checked.batch:
                batch_problem = f"batch {named!r}, but this file is batch {checked.batch!r}: one batch per file"
        if batch_problem:
            extra = RowError(row, headers.names["batch"], batch_problem)
            result = [*result, extra] if isinstance(result, list) else [extra]
        if isinstance(result, list):
            checked.errors.extend(result)
            continue
        first = first_row_of.setdefault(result.account, row)
        if first != row:
            checked.errors.append(RowError(row, headers.names["account"],
                                           f"account {result.account} is also on row {first}"))
            continue
        checked.rows.append(result)
    return checked


@dataclass(frozen=True, slots=True)
class StoredAccount:
    """What is stored of an account the file also holds."""

    batch: str
    digest: str | None


@dataclass(slots=True)
class Sorted:
    new: list[IntakeRow] = field(default_factory=list)
    unchanged: list[IntakeRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def against_stored(rows: Sequence[IntakeRow], stored: Mapping[str, StoredAccount], batch: str,
                   account_column: str) -> Sorted:
    """Good rows sorted against the accounts already stored: new, unchanged (the same row
    again), or an error (the account is another batch's, or this batch's with other data)."""
    result = Sorted()
    for row in rows:
        known = stored.get(row.account)
        if known is None:
            result.new.append(row)
        elif known.batch != batch:
            result.errors.append(RowError(row.row, account_column,
                                          f"account {row.account} is already in batch {known.batch}"))
        elif known.digest == row.digest:
            result.unchanged.append(row)
        else:
            result.errors.append(RowError(
                row.row, account_column,
                f"account {row.account} was imported with other data: change it on the case, not by re-importing"))
    return result


def case_id_of(client: str, account: str) -> str:
    """The case number: the client and its account number."""
    return f"{client}-{account}"
