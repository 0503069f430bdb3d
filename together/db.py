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
