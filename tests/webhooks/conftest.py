from __future__ import annotations

import pytest

from tests.webhooks.receiver import Receiver
from webhooks import delivery, transport
from webhooks.models import WebhookEndpoint


def _drop_queue(name: str, *, bindings: bool) -> None:
    from together.redis import client

    keys = [name] + ([f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}"] if bindings else [])
    try:
        client().delete(*keys)
    except Exception:  # noqa: BLE001 - Redis down: nothing to clean
        pass


@pytest.fixture(scope="session")
def _session_queue():
    import secrets

    name = f"webhooks-test-{secrets.token_hex(4)}"
    yield name
    _drop_queue(name, bindings=True)


@pytest.fixture(autouse=True)
def private_queue(settings, _session_queue):
    """Webhook tasks these tests enqueue go to a queue of this test session, emptied
    after each test and dropped at the end: never to a worker of `make run` sharing
    the Redis database."""
    settings.WEBHOOKS_QUEUE = _session_queue
    yield _session_queue
    _drop_queue(_session_queue, bindings=False)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
    transport.pools_clear()


@pytest.fixture
def eager_celery():
    """Run enqueued webhook tasks inline (the on-commit → task → HTTP path, in-process)."""
    from together.celery import app

    old = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = old


def pump() -> None:
    """What the workers do, in-process: flush every endpoint (sends what is due)."""
    for endpoint_id in WebhookEndpoint.objects.order_by("created_at").values_list("id", flat=True):
        delivery.endpoint_flush(endpoint_id=endpoint_id)
