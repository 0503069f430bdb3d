"""The delivery pipeline: claim, send, record, sweep.

The database drives everything:

* `webhooks.events.event_record` writes each event with one PENDING
  `WebhookDelivery` per matching enabled endpoint (due now), in the
  transaction of the change, and enqueues a flush of those endpoints after
  the commit.
* `endpoint_flush` claims a batch of due deliveries of one endpoint with
  `FOR UPDATE SKIP LOCKED` and a lease (`leased_until`, `lease_token`), commits
  the claim, sends the batch concurrently over pooled connections, then records
  every attempt and the deliveries' next state in one transaction; the next
  batch is claimed while one is on the wire (pipelined). A worker
  killed mid-batch leaves leases that expire: the deliveries are claimed again
  (at least once).
* `sweep` (Celery beat) re-queues a flush for every endpoint with due,
  unleased deliveries: a lost message, a dead worker, a retry coming due.

Retries follow `WEBHOOKS_RETRY_SCHEDULE` with jitter; long delays live in
`next_attempt_at` only. A short delay also gets a Celery countdown so that the
5-second retry is punctual.
"""
from __future__ import annotations

import os
import random
import secrets as _secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from webhooks import addresses, transport
from webhooks.events import event_body
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookDelivery, WebhookEndpoint, fast_id
from webhooks.queue import enqueue_flush, flush_marker_clear


COUNTDOWN_LIMIT_SECONDS = 300  # delays from 5 minutes up wait in next_attempt_at only


# -- claim ---------------------------------------------------------------------------

@dataclass
class Item:
    delivery_id: str
    attempt_count: int
    body: bytes


@dataclass
class Batch:
    endpoint_id: str
    organisation_id: str
    url: str
    secrets: list[str]
    failing_since: object = None  # the endpoint's, when the batch was claimed
    token: str = ""
    items: list[Item] = field(default_factory=list)


def endpoint_secrets(endpoint: WebhookEndpoint, now=None) -> list[str]:
    """The current secret, and the previous one during its 24-hour overlap after a rotation."""
    now = now or timezone.now()
    out = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > now:
        out.append(endpoint.previous_secret)
    return out


def _lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)


# A claim and a record are each one round trip: one query string of several
# statements, which PostgreSQL runs as one transaction. They commit without
# waiting for the WAL flush: a database crash may forget the last few hundred
# milliseconds of them, which only means a delivery is claimed or sent again (at
# least once), never that one is lost.
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF;"
_RELEASE = ("UPDATE webhooks_webhookdelivery SET leased_until = NULL, lease_token = NULL, updated_at = %s "
            "WHERE id = ANY(%s) AND lease_token = %s;")


