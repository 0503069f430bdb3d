"""Putting webhook work on the Celery queue, best effort.

A message is only a hint: the rows in the database say what is due, and the
sweep re-queues whatever a lost message, a killed worker or a Redis outage left
behind. So enqueueing never raises, and never holds up the caller long.

Flushes of one endpoint are de-duplicated with a short-lived Redis marker: a
burst of events enqueues one flush per endpoint, not one per event. The flush
clears the marker before it claims, so an event committed after the claim
enqueues a new flush.
"""
from __future__ import annotations

import logging

from django.conf import settings

from together.redis import client

log = logging.getLogger("together.webhooks")


def _marker(endpoint_id: str) -> str:
    return f"webhooks:flush-queued:{endpoint_id}"


def marker_seconds() -> int:
    return max(1, int(2 * settings.WEBHOOKS_SWEEP_INTERVAL))


def _send(task, *args, countdown: float | None = None) -> bool:
    try:
        task.apply_async(args=args, countdown=countdown, queue=settings.WEBHOOKS_QUEUE, retry=False)
        return True
    except Exception:  # noqa: BLE001 - the broker is down: the sweep will re-queue from the database
        log.warning("webhooks: could not enqueue %s%r; the sweep will pick it up", task.name, args, exc_info=True)
        return False


def enqueue_flush(endpoint_id: str, *, countdown: float | None = None, dedupe: bool = True) -> bool:
    from webhooks.tasks import endpoint_flush

    if dedupe:
        try:
            fresh = client().set(_marker(endpoint_id), 1, nx=True, ex=marker_seconds())
        except Exception:  # noqa: BLE001 - Redis down: no broker either; the sweep recovers
            log.warning("webhooks: Redis unavailable, flush of %s left to the sweep", endpoint_id)
            return False
        if not fresh:
            return False  # a flush is already queued and will see our deliveries
    sent = _send(endpoint_flush, endpoint_id, countdown=countdown)
    if not sent and dedupe:
        flush_marker_clear(endpoint_id)
    return sent


def enqueue_flushes(endpoint_ids) -> None:
    for endpoint_id in dict.fromkeys(endpoint_ids):
        enqueue_flush(endpoint_id)


def flush_marker_clear(endpoint_id: str) -> None:
    try:
        client().delete(_marker(endpoint_id))
    except Exception:  # noqa: BLE001
        pass
