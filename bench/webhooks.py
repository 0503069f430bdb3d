"""Webhooks row of `make bench` (issue 8): deliveries per second.

Scenario: a real Celery worker (prefork, 2 processes, on a queue of its own,
Redis broker) delivers events to a local HTTP receiver running in a process of
its own. N events for each of 2 endpoints are written in one transaction with
`webhooks.events.event_write` (what `event_record` does after the audit entry); the clock runs
from the commit (which enqueues the flushes) until the receiver has answered
every delivery, and every delivery row is SUCCEEDED.

Baseline: a bare HTTP client loop (http.client, one keep-alive connection)
POSTing the same bodies, with the same headers, to the same receiver in the
same run. Each side is measured ROUNDS times and its best round counts (the
machine is shared: single rounds swing by 2x). Goal: the pipeline reaches at
least 50 % of the bare loop.
"""
from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_WEBHOOK_EVENTS", "1500"))
ROUNDS = int(os.environ.get("BENCH_WEBHOOK_ROUNDS", "3"))
ENDPOINTS = int(os.environ.get("BENCH_WEBHOOK_ENDPOINTS", "2"))
WORKER_CONCURRENCY = 2
BARE = "bare HTTP client loop → local receiver"

_state: dict = {}


# --- the receiver, in its own process -------------------------------------------------

def _serve(port_out, counter) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            # Answer headers and body without waiting for the client's delayed ACK (Nagle).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with counter.get_lock():
                counter.value += 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

        def handle_error(self, request, client_address):
            pass

    server = Server(("127.0.0.1", 0), Handler)
    port_out.value = server.server_address[1]
    server.serve_forever(poll_interval=0.05)


def _receiver():
    if "receiver" not in _state:
        ctx = multiprocessing.get_context("fork")
        port, counter = ctx.Value("i", 0), ctx.Value("l", 0)
        proc = ctx.Process(target=_serve, args=(port, counter), daemon=True)
        proc.start()
        while not port.value:
            time.sleep(0.01)
        _state["receiver"] = (proc, port.value, counter)
    return _state["receiver"]


