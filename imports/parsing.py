"""Reading an uploaded file into rows of text, whatever people send.

- CSV: the encoding is UTF-8 (a BOM is dropped); a file that is not UTF-8 is
  read as Windows-1252 (or, with bytes Windows-1252 leaves undefined,
  Latin-1), and the import says so in its notes. The separator is sniffed
  among `,` `;` tab and `|`.
- XLSX: the first sheet, read-only and streamed; a formula is kept as its text
  (`=SUM(A1:A3)`), never evaluated; dates come as dates; numbers as numbers.
- Blank lines are skipped (their line numbers still count, so a row's
  `position` is its line in the file: the header is line 1).
- At most MAX_ROWS data rows (settings.IMPORTS_MAX_ROWS): the count streams,
  so a file of a million rows is answered without holding it.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from django.conf import settings

from together.exceptions import InvalidRequest

MAX_HEADERS = 200
MAX_CELL = 10_000
SNIFF_BYTES = 64 * 1024
csv.field_size_limit(MAX_CELL * 10)


def max_rows() -> int:
    return int(getattr(settings, "IMPORTS_MAX_ROWS", 250_000))


def max_bytes() -> int:
    return int(getattr(settings, "IMPORTS_MAX_BYTES", 50 * 1024 * 1024))


@dataclass
class FileShape:
    file_format: str
    encoding: str = ""
    delimiter: str = ""
    headers: list[str] = field(default_factory=list)
    rows: int = 0
    notes: list[str] = field(default_factory=list)


def file_format_of(file_name: str, head: bytes) -> str:
    name = (file_name or "").lower()
    if head.startswith(b"PK\x03\x04"):
        if name.endswith((".xlsx", ".xlsm")) or not name.endswith((".csv", ".txt")):
            return "xlsx"
    if name.endswith(".xls") and head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidRequest("This is an old Excel 97-2003 (.xls) file: save it as .xlsx or .csv and upload again.",
                             param="file", reason="unsupported_format")
    if name.endswith((".xlsx", ".xlsm")):
        raise InvalidRequest("This file is named .xlsx but is not an Excel workbook: save it again as .xlsx or .csv.",
                             param="file", reason="unsupported_format")
    if b"\x00" in head[:4096] and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InvalidRequest("This file is not a CSV or XLSX (it holds binary data).", param="file", reason="unsupported_format")
    return "csv"


def detect_encoding(path: Path) -> tuple[str, list[str]]:
    """utf-8-sig when the whole file decodes as UTF-8; else cp1252, else latin-1 (with a note)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", ["The file is UTF-16 (Excel's 'Unicode text'): read as such."]
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            while chunk := handle.read(1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            notes = ["A byte order mark (BOM) at the start was ignored."] if head.startswith(codecs.BOM_UTF8) else []
            return "utf-8-sig", notes
        except UnicodeDecodeError:
            pass
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("cp1252")()
        try:
            while chunk := handle.read(1024 * 1024):
                decoder.decode(chunk)
            return "cp1252", ["The file is not UTF-8: it was read as Windows-1252 (Excel's usual 'CSV' on Windows). "
                              "Check accented names in the preview; save as 'CSV UTF-8' to avoid this."]
        except UnicodeDecodeError:
            return "latin-1", ["The file is not UTF-8: it was read as Latin-1 (ISO-8859-1). "
                               "Check accented names in the preview; save as 'CSV UTF-8' to avoid this."]


def sniff_delimiter(sample: str) -> str:
    lines = [line for line in sample.splitlines() if line.strip()][:50]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        header = lines[0]
        return max(",;\t|", key=header.count) if any(c in header for c in ",;\t|") else ","


def _clean_header(value, index: int) -> str:
    text = "" if value is None else str(value).strip().replace("\n", " ")
    return text[:200] or f"Column {index + 1}"


def _unique(headers: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for h in headers:
        n = seen.get(h.lower(), 0)
        seen[h.lower()] = n + 1
        out.append(h if n == 0 else f"{h} ({n + 1})")
    return out


def _blank(cells) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _raw_rows(path: Path, shape: FileShape) -> Iterator[tuple[int, list]]:
    if shape.file_format == "xlsx":
        yield from _xlsx_rows(path)
        return
    with open(path, newline="", encoding=shape.encoding, errors="strict") as handle:
        reader = csv.reader(handle, delimiter=shape.delimiter or ",")
        try:
            for cells in reader:
                yield reader.line_num, cells
        except csv.Error as exc:
            raise InvalidRequest(f"Line {reader.line_num} of the file cannot be read as CSV: {exc}.", param="file",
                                 reason="unreadable_csv") from None


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list]]:
    from openpyxl import load_workbook

    handle = open(path, "rb")  # a file object: openpyxl would judge a path by its extension
    try:
        workbook = load_workbook(handle, read_only=True, data_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged workbook is the uploader's to fix, not a 500
        handle.close()
        raise InvalidRequest(f"This XLSX cannot be opened: {exc.__class__.__name__}. Save it again from Excel.",
                             param="file", reason="unreadable_xlsx") from None
    try:
        sheet = workbook.worksheets[0]
        for index, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield index, [_xlsx_value(v) for v in row]
    finally:
        workbook.close()
        handle.close()


def _xlsx_value(value):
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time(0) else value
    if value is None or isinstance(value, (int, float, dt.date, str)):
        return value
    return str(value)  # formulas of other kinds, errors ("#REF!"): their text


def inspect(path: Path, file_name: str) -> FileShape:
    """Check a stored upload: its format, encoding, separator, headers and row count."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidRequest("The file is empty.", param="file", reason="empty_file")
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    shape = FileShape(file_format=file_format_of(file_name, head))
    if shape.file_format == "csv":
        shape.encoding, shape.notes = detect_encoding(path)
        with open(path, encoding=shape.encoding, errors="replace", newline="") as handle:
            sample = handle.read(SNIFF_BYTES)
        shape.delimiter = sniff_delimiter(sample)
        if shape.delimiter != ",":
            shape.notes.append({";": "Columns are separated by semicolons (;).", "\t": "Columns are separated by tabs.",
                                "|": "Columns are separated by |."}[shape.delimiter])
    first = None
    for line, cells in _raw_rows(path, shape):
        if _blank(cells):
            continue
        first = cells
        break
    if first is None:
        raise InvalidRequest("The file has no header row: the first line must name the columns.", param="file",
                             reason="no_header")
    while first and (first[-1] is None or str(first[-1]).strip() == ""):
        first = first[:-1]
    if len(first) > MAX_HEADERS:
        raise InvalidRequest(f"The file has {len(first)} columns; at most {MAX_HEADERS}.", param="file", reason="too_many_columns")
    shape.headers = _unique([_clean_header(v, i) for i, v in enumerate(first)])
    limit, count = max_rows(), 0
    started = False
    for line, cells in _raw_rows(path, shape):
        if not started:
            if not _blank(cells):
                started = True
            continue
        if _blank(cells):
            continue
        count += 1
        if count > limit:
            raise InvalidRequest(f"The file has more than {limit:,} rows; an import takes at most {limit:,}. "
                                 "Split it into several files and import each.", param="file", reason="too_many_rows",
                                 limit=limit)
    if count == 0:
        raise InvalidRequest("The file has a header row but no data rows.", param="file", reason="no_rows")
    shape.rows = count
    return shape


def header_line(path: Path, shape: FileShape) -> int:
    for line, cells in _raw_rows(path, shape):
        if not _blank(cells):
            return line
    return 1


def data_rows(path: Path, shape: FileShape) -> Iterator[tuple[int, list]]:
    """(line, cells) of the data rows after the header row."""
    first = header_line(path, shape)
    width = len(shape.headers)
    for line, cells in _raw_rows(path, shape):
        if line <= first or _blank(cells):
            continue
        yield line, list(cells[:width]) + [None] * (width - len(cells))


def neutralise(value) -> str:
    """A cell for a CSV people open in a spreadsheet: text starting with = + - @ tab or CR gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


__all__ = ["FileShape", "inspect", "data_rows", "neutralise", "max_rows", "max_bytes", "io"]
