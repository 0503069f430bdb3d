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
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg._queries import PostgresQuery, _query2pg_nocache
from psycopg.adapt import AdaptersMap
from psycopg.types.numeric import Int8Dumper

# psycopg remembers how it split a statement's text at its placeholders only for texts of
# at most 4 KB and 50 parameters (MAX_CACHED_STATEMENT_LENGTH/_PARAMS: an ORM's VALUES lists
# would fill its cache). A gift's batched writes are one fixed text of about 4.1 KB and 102
# parameters: split afresh on every create, 0.28 ms of the web process's CPU (timeit on the
# bench's statement; 0.37 µs remembered). The statements run here are few fixed texts, so they are all remembered, up to
# a bound on the parameters (insert_rows' VALUES chunks of thousands go uncached, as before).
_SPLIT_CACHE_SIZE = 64
_SPLIT_CACHE_MAX_PARAMS = 500
_split_statement = functools.lru_cache(maxsize=_SPLIT_CACHE_SIZE)(_query2pg_nocache)


class _RememberedQuery(PostgresQuery):
    """psycopg's statement conversion, with the split of every text remembered (see above)."""

    __slots__ = ()

    def convert(self, query, vars) -> None:
        if not isinstance(query, str) or vars is None or len(vars) > _SPLIT_CACHE_MAX_PARAMS:
            return super().convert(query, vars)
        encoding = self._tx.encoding
        self.query, self._want_formats, self._order, self._parts = _split_statement(query.encode(encoding), encoding)
        self.dump(vars)


class PreparingCursor(ServerBindingCursor):
    """Django's query log reads the statement from the cursor's `_query`, which
    psycopg keeps for a statement it sends as text but not for one it runs
    prepared: kept for both, the log shows every statement.

    A Python int goes as a bigint. psycopg picks the smallest type that holds the
    value (smallint for 5000, integer for 50000), and the types are part of what it
    prepares: one statement text would be prepared once per mix of magnitudes, the
    same gift's writes never reaching the threshold. PostgreSQL casts a bigint
    parameter to the column's type on assignment, and compares it with an integer
    column through its index.

    Its statements' texts are split at their placeholders once (`_RememberedQuery`)."""

    _query_cls = _RememberedQuery

    def __init__(self, connection, *args, **kwargs):
        super().__init__(connection, *args, **kwargs)
        template = _ADAPTERS.get(connection)
        if template is None:
            template = _ADAPTERS[connection] = AdaptersMap(connection.adapters)
            template.register_dumper(int, Int8Dumper)
        callback = self._adapters._register_loader_callback
        self._adapters = AdaptersMap(template)
        self._adapters._register_loader_callback = callback

    def _send_query_prepared(self, name, pgq, *, binary=None):
        self._query = pgq
        return super()._send_query_prepared(name, pgq, binary=binary)


# Each psycopg connection's adapters for PreparingCursor (its own, with int as bigint).
_ADAPTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


# From this many rows, insert_rows sends one array per column (see _insert_statement).
UNNEST_FROM_ROWS = 8


@functools.cache
def _insert_statement(model, rows: int) -> tuple[str, tuple, bool]:
    """INSERT of `rows` rows of `model`: its text, the fields in column order, and
    whether its parameters are one array per column. Several rows go as
    `SELECT * FROM UNNEST(%s::type[], …)`, as Django's bulk_create sends them: one text
    for any number of rows, whose few parameters psycopg parses at once (a VALUES list
    of 250 gifts has 12,000 placeholders, about 25 ms of the client's CPU to parse on
    every run). Fewer than UNNEST_FROM_ROWS rows, or a field UNNEST cannot take, go as
    VALUES: for two or three rows (a gift's aggregates) its arrays cost the client
    about 50 µs more, and the VALUES text of each such count is prepared."""
    opts = model._meta
    connection = connections[DEFAULT_DB_ALIAS]
    fields = tuple(f for f in opts.concrete_fields if not f.generated)
    if any(f.has_db_default() for f in fields):
        raise TypeError(f"insert_rows: {opts.label} has a database default; use bulk_create")
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    if rows >= UNNEST_FROM_ROWS and all(_unnestable(f, connection) for f in fields):
        arrays = ", ".join(f"(%s)::{f.db_type(connection).split('(')[0]}[]" for f in fields)
        return f"INSERT INTO {opts.db_table} ({columns}) SELECT * FROM UNNEST({arrays})", fields, True
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    return f"INSERT INTO {opts.db_table} ({columns}) VALUES {', '.join([row] * rows)}", fields, False


