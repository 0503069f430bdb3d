import logging
import os

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
        app.loader.import_default_modules()
        task = app.tasks[name]
    return task.apply_async(args=args, **options)
