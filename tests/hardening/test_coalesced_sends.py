"""Coalesced sends (together.celery.coalesced_send, issue 15): the receipt task of
every gift goes onto a Redis list and one delayed drain message per burst sends
it. Nothing may be lost or sent twice, whatever interleaving of pushes and drains
real threads produce; and end to end, a real Celery worker receipts every gift of
a concurrent burst with consecutive numbers."""
from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest

import together.celery
from together.celery import _list_key, broker_redis, coalesced_drain, coalesced_drain_all, coalesced_send

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def task_name():
    name = f"tests.coalesce_{secrets.token_hex(4)}"
    yield name
    client = broker_redis()
    for key in client.scan_iter(match=f"{together.celery.COALESCE_PREFIX}{name}:*"):
        client.delete(key)


@pytest.fixture
def sent(monkeypatch):
    """What would reach the broker: (task name, args, options), recorded instead of published."""
    log: list = []
    lock = threading.Lock()

    def record(name, *args, **options):
        with lock:
            log.append((name, args, options))

    monkeypatch.setattr(together.celery, "task_send", record)
    return log


def test_one_drain_message_per_burst_and_every_item_sent_once(task_name, sent):
    coalesced_send(task_name, "org1", ["a", "b"])
    coalesced_send(task_name, "org1", ["c"])
    coalesced_send(task_name, "org2", ["x"])
    drains = [s for s in sent if s[0] == together.celery.COALESCE_DRAIN_TASK]
    assert [d[1] for d in drains] == [(task_name, "org1", 500), (task_name, "org2", 500)]
    assert all(d[2] == {"countdown": together.celery.COALESCE_DELAY_S} for d in drains)
    sent.clear()
    assert coalesced_drain(task_name, "org1") == 3
    assert sent == [(task_name, ("org1", ["a", "b", "c"]), {})]
    # The flag is down again: the next push schedules a drain of its own.
    coalesced_send(task_name, "org1", ["d"])
    assert [s[1] for s in sent if s[0] == together.celery.COALESCE_DRAIN_TASK] == [(task_name, "org1", 500)]
    # Beat's safety net drains what is left, the lost drain message's list included.
    sent.clear()
    assert coalesced_drain_all(name=task_name) == 2  # this test's task only: other tests' lists are theirs
    assert sorted((s[1][0], tuple(s[1][1])) for s in sent if s[0] == task_name) == [("org1", ("d",)), ("org2", ("x",))]


def test_chunks_and_a_failed_send_puts_the_items_back(task_name, monkeypatch):
    coalesced_send(task_name, "g", [f"i{n}" for n in range(5)], chunk=2)
    calls = []

    def fail_second(name, *args, **options):
        calls.append(args)
        if len(calls) == 2:
            raise ConnectionError("broker down")

    monkeypatch.setattr(together.celery, "task_send", fail_second)
    with pytest.raises(ConnectionError):
        coalesced_drain(task_name, "g", 2)
    assert calls == [("g", ["i0", "i1"]), ("g", ["i2", "i3"])]
    assert [v.decode() for v in broker_redis().lrange(_list_key(task_name, "g"), 0, -1)] == ["i2", "i3", "i4"]
    calls.clear()
    monkeypatch.setattr(together.celery, "task_send", lambda name, *args, **o: calls.append(args))
    assert coalesced_drain(task_name, "g", 2) == 3
    assert calls == [("g", ["i2", "i3"]), ("g", ["i4"])]


def test_concurrent_pushes_and_drains_lose_nothing(task_name, sent):
    """8 threads push 1,600 items while 2 threads drain in a loop, as workers would run
    the drain messages: every item is sent exactly once, nothing stays on the list,
    and the drain messages are a small fraction of the pushes."""
    pushers, per_thread = 8, 200
    stop = threading.Event()
    errors = []

    def push(t):
        try:
            for n in range(per_thread):
                coalesced_send(task_name, "g", [f"{t}-{n}"])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def drain():
        try:
            while not stop.is_set():
                coalesced_drain(task_name, "g")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    drainers = [threading.Thread(target=drain) for _ in range(2)]
    threads = [threading.Thread(target=push, args=(t,)) for t in range(pushers)]
    for t in drainers + threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    for t in drainers:
        t.join()
    coalesced_drain(task_name, "g")  # the drain message the last push scheduled, if any
    assert not errors
    items = [item for name, args, _ in sent if name == task_name for item in args[1]]
    assert sorted(items) == sorted(f"{t}-{n}" for t in range(pushers) for n in range(per_thread))
    assert broker_redis().llen(_list_key(task_name, "g")) == 0
    drains = [s for s in sent if s[0] == together.celery.COALESCE_DRAIN_TASK]
    assert 1 <= len(drains) < pushers * per_thread / 4


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    return f"postgresql://{s['USER'] or 'postgres'}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_receipts_every_gift_of_a_concurrent_burst(monkeypatch, tmp_path):
    """40 gifts recorded by 8 threads at once (receipting on record): a real `celery
    worker -B` on a queue of this test's own issues 40 receipts numbered 1 to 40,
    from far fewer receipt messages than gifts."""
    from django.db import connection

    from donations import services as donations
    from receipts.models import Receipt
    from tests.conftest import make_org
    from tests.receipts.conftest import make_donor, set_up_receipts
    from together.actors import Actor
    from together.celery import app

    queue = f"coalesce-{secrets.token_hex(4)}"
    default_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue  # Settings: monkeypatch cannot undo an attribute set on it
    org = make_org("Coalesce")
    set_up_receipts(org)
    donors = [make_donor(org, email=f"d{n}@example.com") for n in range(8)]
    sends = []
    real_send = together.celery.task_send
    monkeypatch.setattr(together.celery, "task_send", lambda name, *a, **o: (sends.append(name), real_send(name, *a, **o))[1])

    def give(donor):
        try:
            for n in range(5):
                donations.donation_record(organisation=org, actor=Actor.system("tests"), donor_id=donor.id, donation_type="MONETARY",
                                          amount_cents=1000 + n, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
        finally:
            connection.close()

    env = {**os.environ, "DATABASE_URL": _database_url(), "CELERY_BROKER_URL": app.conf.broker_url,
           "CELERY_TASK_DEFAULT_QUEUE": queue, "PYTHONUNBUFFERED": "1"}
    env.pop("TEST_DATABASE_NAME", None)
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [str(ROOT / ".venv/bin/celery"), "-A", "together", "worker", "-Q", queue, "--concurrency", "2", "--loglevel", "WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{queue}@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        threads = [threading.Thread(target=give, args=(d,)) for d in donors]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and Receipt.objects.filter(organisation=org, status="ISSUED").count() < 40:
            time.sleep(0.2)
        numbers = sorted(Receipt.objects.filter(organisation=org, status="ISSUED").values_list("number", flat=True))
        assert numbers == list(range(1, 41)), (tmp_path / "worker.log").read_text()[-3000:]
        assert sends.count(together.celery.COALESCE_DRAIN_TASK) < 40  # the web side published a drain per burst, not a message per gift
    finally:
        app.conf.task_default_queue = default_queue
        os.killpg(worker.pid, 15)
        worker.wait(15)
        broker_redis().delete(queue)
