"""Every state change of webhook endpoints and deliveries made by people and the API.

Events and their deliveries are written by `webhooks/events.py`; the delivery
pipeline's own state changes (claims, attempts) are in `webhooks/delivery.py`.
"""
from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from organisations.models import Organisation, Role
from organisations.services import audit_record
from together.actors import Actor
from together.exceptions import Conflict, NotFound, ValidationFailed
from webhooks import addresses
from webhooks.events import EVENT_TYPE_SET, TEST_EVENT_TYPE
from webhooks.models import DeliveryStatus, EndpointStatus, Event, WebhookDelivery, WebhookEndpoint
from webhooks.queue import enqueue_flush
from webhooks.representations import render_endpoint_instance


SECRET_PREFIX = "wh_"
SECRET_ALPHABET = string.ascii_letters + string.digits
SECRET_RANDOM_LENGTH = 40
MAX_ENDPOINTS_PER_ORGANISATION = 20
ENDPOINT_FIELDS_WRITABLE = {"url", "description", "enabled_events", "status"}


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str


def _new_secret() -> str:
    return SECRET_PREFIX + "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_RANDOM_LENGTH))


def _clean_url(url: str) -> str:
    url = (url or "").strip()
    if not url:
        raise ValidationFailed("url is required.", param="url")
    if len(url) > 2000:
        raise ValidationFailed("url is at most 2000 characters.", param="url")
    try:
        addresses.vet(url)
    except addresses.UnsafeUrl as exc:
        raise ValidationFailed(str(exc), param="url") from None
    return url


def _clean_enabled_events(value) -> list[str]:
    if value is None:
        return ["*"]
    if not value:
        raise ValidationFailed('enabled_events lists event types, or is ["*"] for all of them.', param="enabled_events")
    out: list[str] = []
    for index, event_type in enumerate(value):
        if event_type != "*" and event_type not in EVENT_TYPE_SET:
            raise ValidationFailed(f"Unknown event type '{event_type}'.", param=f"enabled_events[{index}]")
        if event_type not in out:
            out.append(event_type)
    if "*" in out and len(out) > 1:
        raise ValidationFailed('"*" already means every event type; send it alone.', param="enabled_events")
    return out


def _clean_description(value) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value[:500] or None


def _endpoint_for_update(organisation: Organisation, endpoint_id: str) -> WebhookEndpoint:
    # FOR NO KEY UPDATE: events being written meanwhile (which reference the row) do not wait for us.
    endpoint = WebhookEndpoint.objects.for_organisation(organisation).select_for_update(no_key=True).filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def _audit(endpoint: WebhookEndpoint, actor: Actor, action: str, before: dict | None = None, after: dict | None = None):
    audit_record(organisation=endpoint.organisation, actor=actor, action=action, object_type="webhook_endpoint",
                 object_id=endpoint.id, before=before, after=after)


@transaction.atomic
def webhook_endpoint_create(*, organisation: Organisation, actor: Actor, url: str, description: str | None = None,
                            enabled_events: list[str] | None = None) -> EndpointWithSecret:
    url = _clean_url(url)
    enabled_events = _clean_enabled_events(enabled_events)
    # Lock the organisation row: two concurrent creations cannot both pass the limit.
    Organisation.objects.select_for_update(no_key=True).filter(pk=organisation.pk).first()
    if WebhookEndpoint.objects.for_organisation(organisation).count() >= MAX_ENDPOINTS_PER_ORGANISATION:
        raise Conflict(f"An organisation has at most {MAX_ENDPOINTS_PER_ORGANISATION} webhook endpoints; delete one first.")
    secret = _new_secret()
    endpoint = WebhookEndpoint.objects.create(
        organisation=organisation, url=url, description=_clean_description(description),
        enabled_events=enabled_events, secret=secret,
    )
    _audit(endpoint, actor, "webhook_endpoint.created", after=render_endpoint_instance(endpoint))
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


