"""How forms and checkout links look to the outside world: one lean renderer
each, from a `.values()` row, shared by the API, webhook events and the audit."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from engage.models import DEFAULT_MINIMUM_CENTS, LinkStatus
from together.api.renderers import iso_timestamp

FORM_FIELDS = (
    "id", "name", "slug", "status", "title", "description", "suggested_amounts_cents", "allow_custom",
    "default_amount_cents", "minimum_cents", "maximum_cents", "allow_recurring", "recurring_frequencies",
    "phone_visibility", "address_visibility", "revenue_code", "campaign_id", "custom_field_keys", "archived_at",
    "created_at", "updated_at",
)


def form_url(slug: str) -> str:
    return f"{settings.SITE_URL}/donate/{slug}"


def link_url(code: str) -> str:
    return f"{settings.SITE_URL}/c/{code}"


def render_form(row: dict, *, currency: str) -> dict:
    out = {k: row[k] for k in FORM_FIELDS}
    out["object"] = "form"
    out["currency"] = currency
    out["url"] = form_url(row["slug"])
    out["effective_minimum_cents"] = row["minimum_cents"] if row["minimum_cents"] is not None else DEFAULT_MINIMUM_CENTS
    for key in ("archived_at", "created_at", "updated_at"):
        out[key] = iso_timestamp(row[key])
    return out


LINK_FIELDS = (
    "id", "code", "donor_id", "amount_cents", "currency", "description", "payment_methods", "consent_text",
    "revenue_code", "campaign_id", "status", "expires_at", "completed_at", "canceled_at", "expired_at", "donation_id",
    "created_at", "updated_at",
)


def link_status(row: dict, now: dt.datetime | None = None) -> str:
    """EXPIRED as soon as `expires_at` passes, before the sweep persists it."""
    if row["status"] == LinkStatus.ACTIVE and row["expires_at"] <= (now or timezone.now()):
        return LinkStatus.EXPIRED
    return row["status"]


def render_link(row: dict, now: dt.datetime | None = None) -> dict:
    out = {k: row[k] for k in LINK_FIELDS if k != "expired_at"}
    out["object"] = "checkout_link"
    out["url"] = link_url(row["code"])
    out["status"] = link_status(row, now)
    for key in ("expires_at", "completed_at", "canceled_at", "created_at", "updated_at"):
        out[key] = iso_timestamp(row[key])
    return out
