"""together.db.write_batch: statements kept and sent as one, in order, never half-committed."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from together.db import execute_batched, write_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def table():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE batch_t (k text PRIMARY KEY, n integer NOT NULL)")
        cursor.execute("CREATE TEMP TABLE batch_u (k text PRIMARY KEY)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE batch_t, batch_u")


def _rows(table_name="batch_t"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table_name} ORDER BY 1")
        return cursor.fetchall()


def test_kept_statements_go_as_one_statement_with_the_fetched_one_last(table):
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])
        execute_batched("INSERT INTO batch_u VALUES (%s)", ["a"])
        assert not [q for q in captured.captured_queries if "batch_" in q["sql"]]  # kept, not sent
        rows = execute_batched("INSERT INTO batch_t VALUES (%s, %s) RETURNING k", ["b", 2], fetch=True)
    assert rows == [("b",)]
    (statement,) = [q["sql"] for q in captured.captured_queries if "batch_" in q["sql"]]
    assert statement.startswith("WITH w0 AS (INSERT INTO batch_t") and "w1 AS (INSERT INTO batch_u" in statement
    assert _rows() == [("a", 1), ("b", 2)] and _rows("batch_u") == [("a",)]


def test_any_other_statement_sends_the_kept_ones_first_so_it_sees_them(table):
    with transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])
        with connection.cursor() as cursor:  # an ORM or cursor statement: the kept one goes before it
            cursor.execute("SELECT count(*) FROM batch_t")
            assert cursor.fetchone() == (1,)
        execute_batched("UPDATE batch_t SET n = n + 1 WHERE k = %s", ["a"])
    assert _rows() == [("a", 2)]


def test_the_block_sends_what_it_kept_when_it_ends(table):
    with transaction.atomic():
        with write_batch():
            execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])
            execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["b", 2])
        assert _rows() == [("a", 1), ("b", 2)]


def test_a_statement_that_reads_the_kept_writes_goes_after_them(table):
    with transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 0])
        # In one statement a CTE's rows are not seen by its siblings: `alone` sends the kept ones first.
        execute_batched("DELETE FROM batch_t WHERE n <= 0", [], alone=True)
    assert _rows() == []


def test_a_statement_with_its_own_with_clause_is_never_a_cte(table):
    with transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])
        execute_batched("WITH v AS (SELECT %s::text AS k) INSERT INTO batch_u SELECT k FROM v", ["a"])
        rows = execute_batched("WITH v AS (SELECT %s::text AS k) INSERT INTO batch_t SELECT k, 2 FROM v RETURNING n",
                               ["b"], fetch=True)
    assert rows == [(2,)]
    assert _rows() == [("a", 1), ("b", 2)] and _rows("batch_u") == [("a",)]


def test_an_error_in_the_block_sends_nothing_kept_and_the_transaction_cannot_commit(table):
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            with write_batch():
                execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])
                raise RuntimeError("boom")
        assert transaction.get_rollback()  # a caller that caught it rolls back, never commits half
        transaction.set_rollback(False)
    assert _rows() == []


def test_a_failing_statement_in_the_batch_raises_djangos_error(table):
    from django.db import IntegrityError

    execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 1])  # outside a batch: at once
    with pytest.raises(IntegrityError), transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["b", 1])
        execute_batched("INSERT INTO batch_t VALUES (%s, %s)", ["a", 2])  # duplicate key
    assert _rows() == [("a", 1)]


def test_a_batch_never_passes_postgresqls_limit_on_parameters(table, monkeypatch):
    import together.db

    monkeypatch.setattr(together.db, "_MAX_PARAMS", 5)
    with CaptureQueriesContext(connection) as captured, transaction.atomic(), write_batch():
        execute_batched("INSERT INTO batch_t VALUES (%s, %s), (%s, %s)", ["a", 1, "b", 2])
        execute_batched("INSERT INTO batch_t VALUES (%s, %s), (%s, %s)", ["c", 3, "d", 4])  # 8 > 5: the first goes alone
        execute_batched("INSERT INTO batch_u VALUES (%s)", ["a"])
    sent = [q["sql"] for q in captured.captured_queries if "batch_" in q["sql"]]
    assert len(sent) == 2 and not sent[0].startswith("WITH") and sent[1].startswith("WITH w0 AS (INSERT INTO batch_t")
    assert [k for k, _ in _rows()] == ["a", "b", "c", "d"]


def _long_insert(rows: int) -> tuple[str, list]:
    """An INSERT of `rows` rows, its text padded past psycopg's own 4 KB cache limit."""
    values = ", ".join(["(%s, %s)"] * rows)
    params = [value for i in range(rows) for value in (f"k{i:04d}", i)]
    return f"INSERT INTO batch_t (k, n) VALUES {values} /* {'x' * 4096} */", params


def test_a_long_statement_is_split_at_its_placeholders_once(table):
    """psycopg splits a text of over 4 KB or 50 parameters afresh on every run; a gift's
    batched writes are such a text, so the hot paths' cursor remembers every split."""
    from together.db import _split_statement

    sql, params = _long_insert(60)  # 120 parameters, 4.5 KB
    assert len(sql) > 4096 and len(params) > 50
    before = _split_statement.cache_info()
    with transaction.atomic():
        execute_batched(sql, params)
        execute_batched("DELETE FROM batch_t", [])
        execute_batched(sql, params)
    after = _split_statement.cache_info()
    assert after.misses - before.misses <= 2  # this text (once) and the DELETE (unless an earlier test ran it)
    assert after.hits - before.hits >= 1
    assert _rows() == [(f"k{i:04d}", i) for i in range(60)]  # each value in its place


def test_a_statement_of_many_parameters_is_not_remembered(table):
    """insert_rows' VALUES chunks run to thousands of parameters: split each time, as before."""
    from together.db import _SPLIT_CACHE_MAX_PARAMS, _split_statement

    sql, params = _long_insert(_SPLIT_CACHE_MAX_PARAMS // 2 + 1)
    before = _split_statement.cache_info()
    with transaction.atomic():
        execute_batched(sql, params)
    after = _split_statement.cache_info()
    assert (after.hits, after.misses, after.currsize) == (before.hits, before.misses, before.currsize)
    assert len(_rows()) == _SPLIT_CACHE_MAX_PARAMS // 2 + 1
