"""A client's file as a header and numbered rows: .xlsx (the first sheet, openpyxl in
read-only mode) or CSV in UTF-8, UTF-8 with a BOM, or GBK (read as GB 18030, its
superset). Rows are numbered as the spreadsheet shows them, so an error report's "row 7"
is the line a clerk finds. A file that is neither says so (`UnreadableFile`)."""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

MAX_FILE_BYTES = 64 * 1024 * 1024
XLSX_MAGIC = b"PK\x03\x04"


class UnreadableFile(ValueError):
    """Not a spreadsheet or CSV dunline can read; nothing of it is imported."""


@dataclass(slots=True)
class Table:
    headers: Sequence[Any]
    header_row: int
    rows: Iterator[tuple[int, Sequence[Any]]]  # (spreadsheet row number, cells)
    encoding: str  # 'xlsx' or the CSV's text encoding


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text of a CSV and the encoding it was in."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError:
        raise UnreadableFile("the CSV is neither UTF-8 nor GBK text") from None


def _first_nonblank(rows: Iterator[tuple[int, Sequence[Any]]]) -> tuple[int, Sequence[Any]]:
    for number, cells in rows:
        if any(c not in (None, "") and str(c).strip() for c in cells):
            return number, cells
    raise UnreadableFile("the file has no header row")


def read_table(data: bytes, filename: str = "") -> Table:
    if len(data) > MAX_FILE_BYTES:
        raise UnreadableFile(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split it")
    if data.startswith(XLSX_MAGIC):
        return _read_xlsx(data)
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise UnreadableFile("the file is named .xlsx but is not an Excel workbook")
    if filename.lower().endswith(".xls") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnreadableFile("old Excel (.xls) files are not read: save it as .xlsx or CSV")
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile("the file is binary, not CSV text")
    text, encoding = decode_csv(data)
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    numbered = ((i, row) for i, row in enumerate(csv.reader(io.StringIO(text, newline=""), dialect), start=1))
    header_row, headers = _first_nonblank(numbered)
    return Table(headers, header_row, numbered, encoding)


def _read_xlsx(data: bytes) -> Table:
    from openpyxl import load_workbook  # local: only imports of workbooks pay for it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnreadableFile(f"not a readable .xlsx workbook ({type(exc).__name__})") from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        raise UnreadableFile("the workbook has no sheet")
    numbered = ((i, row) for i, row in enumerate(sheet.iter_rows(values_only=True), start=1))
    header_row, headers = _first_nonblank(numbered)
    return Table(list(headers), header_row, numbered, "xlsx")
