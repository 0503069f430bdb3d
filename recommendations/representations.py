"""How links, introductions and recommendation sets look to the outside world:
one lean renderer each, from `.values()` rows, shared by the API and the audit
trail (so an audit entry's `after` is the object exactly as the API renders it)."""
from __future__ import annotations

from django.conf import settings

from together.api.renderers import iso_timestamp

LINK_FIELDS = (
    "id", "label", "recipient_organisation_id", "recipient_organisation__name", "is_active", "deactivated_by",
    "introduction_id", "created_at", "updated_at",
)


def render_link(row: dict) -> dict:
    return {
        "id": row["id"],
        "object": "recipient_org_account_link",
        "label": row["label"],
        "recipient_organisation_id": row["recipient_organisation_id"],
        "recipient_org_name": row["recipient_organisation__name"],
        "is_active": row["is_active"],
        # Until Stripe Connect onboarding exists, an active link can receive
        # funds; later this also needs the recipient's account to take charges.
        "can_receive_funds": row["is_active"],
        "deactivated_by": row["deactivated_by"],
        "introduction_id": row["introduction_id"],
        "created_at": iso_timestamp(row["created_at"]),
        "updated_at": iso_timestamp(row["updated_at"]),
    }


INTRODUCTION_FIELDS = (
    "id", "status", "invitee_email", "invitee_org_name_hint", "invitee_message", "label", "expires_at",
    "viewed_at", "accepted_at", "linked_at", "expired_at", "revoked_at", "accepted_organisation_id",
    "accepted_organisation__name", "link__id", "created_at", "updated_at",
)


def render_introduction(row: dict) -> dict:
    out = {
        "id": row["id"],
        "object": "introduction",
        "status": row["status"],
        "invitee_email": row["invitee_email"],
        "invitee_org_name_hint": row["invitee_org_name_hint"] or None,
        "invitee_message": row["invitee_message"] or None,
        "label": row["label"] or None,
        "recipient_organisation_id": row["accepted_organisation_id"],
        "recipient_org_name": row["accepted_organisation__name"],
        "recipient_org_account_link_id": row["link__id"],
    }
    for key in ("expires_at", "viewed_at", "accepted_at", "linked_at", "expired_at", "revoked_at", "created_at", "updated_at"):
        out[key] = iso_timestamp(row[key])
    return out


SET_FIELDS = ("id", "name", "description", "amount_mode", "is_active", "created_at", "updated_at")
ALLOCATION_FIELDS = (
    "id", "recommendation_set_id", "link_id", "link__recipient_organisation__name", "amount_cents", "position",
)


def giving_form_url(set_id: str) -> str:
    return f"{settings.SITE_URL}/give/{set_id}"


def render_allocation(row: dict) -> dict:
    return {
        "id": row["id"],
        "recipient_org_account_link_id": row["link_id"],
        "recipient_org_name": row["link__recipient_organisation__name"],
        "amount_cents": row["amount_cents"],
        "position": row["position"],
    }


def render_set(row: dict, allocation_rows: list[dict], currency: str = "AUD") -> dict:
    allocations = [render_allocation(a) for a in sorted(allocation_rows, key=lambda a: a["position"])]
    return {
        "id": row["id"],
        "object": "recommendation_set",
        "name": row["name"],
        "description": row["description"] or None,
        "amount_mode": row["amount_mode"],
        "allocations": allocations,
        "total_cents": sum(a["amount_cents"] for a in allocations),
        "currency": currency,
        "is_active": row["is_active"],
        "giving_form_url": giving_form_url(row["id"]),
        "created_at": iso_timestamp(row["created_at"]),
        "updated_at": iso_timestamp(row["updated_at"]),
    }
