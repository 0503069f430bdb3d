"""The public event catalogue and the outbox write.

A service that makes a public change (`donor.created`, …) calls `event_record`
inside its own transaction: it writes the audit entry
(`organisations.services.audit_record`) and the `Event`, with one delivery per
endpoint that wants it, in that transaction: a committed change always has its
event and deliveries, a rolled-back one has neither. Celery is only told after
the commit, by endpoint id. A change that is not a public event (an API key
created, a report exported) calls `audit_record` alone.
"""
from __future__ import annotations

import datetime as dt
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from organisations.models import AuditEntry, Organisation
from organisations.services import audit_entry
from together.actors import Actor
from together.api.renderers import dumps, iso_timestamp
from together.db import execute_batched
from together.ids import new_id
from webhooks.models import DeliveryStatus, EndpointStatus, Event, WebhookDelivery, WebhookEndpoint, new_delivery_ids
from webhooks.queue import enqueue_flushes

# The one list of public event types: `<object>.<action>`, past tense.
EVENT_TYPES: tuple[str, ...] = (
    # donors
    "donor.created",
    "donor.updated",
    "donor.merged",
    "donor.deleted",
    "donor.tagged",
    "donor.untagged",
    # donations
    "donation.created",
    "donation.updated",
    "donation.voided",
    "donation.refunded",
    # campaigns
    "campaign.created",
    "campaign.updated",
    "campaign.archived",
    # donation forms and checkout links (engage)
    "form.created",
    "form.updated",
    "form.archived",
    "checkout_link.created",
    "checkout_link.canceled",
    "checkout_link.completed",
    "checkout_link.expired",
    # recurring plans (payments)
    "recurring_plan.created",
    "recurring_plan.updated",
    "recurring_plan.paused",
    "recurring_plan.resumed",
    "recurring_plan.canceled",
    "recurring_plan.ended",
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
    # receipts
    "receipt.issued",
    "receipt.withdrawn",
)
EVENT_TYPE_SET = frozenset(EVENT_TYPES)

# Sent by `POST /api/v1/webhook-endpoints/{id}/test` to that endpoint only.
TEST_EVENT_TYPE = "webhook_endpoint.tested"
ALL_EVENT_TYPES: tuple[str, ...] = (*EVENT_TYPES, TEST_EVENT_TYPE)


def event_record(*, organisation: Organisation, actor: Actor, type: str, object_type: str, object_id: str,
                 before: dict | None = None, after: dict | None = None) -> Event:
    """Record a public change in the caller's transaction: who did it (the audit
    entry) and what receivers get (the event, `after` as the API renders the
    object; a hard delete has only `before`, which is then the event's data).

    One statement writes the audit entry, the event and one delivery per enabled
    endpoint that wants the type (the endpoints are read in that statement)."""
    (event,) = events_record(organisation=organisation, actor=actor, records=[
        {"type": type, "object_type": object_type, "object_id": object_id, "before": before, "after": after}])
    return event


def events_record(*, organisation: Organisation, actor: Actor, records: list[dict]) -> list[Event]:
    """event_record for many changes by one actor (each record: type, object_type,
    object_id, before, after), their audit entries, events and deliveries written
    in one statement (a batch of gifts: donations.services.donations_record_many)."""
    for record in records:
        if record["type"] not in EVENT_TYPE_SET:
            raise ValueError(f"{record['type']!r} is not a public event type; record it with audit_record.")
    if not records:
        return []
    now = timezone.now()
    entries, events = [], []
    for record in records:
        before, after = record.get("before"), record.get("after")
        data = after if after is not None else before
        events.append(Event(id=new_id(), organisation_id=organisation.id, type=record["type"], data=data or {},
                            occurred_at=now, created_at=now, updated_at=now))
        entries.append(audit_entry(organisation=organisation, actor=actor, action=record["type"],
                                   object_type=record["object_type"], object_id=record["object_id"], before=before,
                                   after=after, now=now))
    _write(entries, events, now)
    return events


def _json(model, name: str, value):
    return model._meta.get_field(name).get_db_prep_save(value, connection)


_AUDIT_COLUMNS = (("id", "text"), ("organisation_id", "text"), ("created_at", "timestamptz"), ("updated_at", "timestamptz"),
                  ("actor_type", "text"), ("actor_id", "text"), ("actor_label", "text"), ("request_id", "text"),
                  ("action", "text"), ("object_type", "text"), ("object_id", "text"), ("before", "jsonb"), ("after", "jsonb"))
_DELIVERY_IDS = 20  # delivery ids offered per event; an organisation has at most 20 endpoints (more: a second insert)


