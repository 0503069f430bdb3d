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
