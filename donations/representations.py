"""How donors, donations and campaigns look to the outside world: one lean
renderer each, from a `.values()` row, shared by the API, events and audit."""
from __future__ import annotations

from together.api.renderers import iso_date, iso_timestamp

# A donor's fields, listed here once; every other list of them is derived.
# Who the donor is (what a giving form or a checkout asks for, too):
DONOR_DETAILS = (
    "first_name", "last_name", "organisation_name", "email", "phone",
    "address_line1", "address_line2", "suburb", "state", "postcode", "country",
)
# What a person may set (donor_create/donor_update; the API's input, the
# dashboard's and the admin's forms, less the ones a form leaves out):
DONOR_WRITABLE = ("donor_type", *DONOR_DETAILS, "notes", "external_id", "metadata", "employer_id", "custom_fields")
# What the API renders, and events and the audit trail carry (with "object"):
DONOR_FIELDS = ("id", *DONOR_WRITABLE, "tags", "donations_total_cents", "donations_count", "created_at", "updated_at")


def render_donor(row: dict) -> dict:
    out = {k: row[k] for k in DONOR_FIELDS}
    out["object"] = "donor"
    out["created_at"] = iso_timestamp(row["created_at"])
    out["updated_at"] = iso_timestamp(row["updated_at"])
    return out


DONATION_FIELDS = (
    "id", "donor_id", "campaign_id", "donation_type", "amount_cents", "currency", "donation_date", "source",
    "status", "payment_method", "reference", "in_kind_category", "in_kind_description",
    "in_kind_valuation_method", "revenue_code", "jurisdiction", "notes", "external_id", "metadata", "void_reason", "voided_at",
    "refund_date", "refund_reason", "refunded_at", "refunded_cents", "stripe_payment_intent_id", "stripe_charge_id",
    "fee_cents", "net_cents", "stripe_payout_id", "dispute_status", "consent_given", "acknowledgement_status",
    "recurring_plan_id", "recurring_period", "source_code", "referrer", "utm_source", "utm_medium", "utm_campaign", "custom_fields", "created_at", "updated_at",
)


def render_donation(row: dict) -> dict:
    out = {k: row[k] for k in DONATION_FIELDS}
    out["object"] = "donation"
    out["donation_date"] = iso_date(row["donation_date"])
    out["refund_date"] = iso_date(row["refund_date"])
    out["recurring_period"] = iso_date(row["recurring_period"])
    for key in ("voided_at", "refunded_at", "created_at", "updated_at"):
        out[key] = iso_timestamp(row[key])
    # Annotated by donations.selectors.with_receipt (the `receipts` reverse relation).
    out["receipt_number"] = row.get("receipt_number")
    out["receipt_status"] = row.get("receipt_status")
    return out


CAMPAIGN_FIELDS = (
    "id", "name", "description", "goal_cents", "starts_at", "ends_at", "status", "external_id",
    "created_at", "updated_at",
)


def render_campaign(row: dict, rollup: dict | None = None, *, currency: str) -> dict:
    """`currency` is the organisation's: campaign money is in the currency its gifts are in."""
    out = {k: row[k] for k in CAMPAIGN_FIELDS}
    out["object"] = "campaign"
    out["currency"] = currency
    out["starts_at"] = iso_date(row["starts_at"])
    out["ends_at"] = iso_date(row["ends_at"])
    out["created_at"] = iso_timestamp(row["created_at"])
    out["updated_at"] = iso_timestamp(row["updated_at"])
    rollup = rollup or {}
    out["raised_cents"] = rollup.get("raised_cents", 0)
    out["donations_count"] = rollup.get("donations_count", 0)
    out["donors_count"] = rollup.get("donors_count", 0)
    return out
