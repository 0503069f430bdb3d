"""Webhook endpoint and delivery rules that need no HTTP: the lifecycle table
(which the services and the settings page read), staff disabling through its
service, and the failure streak kept by webhook_endpoint_health_update."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from together.actors import Actor
from together.exceptions import Conflict
from webhooks import services
from webhooks.models import DeliveryStatus, EndpointStatus, Event, WebhookDelivery, WebhookEndpoint

ACTOR = Actor.system("test")
NOW = timezone.now()


@pytest.mark.parametrize(("status", "can_disable", "can_enable", "can_send"), [
    (EndpointStatus.ENABLED, True, False, True),
    (EndpointStatus.DISABLED, False, True, False),
])
def test_endpoint_lifecycle_table(status, can_disable, can_enable, can_send):
    endpoint = WebhookEndpoint(status=status)
    assert (endpoint.can_disable, endpoint.can_enable, endpoint.can_send) == (can_disable, can_enable, can_send)
    assert all(endpoint.refusal_for(a).error is Conflict for a in endpoint.refusals)


@pytest.mark.parametrize(("endpoint_status", "leased_until", "can_retry"), [
    (EndpointStatus.ENABLED, None, True),
    (EndpointStatus.ENABLED, NOW - dt.timedelta(minutes=1), True),    # a dead worker's lease
    (EndpointStatus.ENABLED, NOW + dt.timedelta(hours=6), False),     # on the wire now (NOW is read at collection)
    (EndpointStatus.DISABLED, None, False),
])
def test_delivery_retry_table(endpoint_status, leased_until, can_retry):
    delivery = WebhookDelivery(endpoint=WebhookEndpoint(status=endpoint_status), leased_until=leased_until)
    assert delivery.can_retry is can_retry


@pytest.fixture
def endpoint(org, monkeypatch):
    monkeypatch.setattr(services.addresses, "vet", lambda url: url)
    return services.webhook_endpoint_create(organisation=org, actor=ACTOR, url="https://hooks.example.org/in").endpoint


@pytest.mark.django_db
def test_staff_disable_goes_through_the_service_once(org, endpoint, django_capture_on_commit_callbacks):
    event = Event.objects.create(organisation=org, type="donor.created", occurred_at=NOW, data={})
    pending = WebhookDelivery.objects.create(organisation=org, endpoint=endpoint, event=event, next_attempt_at=NOW)
    assert services.webhook_endpoint_staff_disable(organisation=org, actor=ACTOR, endpoint_id=endpoint.id) is True
    endpoint.refresh_from_db()
    pending.refresh_from_db()
    assert endpoint.status == EndpointStatus.DISABLED and "Disabled by staff" in endpoint.disabled_reason
    assert pending.status == DeliveryStatus.FAILED
    assert services.webhook_endpoint_staff_disable(organisation=org, actor=ACTOR, endpoint_id=endpoint.id) is False
    with pytest.raises(Conflict):
        services.webhook_endpoint_test(organisation=org, actor=ACTOR, endpoint_id=endpoint.id)


@pytest.mark.django_db
def test_health_update_keeps_the_failure_streak_and_disables_on_gone(endpoint, settings):
    kwargs = {"endpoint_id": endpoint.id, "soonest": None, "countdown_limit": 300}
    services.webhook_endpoint_health_update(now=NOW, any_success=False, any_failure=True, gone=False, **kwargs)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == NOW
    services.webhook_endpoint_health_update(now=NOW + dt.timedelta(hours=1), any_success=False, any_failure=True, gone=False, **kwargs)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == NOW  # the streak's first failure stays
    services.webhook_endpoint_health_update(now=NOW, any_success=True, any_failure=True, gone=False, **kwargs)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None
    later = NOW + dt.timedelta(days=settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS, seconds=1)
    services.webhook_endpoint_health_update(now=NOW, any_success=False, any_failure=True, gone=False, **kwargs)
    services.webhook_endpoint_health_update(now=later, any_success=False, any_failure=True, gone=False, **kwargs)
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DISABLED and "failed for" in endpoint.disabled_reason
