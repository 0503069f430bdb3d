"""Prepared statements for the hot paths' own SQL (issue 15).

Django's cursors bind parameters on the client: every statement's text, the
parameters quoted into it, is parsed and planned afresh by PostgreSQL. For the
few hand-written statements that every gift runs (the ledger read, the donor's
totals, the aggregates, the rollup, the audit entry with its event and
deliveries), `prepared_cursor` binds on the server instead, and psycopg
prepares a statement once its text has run `prepare_threshold` times on the
connection (settings.DATABASES OPTIONS): PostgreSQL then parses and plans it
once per connection, and lists go as arrays, not as quoted literals.

Django's own cursors still bind on the client and are never prepared (a
client-binding cursor cannot be), so only the statements run here are. A
statement run here names its columns (no `SELECT *`): a prepared statement's
result type must not change under it.

With a pooler in transaction mode (PgBouncer), prepared statements need
PgBouncer 1.21 or later with `max_prepared_statements` set.
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import ServerBindingCursor


class PreparingCursor(ServerBindingCursor):
    """Django's query log reads the statement from the cursor's `_query`, which
    psycopg keeps for a statement it sends as text but not for one it runs
    prepared: kept for both, the log shows every statement."""

    def _send_query_prepared(self, name, pgq, *, binary=None):
        self._query = pgq
        return super()._send_query_prepared(name, pgq, binary=binary)


@contextmanager
def prepared_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator:
    """A cursor on the connection `using`, wrapped as Django wraps its own (the
    statements are counted and logged as any other), whose statements are bound
    on the server and prepared after a few runs."""
    connection = connections[using]
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = PreparingCursor(connection.connection)
    cursor = connection._prepare_cursor(raw)
    try:
        yield cursor
    finally:
        cursor.close()


@functools.cache
def _insert_statement(model, rows: int) -> tuple[str, tuple]:
    """INSERT of `rows` rows of `model`: its text, and the fields in column order."""
    opts = model._meta
    fields = tuple(f for f in opts.concrete_fields if not f.generated)
    if any(f.has_db_default() for f in fields):
        raise TypeError(f"insert_rows: {opts.label} has a database default; use bulk_create")
    columns = ", ".join(connections[DEFAULT_DB_ALIAS].ops.quote_name(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return f"INSERT INTO {opts.db_table} ({columns}) VALUES {', '.join([row] * rows)}", fields


# PostgreSQL's limit on a statement's parameters.
_MAX_PARAMS = 65_535


def insert_rows(objs: list, using: str = DEFAULT_DB_ALIAS) -> None:
    """`bulk_create(objs)` for the hot paths' inserts: the same rows (every concrete
    field's `pre_save(add=True)` and `get_db_prep_save`, as Django's INSERT takes
    them), from one statement text per model and row count, bound on the server and
    prepared (`prepared_cursor`). The ORM compiled the INSERT and quoted each of a
    gift's 40 values into it on the client, every time: a tenth of a create's CPU.
    For models whose primary key is set in Python (no RETURNING) and without
    database defaults; no signals, as with bulk_create."""
    if not objs:
        return
    model = type(objs[0])
    connection = connections[using]
    _, fields = _insert_statement(model, 1)
    per_statement = max(1, _MAX_PARAMS // len(fields))
    for start in range(0, len(objs), per_statement):
        chunk = objs[start:start + per_statement]
        sql, _ = _insert_statement(model, len(chunk))
        params = []
        for obj in chunk:
            if obj.pk is None:
                raise TypeError(f"insert_rows: a {model._meta.label} without its primary key; use bulk_create")
            obj._prepare_related_fields_for_save(operation_name="insert_rows")
            params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
        with prepared_cursor(using) as cursor:
            cursor.execute(sql, params)
        for obj in chunk:
            obj._state.adding = False
            obj._state.db = using
