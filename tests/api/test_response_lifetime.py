"""An API response is freed when the server drops it, not at the next cyclic GC (issue 15).

DRF makes each response part of reference cycles (view.response, renderer_context["view"],
renderer_context["response"]); under gunicorn's threads each rendered body then lived on until
a collection, and every thread's malloc arena kept its high-water mark (8 MB a thread after a
few seconds of list pages). `ApiMixin` cuts the links. These tests call the WSGI application as
gunicorn does (the test client adds cycles of its own: response.json, response.client), with the
cyclic GC off, and check the response is gone once the server lets go of it.
"""
from __future__ import annotations

import datetime as dt
import gc
import io
import json
import sys
import weakref

import pytest

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from donations import services
from tests.compliance.helpers import gift
from tests.conftest import make_key
from tests.dashboard.helpers import SYSTEM

pytestmark = pytest.mark.django_db


def serve(path: str, key: str, *, method: str = "GET", body: bytes = b"", headers: dict | None = None,
          ) -> tuple[int, bytes, weakref.ref]:
    """One request the way a WSGI server makes it: call, read the body, close, let go."""
    path, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "testserver", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "HTTP_AUTHORIZATION": f"Bearer {key}",
        "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json" if body else "",
        **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in (headers or {}).items()},
    }
    statuses = []
    # As Django's test client does: the test's transaction is the connection's, not to be closed.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = get_wsgi_application()(environ, lambda status, headers, exc_info=None: statuses.append(status))
        content = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    alive = weakref.ref(response)
    del response
    return int(statuses[0].split()[0]), content, alive


@pytest.fixture
def no_cyclic_gc():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


ROUTES = [
    ("GET", "/api/v1/donations?limit=100", None, 200),
    ("GET", "/api/v1/donors?limit=100", None, 200),
    ("GET", "/api/v1/whoami", None, 200),
    ("GET", "/api/v1/donations/don_missing", None, 404),
    ("GET", "/api/v1/donations?limit=0", None, 400),
    ("POST", "/api/v1/campaigns", {"name": "Lifetime"}, 201),
    ("POST", "/api/v1/campaigns", {"name": ""}, 400),
    ("POST", "/api/v1/campaigns", {"name": "Once"}, 201, {"Idempotency-Key": "lifetime-1"}),
]


@pytest.mark.parametrize("method,path,body,status,headers", [(*row, {})[:5] for row in ROUTES],
                         ids=[f"{row[0]} {row[1]} {row[3]}{' ' + ','.join(row[4]) if len(row) > 4 else ''}" for row in ROUTES])
def test_the_response_goes_with_the_request(org, no_cyclic_gc, method, path, body, status, headers):
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Life", last_name="Time")
    for day in range(1, 6):
        gift(org, donor, 1000 + day, dt.date(2026, 7, day), payment_method="CASH")
    key = make_key(org, "WRITE")
    serve("/api/v1/whoami", key)  # the first request's one-off work (the key cache, lazy imports) is not under test
    encoded = json.dumps(body).encode() if body else b""
    for _ in range(2 if headers else 1):  # with an Idempotency-Key: the first answer, then its replay
        got, content, alive = serve(path, key, method=method, body=encoded, headers=headers)
        assert got == status, content[:300]
        assert alive() is None, [type(r).__name__ for r in gc.get_referrers(alive())]


def test_the_serving_process_caps_its_malloc_arenas(monkeypatch):
    """together.wsgi caps glibc's arenas (the threads share a GIL), unless the operator set MALLOC_ARENA_MAX."""
    from together.wsgi import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_malloc_arenas() is True  # glibc's mallopt accepted it (Debian's libc.so.6)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


FREEZE_PROBE = """
import gc, json, sys, weakref
import together.wsgi

frozen, tracked = gc.get_freeze_count(), len(gc.get_objects())

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
gc.collect()
print(json.dumps({"frozen": frozen, "tracked": tracked, "views_loaded": "donations.api.views" in sys.modules,
                  "cycle_collected": gone() is None}))
"""


def test_the_serving_process_freezes_what_it_loaded_at_start():
    """together.wsgi loads the URL conf (every app's views) at start and freezes what is
    loaded, so a full garbage collection no longer walks ~140,000 objects that live as
    long as the process; the collector still frees the cycles made afterwards."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", FREEZE_PROBE], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "DJANGO_SETTINGS_MODULE": "together.settings"})
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["views_loaded"] is True
    assert probe["frozen"] > 50_000
    assert probe["tracked"] < probe["frozen"] / 20  # what a full collection still walks
    assert probe["cycle_collected"] is True
