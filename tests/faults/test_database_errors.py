"""Issue 21 point 4, in-process: which database errors are "temporarily
unavailable" (503 service_unavailable with Retry-After) and which stay bugs
(500 internal_error). Every error here is a real one from PostgreSQL or psycopg,
raised through Django's wrapper, never constructed by hand."""
from __future__ import annotations

import json
import socket

import pytest
from django.db import DatabaseError, connection
from django.db.backends.postgresql.base import DatabaseWrapper
from django.test import RequestFactory

from together.api.errors import database_unavailable, exception_handler
from together.middleware import ApiGuardMiddleware

pytestmark = [pytest.mark.faults, pytest.mark.django_db]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raised(fn) -> DatabaseError:
    with pytest.raises(DatabaseError) as info:
        fn()
    return info.value


def _wrapper(**overrides) -> DatabaseWrapper:
    return DatabaseWrapper({**connection.settings_dict, **overrides})


def refused() -> DatabaseError:
    """PostgreSQL not listening (stopped, or restarting)."""
    return _raised(_wrapper(HOST="127.0.0.1", PORT=_free_port()).ensure_connection)


def admin_shutdown() -> DatabaseError:
    """A pooled connection that a PostgreSQL restart (pg_ctl stop -m fast) ended: 57P01."""
    victim = _wrapper()
    victim.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [victim.connection.info.backend_pid])
    try:
        return _raised(lambda: victim.cursor().execute("SELECT 1"))
    finally:
        victim.close()


def bad_sql() -> DatabaseError:
    return _raised(lambda: connection.cursor().execute("SELECT no_such_column FROM no_such_table"))


def statement_timeout() -> DatabaseError:
    victim = _wrapper()
    try:
        with victim.cursor() as cursor:
            cursor.execute("SET statement_timeout = 10")
            return _raised(lambda: cursor.execute("SELECT pg_sleep(1)"))
    finally:
        victim.close()


def test_connection_failures_are_unavailable():
    assert database_unavailable(refused())
    error = admin_shutdown()
    assert error.__cause__.sqlstate == "57P01"
    assert database_unavailable(error)


def test_bugs_and_timeouts_stay_internal_errors():
    assert not database_unavailable(bad_sql())
    timeout = statement_timeout()
    assert timeout.__cause__.sqlstate == "57014"
    assert not database_unavailable(timeout)
    assert not database_unavailable(ValueError("not a database error"))


def _request(path: str):
    request = RequestFactory().get(path)
    request.request_id = "req_faults"
    return request


def test_api_answers_503_service_unavailable_with_retry_after():
    request = _request("/api/v1/donors")
    response = exception_handler(refused(), {"request": request})
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response["Content-Type"] == "application/json"
    error = json.loads(response.content)["error"]
    assert error["code"] == "service_unavailable"
    assert error["request_id"] == "req_faults"
    assert error["doc_url"].endswith("/developer/api/errors/service_unavailable")
    # A bug is still a 500, not dressed up as an outage.
    assert exception_handler(bad_sql(), {"request": request}).status_code == 500


def test_middleware_maps_outside_drf_and_on_dashboard_pages():
    middleware = ApiGuardMiddleware(lambda request: None)
    api = middleware.process_exception(_request("/api/v1/donors"), admin_shutdown())
    assert api.status_code == 503 and json.loads(api.content)["error"]["code"] == "service_unavailable"
    page = middleware.process_exception(_request("/donors/"), refused())
    assert page.status_code == 503
    assert page["Retry-After"].isdigit()
    assert page["Content-Type"].startswith("text/html")
    assert b"Temporarily unavailable" in page.content
    # Anything else on a dashboard page goes on to Django's own handling.
    assert middleware.process_exception(_request("/donors/"), bad_sql()) is None