def _wait_count(counter, target: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while counter.value < target:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


# --- the Celery worker ------------------------------------------------------------------

def _start_worker(queue: str, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "WEBHOOKS_QUEUE": queue, "WEBHOOKS_ALLOW_PRIVATE_URLS": "1"}
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "together", "worker", "-Q", queue,
         "--concurrency", str(WORKER_CONCURRENCY), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-n", f"bench-{queue}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while b" ready." not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the Celery worker did not start; see {log_path}")
        time.sleep(0.1)
    return proc


def _stop_worker(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


# --- the rows -------------------------------------------------------------------------------

def _bare_round(port: int, counter, bodies: list[bytes]) -> tuple[float, int]:
    import http.client

    from webhooks.transport import headers_for

    secret = "wh_" + "x" * 40
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    errors = 0
    start_count = counter.value
    started = time.perf_counter()
    for i, body in enumerate(bodies):
        headers = headers_for(msg_id=f"dlv_bench{i:021d}", timestamp=int(time.time()), body=body, secrets=[secret])
        conn.request("POST", "/bare", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        errors += not 200 <= response.status < 300
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, errors + (len(bodies) - (counter.value - start_count))


@baseline(BARE)
def bare_loop(ctx: BenchContext) -> Measurement:
    """The same bodies and headers POSTed by one http.client keep-alive loop; best of ROUNDS."""
    _proc, port, counter = _receiver()
    bodies = _state.get("bodies") or [b'{"type":"donor.created","data":{}}'] * (EVENTS * ENDPOINTS)
    rounds = [_bare_round(port, counter, bodies) for _ in range(ROUNDS)]
    best = min(elapsed for elapsed, _ in rounds)
    return Measurement(
        value=len(bodies) / best, unit="deliveries/s", errors=sum(e for _, e in rounds),
        detail=(f"{len(bodies)} POSTs, one keep-alive connection, signed headers; best of {ROUNDS} "
                f"({', '.join(f'{len(bodies) / e:,.0f}' for e, _ in rounds)} /s)"),
    )


@scenario("webhook deliveries/s (Celery + Redis → local receiver)", baseline=BARE, goal=Goal.of("not in issue 15's table"))
def webhook_deliveries(ctx: BenchContext) -> Measurement:
    from django.conf import settings
    from django.db import connection, transaction

    from together.actors import Actor
    from together.redis import client as redis_client
    from webhooks.events import event_body, event_write
    from webhooks.models import DeliveryStatus, Event, WebhookDelivery
    from webhooks.services import webhook_endpoint_create, webhook_endpoint_delete

    organisation = ctx.organisation
    actor = Actor.system("make bench")
    queue = f"webhooks-bench-{secrets.token_hex(4)}"
    settings.WEBHOOKS_QUEUE = queue
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    connection.close()  # nothing shared with the forked receiver
    _proc, port, counter = _receiver()
    log_path = ROOT / "var" / "bench" / "celery-webhooks.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    worker = _start_worker(queue, log_path)
    endpoints = [
        webhook_endpoint_create(organisation=organisation, actor=actor, url=f"http://127.0.0.1:{port}/hook/{i}").endpoint
        for i in range(ENDPOINTS)
    ]
    event_ids: list[str] = []
    try:
        total = EVENTS * len(endpoints)
        rates, errors, received, succeeded = [], 0, 0, 0
        for round_ in range(ROUNDS):
            ids: list[str] = []
            start_count = counter.value
            with transaction.atomic():
                for i in range(EVENTS):
                    event = event_write(organisation_id=organisation.id, type="donor.created", data={
                        "id": f"cmbench{round_:03d}{i:014d}", "object": "donor", "donor_type": "INDIVIDUAL",
                        "email": f"bench{i}@example.com", "first_name": "Bench", "last_name": f"Donor {i}",
                        "organisation_name": None,
                    })
                    ids.append(event.id)
                started = time.perf_counter()  # the commit enqueues the flushes
            event_ids += ids
            done = _wait_count(counter, start_count + total, timeout=300)
            elapsed = time.perf_counter() - started
            rates.append(total / elapsed)
            # The receiver has answered; the last batch's rows are recorded a moment later.
            deadline = time.monotonic() + 30
            while WebhookDelivery.objects.filter(event_id__in=ids, status=DeliveryStatus.SUCCEEDED).count() < total:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            ok = WebhookDelivery.objects.filter(event_id__in=ids, status=DeliveryStatus.SUCCEEDED).count()
            got = counter.value - start_count
            succeeded += ok
            received += got
            errors += (total - ok) + (0 if done else total - got)
        _state["bodies"] = [
            event_body(type=e.type, occurred_at=e.occurred_at, organisation_id=e.organisation_id, data=e.data)
            for e in Event.objects.filter(pk__in=ids) for _ in range(len(endpoints))
        ]
        return Measurement(
            value=max(rates), unit="deliveries/s", errors=errors,
            detail=(f"{total} deliveries ({EVENTS} events x {len(endpoints)} endpoints) from commit to last answer, "
                    f"best of {ROUNDS} ({', '.join(f'{r:,.0f}' for r in rates)} /s); {received} requests received, "
                    f"{succeeded} rows SUCCEEDED; worker: {WORKER_CONCURRENCY} processes, batches of "
                    f"{settings.WEBHOOKS_BATCH_SIZE}, {settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT} concurrent sends per endpoint"),
        )
    finally:
        _stop_worker(worker)
        for endpoint in endpoints:
            webhook_endpoint_delete(organisation=organisation, actor=actor, endpoint_id=endpoint.id)
        Event.objects.filter(pk__in=event_ids).delete()
        try:
            redis_client().delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        except Exception:  # noqa: BLE001
            pass
        connection.close()
