"""The delivery pipeline: claim, send, record, sweep.

The database drives everything:

* `webhooks.events.event_record` writes each event with one PENDING
  `WebhookDelivery` per matching enabled endpoint (due now), in the
  transaction of the change, and enqueues a flush of those endpoints after
  the commit.
* `endpoint_flush` claims a batch of due deliveries of one endpoint with
  `FOR UPDATE SKIP LOCKED` and a lease (`leased_until`, `lease_token`), commits
  the claim, sends the batch concurrently over pooled connections, then records
  every attempt and the deliveries' next state in one transaction. A worker
  killed mid-batch leaves leases that expire: the deliveries are claimed again
  (at least once).
* `sweep` (Celery beat) re-queues a flush for every endpoint with due,
  unleased deliveries: a lost message, a dead worker, a retry coming due.

Retries follow `WEBHOOKS_RETRY_SCHEDULE` with jitter; long delays live in
`next_attempt_at` only. A short delay also gets a Celery countdown so that the
5-second retry is punctual.
"""
from __future__ import annotations

import logging
import random
import secrets as _secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks import addresses, transport
from webhooks.events import event_body
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.queue import enqueue_flush, flush_marker_clear

log = logging.getLogger("together.webhooks")

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


def deliveries_claim(*, endpoint_id: str, limit: int | None = None) -> Batch | None:
    """Lease up to `limit` due deliveries of an enabled endpoint. None when the endpoint cannot receive."""
    limit = limit or settings.WEBHOOKS_BATCH_SIZE
    now = timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None or endpoint.status != EndpointStatus.ENABLED:
            return None
        batch = Batch(endpoint_id=endpoint.id, organisation_id=endpoint.organisation_id, url=endpoint.url,
                      secrets=endpoint_secrets(endpoint, now))
        ids = list(
            WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
            .filter(Q(leased_until__isnull=True) | Q(leased_until__lt=now))
            .order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return batch
        batch.token = _secrets.token_hex(8)
        WebhookDelivery.objects.filter(pk__in=ids).update(leased_until=now + _lease(), lease_token=batch.token)
    rows = WebhookDelivery.objects.filter(pk__in=ids, lease_token=batch.token).values(
        "id", "attempt_count", "event__type", "event__occurred_at", "event__organisation_id", "event__data"
    )
    by_id = {r["id"]: r for r in rows}
    for delivery_id in ids:  # keep the due order
        r = by_id.get(delivery_id)
        if r is None:
            continue
        body = event_body(type=r["event__type"], occurred_at=r["event__occurred_at"],
                          organisation_id=r["event__organisation_id"], data=r["event__data"])
        batch.items.append(Item(delivery_id=r["id"], attempt_count=r["attempt_count"], body=body))
    return batch


# -- send ----------------------------------------------------------------------------

def batch_send(batch: Batch, *, stop_at: float) -> dict[str, transport.SendResult]:
    """POST every item; items not started before `stop_at` (monotonic) come back NOT_SENT."""
    timeout = settings.WEBHOOKS_TIMEOUT_SECONDS
    try:
        target = addresses.vet(batch.url)  # again at delivery: the DNS answer may have changed
    except addresses.UnsafeUrl as exc:
        refused = f"refused before sending: {exc}"[:500]
        return {i.delivery_id: transport.SendResult(succeeded=False, error=refused, latency_ms=0) for i in batch.items}
    concurrency = max(1, min(settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT, len(batch.items)))
    pool = transport.pool_for(target, maxsize=max(1, settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT))

    def send(item: Item) -> transport.SendResult:
        if time.monotonic() >= stop_at:
            return transport.NOT_SENT
        return transport.post(pool=pool, target=target, msg_id=item.delivery_id, body=item.body,
                              secrets=batch.secrets, timeout=timeout)

    if concurrency == 1:
        results = [send(i) for i in batch.items]
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook") as pool_threads:
            results = list(pool_threads.map(send, batch.items))
    return {item.delivery_id: result for item, result in zip(batch.items, results)}


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


def batch_record(batch: Batch, results: dict[str, transport.SendResult]) -> None:
    """Write every attempt and each delivery's next state; update the endpoint's health."""
    from webhooks.services import webhook_endpoint_disable

    now = timezone.now()
    soonest: float | None = None
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=batch.endpoint_id).first()
        owned = {
            d.id: d for d in WebhookDelivery.objects.select_for_update().filter(
                pk__in=[i.delivery_id for i in batch.items], lease_token=batch.token)
        }
        attempts, changed = [], []
        any_success = any_failure = gone = False
        for item in batch.items:
            result = results[item.delivery_id]
            delivery = owned.get(item.delivery_id)
            if not result.sent:
                if delivery is not None:
                    delivery.leased_until = delivery.lease_token = None
                    changed.append(delivery)
                continue
            number = (delivery.attempt_count if delivery is not None else item.attempt_count) + 1
            next_at = None
            if result.succeeded:
                any_success = True
            else:
                any_failure = True
                gone = gone or result.gone
                delay = None if result.gone else retry_delay(number, result.retry_after)
                if delay is not None:
                    next_at = now + timedelta(seconds=delay)
                    soonest = delay if soonest is None else min(soonest, delay)
            attempts.append(WebhookAttempt(
                organisation_id=batch.organisation_id, delivery_id=item.delivery_id, attempt_number=number,
                url=batch.url, succeeded=result.succeeded, status_code=result.status_code,
                latency_ms=result.latency_ms, response_excerpt=result.excerpt, error=result.error, next_attempt_at=next_at,
            ))
            if delivery is None:
                continue  # our lease expired and another worker owns it now: only the attempt is ours
            delivery.attempt_count = number
            delivery.last_status_code = result.status_code
            delivery.last_error = result.error
            delivery.leased_until = delivery.lease_token = None
            delivery.next_attempt_at = next_at
            if result.succeeded:
                delivery.status = DeliveryStatus.SUCCEEDED
                delivery.delivered_at = now
            elif next_at is None:
                delivery.status = DeliveryStatus.FAILED
            else:
                delivery.status = DeliveryStatus.PENDING
            changed.append(delivery)
        WebhookAttempt.objects.bulk_create(attempts)
        for delivery in changed:
            delivery.updated_at = now
        WebhookDelivery.objects.bulk_update(changed, [
            "attempt_count", "last_status_code", "last_error", "leased_until", "lease_token", "next_attempt_at",
            "status", "delivered_at", "updated_at",
        ])
        if endpoint is not None and endpoint.status == EndpointStatus.ENABLED:
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
                delay = soonest
                endpoint_id = endpoint.id
                transaction.on_commit(lambda: enqueue_flush(endpoint_id, countdown=delay, dedupe=False), robust=True)


# -- flush ---------------------------------------------------------------------------

def flush_budget_seconds() -> float:
    """How long one flush keeps starting sends: well inside the lease, so that a
    send started at the end (timeout included) is recorded before the lease ends."""
    spare = (settings.WEBHOOKS_LEASE_SECONDS - settings.WEBHOOKS_TIMEOUT_SECONDS) / 2
    return max(0.5, min(30.0, spare))


def endpoint_flush(*, endpoint_id: str) -> int:
    """Send every due delivery of an endpoint, batch after batch, for up to the flush budget.
    Returns the number of attempts made."""
    flush_marker_clear(endpoint_id)
    started = time.monotonic()
    stop_at = started + flush_budget_seconds()
    sent = 0
    while True:
        batch = deliveries_claim(endpoint_id=endpoint_id)
        if batch is None or not batch.items:
            return sent
        results = batch_send(batch, stop_at=stop_at)
        batch_record(batch, results)
        sent += sum(1 for r in results.values() if r.sent)
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
