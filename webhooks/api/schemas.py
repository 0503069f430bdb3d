"""The events in the OpenAPI document: one typed payload per event type, the
OpenAPI 3.1 `webhooks` section (one entry per type, its body the bare event of
webhooks.md) and a typed `Event.data` for GET /api/v1/events.

Every type of `webhooks.events.ALL_EVENT_TYPES` must be in EVENTS (a test fails
otherwise): a new event type is born documented."""
from __future__ import annotations

import copy

from compliance.models import AlertLevel, Jurisdiction
from webhooks.events import ALL_EVENT_TYPES

DELIVERY = (
    "Sent as a signed POST (Standard Webhooks) to every enabled endpoint whose `enabled_events` includes this type "
    "(or `*`). The body is the bare event: `type`, `occurred_at` (ISO 8601 UTC with milliseconds), `organisation_id` "
    "and `data`. Verify `webhook-signature` over `{webhook-id}.{webhook-timestamp}.{raw body}`, reject a timestamp "
    "more than 5 minutes old, and dedupe on `webhook-id` (the same on every retry). Answer any 2xx quickly; anything "
    "else is retried. The same event is listed by GET /api/v1/events."
)

# type: (payload component, when it fires)
EVENTS: dict[str, tuple[str, str]] = {
    "donor.created": ("Donor", "A donor is created (API, dashboard, import, a giving form)."),
    "donor.updated": ("Donor", "A donor's fields change. `data` is the donor after the change."),
    "donor.merged": ("DonorMergedPayload", "A duplicate donor is merged into this one. `data` is the surviving donor with the ids of the donations moved to it."),
    "donor.deleted": ("Donor", "A donor without donations is deleted. `data` is the donor as it was."),
    "donor.tagged": ("DonorTaggedPayload", "Tags are put on a donor (API, dashboard, a bulk action on a list): `data` is the donor after the change, with `tags_added`. Not sent when every tag named was already there."),
    "donor.untagged": ("DonorUntaggedPayload", "Tags are taken off a donor (API, dashboard, a bulk action): `data` is the donor after the change, with `tags_removed`. Renaming or deleting a tag sends no event per donor."),
    "donation.created": ("Donation", "A donation is recorded (manual, in-kind, giving form, checkout)."),
    "donation.updated": ("Donation", "A manual donation's fields change. `data` is the donation after the change."),
    "donation.voided": ("Donation", "A donation is voided (entered in error): status VOIDED, out of every total."),
    "donation.refunded": ("Donation", "A manual donation is refunded in full: status REFUNDED, out of totals."),
    "campaign.created": ("Campaign", "A campaign is created."),
    "campaign.updated": ("Campaign", "A campaign's fields change. `data` is the campaign after the change."),
    "campaign.archived": ("CampaignArchivedPayload", "A campaign is archived: it takes no new gifts. `data` carries the new status."),
    "form.created": ("DonationForm", "A donation form is created."),
    "form.updated": ("DonationForm", "A donation form's fields or status change (DRAFT, ACTIVE, PAUSED). `data` is the form after the change."),
    "form.archived": ("DonationForm", "A donation form is archived: its page answers 404 for good and its slug stays taken."),
    "checkout_link.created": ("CheckoutLink", "A checkout link is created (status ACTIVE)."),
    "checkout_link.canceled": ("CheckoutLink", "A checkout link is cancelled by staff: its page refuses payment."),
    "checkout_link.completed": ("CheckoutLink", "A checkout link is paid: status COMPLETED, `donation_id` names the donation (its own `donation.created` event)."),
    "recurring_plan.created": ("RecurringPlan", "A recurring plan is created: staff or the API (CARD on a saved card, or MANUAL), or a donor's first recurring gift on a donation form (that gift is its period 1)."),
    "recurring_plan.updated": ("RecurringPlan", "A plan changes: amount, frequency, next bill date, end; a charge paid (`payments_made`, `next_bill_date` move) or failed (`failure_count`, `last_failure_message`, `retry_at`; PAST_DUE before the last retry or when the card needs the donor to authenticate); a new card."),
    "recurring_plan.paused": ("RecurringPlan", "A plan is paused: by staff or the donor (`pause_reason` STAFF, DONOR or a code of yours), or by the billing engine when a charge would take the donor past a cap (`CAP_REACHED`, the room left in `pause_detail`)."),
    "recurring_plan.resumed": ("RecurringPlan", "A paused plan bills again: resumed by people, or by itself in the first period with room under the donor's cap."),
    "recurring_plan.canceled": ("RecurringPlan", "A plan is cancelled (final): by people, or after its last retry failed (`cancel_reason`)."),
    "recurring_plan.ended": ("RecurringPlan", "A plan ended (final): its number of payments was made or its end date passed."),
    "checkout_link.expired": ("CheckoutLink", "An unpaid checkout link's expiry is recorded (swept every 15 minutes; the link refused payment from `expires_at` on)."),
    "recommendation_set.created": ("RecommendationSet", "A recommendation set is created."),
    "recommendation_set.updated": ("RecommendationSet", "A recommendation set changes (name, mode or allocations)."),
    "recommendation_set.deleted": ("RecommendationSet", "A recommendation set is deactivated. `data` is its final state (`is_active: false`)."),
    "introduction.created": ("Introduction", "An introduction enters `pending`: the invite email is sent."),
    "introduction.viewed": ("Introduction", "An introduction enters `viewed`: the invitee opened the invite page."),
    "introduction.accepted": ("Introduction", "An introduction enters `accepted`: the invitee bound it to one of their organisations."),
    "introduction.linked": ("Introduction", "An introduction enters `linked` (terminal): a recipient account link now exists."),
    "introduction.expired": ("Introduction", "An introduction enters `expired`: its time ran out before `linked` (swept hourly)."),
    "introduction.revoked": ("Introduction", "An introduction enters `revoked`: the inviter cancelled it."),
    "recipient_org_account_link.created": ("RecipientAccount", "A recipient account link is created; `introduction_id` is set when an introduction produced it."),
    "recipient_org_account_link.updated": ("RecipientAccount", "A recipient account link changes: renamed, deactivated or reactivated (by either side)."),
    "disclosure_obligation.created": ("DisclosureObligation", "A donor's gifts pass a disclosure threshold: an obligation to disclose is opened."),
    "disclosure_obligation.updated": ("DisclosureObligation", "A disclosure obligation changes: its total, lodged, or cancelled."),
    "compliance_breach.created": ("ComplianceBreach", "A gift is found to breach a rule (e.g. a donor cap) after it was recorded."),
    "donor_cap_alert.changed": ("DonorCapAlertPayload", "A donor's alert level against a cap changes (NONE, AMBER, RED, CRITICAL)."),
    "receipt.issued": ("Receipt", "A receipt (money) or acknowledgement (in kind) is issued with the organisation's next number: as a confirmed gift is recorded, by a bulk run, by staff, or as the correction of a withdrawn one."),
    "receipt.withdrawn": ("Receipt", "A receipt is withdrawn (kept, never changed): its gift was voided, refunded in full or corrected (`replaced_by_id` names the new receipt), or staff withdrew it. `withdraw_reason` says why."),
    "webhook_endpoint.tested": ("WebhookEndpointTestPayload", "Sent by POST /api/v1/webhook-endpoints/{id}/test to that endpoint only."),
}