def _execute_returning(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchall()


# One statement, one round trip: lock the due rows nobody holds (SKIP LOCKED: rows
# another worker is claiming are not waited for), lease them, return what to send.
_CLAIM = """
UPDATE webhooks_webhookdelivery AS d SET leased_until = %s, lease_token = %s
FROM webhooks_event AS e
WHERE e.id = d.event_id AND d.id IN (
    SELECT id FROM webhooks_webhookdelivery
    WHERE endpoint_id = %s AND status = 'PENDING' AND next_attempt_at <= %s
      AND (leased_until IS NULL OR leased_until < %s)
    ORDER BY next_attempt_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
)
RETURNING d.id, d.attempt_count, d.next_attempt_at, e.type, e.occurred_at, e.organisation_id, e.data
"""


def deliveries_claim(*, endpoint_id: str, limit: int | None = None) -> Batch | None:
    """Lease up to `limit` due deliveries of an enabled endpoint, oldest due first.
    None when the endpoint cannot receive (gone or disabled)."""
    limit = limit or settings.WEBHOOKS_BATCH_SIZE
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.status != EndpointStatus.ENABLED:
        return None
    batch = Batch(endpoint_id=endpoint.id, organisation_id=endpoint.organisation_id, url=endpoint.url,
                  secrets=endpoint_secrets(endpoint, now), failing_since=endpoint.failing_since,
                  token=_secrets.token_hex(8))
    rows = _execute_returning(_ASYNC_COMMIT + _CLAIM, [now + _lease(), batch.token, endpoint_id, now, now, limit])
    rows.sort(key=lambda r: r[2])  # RETURNING has no order: send the oldest due first
    for delivery_id, attempt_count, _due, type_, occurred_at, organisation_id, data in rows:
        if isinstance(data, (str, bytes)):
            data = orjson.loads(data)
        body = event_body(type=type_, occurred_at=occurred_at, organisation_id=organisation_id, data=data)
        batch.items.append(Item(delivery_id=delivery_id, attempt_count=attempt_count, body=body))
    return batch


# -- send ----------------------------------------------------------------------------

_EXECUTOR: ThreadPoolExecutor | None = None
_EXECUTOR_KEY: tuple = ()


def _executor(size: int) -> ThreadPoolExecutor:
    """One sender thread pool per worker process (made after the fork)."""
    global _EXECUTOR, _EXECUTOR_KEY
    key = (os.getpid(), size)
    if _EXECUTOR is None or _EXECUTOR_KEY != key:
        _EXECUTOR = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook")
        _EXECUTOR_KEY = key
    return _EXECUTOR


def batch_send_start(batch: Batch, *, stop_at: float) -> Callable[[], dict[str, transport.SendResult]]:
    """Start POSTing every item, several at once over the endpoint's pooled connections,
    and return a function that waits for the results. Items not started before
    `stop_at` (monotonic) come back NOT_SENT."""
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    try:
        target = addresses.vet(batch.url)  # again at delivery: the DNS answer may have changed
    except addresses.UnsafeUrl as exc:
        refused = f"refused before sending: {exc}"[:500]
        results = {i.delivery_id: transport.SendResult(succeeded=False, error=refused, latency_ms=0) for i in batch.items}
        return lambda: results
    size = max(1, settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT)
    pool = transport.pool_for(target, maxsize=size)

    def send(item: Item) -> transport.SendResult:
        if time.monotonic() >= stop_at:
            return transport.NOT_SENT
        return transport.post(pool=pool, target=target, msg_id=item.delivery_id, body=item.body,
                              secrets=batch.secrets, timeout=timeout)

    if size == 1 or len(batch.items) == 1:
        results = {i.delivery_id: send(i) for i in batch.items}
        return lambda: results
    # `size` sender threads take the next item from one shared queue until it is empty.
    results: dict[str, transport.SendResult] = {}
    queue = iter(batch.items)
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                return
            results[item.delivery_id] = send(item)

    futures = [_executor(size).submit(drain) for _ in range(min(size, len(batch.items)))]

    def wait() -> dict[str, transport.SendResult]:
        for future in futures:
            future.result()
        return results

    return wait


def batch_send(batch: Batch, *, stop_at: float) -> dict[str, transport.SendResult]:
    return batch_send_start(batch, stop_at=stop_at)()


# -- record --------------------------------------------------------------------------

def retry_delay(attempt_number: int, retry_after: float | None = None) -> float | None:
    """Seconds until the next try after failed attempt `attempt_number` (1-based); None: give up."""
    schedule = settings.WEBHOOKS_RETRY_SCHEDULE
    if attempt_number > len(schedule):
        return None
    base = schedule[attempt_number - 1]
    delay = base + random.uniform(0, 0.1 * base)  # jitter: up to 10 % later, never earlier
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


# The attempts and the deliveries' next state in one statement (one round trip,
# atomic), the batch passed as arrays. A delivery whose lease we lost (we were too
# slow and another worker claimed it) is left alone: only our attempt is recorded.
_RECORD = """
WITH v AS (
    SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::integer[], %s::boolean[], %s::smallint[], %s::integer[],
                         %s::text[], %s::varchar[], %s::timestamptz[], %s::varchar[], %s::timestamptz[])
        AS v(attempt_id, id, attempt_count, succeeded, last_status_code, latency_ms, response_excerpt, last_error,
             next_attempt_at, status, delivered_at)
), attempts AS (
    INSERT INTO webhooks_webhookattempt (id, organisation_id, created_at, updated_at, delivery_id, attempt_number, url,
                                         succeeded, status_code, latency_ms, response_excerpt, error, next_attempt_at)
    SELECT attempt_id, %s, %s, %s, id, attempt_count, %s, succeeded, last_status_code, latency_ms, response_excerpt,
           last_error, next_attempt_at FROM v
)
UPDATE webhooks_webhookdelivery AS d SET
    attempt_count = v.attempt_count, last_status_code = v.last_status_code, last_error = v.last_error,
    next_attempt_at = v.next_attempt_at, status = v.status, delivered_at = COALESCE(v.delivered_at, d.delivered_at),
    leased_until = NULL, lease_token = NULL, updated_at = %s
FROM v WHERE d.id = v.id AND d.lease_token = %s
"""
RECORD_COLUMNS = 11


def batch_record(batch: Batch, results: dict[str, transport.SendResult]) -> None:
    """Write every attempt and each delivery's next state; update the endpoint's health."""
    now = timezone.now()
    soonest: float | None = None
    columns: list[list] = [[] for _ in range(RECORD_COLUMNS)]
    unsent: list[str] = []
    any_success = any_failure = gone = False
    for item in batch.items:
        result = results[item.delivery_id]
        if not result.sent:
            unsent.append(item.delivery_id)
            continue
        number = item.attempt_count + 1
        next_at = None
        if result.succeeded:
            any_success = True
            status = DeliveryStatus.SUCCEEDED.value
        else:
            any_failure = True
            gone = gone or result.gone
            delay = None if result.gone else retry_delay(number, result.retry_after)
            if delay is not None:
                next_at = now + timedelta(seconds=delay)
                soonest = delay if soonest is None else min(soonest, delay)
            status = (DeliveryStatus.FAILED if next_at is None else DeliveryStatus.PENDING).value
        excerpt = result.excerpt.replace("\x00", "") if result.excerpt else result.excerpt
        for column, value in zip(columns, (
            fast_id(), item.delivery_id, number, result.succeeded, result.status_code, result.latency_ms, excerpt,
            result.error, next_at, status, now if result.succeeded else None,
        )):
            column.append(value)
    sql, params = _ASYNC_COMMIT, []
    if columns[0]:
        sql += _RECORD + ";"
        params += [*columns, batch.organisation_id, now, now, batch.url, now, batch.token]
    if unsent:
        sql += _RELEASE
        params += [now, unsent, batch.token]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    if any_failure or (any_success and batch.failing_since is not None):
        with transaction.atomic():
            _endpoint_health(batch, now=now, any_success=any_success, any_failure=any_failure, gone=gone, soonest=soonest)


def _endpoint_health(batch: Batch, *, now, any_success: bool, any_failure: bool, gone: bool, soonest: float | None):
    """The failure streak (5 days: disabled), 410 (disabled at once), and a punctual short retry."""
    from webhooks.services import webhook_endpoint_disable

    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=batch.endpoint_id).first()
    if endpoint is None or endpoint.status != EndpointStatus.ENABLED:
        return
    if any_success and endpoint.failing_since is not None:
        endpoint.failing_since = None
        endpoint.save(update_fields=["failing_since", "updated_at"])
    elif any_failure and not any_success and endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since", "updated_at"])
    if gone:
        webhook_endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.", notify=True)
    elif endpoint.failing_since is not None and now - endpoint.failing_since >= timedelta(
            days=settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS):
        webhook_endpoint_disable(
            endpoint=endpoint, notify=True,
            reason=f"Every delivery failed for {settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS} days.",
        )
    elif soonest is not None and soonest < COUNTDOWN_LIMIT_SECONDS:
        delay, endpoint_id = soonest, endpoint.id
        transaction.on_commit(lambda: enqueue_flush(endpoint_id, countdown=delay, dedupe=False), robust=True)


