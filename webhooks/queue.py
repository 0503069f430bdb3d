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

from together.celery import task_send
from together.redis import client

log = logging.getLogger("together.webhooks")


def _marker(endpoint_id: str) -> str:
    return f"webhooks:flush-queued:{endpoint_id}"


def marker_seconds() -> int:
    return max(1, int(2 * settings.WEBHOOKS_SWEEP_INTERVAL))


# The task this module enqueues (webhooks/tasks.py), by name: tasks.py calls the
# delivery pipeline, which enqueues through here, so it is never imported here.
ENDPOINT_FLUSH_TASK = "webhooks.tasks.endpoint_flush"


def _send(task_name: str, *args, countdown: float | None = None) -> bool:
    try:
        task_send(task_name, *args, countdown=countdown, queue=settings.WEBHOOKS_QUEUE, retry=False)
        return True
    except Exception:  # noqa: BLE001 - the broker is down: the sweep will re-queue from the database
        log.warning("webhooks: could not enqueue %s%r; the sweep will pick it up", task_name, args, exc_info=True)
        return False


def enqueue_flush(endpoint_id: str, *, countdown: float | None = None, dedupe: bool = True) -> bool:
    if dedupe:
        try:
            fresh = client().set(_marker(endpoint_id), 1, nx=True, ex=marker_seconds())
        except Exception:  # noqa: BLE001 - Redis down: no broker either; the sweep recovers
            log.warning("webhooks: Redis unavailable, flush of %s left to the sweep", endpoint_id)
            return False
        if not fresh:
            return False  # a flush is already queued and will see our deliveries
    sent = _send(ENDPOINT_FLUSH_TASK, endpoint_id, countdown=countdown)
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


# -- one flush per endpoint at a time, across worker processes --------------------------
#
# A flush holds `webhooks:flush-lock:<endpoint>` (a token, expiring with the lease
# and renewed by the flush's heartbeat), so an endpoint never occupies more than
# one worker slot. A flush that finds the lock taken leaves a "flush again" flag
# and returns at once; the holder re-queues a flush when it lets go, so nothing
# committed meanwhile waits for the sweep. A killed holder's lock expires with
# its leases. Redis unavailable: every helper answers "go ahead" (the database
# leases alone keep deliveries from being sent twice at once).

_UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
# A counting semaphore: a sorted set of holders scored by their expiry (ms).
_SLOT_TAKE = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
if redis.call('zscore', KEYS[1], ARGV[3]) or redis.call('zcard', KEYS[1]) < tonumber(ARGV[4]) then
    redis.call('zadd', KEYS[1], ARGV[2], ARGV[3])
    redis.call('pexpire', KEYS[1], math.max(1, tonumber(ARGV[2]) - tonumber(ARGV[1])))
    return 1
end
return 0
"""


def _lock_key(endpoint_id: str) -> str:
    return f"webhooks:flush-lock:{endpoint_id}"


def _again_key(endpoint_id: str) -> str:
    return f"webhooks:flush-again:{endpoint_id}"


def _slow_key(endpoint_id: str) -> str:
    return f"webhooks:slow:{endpoint_id}"


def _slots_key() -> str:
    return f"webhooks:slow-flush-slots:{settings.WEBHOOKS_QUEUE}"


def _lease_ms() -> int:
    return max(1000, int(settings.WEBHOOKS_LEASE_SECONDS * 1000))


def flush_lock(endpoint_id: str, token: str) -> bool | None:
    """True: this flush holds the endpoint; False: another flush does; None: Redis is down."""
    try:
        return bool(client().set(_lock_key(endpoint_id), token, nx=True, px=_lease_ms()))
    except Exception:  # noqa: BLE001 - Redis down: the leases in the database still hold
        log.warning("webhooks: Redis unavailable, flushing %s without the per-endpoint lock", endpoint_id)
        return None


def flush_lock_renew(endpoint_id: str, token: str) -> None:
    try:
        client().eval(_RENEW, 1, _lock_key(endpoint_id), token, _lease_ms())
    except Exception:
        log.debug("webhooks: Redis unavailable", exc_info=True)


def flush_unlock(endpoint_id: str, token: str) -> None:
    try:
        client().eval(_UNLOCK, 1, _lock_key(endpoint_id), token)
    except Exception:
        log.debug("webhooks: Redis unavailable", exc_info=True)


def flush_again_request(endpoint_id: str) -> None:
    try:
        client().set(_again_key(endpoint_id), 1, px=2 * _lease_ms())
    except Exception:
        log.debug("webhooks: Redis unavailable", exc_info=True)


def flush_again_take(endpoint_id: str) -> bool:
    try:
        return bool(client().delete(_again_key(endpoint_id)))
    except Exception:  # noqa: BLE001 - Redis down
        return False


# -- slow endpoints -----------------------------------------------------------------------
#
# An endpoint whose send timed out (or took WEBHOOKS_SLOW_SECONDS) is marked slow
# for WEBHOOKS_SLOW_MARK_SECONDS. A slow endpoint's flush sends one round (as many
# deliveries as it sends at once) and queues the rest behind everyone else's work,
# and only WEBHOOKS_SLOW_FLUSH_SLOTS slow flushes run at once on a queue: the
# other worker slots stay free for endpoints that answer.

def endpoint_is_slow(endpoint_id: str) -> bool:
    try:
        return bool(client().exists(_slow_key(endpoint_id)))
    except Exception:  # noqa: BLE001 - Redis down
        return False


def endpoint_slow_mark(endpoint_id: str, slow: bool) -> None:
    try:
        if slow:
            client().set(_slow_key(endpoint_id), 1, ex=max(1, int(settings.WEBHOOKS_SLOW_MARK_SECONDS)))
        else:
            client().delete(_slow_key(endpoint_id))
    except Exception:
        log.debug("webhooks: Redis unavailable", exc_info=True)


def slow_slot_take(token: str) -> bool:
    """One of the queue's slow-flush slots, until released or the lease runs out (renew to keep it)."""
    import time

    now = int(time.time() * 1000)
    try:
        return bool(client().eval(_SLOT_TAKE, 1, _slots_key(), now, now + _lease_ms(), token,
                                  max(1, settings.WEBHOOKS_SLOW_FLUSH_SLOTS)))
    except Exception:  # noqa: BLE001 - Redis down: no limit rather than no delivery
        return True


def slow_slot_release(token: str) -> None:
    try:
        client().zrem(_slots_key(), token)
    except Exception:
        log.debug("webhooks: Redis unavailable", exc_info=True)