def _donor_with(name: str, description: str) -> dict:
    return {"allOf": [{"$ref": "#/components/schemas/Donor"}, {
        "type": "object", "required": [name],
        "properties": {name: {"type": "array", "items": {"type": "string"}, "minItems": 1, "description": description}},
    }], "description": "The donor after the change."}


EXTRA_PAYLOADS = {
    "DonorTaggedPayload": _donor_with("tags_added", "The names of the tags this change added, sorted."),
    "DonorUntaggedPayload": _donor_with("tags_removed", "The names of the tags this change removed, sorted."),
    "DonorMergedPayload": {
        "allOf": [
            {"$ref": "#/components/schemas/Donor"},
            {
                "type": "object",
                "required": ["merged_donation_ids"],
                "properties": {
                    "merged_donation_ids": {"type": "array", "items": {"type": "string"},
                                            "description": "The donations moved from the duplicate to this donor."},
                },
            },
        ],
        "description": "The surviving donor after a merge.",
    },
    "CampaignArchivedPayload": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ARCHIVED"], "description": "The campaign's new status."}},
        "description": "The new status of the archived campaign (its id is the event's object; fetch it with GET /api/v1/campaigns/{id}).",
    },
    "DonorCapAlertPayload": {
        "type": "object",
        "required": ["object", "donor_id", "jurisdiction", "period_start", "period_end", "total_cents", "cap_cents",
                     "cap_remaining_cents", "alert_level", "previous_alert_level"],
        "properties": {
            "object": {"type": "string", "enum": ["donor_cap_alert"], "description": "Always `donor_cap_alert`."},
            "donor_id": {"type": "string", "description": "The donor concerned."},
            "jurisdiction": {"type": "string", "enum": [j.value for j in Jurisdiction], "description": "The jurisdiction whose cap it is."},
            "period_start": {"type": "string", "format": "date", "description": "First day of the cap period."},
            "period_end": {"type": "string", "format": "date", "description": "Last day of the cap period."},
            "total_cents": {"type": "integer", "description": "The donor's counted total in the period."},
            "cap_cents": {"type": "integer", "description": "The cap."},
            "cap_remaining_cents": {"type": "integer", "minimum": 0, "description": "Room left under the cap."},
            "alert_level": {"type": "string", "enum": [a.value for a in AlertLevel], "description": "The new level."},
            "previous_alert_level": {"type": "string", "enum": [a.value for a in AlertLevel], "description": "The level before."},
        },
        "description": "A donor's position against a donation cap.",
    },
    "WebhookEndpointTestPayload": {
        "type": "object",
        "required": ["object", "id", "url", "message"],
        "properties": {
            "object": {"type": "string", "enum": ["webhook_endpoint"], "description": "Always `webhook_endpoint`."},
            "id": {"type": "string", "description": "The endpoint tested."},
            "url": {"type": "string", "description": "Its URL."},
            "message": {"type": "string", "description": "A fixed human-readable text."},
        },
        "description": "The endpoint a test event was sent to.",
    },
}