# -- flush ---------------------------------------------------------------------------

def flush_budget_seconds() -> float:
    """How long one flush keeps starting sends: well inside the lease, so that a
    send started at the end (timeout included) is recorded before the lease ends."""
    spare = (settings.WEBHOOKS_LEASE_SECONDS - settings.WEBHOOKS_TIMEOUT_SECONDS) / 2
    return max(0.5, min(30.0, spare))


def endpoint_flush(*, endpoint_id: str) -> int:
    """Send every due delivery of an endpoint, batch after batch, for up to the flush
    budget; returns the number of attempts made.

    Pipelined: while one batch is on the wire, the next is claimed and the previous
    one recorded, so the database round trips hide behind the HTTP ones."""
    flush_marker_clear(endpoint_id)
    stop_at = time.monotonic() + flush_budget_seconds()
    sent = 0
    batch = deliveries_claim(endpoint_id=endpoint_id)
    if batch is None or not batch.items:
        return 0
    wait = batch_send_start(batch, stop_at=stop_at)
    while True:
        following = deliveries_claim(endpoint_id=endpoint_id) if time.monotonic() < stop_at else None
        results = wait()
        gone = any(r.gone for r in results.values())  # 410: the endpoint is disabled, send nothing more
        if following is not None and following.items and not gone:
            wait = batch_send_start(following, stop_at=stop_at)
        batch_record(batch, results)
        sent += sum(1 for r in results.values() if r.sent)
        if gone:
            if following is not None and following.items:
                batch_record(following, {i.delivery_id: transport.NOT_SENT for i in following.items})
            break
        if following is None or not following.items:
            # Nothing was waiting; the record may have made a retry due right away.
            following = deliveries_claim(endpoint_id=endpoint_id) if time.monotonic() < stop_at else None
            if following is None or not following.items:
                break
            wait = batch_send_start(following, stop_at=stop_at)
        batch = following
    if time.monotonic() >= stop_at:
        # More may be due: go on in a fresh task.
        transaction.on_commit(lambda: enqueue_flush(endpoint_id), robust=True)
    return sent


# -- sweep ---------------------------------------------------------------------------

def sweep() -> dict:
    """Re-queue a flush of every endpoint with due deliveries nobody holds (never
    claimed, or claimed by a worker whose lease ran out): a lost message, a dead
    worker, a retry coming due. One grouped read finds the endpoints; for each, a
    `FOR UPDATE SKIP LOCKED` probe skips the rows a flush is claiming right now."""
    now = timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now,
                                       endpoint__status=EndpointStatus.ENABLED)
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
    )
    endpoint_ids = list(due.order_by().values_list("endpoint_id", flat=True).distinct())
    claimable = []
    with transaction.atomic():
        for endpoint_id in endpoint_ids:
            probe = due.filter(endpoint_id=endpoint_id).select_for_update(skip_locked=True, of=("self",))
            if list(probe.values_list("id", flat=True)[:1]):
                claimable.append(endpoint_id)
    queued = [i for i in claimable if enqueue_flush(i)]
    return {"endpoints_due": len(claimable), "endpoints_queued": len(queued)}
