"""The fault suite's machinery: a PostgreSQL cluster and a redis-server of its
own (throwaway, on free ports: the only ones it ever stops), the site started
through scripts/supervise.py exactly as `make run` starts it, a webhook
receiver, and a traffic thread.

Nothing here touches the machine's shared PostgreSQL (5432) or Redis (6379).
"""
from __future__ import annotations

import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.webhooks.receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
FIGURES_FILE = ROOT / "var" / "faults-figures.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition") -> float:
    """Seconds it took for `predicate()` to be true; AssertionError after `timeout`."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


# --- PostgreSQL -------------------------------------------------------------------

def _pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        pytest.fail("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (Debian's postgresql package)")
    return Path(candidates[-1]).parent


def _as_postgres(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a server binary as the postgres user (initdb and postgres refuse root)."""
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


class PostgresCluster:
    """A throwaway cluster in a temporary directory: initdb, trust auth, fsync off."""

    def __init__(self, workdir: Path):
        self.bin = _pg_bin()
        self.dir = workdir / "pg"
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> "PostgresCluster":
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        _as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"])
        return self

    def _ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100")
        _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                      "-t", "30", *args], timeout=60)

    def start(self) -> None:
        self._ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session with AdminShutdown (57P01), as a service restart does."""
        self._ctl("stop", "-m", mode)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                pass
        except OSError:
            return False
        return subprocess.run([str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        return subprocess.run(
            [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True, capture_output=True, text=True,
        ).stdout.strip()

    def destroy(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------

class RedisServer:
    """A redis-server of our own on a free port, without persistence (as ensure-services starts it)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(self.ping, 10, what=f"redis-server on {self.port}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def shutdown(self) -> None:
        """What the issue's outage was: `redis-cli shutdown` (nosave: nothing is persisted anyway)."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, timeout=10)
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- the site ---------------------------------------------------------------------

SEED = """
import json, sys
import django
django.setup()
from django.db import transaction
from organisations.services import api_key_create, organisation_create
from together.actors import Actor
from webhooks.services import webhook_endpoint_create
actor = Actor.system("faults")
with transaction.atomic():
    org = organisation_create(name="Faults", slug="faults")
    key = api_key_create(organisation=org, actor=actor, name="faults", scope="WRITE").plaintext
    endpoint = webhook_endpoint_create(organisation=org, actor=actor, url=sys.argv[1])
print(json.dumps({"key": key, "secret": endpoint.secret}))
"""


class Site:
    """scripts/supervise.py --together (what `make run` execs) on a free port."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.env = env
        self.marker = env["TOGETHER_FAULTS_RUN"]
        self.log_path = workdir / "site.log"
        self.log = open(self.log_path, "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "supervise.py"), "--together", "--port", str(self.port),
             "--web-concurrency", "2", "--web-threads", "4", "--beat-schedule", str(self.workdir / "beat-schedule"),
             "--ready-url", f"{self.url}/api/v1/health", "--ready-banner", "faults: site ready", "--ready-timeout", "60"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: b"faults: site ready" in self.log_path.read_bytes() or self.proc.poll() is not None, 70,
                   interval=0.2, what="the site answering /api/v1/health")
        assert self.proc.poll() is None, f"the supervisor exited:\n{self.tail()}"

    def supervisor_lines(self, needle: str) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if line.startswith("==> [supervise") and needle in line]

    def worker_starts(self) -> int:
        return len(self.supervisor_lines("started celery-worker (pid"))  # "started" and "restarted" lines

    def service_pids(self, name: str) -> list[int]:
        pids = []
        for line in self.supervisor_lines(f"started {name} (pid "):
            pids.append(int(line.split("(pid ")[1].split(")")[0].split(",")[0]))
        return pids

    def tail(self, chars: int = 6000) -> str:
        self.log.flush()
        return self.log_path.read_bytes()[-chars:].decode("utf-8", "replace")

    def _our_pids(self) -> list[int]:
        """Every process that carries this run's marker in its environment."""
        pids = []
        needle = f"TOGETHER_FAULTS_RUN={self.marker}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        pids.append(int(entry))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pid in self._our_pids():  # anything the supervisor could not reap
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.log.close()


# --- traffic ----------------------------------------------------------------------

@dataclass
class Result:
    at: float  # time.monotonic() when the answer (or the failure) came
    method: str
    status: int  # 0: no HTTP answer (connection refused or reset)
    code: str | None = None  # error.code of an error envelope
    retry_after: str | None = None
    content_type: str | None = None
    donor_id: str | None = None
    error: str | None = None


