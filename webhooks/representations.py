"""How events, endpoints, deliveries and attempts look in the API (lean, from `.values()` rows)."""
from __future__ import annotations

from together.api.renderers import iso_timestamp

EVENT_FIELDS = ("id", "organisation_id", "type", "occurred_at", "data", "created_at")


def render_event(row: dict) -> dict:
    return {
        "id": row["id"],
        "object": "event",
        "type": row["type"],
        "occurred_at": iso_timestamp(row["occurred_at"]),
        "organisation_id": row["organisation_id"],
        "data": row["data"],
        "created_at": iso_timestamp(row["created_at"]),
    }


ENDPOINT_FIELDS = (
    "id", "url", "description", "enabled_events", "status", "disabled_reason", "disabled_at", "created_at", "updated_at",
)


def render_endpoint(row: dict) -> dict:
    return {
        "id": row["id"],
        "object": "webhook_endpoint",
        "url": row["url"],
        "description": row["description"],
        "enabled_events": row["enabled_events"],
        "status": row["status"],
        "disabled_reason": row["disabled_reason"],
        "disabled_at": iso_timestamp(row["disabled_at"]),
        "created_at": iso_timestamp(row["created_at"]),
        "updated_at": iso_timestamp(row["updated_at"]),
    }


def render_endpoint_instance(endpoint) -> dict:
    return render_endpoint({name: getattr(endpoint, name) for name in ENDPOINT_FIELDS})


DELIVERY_FIELDS = (
    "id", "endpoint_id", "event_id", "event__type", "status", "attempt_count", "next_attempt_at", "last_status_code",
    "last_error", "delivered_at", "created_at", "updated_at",
)


def render_delivery(row: dict, attempts: list[dict]) -> dict:
    return {
        "id": row["id"],
        "object": "webhook_delivery",
        "endpoint_id": row["endpoint_id"],
        "event_id": row["event_id"],
        "event_type": row["event__type"],
        "status": row["status"],
        "attempt_count": row["attempt_count"],
        "next_attempt_at": iso_timestamp(row["next_attempt_at"]),
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "delivered_at": iso_timestamp(row["delivered_at"]),
        "created_at": iso_timestamp(row["created_at"]),
        "updated_at": iso_timestamp(row["updated_at"]),
        "attempts": attempts,
    }


ATTEMPT_FIELDS = (
    "delivery_id", "attempt_number", "url", "succeeded", "status_code", "latency_ms", "response_excerpt", "error",
    "next_attempt_at", "created_at",
)


def render_attempt(row: dict) -> dict:
    return {
        "attempt_number": row["attempt_number"],
        "url": row["url"],
        "succeeded": row["succeeded"],
        "status_code": row["status_code"],
        "latency_ms": row["latency_ms"],
        "response_excerpt": row["response_excerpt"],
        "error": row["error"],
        "next_attempt_at": iso_timestamp(row["next_attempt_at"]),
        "attempted_at": iso_timestamp(row["created_at"]),
    }
