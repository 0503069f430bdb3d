"""How a recurring plan looks to the outside world: one lean renderer from a
`.values()` row, shared by the API, the webhook events and the audit trail."""
from __future__ import annotations

from payments.models import RecurringPlan
from together.api.renderers import iso_timestamp

PLAN_FIELDS = (
    "id", "donor_id", "campaign_id", "form_id", "amount_cents", "currency", "frequency", "status", "payment_method",
    "start_date", "next_bill_date", "end_date", "max_payments", "payments_made", "pause_reason", "pause_detail",
    "revenue_code", "stripe_customer_id", "stripe_payment_method_id", "failure_count", "last_failure_at",
    "last_failure_message", "last_failure_code", "retry_at", "cancel_reason", "canceled_at", "ended_at",
    "source_code", "referrer", "utm_source", "utm_medium", "utm_campaign", "created_at", "updated_at",
)
DATE_FIELDS = ("start_date", "next_bill_date", "end_date", "retry_at")
TIMESTAMP_FIELDS = ("last_failure_at", "canceled_at", "ended_at", "created_at", "updated_at")


def render_plan(row: dict) -> dict:
    out = {"id": row["id"], "object": "recurring_plan"}
    for key in PLAN_FIELDS[1:]:
        out[key] = row[key]
    for key in DATE_FIELDS:
        out[key] = row[key].isoformat() if row[key] is not None else None
    for key in TIMESTAMP_FIELDS:
        out[key] = iso_timestamp(row[key])
    out["pause_detail"] = row["pause_detail"] or None
    return out


def plan_render_loaded(plan: RecurringPlan) -> dict:
    """The plan as plan_snapshot renders it, from an instance that holds what the
    database holds (read under its lock, or just saved): no query. The billing
    engine's events and audit entries."""
    return render_plan({name: getattr(plan, name) for name in PLAN_FIELDS})


def plan_snapshot(*, plan_id: str) -> dict:
    """The plan as the API renders it now (events, audit `before`/`after`)."""
    row = RecurringPlan.objects.filter(pk=plan_id).values(*PLAN_FIELDS).get()
    return render_plan(row)