DELIVERY_HEADERS = [
    ("webhook-id", "The delivery id (`dlv_…`), the same on every retry: dedupe on it.", {"type": "string", "pattern": "^dlv_"}),
    ("webhook-timestamp", "Unix seconds of this send (not of the event).", {"type": "string", "pattern": "^[0-9]+$"}),
    ("webhook-signature", "`v1,<base64 HMAC-SHA256>`; two space-separated during a secret rotation.", {"type": "string", "pattern": "^v1,"}),
    ("user-agent", "`Together-Webhooks/1.0`.", {"type": "string", "enum": ["Together-Webhooks/1.0"]}),
]


def event_component(event_type: str) -> str:
    return "".join(part.capitalize() for part in event_type.replace(".", "_").split("_")) + "Event"


def _event_schema(event_type: str, payload: str) -> dict:
    return {
        "type": "object",
        "description": f"The body of a `{event_type}` delivery: the bare event, no wrapper and no event id.",
        "required": ["type", "occurred_at", "organisation_id", "data"],
        "properties": {
            "type": {"type": "string", "enum": [event_type], "description": "The event type."},
            "occurred_at": {"type": "string", "format": "date-time", "description": "When it happened: ISO 8601 UTC, milliseconds, `Z`."},
            "organisation_id": {"type": "string", "description": "The organisation it belongs to."},
            "data": {"$ref": f"#/components/schemas/{payload}"},
        },
    }


def add_events(result: dict) -> None:
    missing = set(ALL_EVENT_TYPES) - set(EVENTS)
    if missing:
        raise ValueError(f"Event types without a documented payload (webhooks/api/schemas.py EVENTS): {sorted(missing)}")
    schemas = result["components"]["schemas"]
    for name, schema in EXTRA_PAYLOADS.items():
        schemas[name] = copy.deepcopy(schema)
    webhooks = {}
    for event_type in ALL_EVENT_TYPES:
        payload, when = EVENTS[event_type]
        component = event_component(event_type)
        schemas[component] = _event_schema(event_type, payload)
        webhooks[event_type] = {
            "post": {
                "operationId": "webhook_" + event_type.replace(".", "_"),
                "summary": f"{event_type}",
                "description": f"{when}\n\n{DELIVERY}",
                "tags": ["webhooks"],
                "security": [],
                "parameters": [
                    {"in": "header", "name": name, "required": True, "description": text, "schema": schema}
                    for name, text, schema in DELIVERY_HEADERS
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                },
                "responses": {
                    "200": {"description": "Any 2xx acknowledges the delivery."},
                    "400": {"description": "A bad signature or a stale timestamp: the delivery counts as failed and is retried."},
                },
            }
        }
    result["webhooks"] = webhooks
    # GET /api/v1/events: `data` is one of the payloads, as `type` says.
    event = schemas.get("Event")
    if event is not None:
        payloads = sorted({payload for payload, _ in EVENTS.values()})
        event["properties"]["data"] = {
            "description": "The object as it was when the event occurred (before deletion for `*.deleted`); "
                           "its shape follows `type`: see the `webhooks` section for each type's payload.",
            "anyOf": [{"$ref": f"#/components/schemas/{p}"} for p in payloads],
        }


def postprocess(result, generator, request, public):
    """drf-spectacular postprocessing hook: the `webhooks` section, a typed payload per event type."""
    add_events(result)
    return result
