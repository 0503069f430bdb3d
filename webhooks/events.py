"""The public event catalogue and the outbox write.

Every service records its change with `organisations.services.audit_record`
inside its own transaction, with `action` set to the dotted event type. The
webhooks app listens to those audit entries (`AUDIT_LISTENERS`): when the
action is a public event type, `event_record` writes the `Event` in the same
transaction, with one delivery per endpoint that wants it: a committed change
always has its event and deliveries, a rolled-back one has neither. Celery is
only told after the commit, by endpoint id.
"""
from __future__ import annotations

import datetime as dt
from functools import partial

from django.db import transaction
from django.utils import timezone

from together.api.renderers import dumps, iso_timestamp
from webhooks.models import EndpointStatus, Event, WebhookDelivery, WebhookEndpoint

# The one list of public event types: `<object>.<action>`, past tense.
EVENT_TYPES: tuple[str, ...] = (
    # donors
    "donor.created",
    "donor.updated",
    "donor.merged",
    "donor.deleted",
    # donations
    "donation.created",
    "donation.updated",
    "donation.voided",
    "donation.refunded",
    # campaigns
    "campaign.created",
    "campaign.updated",
    "campaign.archived",
    # recommendation sets
    "recommendation_set.created",
    "recommendation_set.updated",
    "recommendation_set.deleted",
    # introductions (the six states of api.md) and recipient account links
    "introduction.created",
    "introduction.viewed",
    "introduction.accepted",
    "introduction.linked",
    "introduction.expired",
    "introduction.revoked",
    "recipient_org_account_link.created",
    "recipient_org_account_link.updated",
    # compliance
    "disclosure_obligation.created",
    "disclosure_obligation.updated",
    "compliance_breach.created",
    "donor_cap_alert.changed",
)
EVENT_TYPE_SET = frozenset(EVENT_TYPES)

# Sent by `POST /api/v1/webhook-endpoints/{id}/test` to that endpoint only.
TEST_EVENT_TYPE = "webhook_endpoint.tested"
ALL_EVENT_TYPES: tuple[str, ...] = (*EVENT_TYPES, TEST_EVENT_TYPE)


def audit_listener(entry) -> None:
    """Registered in `organisations.services.AUDIT_LISTENERS` by `WebhooksConfig.ready()`."""
    if entry.action not in EVENT_TYPE_SET:
        return
    if entry.action.endswith(".deleted"):
        # A hard delete has only `before`; a soft delete (a recommendation set
        # deactivated) has its final state in `after`, which is what happened.
        data = entry.after if entry.after is not None else entry.before
    else:
        data = entry.after if entry.after is not None else entry.before
    event_record(organisation_id=entry.organisation_id, type=entry.action, data=data or {}, occurred_at=entry.created_at)


def matching_endpoint_ids(*, organisation_id: str, type: str) -> list[str]:
    rows = WebhookEndpoint.objects.filter(organisation_id=organisation_id, status=EndpointStatus.ENABLED).values_list(
        "id", "enabled_events"
    )
    return [pk for pk, enabled in rows if "*" in enabled or type in enabled]


def event_record(*, organisation_id: str, type: str, data: dict, occurred_at: dt.datetime | None = None) -> Event:
    """Write an event and its deliveries in the caller's transaction (the outbox);
    after the commit, enqueue a flush of each endpoint concerned, by id.

    Fan-out happens here, not in a task: at most a few rows per event (an
    organisation has at most 20 endpoints), and there is no moment at which a
    committed event lacks its deliveries. Losing the enqueue loses nothing: the
    sweep finds due deliveries in the database."""
    now = timezone.now()
    endpoint_ids = matching_endpoint_ids(organisation_id=organisation_id, type=type)
    event = Event.objects.create(organisation_id=organisation_id, type=type, data=data, occurred_at=occurred_at or now)
    if endpoint_ids:
        WebhookDelivery.objects.bulk_create([
            WebhookDelivery(organisation_id=organisation_id, endpoint_id=endpoint_id, event=event, next_attempt_at=now)
            for endpoint_id in endpoint_ids
        ])
        from webhooks.queue import enqueue_flushes

        transaction.on_commit(partial(enqueue_flushes, endpoint_ids), robust=True)
    return event


def event_body(*, type: str, occurred_at: dt.datetime, organisation_id: str, data) -> bytes:
    """The bare event a receiver gets (webhooks.md): no wrapper, no event id."""
    return dumps({"type": type, "occurred_at": iso_timestamp(occurred_at), "organisation_id": organisation_id, "data": data})
