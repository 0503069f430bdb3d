"""Real server processes for tests that need more than one process: gunicorn on
a free port, pointed at the test database (use with `transactional_db` so the
rows a test creates are committed and visible to the server)."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_url() -> str:
    """The database this test process is using (the test database, per xdist worker)."""
    s = connection.settings_dict
    auth = s["USER"] or "postgres"
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Gunicorn:
    def __init__(self, *, workers: int = 2, threads: int = 4, env: dict[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers, self.threads = workers, threads
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)

    def start(self) -> "Gunicorn":
        env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_NAME", "PYTEST_XDIST_WORKER")}
        env.update({
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECRET_KEY": "gunicorn-test-secret-key-not-for-production-0123456789",
            "SITE_URL": settings.SITE_URL,
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "together.settings",
        })
        env.update(self.extra_env)
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.proc = subprocess.Popen(
            [str(gunicorn), "together.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers),
             "--threads", str(self.threads), "--worker-class", "gthread", "--log-level", "warning", "--timeout", "60", "--graceful-timeout", "3"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 45.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/api/v1/health", timeout=2).status_code in (200, 503):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn on {self.url} not ready after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        try:
            return Path(self.log.name).read_text()[-5000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        # Only the process group we started: the gunicorn master and its workers.
        # SIGINT is gunicorn's quick shutdown (no wait for idle keep-alive clients).
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


@contextlib.contextmanager
def gunicorn_servers(count: int = 1, **kwargs):
    servers = [Gunicorn(**kwargs) for _ in range(count)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            with contextlib.suppress(OSError):
                os.unlink(server.log.name)


class RawResponse:
    """The parts of a response the assertions use, from http.client (much less
    client CPU per request than `requests`, so a loaded machine can still out-run
    a server)."""

    def __init__(self, status: int, headers, content: bytes, received_at: float):
        import requests.structures

        self.status_code = status
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.content = content
        self.received_at = received_at

    def json(self):
        import json

        return json.loads(self.content)


class RawClient:
    """One keep-alive HTTP/1.1 connection to a server."""

    def __init__(self, base_url: str):
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def get(self, path: str, headers: dict[str, str]) -> RawResponse:
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        return RawResponse(response.status, response.getheaders(), content, time.time())

    def close(self) -> None:
        self.conn.close()