@transaction.atomic
def webhook_endpoint_update(*, organisation: Organisation, actor: Actor, endpoint_id: str, **changes) -> WebhookEndpoint:
    unknown = set(changes) - ENDPOINT_FIELDS_WRITABLE
    if unknown:
        raise ValidationFailed(f"Cannot change {sorted(unknown)[0]}.", param=sorted(unknown)[0])
    endpoint = _endpoint_for_update(organisation, endpoint_id)
    before = render_endpoint_instance(endpoint)
    if "url" in changes:
        endpoint.url = _clean_url(changes["url"])
    if "description" in changes:
        endpoint.description = _clean_description(changes["description"])
    if "enabled_events" in changes:
        endpoint.enabled_events = _clean_enabled_events(changes["enabled_events"])
    status = changes.get("status")
    if status is not None and status not in EndpointStatus.values:
        raise ValidationFailed("status must be ENABLED or DISABLED.", param="status")
    endpoint.save()
    if status == EndpointStatus.ENABLED and endpoint.can_enable:
        endpoint.status = EndpointStatus.ENABLED
        endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
        endpoint.save(update_fields=["status", "disabled_at", "disabled_reason", "failing_since", "updated_at"])
    elif status == EndpointStatus.DISABLED and endpoint.can_disable:
        webhook_endpoint_disable(endpoint=endpoint, reason=f"Disabled by {actor.label or actor.type}.", notify=False)
    _audit(endpoint, actor, "webhook_endpoint.updated", before=before, after=render_endpoint_instance(endpoint))
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, organisation: Organisation, actor: Actor, endpoint_id: str) -> None:
    endpoint = _endpoint_for_update(organisation, endpoint_id)
    before = render_endpoint_instance(endpoint)
    _audit(endpoint, actor, "webhook_endpoint.deleted", before=before)
    # Lock the deliveries (in id order, as the delivery pipeline does) before their
    # attempts are collected: a flush in flight cannot add an attempt in between (it
    # locks a delivery before writing its attempt, and skips what we hold or finds
    # it gone), so the delete never trips over an attempt it did not see.
    list(WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id").select_for_update()
         .values_list("id", flat=True))
    endpoint.delete()


@transaction.atomic
def webhook_endpoint_rotate_secret(*, organisation: Organisation, actor: Actor, endpoint_id: str) -> EndpointWithSecret:
    """A new secret signs from now on; the old one keeps signing beside it for 24 hours."""
    endpoint = _endpoint_for_update(organisation, endpoint_id)
    now = timezone.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOKS_SECRET_OVERLAP_HOURS)
    endpoint.secret = _new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    _audit(endpoint, actor, "webhook_endpoint.secret_rotated",
           after={"previous_secret_expires_at": endpoint.previous_secret_expires_at.isoformat()})
    return EndpointWithSecret(endpoint=endpoint, secret=endpoint.secret)


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, notify: bool) -> WebhookEndpoint:
    """Stop delivering to a (locked) endpoint: its pending deliveries fail; ADMINs are told
    when the system did it. Call inside a transaction."""
    now = timezone.now()
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason[:300]
    endpoint.save(update_fields=["status", "disabled_at", "disabled_reason", "updated_at"])
    WebhookDelivery.objects.filter(endpoint=endpoint, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, next_attempt_at=None, leased_until=None, lease_token=None,
        last_error="The endpoint was disabled.", updated_at=now,
    )
    audit_record(organisation=endpoint.organisation, actor=Actor.system("webhooks"), action="webhook_endpoint.disabled",
                 object_type="webhook_endpoint", object_id=endpoint.id, after={"reason": endpoint.disabled_reason})
    if notify:
        endpoint_id, url, organisation_id = endpoint.id, endpoint.url, endpoint.organisation_id
        transaction.on_commit(lambda: _email_admins_disabled(organisation_id, endpoint_id, url, reason), robust=True)
    return endpoint


@transaction.atomic
def webhook_endpoint_staff_disable(*, organisation: Organisation, actor: Actor, endpoint_id: str) -> bool:
    """Platform staff stop an endpoint from the admin: its ADMINs are told by email.
    False when it was already disabled (nothing changes)."""
    endpoint = _endpoint_for_update(organisation, endpoint_id)
    if not endpoint.can_disable:
        return False
    webhook_endpoint_disable(endpoint=endpoint, reason=f"Disabled by staff ({actor.label or actor.type}).", notify=True)
    return True


