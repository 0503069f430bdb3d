"""The delivery pipeline: claim, send, record, sweep.

The database drives everything:

* `webhooks.events.event_record` writes each event with one PENDING
  `WebhookDelivery` per matching enabled endpoint (due now), in the
  transaction of the change, and enqueues a flush of those endpoints after
  the commit.
* `endpoint_flush` claims a batch of due deliveries of one endpoint with
  `FOR UPDATE SKIP LOCKED` and a lease (`leased_until`, `lease_token`), counting
  the attempt (`attempt_count`) in the claim, committed before any byte is sent;
  it sends the batch concurrently over pooled connections, recording the
  attempts and the deliveries' next state as the answers come in (every
  `RECORD_EVERY_SECONDS`); the next batch is claimed while one is on the wire
  (pipelined). The lease is short and renewed while the flush works (a
  heartbeat): a worker killed mid-batch leaves leases that expire within
  `WEBHOOKS_LEASE_SECONDS`; the deliveries are claimed again (at least once),
  and that claim writes the dead worker's attempt, "interrupted" (it may or may
  not have reached the receiver), so every send is on record.
* Fair shares (webhooks/queue.py): one flush per endpoint at a time across all
  workers; a flush starts sends for `WEBHOOKS_FLUSH_BUDGET_SECONDS` and stops
  at the first send that times out; an endpoint found slow sends one round per
  flush, in one of `WEBHOOKS_SLOW_FLUSH_SLOTS` slots: a slow receiver never
  holds more than its share of the worker slots.
* `sweep` (Celery beat) re-queues a flush for every endpoint with due,
  unleased deliveries: a lost message, a dead worker, a retry coming due.

Retries follow `WEBHOOKS_RETRY_SCHEDULE` with jitter; long delays live in
`next_attempt_at` only. A short delay also gets a Celery countdown so that the
5-second retry is punctual.
"""
from __future__ import annotations

import logging
import os
import random
import secrets as _secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from webhooks import addresses, queue, transport
from webhooks.events import event_body
from webhooks.models import (
    DeliveryStatus,
    EndpointStatus,
    WebhookDelivery,
    WebhookEndpoint,
    fast_id,
)
from webhooks.queue import enqueue_flush, flush_marker_clear

log = logging.getLogger("together.webhooks")


COUNTDOWN_LIMIT_SECONDS = 300  # delays from 5 minutes up wait in next_attempt_at only
SLOW_WAIT_SECONDS = 2.0
# While a batch is on the wire, the answers already in are recorded this often: a
# worker killed mid-batch leaves few answered sends unrecorded (sent again: duplicates).
RECORD_EVERY_SECONDS = 0.1  # a slow endpoint's flush that found no free slow slot tries again this much later
INTERRUPTED = "interrupted: the worker stopped before recording an answer; the request may have been received"


# -- claim ---------------------------------------------------------------------------

@dataclass
class Item:
    delivery_id: str
    attempt_count: int  # including this attempt
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
# Deliveries claimed but never sent: the lease and the count go back. Rows are
# locked in id order, as `webhook_endpoint_delete` locks them: the two never deadlock.
_RELEASE = """
WITH mine AS (
    SELECT id FROM webhooks_webhookdelivery WHERE id = ANY(%s) AND lease_token = %s ORDER BY id FOR UPDATE
)
UPDATE webhooks_webhookdelivery AS d SET leased_until = NULL, lease_token = NULL,
    attempt_count = greatest(d.attempt_count - 1, 0), updated_at = %s
FROM mine WHERE d.id = mine.id;
"""


