"""Reads with logic for the webhooks API."""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from organisations.models import Organisation
from webhooks.models import Event, WebhookAttempt, WebhookDelivery
from webhooks.representations import ATTEMPT_FIELDS, render_attempt


def event_queryset(*, organisation: Organisation) -> QuerySet:
    """Events of the retention window (30 days), whatever the prune task has not yet removed."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOKS_EVENT_RETENTION_DAYS)
    return Event.objects.for_organisation(organisation).filter(created_at__gte=cutoff)


def delivery_queryset(*, organisation: Organisation) -> QuerySet:
    return WebhookDelivery.objects.for_organisation(organisation)


def delivery_attempts(*, organisation: Organisation, delivery_ids: list[str]) -> dict[str, list[dict]]:
    """Every attempt of these deliveries, oldest first, in one query."""
    out: dict[str, list[dict]] = defaultdict(list)
    if not delivery_ids:
        return out
    rows = (
        WebhookAttempt.objects.for_organisation(organisation).filter(delivery_id__in=delivery_ids)
        .order_by("delivery_id", "attempt_number", "created_at").values(*ATTEMPT_FIELDS)
    )
    for row in rows:
        out[row["delivery_id"]].append(render_attempt(row))
    return out
