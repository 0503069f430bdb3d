"""Chaos: a burst of events to three endpoints while the receiver fails 30 % of
requests at random and a real Celery worker (prefork, not eager) is killed with
SIGKILL and restarted several times. Every event must reach every endpoint at
least once with a valid Standard Webhooks signature: none lost.

The worker runs against this test's database (transactional, so it sees the
rows) on a Celery queue of this test's own, with embedded beat running the
sweep every second and the retry schedule, lease and timeout shortened through
the environment, exactly as `make run` would read them.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from donations import services as donations
from tests.conftest import make_org
from tests.webhooks.receiver import Receiver, Reply
from together.actors import Actor
from together.redis import client as redis_client
from webhooks.models import DeliveryStatus, Event, WebhookAttempt, WebhookDelivery
from webhooks.services import webhook_endpoint_create

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 300
KILLS = 4
DEADLINE_SECONDS = 110
SWEEP_INTERVAL = 1.0


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] or "postgres"
    if s.get("PASSWORD"):
        auth += f":{s['PASSWORD']}"
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Worker:
    """A real `celery worker -B` subprocess in its own process group."""

    def __init__(self, queue: str, workdir: Path):
        self.queue = queue
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log = open(workdir / "worker.log", "ab")
        from together.celery import app

        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": django_settings.REDIS_URL,
            "CELERY_BROKER_URL": app.conf.broker_url,
            "WEBHOOKS_QUEUE": queue,
            "WEBHOOKS_RETRY_SCHEDULE": ",".join(["0.3", "0.5"] + ["1"] * 13),
            "WEBHOOKS_LEASE_SECONDS": "4",
            "WEBHOOKS_TIMEOUT_SECONDS": "2",
            "WEBHOOKS_SWEEP_INTERVAL": f"{SWEEP_INTERVAL:g}",
            "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("TEST_DATABASE_NAME", None)

    def start(self) -> None:
        self.starts += 1
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "together", "worker", "-B",
             "-s", str(self.workdir / f"beat-{self.starts}"), "-Q", self.queue, "--concurrency", "2",
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"chaos{self.starts}-{self.queue}@%h"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the main process, its pool children and beat
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.proc = None

    def tail(self) -> str:
        self.log.flush()
        return (self.workdir / "worker.log").read_bytes()[-4000:].decode("utf-8", "replace")


def drop_unacked(queue: str) -> None:
    """Messages the killed workers had reserved wait in Redis to be restored to our
    queue in an hour; nobody will consume it, so remove them now."""
    r = redis_client()
    try:
        for tag, raw in r.hgetall("unacked").items():
            try:
                routing_key = json.loads(raw)[2]
            except (ValueError, IndexError, TypeError):
                continue
            if routing_key == queue:
                r.hdel("unacked", tag)
                r.zrem("unacked_index", tag)
        r.delete(queue)
    except Exception:  # noqa: BLE001
        pass


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_event_is_lost_when_workers_die_and_the_receiver_fails(tmp_path, private_queue, settings):
    # This process enqueues the first flushes, as the site does: it reads the worker's
    # sweep interval too (one environment for both, as under `make run`). Its flush
    # marker lives two sweep intervals; with the default 10 s, a flush message lost
    # with a killed worker held up the sweep's re-queue for 20 s.
    settings.WEBHOOKS_SWEEP_INTERVAL = SWEEP_INTERVAL
    started = time.monotonic()
    rng = random.Random()
    receiver = Receiver()
    receiver.script = lambda path, n: Reply(500, body=b"chaos") if rng.random() < 0.30 else Reply(200, delay=rng.uniform(0, 0.03))
    receiver.start()
    org = make_org("Chaos")
    actor = Actor.system("chaos")
    paths = ["/a", "/b", "/c"]
    for path in paths:
        created = webhook_endpoint_create(organisation=org, actor=actor, url=receiver.url(path))
        receiver.on(path, created.secret)

    worker = Worker(private_queue, tmp_path)
    worker.start()
    kills: list[float] = []
    donor_ids: list[str] = []
    try:
        for wave in range(KILLS):
            seen = len(receiver.received())
            for i in range(EVENTS // KILLS):  # a wave of the burst: each donor is one transaction and one event
                email = f"chaos{wave}-{i}@example.com"
                donor_ids.append(donations.donor_create(organisation=org, actor=actor, email=email).id)
            # Kill only once this worker is busy delivering, at a random moment: mid-batch, mid-request.
            busy_by = time.monotonic() + 30
            while len(receiver.received()) < seen + 20:
                assert time.monotonic() < busy_by, f"the worker delivered nothing in 30 s\n{worker.tail()}"
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.3))
            worker.kill()
            kills.append(time.monotonic() - started)
            worker.start()

        expected = {(path, donor_id) for path in paths for donor_id in donor_ids}
        delivered: set = set()
        while time.monotonic() - started < DEADLINE_SECONDS:
            delivered = {(r.path, r.json["data"]["id"]) for r in receiver.received() if r.status == 200 and r.valid}
            done = WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count()
            if delivered >= expected and done == len(expected):
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        requests = receiver.received()
        truncated = [r for r in requests if not r.complete]  # cut off by a SIGKILL mid-request: answered 400
        requests = [r for r in requests if r.complete]
        invalid = [r for r in requests if not r.valid]
        ok = [r for r in requests if r.status == 200]
        duplicates = len(ok) - len({r.headers["webhook-id"] for r in ok})
        attempts = WebhookAttempt.objects.count()
        summary = (
            f"{len(expected)} deliveries, {len(requests)} requests ({len(requests) - len(ok)} answered 500), "
            f"{attempts} attempts recorded ({len(requests) - attempts} sends cut off by a kill before their record), "
            f"{duplicates} duplicate 2xx (at least once), {len(truncated)} requests cut mid-body, "
            f"kills at {[round(k, 1) for k in kills]} s, {worker.starts} worker starts, {elapsed:.1f} s"
        )
        print(summary, file=sys.stderr)
        assert not invalid, f"{len(invalid)} requests failed signature verification"
        missing = expected - delivered
        assert not missing, f"{len(missing)} lost, e.g. {sorted(missing)[:3]}; {summary}\n{worker.tail()}"
        assert Event.objects.filter(organisation=org).count() == EVENTS
        assert WebhookDelivery.objects.count() == len(expected)
        assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == len(expected)
        # Every request carried the delivery's stable id, and each id belongs to one (endpoint, event).
        by_id = {}
        for r in requests:
            by_id.setdefault(r.headers["webhook-id"], set()).add((r.path, r.json["data"]["id"]))
        assert all(len(v) == 1 for v in by_id.values())
        assert elapsed < 120
    finally:
        worker.kill()
        receiver.stop()
        drop_unacked(private_queue)