def _execute_returning(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchall()


# One statement, one round trip: lock the due rows nobody holds (SKIP LOCKED: rows
# another worker is claiming are not waited for), lease them and count this
# attempt, and return what to send. A row still leased (expired: its worker never
# recorded an answer) was being sent by a worker that died: its attempt is written
# now, "interrupted". Attempt ids: a random 20-character prefix per batch and the
# row's number (24 characters, as `fast_id`).
_CLAIM = """
WITH picked AS (
    SELECT id, leased_until AS previous_lease FROM webhooks_webhookdelivery
    WHERE endpoint_id = %s AND status = 'PENDING' AND next_attempt_at <= %s
      AND (leased_until IS NULL OR leased_until < %s)
    ORDER BY next_attempt_at
    LIMIT %s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE webhooks_webhookdelivery AS d
    SET leased_until = %s, lease_token = %s, attempt_count = d.attempt_count + 1
    FROM picked AS p, webhooks_event AS e
    WHERE d.id = p.id AND e.id = d.event_id
    RETURNING d.id, d.attempt_count, d.next_attempt_at, e.type, e.occurred_at, e.organisation_id, e.data,
              p.previous_lease
), interrupted AS (
    INSERT INTO webhooks_webhookattempt (id, organisation_id, created_at, updated_at, delivery_id, attempt_number, url,
                                         succeeded, error)
    SELECT %s || lpad((row_number() OVER ())::text, 4, '0'), %s, %s, %s, id, attempt_count - 1, %s, false, %s
    FROM claimed WHERE previous_lease IS NOT NULL AND attempt_count > 1
)
SELECT id, attempt_count, next_attempt_at, type, occurred_at, organisation_id, data FROM claimed
"""
MAX_CLAIM = 9999  # four digits of attempt id suffix


def deliveries_claim(*, endpoint_id: str, limit: int | None = None) -> Batch | None:
    """Lease up to `limit` due deliveries of an enabled endpoint, oldest due first.
    None when the endpoint cannot receive (gone or disabled)."""
    limit = min(MAX_CLAIM, limit or settings.WEBHOOKS_BATCH_SIZE)
    now = timezone.now()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or endpoint.status != EndpointStatus.ENABLED:
        log.debug("webhooks: endpoint %s is gone or disabled; nothing to send", endpoint_id)
        return None
    batch = Batch(endpoint_id=endpoint.id, organisation_id=endpoint.organisation_id, url=endpoint.url,
                  secrets=endpoint_secrets(endpoint, now), failing_since=endpoint.failing_since,
                  token=_secrets.token_hex(8))
    rows = _execute_returning(_ASYNC_COMMIT + _CLAIM, [
        endpoint_id, now, now, limit, now + _lease(), batch.token,
        fast_id()[:20], endpoint.organisation_id, now, now, endpoint.url, INTERRUPTED,
    ])
    rows.sort(key=lambda r: r[2])  # RETURNING has no order: send the oldest due first
    for delivery_id, attempt_count, _due, type_, occurred_at, organisation_id, data in rows:
        if isinstance(data, (str, bytes)):
            data = orjson.loads(data)
        body = event_body(type=type_, occurred_at=occurred_at, organisation_id=organisation_id, data=data)
        batch.items.append(Item(delivery_id=delivery_id, attempt_count=attempt_count, body=body))
    return batch


# SKIP LOCKED: a row locked by someone else (an endpoint being deleted) is not waited for.
_RENEW_LEASES = """
UPDATE webhooks_webhookdelivery SET leased_until = %s WHERE id IN (
    SELECT id FROM webhooks_webhookdelivery WHERE id = ANY(%s) AND lease_token = ANY(%s) FOR UPDATE SKIP LOCKED
)
"""


class Heartbeat:
    """Keeps a flush's claims alive while it works: every quarter lease, pushes back
    the lease of every batch it holds and renews its Redis lock and slow slot. Runs
    on the flush's own thread (between waits), so it shares its database connection."""

    def __init__(self, *, endpoint_id: str, token: str, locked: bool, slot: bool):
        self.endpoint_id, self.token, self.locked, self.slot = endpoint_id, token, locked, slot
        self.every = max(0.2, settings.WEBHOOKS_LEASE_SECONDS / 4)
        self.next_at = time.monotonic() + self.every
        self.batches: list[Batch] = []

    def hold(self, batch: Batch | None) -> None:
        if batch is not None and batch.items:
            self.batches.append(batch)

    def drop(self, batch: Batch) -> None:
        if batch in self.batches:
            self.batches.remove(batch)

    def poll_seconds(self) -> float:
        return max(0.05, min(RECORD_EVERY_SECONDS, self.next_at - time.monotonic()))

    def tick(self) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.every
        ids = [item.delivery_id for batch in self.batches for item in batch.items]
        if ids:
            with connection.cursor() as cursor:
                cursor.execute(_RENEW_LEASES, [timezone.now() + _lease(), ids, [b.token for b in self.batches]])
        if self.locked:
            queue.flush_lock_renew(self.endpoint_id, self.token)
        if self.slot:
            queue.slow_slot_take(self.token)


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


def is_slow(result: transport.SendResult) -> bool:
    """A send that timed out, or that took WEBHOOKS_SLOW_SECONDS."""
    if not result.sent:
        return False
    if result.error and result.error.startswith("timeout"):
        return True
    return (result.latency_ms or 0) >= settings.WEBHOOKS_SLOW_SECONDS * 1000


class Sending:
    """A batch on the wire: `results` fills in as answers come back."""

    def __init__(self, futures: list, results: dict[str, transport.SendResult]):
        self.futures, self.results = futures, results

    def wait(self, timeout: float | None = None) -> bool:
        """True once every send is done; False after `timeout` seconds."""
        for future in self.futures:
            try:
                future.result(timeout=timeout)
            except FutureTimeout:
                return False
        return True

    def answered(self) -> dict[str, transport.SendResult]:
        return dict(self.results)  # a copy made under the GIL: the senders keep adding

    def __call__(self) -> dict[str, transport.SendResult]:
        self.wait()
        return self.results


def batch_send_start(batch: Batch, *, stop_at: float, slow: threading.Event | None = None) -> Sending:
    """Start POSTing every item, several at once over the endpoint's pooled connections.
    Items not started before `stop_at` (monotonic), or after a send of the flush
    turned out slow (`slow` is set), come back NOT_SENT."""
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    slow = slow or threading.Event()
    try:
        target = addresses.vet(batch.url)  # again at delivery: the DNS answer may have changed
    except addresses.UnsafeUrl as exc:
        refused = f"refused before sending: {exc}"[:500]
        results = {i.delivery_id: transport.SendResult(succeeded=False, error=refused, latency_ms=0) for i in batch.items}
        return Sending([], results)
    size = max(1, settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT)
    pool = transport.pool_for(target, maxsize=size)

    def send(item: Item) -> transport.SendResult:
        if time.monotonic() >= stop_at or slow.is_set():
            return transport.NOT_SENT
        result = transport.post(pool=pool, target=target, msg_id=item.delivery_id, body=item.body,
                                secrets=batch.secrets, timeout=timeout)
        if is_slow(result):
            slow.set()  # start nothing more: a slow receiver gets one round per flush
        return result

    # `size` sender threads (one at least: the flush's own thread keeps the leases
    # alive meanwhile) take the next item from one shared queue until it is empty.
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

    return Sending([_executor(size).submit(drain) for _ in range(min(size, len(batch.items)))], results)


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
# atomic), the batch passed as arrays. The deliveries are locked first, in id order
# (as `webhook_endpoint_delete` locks them, so the two never deadlock); an attempt
# is written only for a delivery still there: one deleted meanwhile (its endpoint
# was) is skipped quietly, never an IntegrityError. A delivery whose lease we lost
# (we were too slow and another worker claimed it) is left alone: only our attempt
# is recorded.
_RECORD = """
WITH v AS (
    SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::integer[], %s::boolean[], %s::smallint[], %s::integer[],
                         %s::text[], %s::varchar[], %s::timestamptz[], %s::varchar[], %s::timestamptz[])
        AS v(attempt_id, id, attempt_count, succeeded, last_status_code, latency_ms, response_excerpt, last_error,
             next_attempt_at, status, delivered_at)
), live AS (
    SELECT id, lease_token FROM webhooks_webhookdelivery WHERE id = ANY(%s) ORDER BY id FOR UPDATE
), deliveries AS (
    UPDATE webhooks_webhookdelivery AS d SET
        last_status_code = v.last_status_code, last_error = v.last_error,
        next_attempt_at = v.next_attempt_at, status = v.status, delivered_at = COALESCE(v.delivered_at, d.delivered_at),
        leased_until = NULL, lease_token = NULL, updated_at = %s
    FROM v, live WHERE d.id = v.id AND live.id = v.id AND live.lease_token = %s
)
INSERT INTO webhooks_webhookattempt (id, organisation_id, created_at, updated_at, delivery_id, attempt_number, url,
                                     succeeded, status_code, latency_ms, response_excerpt, error, next_attempt_at)
SELECT attempt_id, %s, %s, %s, v.id, attempt_count, %s, succeeded, last_status_code, latency_ms, response_excerpt,
       last_error, next_attempt_at FROM v JOIN live ON live.id = v.id
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
        result = results.get(item.delivery_id)
        if result is None:
            continue  # recorded before, or later
        if not result.sent:
            unsent.append(item.delivery_id)
            continue
        number = item.attempt_count
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
    if not columns[0] and not unsent:
        return
    sql, params = _ASYNC_COMMIT, []
    if columns[0]:
        sql += _RECORD + ";"
        params += [*columns, columns[1], now, batch.token, batch.organisation_id, now, now, batch.url]
    if unsent:
        sql += _RELEASE
        params += [unsent, batch.token, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    if any_failure or (any_success and batch.failing_since is not None):
        with transaction.atomic():
            _endpoint_health(batch, now=now, any_success=any_success, any_failure=any_failure, gone=gone, soonest=soonest)
        if any_success:
            batch.failing_since = None  # cleared: the batch's next records need not look again


def _endpoint_health(batch: Batch, *, now, any_success: bool, any_failure: bool, gone: bool, soonest: float | None):
    from webhooks.services import webhook_endpoint_health_update

    webhook_endpoint_health_update(endpoint_id=batch.endpoint_id, now=now, any_success=any_success, any_failure=any_failure,
                                   gone=gone, soonest=soonest, countdown_limit=COUNTDOWN_LIMIT_SECONDS)


# -- flush ---------------------------------------------------------------------------

def flush_budget_seconds() -> float:
    """How long one flush keeps starting sends before it queues the rest behind other
    work. The heartbeat keeps the leases alive meanwhile, so it need not fit in one."""
    return max(0.5, settings.WEBHOOKS_FLUSH_BUDGET_SECONDS)


def endpoint_flush(*, endpoint_id: str) -> int:
    """Send every due delivery of an endpoint, batch after batch, for up to the flush
    budget; returns the number of attempts made.

    One flush per endpoint at a time, across worker processes: a flush that finds
    the endpoint's lock taken asks the holder to go again when it is done, and
    returns at once. A slow endpoint's flush also needs one of the queue's slow
    slots; when none is free it comes back a little later."""
    token = _secrets.token_hex(8)
    locked = queue.flush_lock(endpoint_id, token)
    if locked is False:
        queue.flush_again_request(endpoint_id)
        locked = queue.flush_lock(endpoint_id, token)  # the holder may have let go meanwhile
        if locked is False:
            log.debug("webhooks: %s is being flushed by another worker; it will go again", endpoint_id)
            return 0
    slot = False
    try:
        slow = queue.endpoint_is_slow(endpoint_id)
        if slow:
            slot = queue.slow_slot_take(token)
            if not slot:
                enqueue_flush(endpoint_id, countdown=SLOW_WAIT_SECONDS, dedupe=False)
                return 0
        flush_marker_clear(endpoint_id)
        heartbeat = Heartbeat(endpoint_id=endpoint_id, token=token, locked=bool(locked), slot=slot)
        return _flush(endpoint_id, heartbeat=heartbeat, slow=slow)
    finally:
        if slot:
            queue.slow_slot_release(token)
        if locked:
            queue.flush_unlock(endpoint_id, token)
            if queue.flush_again_take(endpoint_id):
                enqueue_flush(endpoint_id, dedupe=False)


def _flush(endpoint_id: str, *, heartbeat: Heartbeat, slow: bool) -> int:
    """Pipelined: while one batch is on the wire, the next is claimed and the previous
    one recorded, so the database round trips hide behind the HTTP ones. A slow
    endpoint sends one round (as many as it sends at once) and queues the rest."""
    stop_at = time.monotonic() + flush_budget_seconds()
    turned_slow = threading.Event()
    limit = max(1, settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT) if slow else None

    def claim() -> Batch | None:
        if slow or turned_slow.is_set() or time.monotonic() >= stop_at:
            return None
        following = deliveries_claim(endpoint_id=endpoint_id)
        heartbeat.hold(following)
        return following

    sent = 0
    batch = deliveries_claim(endpoint_id=endpoint_id, limit=limit)
    if batch is None or not batch.items:
        return 0
    heartbeat.hold(batch)
    more = slow and len(batch.items) >= (limit or 0)
    sending = batch_send_start(batch, stop_at=stop_at, slow=turned_slow)
    while True:
        following = claim()
        recorded: set[str] = set()
        record_at = time.monotonic() + RECORD_EVERY_SECONDS
        while not sending.wait(heartbeat.poll_seconds()):
            heartbeat.tick()
            if time.monotonic() >= record_at:  # record the answers in so far
                record_at = time.monotonic() + RECORD_EVERY_SECONDS
                answered = {k: v for k, v in sending.answered().items() if k not in recorded}
                if answered:
                    batch_record(batch, answered)
                    recorded.update(answered)
        results = sending.results
        gone = any(r.gone for r in results.values())  # 410: the endpoint is disabled, send nothing more
        stop = gone or turned_slow.is_set()
        if following is not None and following.items and not stop:
            sending = batch_send_start(following, stop_at=stop_at, slow=turned_slow)
        batch_record(batch, {k: v for k, v in results.items() if k not in recorded})
        heartbeat.drop(batch)
        heartbeat.tick()
        sent += sum(1 for r in results.values() if r.sent)
        more = more or any(not r.sent for r in results.values())
        if stop:
            if following is not None and following.items:
                batch_record(following, {i.delivery_id: transport.NOT_SENT for i in following.items})
                heartbeat.drop(following)
                more = True
            break
        if following is None or not following.items:
            # Nothing was waiting; the record may have made a retry due right away.
            following = claim()
            if following is None or not following.items:
                break
            sending = batch_send_start(following, stop_at=stop_at, slow=turned_slow)
        batch = following
    if slow or turned_slow.is_set():
        # Slow now: marked (or still) slow; answered quickly again: no longer.
        queue.endpoint_slow_mark(endpoint_id, turned_slow.is_set())
    if gone:
        return sent
    if more or time.monotonic() >= stop_at:
        # More may be due: go on in a fresh task, behind the work queued meanwhile.
        transaction.on_commit(lambda: enqueue_flush(endpoint_id, dedupe=not slow and not turned_slow.is_set()),
                              robust=True)
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
