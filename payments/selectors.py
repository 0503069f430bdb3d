"""Reads with logic for the payments pages: recurring plans' monthly recurring
revenue, their status counts, and one plan's charges and history."""
from __future__ import annotations

from django.db.models import BigIntegerField, Case, Count, F, IntegerField, Sum, Value, When

from donations.models import Donation
from organisations.models import AuditEntry, Organisation
from engage.models import Frequency
from payments.models import Payment, PlanStatus, RecurringPlan

# Periods a year per frequency: a plan's amount × this / 12 is its monthly figure
# (weekly ×52/12, fortnightly ×26/12, monthly ×1, quarterly /3, annually /12).
PERIODS_PER_YEAR = {
    Frequency.WEEKLY: 52,
    Frequency.FORTNIGHTLY: 26,
    Frequency.MONTHLY: 12,
    Frequency.QUARTERLY: 4,
    Frequency.ANNUALLY: 1,
}


def _per_year():
    return Case(*[When(frequency=f, then=Value(n)) for f, n in PERIODS_PER_YEAR.items()], output_field=IntegerField())


def _plan_groups(organisation: Organisation, queryset=None) -> list[dict]:
    """The organisation's plans grouped by (status, currency, frequency): how many, and
    their amounts summed per period and per year (one query)."""
    plans = (queryset if queryset is not None else RecurringPlan.objects).for_organisation(organisation)
    return list(
        plans.order_by().values("status", "currency", "frequency")
        .annotate(plans=Count("id"), period_cents=Sum("amount_cents"),
                  yearly_cents=Sum(F("amount_cents") * _per_year(), output_field=BigIntegerField()))
    )


def _mrr_of(groups: list[dict]) -> list[dict]:
    by_currency: dict[str, dict] = {}
    for row in groups:
        if row["status"] != PlanStatus.ACTIVE:
            continue
        entry = by_currency.setdefault(row["currency"], {"currency": row["currency"], "yearly_cents": 0, "plans": 0,
                                                         "frequencies": {}})
        entry["yearly_cents"] += row["yearly_cents"]
        entry["plans"] += row["plans"]
        entry["frequencies"][row["frequency"]] = row
    out = []
    for currency, entry in by_currency.items():
        by_frequency = []
        for frequency, label in Frequency.choices:
            row = entry["frequencies"].get(frequency)
            by_frequency.append({
                "frequency": frequency, "label": label, "plans": row["plans"] if row else 0,
                "amount_cents": row["period_cents"] if row else 0,
                "mrr_cents": row["yearly_cents"] // 12 if row else 0,
            })
        out.append({"currency": currency, "mrr_cents": entry["yearly_cents"] // 12, "plans": entry["plans"],
                    "by_frequency": by_frequency})
    out.sort(key=lambda e: (-e["mrr_cents"], e["currency"]))
    return out


def _status_counts_of(groups: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in groups:
        counts[row["status"]] = counts.get(row["status"], 0) + row["plans"]
    return {status: counts.get(status, 0) for status in PlanStatus.values}


def plan_mrr(*, organisation: Organisation, queryset=None) -> list[dict]:
    """Monthly recurring revenue of the organisation's ACTIVE plans, per currency:
    each plan's amount normalised to a month (amount × periods a year / 12), summed
    in SQL, the total rounded down to the cent once (not per plan). Each entry:
    {currency, mrr_cents, plans, by_frequency: [{frequency, label, plans, amount_cents,
    mrr_cents}]} with every frequency listed (zero when none), largest currency first.
    `queryset` narrows the plans (a filtered list); it stays within the organisation."""
    return _mrr_of(_plan_groups(organisation, queryset.filter(status=PlanStatus.ACTIVE) if queryset is not None
                                else RecurringPlan.objects.filter(status=PlanStatus.ACTIVE)))


def plan_status_counts(*, organisation: Organisation, queryset=None) -> dict[str, int]:
    """{status: number of plans} for every status (zero when none)."""
    return _status_counts_of(_plan_groups(organisation, queryset))


def plan_overview(*, organisation: Organisation) -> dict:
    """The Recurring page's figures from one grouped query: {"counts": plan_status_counts,
    "mrr": plan_mrr} of all the organisation's plans."""
    groups = _plan_groups(organisation)
    return {"counts": _status_counts_of(groups), "mrr": _mrr_of(groups)}


def plan_charges(*, organisation: Organisation, plan: RecurringPlan, limit: int = 200) -> list[Donation]:
    """The plan's gifts (donations linked by recurring_plan_id): every period recorded,
    a MANUAL plan's expected ones included, latest period first."""
    return list(
        Donation.objects.for_organisation(organisation).filter(recurring_plan_id=plan.id)
        .select_related("campaign").order_by("-recurring_period", "-created_at")[:limit]
    )


def plan_charge_attempts(*, organisation: Organisation, plan: RecurringPlan, limit: int = 100) -> list[Payment]:
    """The engine's card charges of the plan (one Payment per period, failed ones
    included, with Stripe's reason), latest period first."""
    return list(
        Payment.objects.for_organisation(organisation).filter(plan=plan)
        .order_by("-period", "-created_at")[:limit]
    )


# Fields of a plan's snapshot a person reads in its history (the rest is bookkeeping).
HISTORY_FIELDS = ("amount_cents", "frequency", "status", "next_bill_date", "end_date", "max_payments", "payments_made",
                  "pause_reason", "revenue_code", "campaign_id", "failure_count", "retry_at", "stripe_payment_method_id")


def plan_history(*, organisation: Organisation, plan: RecurringPlan, limit: int = 200) -> list[AuditEntry]:
    """The plan's audit trail (changes, pauses, charges' steps, alerts), newest first.
    Each entry carries `changes`: [(field, before, after)] of the fields people read."""
    entries = list(
        AuditEntry.objects.for_organisation(organisation).filter(object_type="recurring_plan", object_id=plan.id)
        .order_by("-created_at", "-id")[:limit]
    )
    for entry in entries:
        before = entry.before if isinstance(entry.before, dict) else {}
        after = entry.after if isinstance(entry.after, dict) else {}
        entry.changes = [(name, before.get(name), after.get(name)) for name in HISTORY_FIELDS
                         if before and name in after and before.get(name) != after.get(name)]
    return entries


def donor_plans(*, organisation: Organisation, donor_id: str) -> list[RecurringPlan]:
    """A donor's plans: the running ones first (ACTIVE, PAST_DUE, PAUSED), then the
    finished, newest first within each."""
    order = Case(When(status=PlanStatus.ACTIVE, then=Value(0)), When(status=PlanStatus.PAST_DUE, then=Value(1)),
                 When(status=PlanStatus.PAUSED, then=Value(2)), default=Value(3), output_field=IntegerField())
    return list(
        RecurringPlan.objects.for_organisation(organisation).filter(donor_id=donor_id).select_related("campaign")
        .annotate(rank=order).order_by("rank", "-created_at", "-id")[:100]
    )


def recurring_revenue_by_month(*, organisation: Organisation, today, months: int = 12) -> list[dict]:
    """What recurring plans brought in (their counted gifts) per month, the `months` months
    ending with today's: [{month, monetary_cents, in_kind_cents, total_cents, gifts}] from
    the per-day rollup (donations.selectors.gifts_by_month)."""
    from donations.selectors import gifts_by_month, month_starts

    first = month_starts(today.replace(year=today.year - months // 12 - 1, day=1), today)[-months]
    return gifts_by_month(organisation=organisation, start=first, end=today, recurring_only=True)
