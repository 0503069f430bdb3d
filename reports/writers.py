"""Turning a report's SELECT into bytes.

CSV: `COPY (SELECT …) TO STDOUT WITH (FORMAT csv, HEADER)` through psycopg 3's
`cursor.copy()` on the Django connection's own psycopg connection; rows are
gathered into chunks of about 256 KB, so a million-row export starts at once and
holds memory flat. XLSX: the same SELECT through a server-side cursor into an
openpyxl write-only workbook on disk.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO

from django.db import connection

from reports.exporters import ReportSpec

CHUNK_BYTES = 256 * 1024
XLSX_FETCH = 2000
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_sql(spec: ReportSpec) -> tuple[str, list | dict]:
    return spec.exporter.query(spec)


def report_row_count(spec: ReportSpec) -> int:
    sql, params = spec.exporter.count_query(spec)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def copy_statement(sql: str) -> str:
    return f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER, ENCODING 'UTF8')"


def csv_chunks(spec: ReportSpec, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The report as CSV, in chunks of about `chunk_bytes`, straight from COPY.

    The query is built (and validated) before the first chunk is asked for, so a
    bad parameter fails before any byte is sent."""
    sql, params = report_sql(spec)
    statement = copy_statement(sql)
    return _copy_out(statement, params, chunk_bytes)


def _copy_out(statement: str, params, chunk_bytes: int) -> Iterator[bytes]:
    connection.ensure_connection()
    raw = connection.connection  # the psycopg.Connection under Django's wrapper
    with raw.cursor() as cursor:
        with cursor.copy(statement, params) as copy:
            buffer = bytearray()
            for data in copy:
                buffer += data
                if len(buffer) >= chunk_bytes:
                    yield bytes(buffer)
                    buffer.clear()
            if buffer:
                yield bytes(buffer)


def _clean(value, illegal):
    if isinstance(value, str):
        return illegal.sub("", value)
    return value


def xlsx_write(spec: ReportSpec, out: IO[bytes], *, progress: Callable[[int], None] | None = None,
               progress_every: int = 5000) -> int:
    """Write the report as XLSX to `out` (a binary file object); returns the row
    count. `progress(rows_done)` is called every `progress_every` rows."""
    # openpyxl only here, when a workbook is built (a Celery task): a web process never
    # loads it (about 16 MB resident), which keeps the CSV export's worker small (issue 15).
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    sql, params = report_sql(spec)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=spec.exporter.title[:31])
    bold = Font(bold=True)
    header = []
    for name in (c.name for c in spec.columns):
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    done = 0
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while True:
            rows = cursor.fetchmany(XLSX_FETCH)
            if not rows:
                break
            for row in rows:
                sheet.append([_clean(v, ILLEGAL_CHARACTERS_RE) for v in row])
            done += len(rows)
            if progress is not None and done % progress_every < len(rows):
                progress(done)
    workbook.save(out)
    return done


def xlsx_tempfile(spec: ReportSpec) -> tuple[IO[bytes], int]:
    """The report as XLSX in an anonymous temporary file, rewound; and its row count."""
    handle = tempfile.TemporaryFile(prefix="report-", suffix=".xlsx")
    rows = xlsx_write(spec, handle)
    handle.seek(0, os.SEEK_SET)
    return handle, rows
