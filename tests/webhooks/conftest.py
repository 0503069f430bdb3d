from __future__ import annotations

import pytest

from tests.webhooks.receiver import Receiver
from webhooks import delivery, transport
from webhooks.models import WebhookEndpoint


@pytest.fixture(autouse=True)
def private_queue(settings):
    """Webhook tasks a test enqueues go to a queue of its own, dropped afterwards:
    never to a worker of `make run` sharing the Redis database."""
    import secrets

    from together.redis import client

    name = f"webhooks-test-{secrets.token_hex(4)}"
    settings.WEBHOOKS_QUEUE = name
    yield name
    try:
        client().delete(name)
    except Exception:  # noqa: BLE001
        pass


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
