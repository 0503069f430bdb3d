"""Faults injected into a running site (issue 21, points 1, 3 and 4).

The site is what `make run` starts (scripts/supervise.py --together: gunicorn,
one Celery worker, beat) against a PostgreSQL cluster and a redis-server that
this suite starts, on free ports, and is therefore free to stop. Traffic is
about 20 API requests a second (whoami, and every fourth a POST /api/v1/donors:
one event, one webhook to a local receiver).

- PostgreSQL restarted while the site is idle: the first requests on the
  pooled connections succeed (CONN_HEALTH_CHECKS), no AdminShutdown 500.
- PostgreSQL stopped for ~3 s under traffic: only `503 service_unavailable`
  envelopes with Retry-After while it is down, no 500; all 2xx again within a
  couple of seconds of it accepting connections.
- Redis stopped (`redis-cli shutdown`) for ~8 s under traffic: the API keeps
  answering 2xx, the worker rides it out (or the supervisor restarts it), and
  every event created before, during and after the outage is delivered.
- The worker killed (`kill -9`) under traffic: the supervisor restarts it and
  nothing else; the API answers throughout; every event is delivered.

Run it alone: `.venv/bin/pytest -p no:xdist -m faults -s tests/faults`.
Figures land in var/faults-figures.json and in the terminal summary.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.faults.conftest import Traffic, summarise, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PG_DOWN_SECONDS = 3.0
REDIS_DOWN_SECONDS = 8.0
RECOVERY_LIMIT_SECONDS = 3.0
DELIVERY_DEADLINE_SECONDS = 45.0


def _is_clean_503(r) -> bool:
    return (r.status == 503 and r.code == "service_unavailable" and (r.retry_after or "").isdigit()
            and (r.content_type or "").startswith("application/json"))


def _warm(stack, requests: int = 48, threads: int = 8) -> list:
    """Requests from `threads` clients at once, so every gunicorn thread (and its
    pooled database connection) is used."""
    results, lock = [], threading.Lock()

    def client():
        traffic = Traffic(stack.site.url, stack.key, post_every=10**9)
        for _ in range(requests // threads):
            r = traffic.request()
            with lock:
                results.append(r)
        if traffic._conn is not None:
            traffic._conn.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    return results



def wait_for_delivery(stack, created: set) -> tuple[set, float | None]:
    """Wait (bounded) until every donor in `created` has its event delivered; returns
    what was delivered and how long it took (None when the deadline passed)."""
    delivered: set = set()

    def all_delivered() -> bool:
        nonlocal delivered
        delivered = stack.delivered_donor_ids()
        return created <= delivered

    try:
        seconds = wait_until(all_delivered, DELIVERY_DEADLINE_SECONDS, interval=0.5, what="every event delivered")
    except AssertionError:
        seconds = None
    return delivered, seconds


def test_postgres_restart_while_idle_leaves_no_stale_connection(stack):
    warm = _warm(stack)
    assert all(r.status == 200 for r in warm), summarise(warm)
    restart_started = time.monotonic()
    stack.pg.stop("fast")  # every pooled connection gets AdminShutdown
    stack.pg.start()
    restart_seconds = time.monotonic() - restart_started
    time.sleep(1.0)  # idle: nobody noticed
    after = _warm(stack)
    stack.figures["pg_idle_restart"] = {
        "restart_seconds": round(restart_seconds, 1), "requests_after": len(after), "answers_after": summarise(after),
    }
    assert all(r.status == 200 for r in after), (
        f"stale pooled connections after an idle restart: {summarise(after)}\n{stack.site.tail()}")


def test_postgres_restart_under_traffic_answers_503_then_recovers(stack):
    traffic = Traffic(stack.site.url, stack.key).start()
    try:
        time.sleep(2.0)
        down_at = time.monotonic()
        stack.pg.stop("fast")
        time.sleep(PG_DOWN_SECONDS)
        stack.pg.start()
        up_at = time.monotonic()
        time.sleep(4.0)
    finally:
        results = traffic.stop()
    before = [r for r in results if r.at < down_at]
    during = [r for r in results if down_at <= r.at < up_at]
    after = [r for r in results if r.at >= up_at]
    failures_after = [r for r in after if not 200 <= r.status < 300]
    recovery = max((r.at - up_at for r in failures_after), default=0.0)
    stack.figures["pg_restart_under_traffic"] = {
        "down_seconds": round(up_at - down_at, 1), "requests": len(results),
        "before": summarise(before), "during": summarise(during), "after": summarise(after),
        "recovery_seconds": round(recovery, 2),
    }
    assert before and all(200 <= r.status < 300 for r in before), summarise(before)
    # While PostgreSQL is down: the catalogue's 503 with Retry-After, never a 500 or a dropped connection.
    unclean = [r for r in results if not 200 <= r.status < 300 and not _is_clean_503(r)]
    assert not unclean, f"{len(unclean)} answers were neither 2xx nor a clean 503: {summarise(unclean)}\n{stack.site.tail()}"
    assert any(_is_clean_503(r) for r in during), f"the outage was not observed: {summarise(during)}"
    # After: every answer 2xx again within a couple of seconds.
    assert recovery <= RECOVERY_LIMIT_SECONDS, f"still failing {recovery:.1f} s after the restart: {summarise(after)}"
    assert [r for r in after if r.at - up_at > RECOVERY_LIMIT_SECONDS], "no traffic after the recovery window"


def test_redis_outage_under_traffic_api_serves_worker_survives_every_event_delivered(stack):
    worker_starts_before = stack.site.worker_starts()
    traffic = Traffic(stack.site.url, stack.key).start()
    try:
        time.sleep(2.0)
        down_at = time.monotonic()
        stack.redis.shutdown()
        time.sleep(REDIS_DOWN_SECONDS)
        stack.redis.start()
        up_at = time.monotonic()
        time.sleep(3.0)
    finally:
        results = traffic.stop()
    created = {r.donor_id for r in results if r.donor_id}
    during = [r for r in results if down_at <= r.at < up_at]
    created_during = {r.donor_id for r in during if r.donor_id}
    delivered, delivery_seconds = wait_for_delivery(stack, created)
    worker_restarts = stack.site.worker_starts() - worker_starts_before
    exits = stack.site.supervisor_lines("exited")
    stack.figures["redis_outage_under_traffic"] = {
        "down_seconds": round(up_at - down_at, 1), "requests": len(results), "answers": summarise(results),
        "answers_during": summarise(during), "events_created": len(created), "events_created_during": len(created_during),
        "delivered": len(created & delivered),
        "all_delivered_seconds_after_redis_back": None if delivery_seconds is None else round(delivery_seconds + 3.0, 1),
        "worker_restarts": worker_restarts, "supervisor_exits": exits,
    }
    failures = [r for r in results if not 200 <= r.status < 300]
    assert not failures, f"the API failed while Redis was down: {summarise(failures)}\n{stack.site.tail()}"
    assert created_during, "no event was created during the outage"
    # Only the worker may have needed a restart; the API and beat never go down with it.
    assert not [line for line in exits if "gunicorn" in line], exits
    assert stack.site.proc.poll() is None, "the supervisor exited"
    missing = created - delivered
    assert not missing, (f"{len(missing)} of {len(created)} events not delivered {DELIVERY_DEADLINE_SECONDS:.0f} s "
                         f"after Redis came back\n{stack.site.tail()}")


def test_worker_killed_under_traffic_is_restarted_and_the_api_never_stops(stack):
    """`kill -9` of the worker's main process: the supervisor restarts it (and
    only it); the API answers throughout; events created meanwhile are delivered."""
    worker_pid = stack.site.service_pids("celery-worker")[-1]
    gunicorn_pids = stack.site.service_pids("gunicorn")
    starts_before = stack.site.worker_starts()
    traffic = Traffic(stack.site.url, stack.key).start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        os.kill(worker_pid, signal.SIGKILL)  # a process this suite started
        restart_seconds = wait_until(lambda: stack.site.worker_starts() > starts_before, 30, what="the worker restarted")
        time.sleep(2.0)
    finally:
        results = traffic.stop()
    created = {r.donor_id for r in results if r.donor_id}
    delivered, delivery_seconds = wait_for_delivery(stack, created)
    stack.figures["worker_kill_under_traffic"] = {
        "requests": len(results), "answers": summarise(results), "restart_seconds": round(restart_seconds, 1),
        "events_created": len(created), "delivered": len(created & delivered),
        "all_delivered_seconds_after_kill": None if delivery_seconds is None else round(time.monotonic() - killed_at, 1),
    }
    failures = [r for r in results if not 200 <= r.status < 300]
    assert not failures, f"the API failed while the worker was down: {summarise(failures)}"
    assert stack.site.service_pids("gunicorn") == gunicorn_pids, "gunicorn was restarted too"
    assert stack.site.proc.poll() is None, "the supervisor exited"
    missing = created - delivered
    assert not missing, f"{len(missing)} of {len(created)} events not delivered after the worker restart\n{stack.site.tail()}"
