import functools
import logging
import os
import threading

from celery import Celery
from celery.worker.consumer import Consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "together.settings")

log = logging.getLogger("together.celery")


def _close_channel_quietly(connection, channel) -> None:
    """kombu's Connection.maybe_close_channel, but a failure is logged, never raised.

    A Redis outage can interrupt the first close of the default channel (its
    BRPOP read fails), so the channel is closed a second time, when Celery closes
    the connection after `collect()` has already dropped the transport's client.
    That second close restores the channel's unacked messages through a new
    Redis client built from the dropped one, and raises
    `AttributeError: 'NoneType' object has no attribute 'hostname'`, which
    escapes Celery's reconnect path as an "Unrecoverable error" and ends the
    worker. The messages are not lost by skipping it: they stay in Redis's
    `unacked` hash until the visibility timeout restores them, and webhook work
    is re-queued from the database by the sweep anyway.
    """
    try:
        channel.close()
    except Exception as exc:  # noqa: BLE001 - teardown of a connection already lost
        log.warning("closing a broker channel after the connection was lost failed: %r", exc)


class BrokerOutageConsumer(Consumer):
    """The worker's consumer, able to tear down a lost Redis connection without dying."""

    def on_connection_error_after_connected(self, exc):
        if self.connection is not None:
            # Only this lost connection object, which is about to be discarded.
            self.connection.maybe_close_channel = lambda channel, c=self.connection: _close_channel_quietly(c, channel)
        super().on_connection_error_after_connected(exc)


app = Celery("together")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.worker_consumer = "together.celery:BrokerOutageConsumer"
app.autodiscover_tasks()
app.autodiscover_tasks(["together"])


def task_send(name: str, *args, **options):
    """Enqueue the task registered as `name` (`<app>.tasks.<function>`).

    A service enqueues its work by the task's name, the message's contract, and
    never imports the `tasks` module that calls back into it: the import graph
    stays one-way (tasks -> services) and the same message reaches a worker that
    runs the task. The registry is completed as a worker completes it at start
    (the autodiscovered `tasks` modules), so `task_always_eager` and the task's
    own options apply as with `task.apply_async`."""
    task = app.tasks.get(name)
    if task is None:
        # Once per process, under a lock: a web process's threads all reach this
        # on their first gift, and importing the task modules from several
        # threads at once found a half-registered registry (a KeyError, a 500).
        with _REGISTRY_LOCK:
            if name not in app.tasks:
                app.loader.import_default_modules()
        task = app.tasks[name]
    return task.apply_async(args=args, **options)


_REGISTRY_LOCK = threading.Lock()



def task_send_batched_on_commit(name: str, group: str, item: str, *, chunk: int = 500) -> None:
    """After the commit of the current transaction, enqueue `name(group, [items…])`:
    one message per `group` and up to `chunk` items, however many changes of the
    transaction asked for it (an import recording thousands of gifts in one
    transaction sends a handful of messages, not thousands: each send costs a
    broker round trip). Outside a transaction it is sent at once.

    Each call registers a flush; the first to run after the commit sends what is
    pending and the others find nothing. The task must treat its items as "look at
    these again": an item added inside a savepoint that rolled back may still be
    sent, which is harmless to a task that reconciles what it finds."""
    from django.db import transaction

    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        task_send(name, group, [item])
        return
    pending = connection.__dict__.setdefault("_together_batched_sends", {})
    pending.setdefault(name, {}).setdefault(group, {})[item] = None
    def flush_batched_sends() -> None:  # a named function: a robust on_commit logs a failure by its __qualname__
        _batched_flush(pending, name, chunk)

    transaction.on_commit(flush_batched_sends, robust=True)


def _batched_flush(pending: dict, name: str, chunk: int) -> None:
    for group, items in (pending.pop(name, None) or {}).items():
        values = list(items)
        if app.conf.task_always_eager:
            for start in range(0, len(values), chunk):
                task_send(name, group, values[start:start + chunk])
        else:
            coalesced_send(name, group, values, chunk=chunk)


# --- coalesced sends (issue 15) --------------------------------------------------------------
# A Celery publish costs a web process about 0.75 ms of CPU (kombu builds the
# message, its headers and a Redis client each time): on a gift's create it was a
# tenth of the CPU. Work that is "look at these items again" is coalesced instead:
# the items go onto a Redis list beside the broker's queues (one round trip, with
# the flag below), and one drain message per (task, group) is published when the
# flag was down, delayed COALESCE_DELAY_S so a burst shares it. The drain, in a
# worker, lowers the flag first and then pops the list, sending the task in chunks:
# an item pushed after the flag went down raises it again and gets a drain of its
# own, so none is left behind. The flag expires (COALESCE_FLAG_TTL_MS) should a
# drain message be lost, and beat drains every list each minute (coalesced-drain-all).
# A list lives in the broker's Redis and is as durable as a queued message.

COALESCE_PREFIX = "together:coalesce:"
COALESCE_DELAY_S = 0.2
COALESCE_FLAG_TTL_MS = 30_000
COALESCE_DRAIN_TASK = "together.tasks.coalesced_drain"


def _list_key(name: str, group: str) -> str:
    return f"{COALESCE_PREFIX}{name}:{group}"


@functools.lru_cache(maxsize=1)
def broker_redis():
    """A client of the broker's Redis (None when the broker is not Redis)."""
    import redis
    from django.conf import settings

    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)


def coalesced_send(name: str, group: str, items: list[str], *, chunk: int = 500) -> None:
    """`name(group, [items…])` will run for these items, in chunks of up to `chunk`,
    sharing the message of other recent sends of the same task and group."""
    client = broker_redis()
    if client is None:
        for start in range(0, len(items), chunk):
            task_send(name, group, items[start:start + chunk])
        return
    key = _list_key(name, group)
    pipe = client.pipeline(transaction=False)
    pipe.rpush(key, *items)
    pipe.set(key + ":scheduled", "1", nx=True, px=COALESCE_FLAG_TTL_MS)
    _, raised = pipe.execute()
    if raised:
        task_send(COALESCE_DRAIN_TASK, name, group, chunk, countdown=COALESCE_DELAY_S)


def coalesced_drain(name: str, group: str, chunk: int = 500) -> int:
    """Send `name(group, items)` for what the list holds (the drain task's work); returns how many items."""
    client = broker_redis()
    key = _list_key(name, group)
    client.delete(key + ":scheduled")
    done = 0
    while True:
        raw = client.lpop(key, chunk)
        if not raw:
            return done
        values = list(dict.fromkeys(v.decode() for v in raw))
        try:
            task_send(name, group, values)
        except Exception:
            client.lpush(key, *reversed(raw))  # back at the head, for the next drain
            raise
        done += len(raw)


def coalesced_drain_all(*, name: str = "") -> int:
    """Drain every list, or every list of the task `name` (beat's safety net for a lost
    drain message)."""
    client = broker_redis()
    if client is None:
        return 0
    done = 0
    for raw in client.scan_iter(match=f"{COALESCE_PREFIX}{name}{':' if name else ''}*", count=500):
        key = raw.decode()
        if key.endswith(":scheduled"):
            continue
        name, _, group = key[len(COALESCE_PREFIX):].rpartition(":")
        done += coalesced_drain(name, group)
    return done