def webhook_endpoint_health_update(*, endpoint_id: str, now, any_success: bool, any_failure: bool, gone: bool,
                                   soonest: float | None, countdown_limit: float) -> None:
    """After a batch of sends is recorded: the failure streak (WEBHOOKS_DISABLE_AFTER_FAILING_DAYS
    of it disables), 410 Gone (disables at once), and a punctual short retry (a flush
    `soonest` seconds from now when that is under `countdown_limit`). Call inside a transaction."""
    endpoint = WebhookEndpoint.objects.select_for_update(no_key=True).filter(pk=endpoint_id).first()
    if endpoint is None or not endpoint.can_send:
        return
    endpoint.health_record(now=now, any_success=any_success, any_failure=any_failure)
    if gone:
        webhook_endpoint_disable(endpoint=endpoint, reason="The endpoint answered 410 Gone.", notify=True)
    elif endpoint.failing_since is not None and now - endpoint.failing_since >= timedelta(
            days=settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS):
        webhook_endpoint_disable(
            endpoint=endpoint, notify=True,
            reason=f"Every delivery failed for {settings.WEBHOOKS_DISABLE_AFTER_FAILING_DAYS} days.",
        )
    elif soonest is not None and soonest < countdown_limit:
        delay = soonest
        transaction.on_commit(lambda: enqueue_flush(endpoint_id, countdown=delay, dedupe=False), robust=True)


def _email_admins_disabled(organisation_id: str, endpoint_id: str, url: str, reason: str) -> None:
    organisation = Organisation.objects.select_related("live_organisation").get(pk=organisation_id)
    live = organisation.live
    emails = list(
        get_user_model().objects.filter(memberships__organisation=live, memberships__role=Role.ADMIN, is_active=True)
        .exclude(email="").values_list("email", flat=True)
    )
    if not emails:
        return
    where = f"{live.name} (sandbox)" if organisation.is_sandbox else live.name
    send_mail(
        subject=f"Together: webhook endpoint disabled for {where}",
        message=(
            f"We stopped sending webhooks to {url} (endpoint {endpoint_id}).\n\n"
            f"Reason: {reason}\n\n"
            "Fix the receiver, then re-enable the endpoint with PATCH /api/v1/webhook-endpoints/"
            f"{endpoint_id} {{\"status\": \"ENABLED\"}}. Failed deliveries can be re-sent with "
            "POST /api/v1/webhook-deliveries/{id}/retry, and every event of the last 30 days is at GET /api/v1/events.\n"
        ),
        from_email=None,
        recipient_list=emails,
        fail_silently=True,
    )


@transaction.atomic
def webhook_endpoint_test(*, organisation: Organisation, actor: Actor, endpoint_id: str) -> WebhookDelivery:
    """Send a `webhook_endpoint.tested` event to this endpoint alone, signed like any other."""
    endpoint = _endpoint_for_update(organisation, endpoint_id)
    endpoint.guard("send")
    now = timezone.now()
    event = Event.objects.create(
        organisation=organisation, type=TEST_EVENT_TYPE, occurred_at=now,
        data={"object": "webhook_endpoint", "id": endpoint.id, "url": endpoint.url,
              "message": "A test event from Together. Verify its signature and answer 2xx."},
    )
    delivery = WebhookDelivery.objects.create(organisation=organisation, endpoint=endpoint, event=event, next_attempt_at=now)
    transaction.on_commit(lambda: enqueue_flush(endpoint.id, dedupe=False), robust=True)
    return delivery


@transaction.atomic
def webhook_delivery_retry(*, organisation: Organisation, actor: Actor, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again now, with the same `webhook-id`: one more attempt."""
    delivery = WebhookDelivery.objects.for_organisation(organisation).select_for_update().filter(pk=delivery_id).first()
    if delivery is None:
        raise NotFound("Webhook delivery not found.")
    delivery.guard("retry")
    now = timezone.now()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])
    audit_record(organisation=organisation, actor=actor, action="webhook_delivery.retried", object_type="webhook_delivery",
                 object_id=delivery.id, after={"attempt_count": delivery.attempt_count})
    transaction.on_commit(lambda: enqueue_flush(delivery.endpoint_id, dedupe=False), robust=True)
    return delivery


def events_prune(*, chunk: int = 1000) -> int:
    """Delete events older than the retention (30 days) with their deliveries and attempts."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOKS_EVENT_RETENTION_DAYS)
    total = 0
    while True:
        ids = list(Event.objects.filter(created_at__lt=cutoff).order_by("created_at").values_list("id", flat=True)[:chunk])
        if not ids:
            return total
        with transaction.atomic():
            Event.objects.filter(pk__in=ids).delete()
        total += len(ids)
