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
        for start in range(0, len(values), chunk):
            task_send(name, group, values[start:start + chunk])