def _write(entries: list, events: list[Event], now: dt.datetime) -> None:
    """INSERT the audit entries, the events and their deliveries in one round trip;
    after the commit, enqueue a flush of each endpoint concerned. One event: the
    endpoints are read in the statement; more: read first, for the exact ids needed.
    The rows go as one array per column: the statement is the same text whatever
    the batch's size (a VALUES list of 21 placeholders per row was split and bound
    value by value on the client: most of the cost of a batch's events)."""
    organisation_id = events[0].organisation_id
    types = sorted({e.type for e in events})
    per_event = _DELIVERY_IDS
    if len(events) > 1:
        per_event = WebhookEndpoint.objects.filter(organisation_id=organisation_id, status=EndpointStatus.ENABLED).count()
    delivery_ids = new_delivery_ids(per_event * len(events))
    # One array per column (unnest); the JSON columns as one JSON array each (jsonb_array_elements):
    # a JSON value inside a text array literal is escaped character by character, a JSON array is dumped once.
    audit_arrays = [[getattr(entry, name) for entry in entries] for name, _ in _AUDIT_COLUMNS[:-2]]
    audit_arrays += [_json(AuditEntry, name, [getattr(entry, name) for entry in entries]) for name in ("before", "after")]
    audit_table, event_table = AuditEntry._meta.db_table, Event._meta.db_table
    delivery_table, endpoint_table = WebhookDelivery._meta.db_table, WebhookEndpoint._meta.db_table
    audit_names = ", ".join(name for name, _ in _AUDIT_COLUMNS)
    audit_rows = ", ".join(f"unnest(%s::{kind}[])" for _, kind in _AUDIT_COLUMNS[:-2])
    sql = (
        f"WITH a AS (INSERT INTO {audit_table} ({audit_names}) "
        f"SELECT {', '.join(name for name, _ in _AUDIT_COLUMNS[:-2])}, NULLIF(before, 'null'::jsonb), NULLIF(after, 'null'::jsonb) "
        f"FROM ROWS FROM ({audit_rows}, jsonb_array_elements(%s::jsonb), jsonb_array_elements(%s::jsonb)) AS u ({audit_names})), "
        f"v (id, type, occurred_at, data, position) AS "
        f"(SELECT * FROM ROWS FROM (unnest(%s::text[]), unnest(%s::text[]), unnest(%s::timestamptz[]), "
        f"jsonb_array_elements(%s::jsonb), unnest(%s::integer[]))), "
        f"e AS (INSERT INTO {event_table} (id, organisation_id, created_at, updated_at, type, occurred_at, data) "
        f"SELECT id, %s, %s, %s, type, occurred_at, data FROM v), "
        f"wanted AS (SELECT id, enabled_events, row_number() OVER (ORDER BY id) AS n FROM {endpoint_table} "
        f"WHERE organisation_id = %s AND status = %s AND (enabled_events ? '*' OR enabled_events ?| %s::text[])), "
        f"pairs AS (SELECT w.id AS endpoint_id, w.n, v.id AS event_id, v.position FROM wanted w JOIN v "
        f"ON w.enabled_events ? '*' OR w.enabled_events ? v.type), "
        f"d AS (INSERT INTO {delivery_table} (id, organisation_id, created_at, updated_at, endpoint_id, event_id, status, "
        f"attempt_count, next_attempt_at) SELECT (%s::text[])[p.position * %s + p.n], %s, %s, %s, p.endpoint_id, p.event_id, "
        f"%s, 0, %s FROM pairs p WHERE p.n <= %s) "
        f"SELECT endpoint_id, event_id, n <= %s FROM pairs ORDER BY position, n"
    )
    params = [
        *audit_arrays,
        [e.id for e in events], [e.type for e in events], [e.occurred_at for e in events],
        _json(Event, "data", [e.data for e in events]), list(range(len(events))),
        organisation_id, now, now,
        organisation_id, EndpointStatus.ENABLED, types,
        delivery_ids, per_event, organisation_id, now, now, DeliveryStatus.PENDING, now, per_event,
        per_event,
    ]
    rows = execute_batched(sql, params, fetch=True)
    rest = [(endpoint_id, event_id) for endpoint_id, event_id, written in rows if not written]
    if rest:
        WebhookDelivery.objects.bulk_create([
            WebhookDelivery(organisation_id=organisation_id, endpoint_id=endpoint_id, event_id=event_id, next_attempt_at=now)
            for endpoint_id, event_id in rest
        ])
    _flush_on_commit(sorted({endpoint_id for endpoint_id, _, _ in rows}))


def _flush_on_commit(endpoint_ids: list[str]) -> None:
    if endpoint_ids:
        flush = partial(enqueue_flushes, endpoint_ids)
        flush.__qualname__ = enqueue_flushes.__qualname__  # a robust on_commit logs a failure by it (a partial has none)
        transaction.on_commit(flush, robust=True)


def matching_endpoint_ids(*, organisation_id: str, type: str) -> list[str]:
    rows = WebhookEndpoint.objects.filter(organisation_id=organisation_id, status=EndpointStatus.ENABLED).values_list(
        "id", "enabled_events"
    )
    return [pk for pk, enabled in rows if "*" in enabled or type in enabled]


def event_write(*, organisation_id: str, type: str, data: dict, occurred_at: dt.datetime | None = None) -> Event:
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
    _flush_on_commit(endpoint_ids)
    return event


def event_body(*, type: str, occurred_at: dt.datetime, organisation_id: str, data) -> bytes:
    """The bare event a receiver gets (webhooks.md): no wrapper, no event id."""
    return dumps({"type": type, "occurred_at": iso_timestamp(occurred_at), "organisation_id": organisation_id, "data": data})
