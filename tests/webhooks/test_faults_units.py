"""The fair-share rules of issue 21 (point 2), in-process against the real receiver
and Redis: a flush stops at the first send that times out and marks the endpoint
slow; a slow endpoint sends one round per flush, in one of the queue's slow slots;
one flush per endpoint at a time. The end-to-end proofs, with real workers, are
in test_faults_delivery.py."""
from __future__ import annotations

import time

import pytest

from donations import services as donations
from tests.webhooks.receiver import Reply
from webhooks import delivery, queue, services
from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def slow_endpoint(receiver, org, actor, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.3
    settings.WEBHOOKS_CONCURRENCY_PER_ENDPOINT = 2
    receiver.script = lambda path, n: Reply(200, delay=1.0)
    endpoint = services.webhook_endpoint_create(organisation=org, actor=actor, url=receiver.url("/slow")).endpoint
    for i in range(10):
        donations.donor_create(organisation=org, actor=actor, email=f"s{i}@example.com")
    yield endpoint
    queue.endpoint_slow_mark(endpoint.id, False)


def test_a_timeout_stops_the_flush_and_the_endpoint_gets_one_round_per_flush(slow_endpoint, receiver):
    started = time.monotonic()
    assert delivery.endpoint_flush(endpoint_id=slow_endpoint.id) == 2  # one round, then it stops
    assert time.monotonic() - started < 3  # not ten requests one after another
    assert queue.endpoint_is_slow(slow_endpoint.id)
    # What was claimed but not sent is released: due again, not counted as an attempt.
    assert WebhookAttempt.objects.count() == 2
    unsent = WebhookDelivery.objects.filter(attempt_count=0)
    assert unsent.count() == 8 and not unsent.filter(lease_token__isnull=False).exists()
    assert set(unsent.values_list("status", flat=True)) == {DeliveryStatus.PENDING}

    # Slow now: the next flush claims only one round (as many as go at once).
    assert delivery.endpoint_flush(endpoint_id=slow_endpoint.id) == 2
    assert WebhookDelivery.objects.filter(attempt_count=0).count() == 6
    assert len(receiver.received()) == 4


def test_a_slow_endpoint_waits_for_a_free_slow_slot(slow_endpoint, receiver, settings):
    queue.endpoint_slow_mark(slow_endpoint.id, True)
    settings.WEBHOOKS_SLOW_FLUSH_SLOTS = 1
    assert queue.slow_slot_take("another-slow-flush")
    try:
        assert delivery.endpoint_flush(endpoint_id=slow_endpoint.id) == 0  # no slot: back later
        assert receiver.received() == []
    finally:
        queue.slow_slot_release("another-slow-flush")
    assert delivery.endpoint_flush(endpoint_id=slow_endpoint.id) == 2


def test_one_flush_per_endpoint_at_a_time(receiver, org, actor):
    endpoint = services.webhook_endpoint_create(organisation=org, actor=actor, url=receiver.url("/one")).endpoint
    donations.donor_create(organisation=org, actor=actor, email="one@example.com")
    assert queue.flush_lock(endpoint.id, "held-elsewhere") is True
    try:
        assert delivery.endpoint_flush(endpoint_id=endpoint.id) == 0  # another worker has it
        assert receiver.received() == []
        assert queue.flush_again_take(endpoint.id)  # ... and is asked to go again when done
    finally:
        queue.flush_unlock(endpoint.id, "held-elsewhere")
    assert delivery.endpoint_flush(endpoint_id=endpoint.id) == 1
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