class Traffic:
    """About `rate` API requests a second from one thread: GET /api/v1/whoami,
    and every `post_every`th a POST /api/v1/donors (one event, one webhook)."""

    def __init__(self, base_url: str, key: str, *, rate: float = 20.0, post_every: int = 4):
        self.base_url = base_url
        self.key = key
        self.interval = 1.0 / rate
        self.post_every = post_every
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._n = 0
        self._lock = threading.Lock()
        self.run_id = uuid.uuid4().hex[:8]

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host, port = self.base_url.rsplit("//", 1)[1].split(":")
            self._conn = http.client.HTTPConnection(host, int(port), timeout=10)
        return self._conn

    def request(self) -> Result:
        self._n += 1
        post = self._n % self.post_every == 0
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if post:
            method, path = "POST", "/api/v1/donors"
            body = json.dumps({"email": f"faults-{self.run_id}-{self._n}@example.com", "first_name": "Fault"}).encode()
            headers["Content-Type"] = "application/json"
        else:
            method, path, body = "GET", "/api/v1/whoami", None
        try:
            conn = self._connection()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            return Result(time.monotonic(), method, 0, error=repr(exc))
        result = Result(time.monotonic(), method, response.status, retry_after=response.getheader("Retry-After"),
                        content_type=response.getheader("Content-Type"))
        try:
            data = json.loads(content)
        except ValueError:
            data = None
        if isinstance(data, dict):
            if isinstance(data.get("error"), dict):
                result.code = data["error"].get("code")
            elif post and response.status == 201:
                result.donor_id = data.get("id")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self._conn = None
        return result

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            result = self.request()
            with self._lock:
                self.results.append(result)
            next_at += self.interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))
            if time.monotonic() - next_at > 1.0:  # fell behind (slow answers): do not burst to catch up
                next_at = time.monotonic()

    def start(self) -> "Traffic":
        self._thread = threading.Thread(target=self._run, daemon=True, name="faults-traffic")
        self._thread.start()
        return self

    def stop(self) -> list[Result]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        if self._conn is not None:
            self._conn.close()
        return self.snapshot()

    def snapshot(self) -> list[Result]:
        with self._lock:
            return list(self.results)


def summarise(results: list[Result]) -> dict:
    by: dict[str, int] = {}
    for r in results:
        label = str(r.status) if r.status else "no answer"
        if r.code:
            label += f" {r.code}"
        by[label] = by.get(label, 0) + 1
    return dict(sorted(by.items()))


# --- fixtures ---------------------------------------------------------------------

@dataclass
class Stack:
    pg: PostgresCluster
    redis: RedisServer
    site: Site
    receiver: Receiver
    key: str
    secret: str
    figures: dict

    def delivered_donor_ids(self) -> set[str]:
        out = set()
        for r in self.receiver.received("/hook"):
            if r.status == 200 and r.valid and r.complete:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    body = r.json
                    if body.get("type") == "donor.created":
                        out.add(body["data"]["id"])
        return out


@pytest.fixture(scope="module")
def stack():
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (Debian's redis-server package)")
    workdir = Path(tempfile.mkdtemp(prefix="together-faults-"))
    os.chmod(workdir, 0o755)
    started = time.monotonic()
    pg = PostgresCluster(workdir)
    redis = RedisServer(workdir)
    receiver = Receiver().start()
    site = None
    figures: dict = {}
    try:
        pg.init()
        pg.start()
        redis.start()
        pg.psql("CREATE DATABASE together_faults")
        marker = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items()
               if k not in ("TEST_DATABASE_NAME", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "DJANGO_SETTINGS_MODULE")}
        env.update({
            "TOGETHER_FAULTS_RUN": marker,
            "DJANGO_SETTINGS_MODULE": "together.settings",
            "DATABASE_URL": pg.url("together_faults"),
            "REDIS_URL": redis.url,
            "CACHE_KEY_PREFIX": f"faults-{marker[:8]}",
            "DEBUG": "0",
            "SECRET_KEY": "faults-suite-secret-key-not-for-production-0123456789abcdef",
            "ALLOWED_HOSTS": "127.0.0.1",
            "LOG_LEVEL": "WARNING",
            "CONN_MAX_AGE": "60",
            "RATE_LIMIT_RATE": "1000",
            "RATE_LIMIT_BURST": "1000",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
            "WEBHOOKS_QUEUE": "celery",
            "WEBHOOKS_RETRY_SCHEDULE": ",".join(["0.5"] + ["1"] * 14),
            "WEBHOOKS_LEASE_SECONDS": "4",
            "WEBHOOKS_TIMEOUT_SECONDS": "2",
            "WEBHOOKS_SWEEP_INTERVAL": "1",
            "PYTHONUNBUFFERED": "1",
        })
        env.pop("CELERY_BROKER_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=180)
        seeded = subprocess.run([sys.executable, "-c", SEED, receiver.url("/hook")], cwd=ROOT, env=env,
                                check=True, capture_output=True, text=True, timeout=60)
        creds = json.loads(seeded.stdout.strip().splitlines()[-1])
        receiver.on("/hook", creds["secret"])
        env["SITE_URL"] = "http://127.0.0.1"  # links only
        site = Site(workdir, env)
        site.start()
        figures["stack_start_seconds"] = round(time.monotonic() - started, 1)
        yield Stack(pg, redis, site, receiver, creds["key"], creds["secret"], figures)
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"setting up the fault stack failed: {exc}\n{exc.stdout}\n{exc.stderr}")
    finally:
        if site is not None:
            site.stop()
            with contextlib.suppress(OSError):  # kept for a look after the run (var/ is git-ignored)
                FIGURES_FILE.parent.mkdir(exist_ok=True)
                shutil.copyfile(site.log_path, FIGURES_FILE.parent / "faults-site.log")
        receiver.stop()
        redis.destroy()
        pg.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
        _write_figures(figures)


def _write_figures(figures: dict) -> None:
    figures = {k: v for k, v in figures.items() if v is not None}
    if not figures:
        return
    with contextlib.suppress(OSError):
        FIGURES_FILE.parent.mkdir(exist_ok=True)
        previous = {}
        if FIGURES_FILE.exists():
            with contextlib.suppress(ValueError):
                previous = json.loads(FIGURES_FILE.read_text())
        previous.update(figures)
        FIGURES_FILE.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    _REPORTED.update(figures)


_REPORTED: dict = {}


def pytest_terminal_summary(terminalreporter):
    if _REPORTED:
        terminalreporter.section("fault suite figures")
        for name, value in sorted(_REPORTED.items()):
            terminalreporter.write_line(f"{name}: {json.dumps(value)}")