def _unnestable(field, connection) -> bool:
    """Django's own test (SQLInsertCompiler.assemble_as_sql on PostgreSQL): one
    placeholder fits every value, and the type is a standard one."""
    target = field.target_field if field.is_relation else field
    return not hasattr(field, "get_placeholder") and target.get_internal_type() in connection.data_types


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
    _, fields, _ = _insert_statement(model, 1)
    values = []
    for obj in objs:
        if obj.pk is None:
            raise TypeError(f"insert_rows: a {model._meta.label} without its primary key; use bulk_create")
        obj._prepare_related_fields_for_save(operation_name="insert_rows")
        values.append([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])
    sql, _, by_column = _insert_statement(model, len(values))
    if by_column:
        execute_batched(sql, [list(column) for column in zip(*values)], using=using)
    else:
        per_statement = max(1, _MAX_PARAMS // len(fields))
        for start in range(0, len(values), per_statement):
            chunk = values[start:start + per_statement]
            sql, _, _ = _insert_statement(model, len(chunk))
            execute_batched(sql, [value for row in chunk for value in row], using=using)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using


# --- batched writes ------------------------------------------------------------------------------
# A gift's create ends in five writes that nobody reads back (the gift, the donor's totals, the
# rollup, the aggregates) and one that is read (the audit entry with its event and deliveries).
# Sent one by one, each is a round trip, about 0.1 ms of a web process's CPU (most of it the
# kernel's, on this kind of machine) and as much of PostgreSQL's. Inside `write_batch()`,
# `execute_batched` keeps such statements and sends them as one: each kept statement becomes a
# data-modifying CTE of the next (`WITH w0 AS (<insert>), w1 AS (<update>) <audit insert …>`),
# which PostgreSQL runs exactly once, in one snapshot: so only statements that do not read one
# another's rows may be kept together, as a gift's writes do not (each writes its own table's
# rows; the foreign keys are checked at the statement's end). The statements go when one is
# fetched, when any other statement is about to run on the connection (so a later read sees
# them) and when the block ends.


@contextmanager
def write_batch(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Within the block, `execute_batched` statements go to PostgreSQL as one (see
    above). Use it inside the transaction the writes belong to. Should the block raise,
    what it kept is not sent and the transaction is marked for rollback (a caller
    catching the error cannot commit half of the writes)."""
    from django.db import transaction

    connection = connections[using]
    if getattr(connection, "_together_batch", None) is not None:
        yield  # inside another batch: one batch
        return
    batch: list = []
    connection._together_batch = batch

    def send_first(execute, sql, params, many, context):
        if batch:
            _send(connection, using)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(send_first):
            yield
            if batch:
                _send(connection, using)
    except BaseException:
        batch.clear()
        if connection.in_atomic_block:
            transaction.set_rollback(True, using=using)
        raise
    finally:
        connection._together_batch = None


def execute_batched(sql: str, params: list, *, fetch: bool = False, alone: bool = False,
                    using: str = DEFAULT_DB_ALIAS) -> list | None:
    """Run a data-modifying statement, bound on the server and prepared (`prepared_cursor`).
    Inside a `write_batch` it waits to go with the others (see above); with `fetch` it
    goes with them at once, last, and its rows are returned. `alone`: the statement
    reads rows that the kept ones write, so they go first and it after them. A
    statement with a WITH clause of its own cannot be a CTE: it goes last or alone."""
    connection = connections[using]
    batch = getattr(connection, "_together_batch", None)
    if batch is not None and not alone and (fetch or not _has_with(sql)):
        if batch and sum(len(p) for _, p in batch) + len(params) > _MAX_PARAMS:
            _send(connection, using)  # one statement takes at most _MAX_PARAMS parameters
        batch.append((sql, params))
        return _send(connection, using, fetch=True) if fetch else None
    if batch:
        _send(connection, using)
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else None


def _has_with(sql: str) -> bool:
    return sql.lstrip()[:5].upper() == "WITH "


def _send(connection, using: str, fetch: bool = False) -> list | None:
    """The batch's statements as one: each but the last a CTE of the last."""
    statements = connection._together_batch[:]
    connection._together_batch.clear()
    *kept, (last_sql, last_params) = statements
    ctes = [f"w{i} AS ({sql})" for i, (sql, _) in enumerate(kept)]
    params = [param for _, statement_params in kept for param in statement_params]
    if not ctes:
        sql = last_sql
    elif _has_with(last_sql):
        sql = f"WITH {', '.join(ctes)}, {last_sql.lstrip()[5:]}"
    else:
        sql = f"WITH {', '.join(ctes)} {last_sql}"
    with prepared_cursor(using) as cursor:
        cursor.execute(sql, [*params, *last_params])
        return cursor.fetchall() if fetch else None


def drop_indexes_concurrently(table: str, indexes: dict[str, str]):
    """A migration operation dropping `indexes` of `table` ({name: its column list, as
    CREATE INDEX takes it}) without blocking the table's writes, and creating them again
    (as Django named them) on the way back. The migration must say `atomic = False`.
    Used for the redundant indexes of the tables every gift writes (together.models)."""
    from django.db import migrations

    return migrations.RunSQL(
        [f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"' for name in indexes],
        [f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" ({columns})' for name, columns in indexes.items()],
    )
