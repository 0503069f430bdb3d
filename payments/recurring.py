"""Recurring plans: the schedule's date arithmetic and every change people make
to a plan (staff through the API and the dashboard, the donor through their
management link), plus the plan a recurring form gift starts.

Each change runs in a transaction, locks the plan, checks the plan's lifecycle
rules (`RecurringPlan.guard(...)`) and writes its audit entry and public event
together (`recurring_plan.created|updated|paused|resumed|canceled|ended`). The
billing engine's own transitions (charges, dunning, the cap hold) are in
payments.billing; both use `plan_event` below.

Dates. A plan's periods fall on its anchor (the start date, or a next bill date
set since) plus whole steps: 7 or 14 days, or 1, 3 or 12 months. A monthly step
keeps the anchor's day of the month where the month has it and takes the
month's last day where it does not: 31 Jan → 28/29 Feb → 31 Mar → 30 Apr → 31 May.
"Today" is the organisation's day (its time zone; today every organisation runs
on settings.TIME_ZONE).
"""
from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
import zoneinfo
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from donations.crm import source_fields_clean
from donations.services import campaign_for_gift, check_date, revenue_code_adopt
from donations.models import Donation, Donor, Source, Status
from donations.selectors import donor_with_email
from engage.models import MAXIMUM_CHARGE_CENTS
from organisations.models import Organisation, Role
from organisations.services import audit_record
from payments.models import (
    PLAN_FINAL_STATUSES, PLAN_SOURCE_FIELDS, PauseReason, Payment, Frequency, PlanPaymentMethod, PlanStatus, RecurringPlan,
)
from payments.representations import plan_snapshot
from together import stripe_gateway
from together.actors import Actor
from together.exceptions import NotFound, ValidationFailed
from webhooks.events import event_record

log = logging.getLogger("together.payments.recurring")

PLAN_ACTOR = Actor.system("Recurring billing")
# Stripe's smallest AUD card charge.
CARD_MINIMUM_CENTS = 50
# A MANUAL plan (a standing order already running) may start up to a year back.
MANUAL_START_BACK_DAYS = 366
MAX_PAYMENTS_LIMIT = 10_000
STRIPE_CUSTOMER_RE = re.compile(r"^cus_[A-Za-z0-9]{4,250}$")
STRIPE_PAYMENT_METHOD_RE = re.compile(r"^(pm|card|src)_[A-Za-z0-9]{4,250}$")
PAUSE_REASON_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")


# --- dates --------------------------------------------------------------------------------------

MONTH_STEPS = {Frequency.MONTHLY: 1, Frequency.QUARTERLY: 3, Frequency.ANNUALLY: 12}
DAY_STEPS = {Frequency.WEEKLY: 7, Frequency.FORTNIGHTLY: 14}


def organisation_zone(organisation) -> zoneinfo.ZoneInfo:
    """The organisation's time zone (an organisation of its own one day; settings.TIME_ZONE now)."""
    name = getattr(organisation, "time_zone", None) or settings.TIME_ZONE
    return zoneinfo.ZoneInfo(name)


def organisation_today(organisation, now: dt.datetime | None = None) -> dt.date:
    """The organisation's date at `now` (aware; default the present)."""
    now = now or timezone.now()
    return now.astimezone(organisation_zone(organisation)).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months, clamped to the month's last day (31 Jan + 1 → 28/29 Feb)."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    return dt.date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))


def schedule_date(anchor: dt.date, frequency: str, index: int) -> dt.date:
    """The date of period `index` (0: the anchor itself), always counted from the
    anchor, never from the previous date: 31 Jan, 28/29 Feb, 31 Mar (not 28 Mar)."""
    if index < 0:
        raise ValueError("index must be 0 or more")
    if frequency in DAY_STEPS:
        return anchor + dt.timedelta(days=DAY_STEPS[frequency] * index)
    if frequency in MONTH_STEPS:
        return add_months(anchor, MONTH_STEPS[frequency] * index)
    raise ValueError(f"unknown frequency {frequency!r}")


def schedule_index_after(anchor: dt.date, frequency: str, after: dt.date) -> int:
    """The index of the first schedule date strictly after `after`."""
    if after < anchor:
        return 0
    if frequency in DAY_STEPS:
        return (after - anchor).days // DAY_STEPS[frequency] + 1
    step = MONTH_STEPS[frequency]
    months = (after.year - anchor.year) * 12 + (after.month - anchor.month)
    index = max(months // step - 1, 0)
    while schedule_date(anchor, frequency, index) <= after:
        index += 1
    return index


def next_schedule_date(anchor: dt.date, frequency: str, after: dt.date) -> dt.date:
    """The first date of the schedule (anchor + whole steps) strictly after `after`."""
    return schedule_date(anchor, frequency, schedule_index_after(anchor, frequency, after))


def plan_anchor(plan) -> dt.date:
    return getattr(plan, "anchor_date", None) or plan.start_date


def plan_next_date(plan, after: dt.date) -> dt.date:
    """The plan's first period date strictly after `after` (anchored to its start date,
    or to the next bill date last set by people)."""
    return next_schedule_date(plan_anchor(plan), plan.frequency, after)


def plan_first_date_on_or_after(plan, day: dt.date) -> dt.date:
    return next_schedule_date(plan_anchor(plan), plan.frequency, day - dt.timedelta(days=1))


# --- events, alerts -----------------------------------------------------------------------------

def plan_event(*, plan: RecurringPlan, actor: Actor, type: str, before: dict | None, after: dict | None = None) -> None:
    """`after`: the plan's snapshot when the caller has it (default: read now)."""
    event_record(organisation=plan.organisation, actor=actor, type=type, object_type="recurring_plan", object_id=plan.id,
                 before=before, after=after if after is not None else plan_snapshot(plan_id=plan.id))


def _admin_emails(organisation: Organisation) -> list[str]:
    live = organisation.live
    return sorted(set(
        get_user_model().objects.filter(memberships__organisation=live, memberships__role=Role.ADMIN, is_active=True)
        .exclude(email="").values_list("email", flat=True)
    ))


def _money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def plan_alert(*, plan: RecurringPlan, actor: Actor, kind: str, subject: str, message: str, extra: dict | None = None) -> None:
    """Tell staff: an audit entry (`recurring_plan.alert`, listed on the dashboard
    with the plans needing attention) and, after the commit, an email to the
    organisation's ADMINs."""
    organisation = plan.organisation
    audit_record(organisation=organisation, actor=actor, action="recurring_plan.alert", object_type="recurring_plan",
                 object_id=plan.id, after={"kind": kind, "subject": subject, "message": message, **(extra or {})})
    emails = _admin_emails(organisation)
    if not emails:
        return
    live = organisation.live
    where = f"{live.name} (sandbox)" if organisation.is_sandbox else live.name
    body = f"{message}\n\nPlan {plan.id}: {settings.SITE_URL}/recurring/{plan.id}\n"
    transaction.on_commit(lambda: send_mail(f"Together ({where}): {subject}", body, None, emails, fail_silently=True))


ATTENTION_STATUSES = (PlanStatus.PAST_DUE,)


def plan_alerts(*, organisation: Organisation, limit: int = 50) -> list[RecurringPlan]:
    """The plans staff should look at (the dashboard's alert list): PAST_DUE ones,
    ACTIVE ones whose charge is failing, and those held by a donor cap, most
    urgent first. Each carries its reason in `last_failure_message` or `pause_detail`."""
    from django.db.models import Q

    return list(
        RecurringPlan.objects.for_organisation(organisation)
        .filter(Q(status=PlanStatus.PAST_DUE) | Q(status=PlanStatus.ACTIVE, failure_count__gt=0)
                | Q(status=PlanStatus.PAUSED, pause_reason=PauseReason.CAP_REACHED))
        .select_related("donor").order_by("status", "-last_failure_at", "next_bill_date", "id")[:limit]
    )


# --- checks -------------------------------------------------------------------------------------

def _cents(value: Any, param: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{param} must be an integer number of cents.", param=param)
    if value < minimum:
        # The card minimum depends on the plan's payment_method: a rule on two fields.
        extra = {"reason": "below_card_minimum"} if minimum == CARD_MINIMUM_CENTS else {}
        raise ValidationFailed(f"{param} must be at least {minimum} cents.", param=param, **extra)
    if value > MAXIMUM_CHARGE_CENTS:
        raise ValidationFailed(f"{param} must be at most {MAXIMUM_CHARGE_CENTS} cents.", param=param)
    return value


def _minimum(payment_method: str) -> int:
    return CARD_MINIMUM_CENTS if payment_method == PlanPaymentMethod.CARD else 1


def _choice(value: Any, param: str, choices) -> str:
    if value not in choices.values:
        raise ValidationFailed(f"{param} must be one of {', '.join(choices.values)}.", param=param)
    return value


def _date(value: Any, param: str, *, required: bool = False) -> dt.date | None:
    if value is None:
        if required:
            raise ValidationFailed(f"{param} is required.", param=param)
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationFailed(f"{param} must be a date (YYYY-MM-DD).", param=param) from None
    check_date(value, param)  # a date, within the one range every date of a gift lies in (as the document says)
    return value




def _max_payments(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAYMENTS_LIMIT:
        raise ValidationFailed(f"max_payments must be a whole number from 1 to {MAX_PAYMENTS_LIMIT}.", param="max_payments")
    return value


def _stripe_card(organisation: Organisation, customer_id: Any, payment_method_id: Any) -> tuple[str, str]:
    """A saved card: the customer's own payment method, as Stripe says now."""
    if not isinstance(customer_id, str) or not STRIPE_CUSTOMER_RE.fullmatch(customer_id):
        raise ValidationFailed("A CARD plan needs the donor's Stripe customer (cus_…).", param="stripe_customer_id",
                               reason="card_details_missing")
    if not isinstance(payment_method_id, str) or not STRIPE_PAYMENT_METHOD_RE.fullmatch(payment_method_id):
        raise ValidationFailed("A CARD plan needs the customer's saved card (pm_…).", param="stripe_payment_method_id",
                               reason="card_details_missing")
    if not organisation.stripe_connected:
        raise ValidationFailed("Stripe is not connected for this organisation: connect it in Settings → Payments first.",
                               param="stripe_account", reason="stripe_not_connected")
    try:
        method = stripe_gateway.to_dict(stripe_gateway.payment_method_retrieve(organisation, payment_method_id=payment_method_id))
    except stripe_gateway.PaymentRefused:
        raise ValidationFailed(f"Stripe has no payment method {payment_method_id}.", param="stripe_payment_method_id",
                               reason="payment_method_unknown") from None
    owner = method.get("customer")
    owner = owner.get("id") if isinstance(owner, dict) else owner
    if owner != customer_id:
        raise ValidationFailed(f"Payment method {payment_method_id} is not saved to customer {customer_id}.",
                               param="stripe_payment_method_id", reason="payment_method_not_customers")
    return customer_id, payment_method_id


def _plan_for_update(organisation: Organisation, plan_id: str) -> RecurringPlan:
    plan = (RecurringPlan.objects.for_organisation(organisation).select_for_update(of=("self",))
            .select_related("organisation").filter(pk=plan_id).first())
    if plan is None:
        raise NotFound("Recurring plan not found.")
    return plan


def _end_reached(plan: RecurringPlan) -> bool:
    """No period is left to bill: the number of payments is made, or the next date
    falls after the end date."""
    if plan.max_payments is not None and plan.payments_made >= plan.max_payments:
        return True
    return plan.end_date is not None and plan.next_bill_date is not None and plan.next_bill_date > plan.end_date


def plan_end_if_done(*, plan: RecurringPlan, actor: Actor, before: dict | None, now: dt.datetime | None = None) -> bool:
    """ENDED (its event) when nothing is left to bill. The caller holds the lock."""
    if plan.is_final or not _end_reached(plan):
        return False
    plan_end(plan=plan, actor=actor, before=before, now=now)
    return True


def plan_end(*, plan: RecurringPlan, actor: Actor, before: dict | None, now: dt.datetime | None = None) -> None:
    """ENDED: nothing more is billed (the caller holds the lock and knows why)."""
    plan.status = PlanStatus.ENDED
    plan.ended_at = now or timezone.now()
    plan.next_bill_date = None
    plan.retry_at = None
    plan.failure_count = 0
    plan.pause_reason = None
    plan.save()
    plan_event(plan=plan, actor=actor, type="recurring_plan.ended", before=before)


# --- people's changes -------------------------------------------------------------------------

@transaction.atomic
def plan_create(*, organisation: Organisation, actor: Actor, donor_id: str, amount_cents: int, frequency: str,
                payment_method: str, start_date: dt.date, campaign_id: str | None = None, revenue_code: str | None = None,
                end_date: dt.date | None = None, max_payments: int | None = None, form=None,
                stripe_customer_id: str | None = None, stripe_payment_method_id: str | None = None,
                payments_made: int = 0, now: dt.datetime | None = None, source_code: str | None = None,
                referrer: str | None = None, utm_source: str | None = None, utm_medium: str | None = None,
                utm_campaign: str | None = None) -> RecurringPlan:
    """A new ACTIVE plan. CARD plans charge a card already saved to the donor's
    Stripe customer (the sign-up on a form saves one); MANUAL plans expect a bank
    standing order that staff confirm each period. The first period is `start_date`
    (today or later for a CARD plan; a MANUAL plan may have started up to a year
    ago: its first expected gift is then its first date from today). The source fields
    (source_code, referrer, utm_*; donations.crm's rules) are carried onto every gift."""
    payment_method = _choice(payment_method, "payment_method", PlanPaymentMethod)
    tracking = source_fields_clean({"source_code": source_code, "referrer": referrer, "utm_source": utm_source,
                                    "utm_medium": utm_medium, "utm_campaign": utm_campaign})
    frequency = _choice(frequency, "frequency", Frequency)
    amount_cents = _cents(amount_cents, "amount_cents", minimum=_minimum(payment_method))
    start_date = _date(start_date, "start_date", required=True)
    end_date = _date(end_date, "end_date")
    max_payments = _max_payments(max_payments)
    today = organisation_today(organisation, now)
    if payment_method == PlanPaymentMethod.CARD and start_date < today:
        raise ValidationFailed("A CARD plan starts today or later.", param="start_date", reason="card_plan_start_past")
    if start_date < today - dt.timedelta(days=MANUAL_START_BACK_DAYS):
        raise ValidationFailed("A plan starts at most a year ago.", param="start_date", reason="start_too_early")
    if end_date is not None and end_date < start_date:
        raise ValidationFailed("end_date is on or after start_date.", param="end_date", reason="end_before_start")
    if payment_method == PlanPaymentMethod.CARD:
        stripe_customer_id, stripe_payment_method_id = _stripe_card(organisation, stripe_customer_id, stripe_payment_method_id)
    elif stripe_customer_id or stripe_payment_method_id:
        raise ValidationFailed("A MANUAL plan has no Stripe card.", param="stripe_payment_method_id",
                               reason="manual_plan_card")
    if not isinstance(donor_id, str) or not donor_id:
        raise ValidationFailed("donor_id is required.", param="donor_id")
    donor = Donor.objects.for_organisation(organisation).filter(pk=donor_id).first()
    if donor is None:
        raise ValidationFailed(f"No donor '{donor_id}' in this organisation.", param="donor_id")
    campaign = campaign_for_gift(organisation, campaign_id)
    revenue_code = revenue_code_adopt(organisation=organisation, code=revenue_code)
    plan = RecurringPlan(
        organisation=organisation, donor=donor, campaign=campaign, form=form, amount_cents=amount_cents,
        currency=organisation.currency, frequency=frequency, status=PlanStatus.ACTIVE, payment_method=payment_method,
        start_date=start_date, end_date=end_date, max_payments=max_payments, payments_made=payments_made,
        revenue_code=revenue_code, stripe_customer_id=stripe_customer_id or None,
        stripe_payment_method_id=stripe_payment_method_id or None, **tracking,
    )
    # The first period to bill: the start date, or (started in the past, or its first
    # period already paid) the first date after.
    if payments_made:
        plan.next_bill_date = plan_next_date(plan, start_date)
    else:
        plan.next_bill_date = plan_first_date_on_or_after(plan, max(start_date, today))
    if plan.max_payments is not None and payments_made > plan.max_payments:
        raise ValidationFailed("max_payments is less than the payments already made.", param="max_payments",
                               reason="payments_already_made")
    plan.save(force_insert=True)
    plan_event(plan=plan, actor=actor, type="recurring_plan.created", before=None)
    plan_end_if_done(plan=plan, actor=actor, before=plan_snapshot(plan_id=plan.id), now=now)
    return plan


PLAN_FIELDS_CHANGEABLE = {"amount_cents", "frequency", "next_bill_date", "end_date", "max_payments", "revenue_code",
                          "campaign_id"}


@transaction.atomic
def plan_update(*, organisation: Organisation, actor: Actor, plan_id: str, now: dt.datetime | None = None,
                **changes) -> RecurringPlan:
    """Change the amount (from the next charge), the frequency or the next bill date
    (both re-anchor the schedule at the next bill date), the end date or number of
    payments, the revenue code or campaign. A plan that is cancelled or ended cannot
    change. A new next bill date is today or later, and starts a fresh try of the
    period (a failing charge's retries stop; a PAST_DUE plan is ACTIVE again)."""
    unknown = set(changes) - PLAN_FIELDS_CHANGEABLE
    if unknown:
        name = sorted(unknown)[0]
        raise ValidationFailed(f"{name} cannot be changed.", param=name)
    plan = _plan_for_update(organisation, plan_id)
    plan.guard("change")
    before = plan_snapshot(plan_id=plan.id)
    today = organisation_today(organisation, now)
    if "amount_cents" in changes:
        plan.amount_cents = _cents(changes["amount_cents"], "amount_cents", minimum=_minimum(plan.payment_method))
    if "end_date" in changes:
        plan.end_date = _date(changes["end_date"], "end_date")
        if plan.end_date is not None and plan.end_date < max(plan.start_date, today):
            raise ValidationFailed("end_date is today or later, and on or after start_date.", param="end_date",
                                   reason="end_before_start")
    if "max_payments" in changes:
        plan.max_payments = _max_payments(changes["max_payments"])
        if plan.max_payments is not None and plan.max_payments < plan.payments_made:
            raise ValidationFailed(f"{plan.payments_made} payments are already made.", param="max_payments",
                                   reason="payments_already_made")
    if "revenue_code" in changes:
        plan.revenue_code = revenue_code_adopt(organisation=organisation, code=changes["revenue_code"])
    if "campaign_id" in changes:
        plan.campaign = campaign_for_gift(organisation, changes["campaign_id"])
    new_frequency = changes.get("frequency")
    if new_frequency is not None:
        new_frequency = _choice(new_frequency, "frequency", Frequency)
    new_date = _date(changes.get("next_bill_date"), "next_bill_date") if "next_bill_date" in changes else None
    if "next_bill_date" in changes and new_date is None:
        raise ValidationFailed("next_bill_date cannot be empty.", param="next_bill_date")
    if new_date is not None and new_date < today:
        raise ValidationFailed("next_bill_date is today or later.", param="next_bill_date", reason="date_in_past")
    if (new_frequency and new_frequency != plan.frequency) or (new_date and new_date != plan.next_bill_date):
        anchor = new_date or plan.next_bill_date or today
        if anchor < today:
            anchor = today
        plan.frequency = new_frequency or plan.frequency
        plan.anchor_date = anchor
        plan.next_bill_date = anchor
        if plan.failure_count:
            plan.failure_count = 0
            plan.retry_at = None
        if plan.status == PlanStatus.PAST_DUE:
            plan.status = PlanStatus.ACTIVE
    plan.save()
    after = plan_snapshot(plan_id=plan.id)
    if after != before:
        plan_event(plan=plan, actor=actor, type="recurring_plan.updated", before=before)
    plan_end_if_done(plan=plan, actor=actor, before=after, now=now)
    return plan


def _pause_reason(reason: Any) -> str:
    if reason is None:
        return PauseReason.STAFF
    if not isinstance(reason, str) or not PAUSE_REASON_RE.fullmatch(reason):
        raise ValidationFailed("reason is a code in capitals: STAFF, DONOR or your own (A-Z, 0-9, _).", param="reason")
    if reason == PauseReason.CAP_REACHED:
        raise ValidationFailed("CAP_REACHED is set by the billing engine only.", param="reason")
    return reason


@transaction.atomic
def plan_pause(*, organisation: Organisation, actor: Actor, plan_id: str, reason: str | None = None,
               detail: str | None = None) -> RecurringPlan:
    """Stop billing until resumed. A failing period's retries stop with it."""
    plan = _plan_for_update(organisation, plan_id)
    reason = _pause_reason(reason)
    plan.guard("pause")
    before = plan_snapshot(plan_id=plan.id)
    plan.status = PlanStatus.PAUSED
    plan.pause_reason = reason
    plan.pause_detail = (detail or "").strip()[:2000]
    plan.failure_count = 0
    plan.retry_at = None
    plan.save()
    plan_event(plan=plan, actor=actor, type="recurring_plan.paused", before=before)
    return plan


@transaction.atomic
def plan_resume(*, organisation: Organisation, actor: Actor, plan_id: str, now: dt.datetime | None = None) -> RecurringPlan:
    """Bill again from the first period date on or after today (periods that fell
    while paused are not charged). A plan held by a cap is checked again at that date."""
    plan = _plan_for_update(organisation, plan_id)
    plan.guard("resume")
    before = plan_snapshot(plan_id=plan.id)
    today = organisation_today(organisation, now)
    plan.status = PlanStatus.ACTIVE
    plan.pause_reason = None
    plan.pause_detail = ""
    plan.failure_count = 0
    plan.retry_at = None
    if plan.next_bill_date is None or plan.next_bill_date < today:
        plan.next_bill_date = plan_first_date_on_or_after(plan, today)
    plan.save()
    plan_event(plan=plan, actor=actor, type="recurring_plan.resumed", before=before)
    plan_end_if_done(plan=plan, actor=actor, before=plan_snapshot(plan_id=plan.id), now=now)
    return plan


@transaction.atomic
def plan_cancel(*, organisation: Organisation, actor: Actor, plan_id: str, reason: str | None = None,
                now: dt.datetime | None = None) -> RecurringPlan:
    """Final: nothing more is billed. Gifts already made stay."""
    plan = _plan_for_update(organisation, plan_id)
    plan.guard("cancel")
    before = plan_snapshot(plan_id=plan.id)
    plan_cancel_locked(plan=plan, actor=actor, reason=(reason or "").strip()[:200] or "Cancelled.", before=before, now=now)
    return plan


def plan_cancel_locked(*, plan: RecurringPlan, actor: Actor, reason: str, before: dict, now: dt.datetime | None = None) -> None:
    plan.status = PlanStatus.CANCELED
    plan.canceled_at = now or timezone.now()
    plan.cancel_reason = reason
    plan.next_bill_date = None
    plan.retry_at = None
    plan.pause_reason = None
    plan.save()
    plan_event(plan=plan, actor=actor, type="recurring_plan.canceled", before=before)



MERGE_ACTOR = Actor.system("Donor merge")


def plans_follow_donor_merge(*, organisation: Organisation, survivor: Donor, duplicate: Donor) -> None:
    """donations.services.donor_merge's hook (registered in PaymentsConfig.ready): the
    duplicate's plans, whatever their status, become the survivor's (a plan's donor is
    PROTECTed: the duplicate could not be deleted otherwise). Each keeps its card and
    Stripe customer and is billed as before; each move is a `recurring_plan.updated`
    event in the audit trail. Runs in the merge's transaction, both donors locked."""
    plans = list(RecurringPlan.objects.for_organisation(organisation).select_for_update(of=("self",))
                 .select_related("organisation").filter(donor_id=duplicate.id).order_by("id"))
    for plan in plans:
        before = plan_snapshot(plan_id=plan.id)
        plan.donor = survivor
        plan.save(update_fields=["donor"])
        plan_event(plan=plan, actor=MERGE_ACTOR, type="recurring_plan.updated", before=before)


@transaction.atomic
def plan_payment_method_update(*, organisation: Organisation, actor: Actor, plan_id: str, stripe_payment_method_id: str,
                               stripe_customer_id: str | None = None, now: dt.datetime | None = None) -> RecurringPlan:
    """A new saved card (the donor updated it through their link). A PAST_DUE or
    failing plan is tried again on the new card at the next billing run."""
    plan = _plan_for_update(organisation, plan_id)
    plan.guard("change")
    if plan.payment_method != PlanPaymentMethod.CARD:
        raise ValidationFailed("Only a CARD plan has a card.", param="payment_method")
    before = plan_snapshot(plan_id=plan.id)
    customer, method = _stripe_card(organisation, stripe_customer_id or plan.stripe_customer_id, stripe_payment_method_id)
    plan.stripe_customer_id, plan.stripe_payment_method_id = customer, method
    if plan.failure_count or plan.status == PlanStatus.PAST_DUE:
        plan.status = PlanStatus.ACTIVE
        plan.retry_at = organisation_today(organisation, now)
        plan.failure_count = max(plan.failure_count, 1)
    plan.save()
    plan_event(plan=plan, actor=actor, type="recurring_plan.updated", before=before)
    return plan


# --- the plan a recurring form gift starts --------------------------------------------------------

def _donor_for_payment(payment: Payment, actor: Actor) -> Donor:
    """The donor in the organisation's books (by email; created from what they typed when
    new). The card payment's recording finds the same donor."""
    from donations.services import donor_create
    from together.exceptions import Conflict

    details = payment.donor_details or {}
    books = Donor.objects.for_organisation(payment.organisation)
    existing = donor_with_email(books, details["email"])
    if existing is not None:
        return existing
    fields = {k: v for k, v in details.items() if k in {
        "first_name", "last_name", "organisation_name", "email", "phone", "address_line1", "address_line2", "suburb",
        "state", "postcode", "country"} and v}
    try:
        return donor_create(organisation=payment.organisation, actor=actor, **fields)
    except Conflict:
        return donor_with_email(books, details["email"])


def _payment_tracking(payment: Payment) -> dict[str, str]:
    """The sign-up payment's source fields (cleaned when the payment was made), for its plan."""
    return {name: value for name, value in (payment.tracking or {}).items() if name in PLAN_SOURCE_FIELDS and value}


def plan_create_from_payment(*, payment: Payment, intent: dict | None = None) -> RecurringPlan | None:
    """The first payment of a recurring form gift succeeded: its plan, ACTIVE, period 1
    paid (today, the plan's start date), charged next on the following period date
    with the card the donor just saved (the intent's customer and payment method).
    Called by payments.services when a FORM payment with a `frequency` succeeds, in
    the transaction that records its gift (which then carries the plan and period 1).
    The plan keeps the page's source fields (the payment's tracking) for its later gifts.
    Returns None (and says why in the audit trail) when Stripe saved no card."""
    if payment.plan_id is not None:
        return payment.plan
    organisation = payment.organisation
    intent = intent or stripe_gateway.to_dict(
        stripe_gateway.payment_intent_retrieve(organisation, payment_intent_id=payment.payment_intent_id))
    customer = intent.get("customer") or payment.stripe_customer_id
    customer = customer.get("id") if isinstance(customer, dict) else customer
    method = intent.get("payment_method")
    method = method.get("id") if isinstance(method, dict) else method
    actor = Actor.system("Donation form (recurring sign-up)")
    if not customer or not method or payment.frequency not in Frequency.values:
        audit_record(organisation=organisation, actor=actor, action="recurring_plan.not_created", object_type="payment",
                     object_id=payment.id, after={"reason": "The payment saved no card for later charges.",
                                                  "frequency": payment.frequency, "customer": customer})
        log.error("payment %s: recurring sign-up without a saved card (customer %s, method %s)", payment.id, customer, method)
        return None
    part = payment.parts.order_by("position").first()
    donor = _donor_for_payment(payment, actor)
    today = timezone.localtime(payment.succeeded_at or timezone.now(), organisation_zone(organisation)).date()
    form = payment.form
    plan = RecurringPlan(
        organisation=organisation, donor=donor, campaign_id=(part.campaign_id if part else None) or None, form=form,
        amount_cents=payment.amount_cents, currency=payment.currency, frequency=payment.frequency,
        status=PlanStatus.ACTIVE, payment_method=PlanPaymentMethod.CARD, start_date=today, payments_made=1,
        revenue_code=(part.revenue_code if part else None) or None, stripe_customer_id=customer,
        stripe_payment_method_id=method, **_payment_tracking(payment),
    )
    plan.next_bill_date = plan_next_date(plan, today)
    plan.save(force_insert=True)
    payment.plan = plan
    payment.period = today
    payment.stripe_customer_id = customer
    payment.save(update_fields=["plan", "period", "stripe_customer_id", "updated_at"])
    plan_event(plan=plan, actor=actor, type="recurring_plan.created", before=None)
    return plan


# --- MANUAL plans: staff confirm or miss each expected gift ----------------------------------------

def _expected_gift(organisation: Organisation, donation_id: str) -> tuple[Donation, RecurringPlan]:
    donation = Donation.objects.for_organisation(organisation).filter(pk=donation_id).first()
    if donation is None or not donation.recurring_plan_id:
        raise NotFound("Expected gift not found.")
    plan = RecurringPlan.objects.for_organisation(organisation).filter(pk=donation.recurring_plan_id).first()
    if plan is None or plan.payment_method != PlanPaymentMethod.MANUAL or donation.source != Source.MANUAL:
        raise NotFound("Expected gift not found.")
    if donation.status != Status.PENDING:
        raise ValidationFailed(f"Only an expected (PENDING) gift is confirmed or missed; this one is {donation.status}.",
                               param="status")
    return donation, plan


@transaction.atomic
def plan_expected_gift_confirm(*, organisation: Organisation, actor: Actor, donation_id: str,
                               donation_date: dt.date | None = None, reference: str | None = None) -> Donation:
    """The standing order's money arrived: the expected gift is CONFIRMED (the cap and
    every compliance check run now, as for any gift), and the plan counts a payment."""
    from donations.services import donation_payment_settle, donation_update

    donation, plan = _expected_gift(organisation, donation_id)
    changes: dict[str, Any] = {}
    if donation_date is not None:
        changes["donation_date"] = _date(donation_date, "donation_date")
    if reference is not None:
        changes["reference"] = reference
    if changes:
        donation_update(organisation=organisation, actor=actor, donation_id=donation.id, **changes)
    donation = donation_payment_settle(organisation=organisation, actor=actor, donation_id=donation.id,
                                       status=Status.CONFIRMED, reason="Standing order received.")
    locked = _plan_for_update(organisation, plan.id)
    before = plan_snapshot(plan_id=locked.id)
    locked.payments_made += 1
    locked.save(update_fields=["payments_made"])
    plan_event(plan=locked, actor=actor, type="recurring_plan.updated", before=before)
    return donation


@transaction.atomic
def plan_expected_gift_miss(*, organisation: Organisation, actor: Actor, donation_id: str, reason: str | None = None) -> Donation:
    """The standing order's money did not come: the expected gift is FAILED (no money
    counted). The plan goes on to its next period."""
    from donations.services import donation_payment_settle

    donation, plan = _expected_gift(organisation, donation_id)
    donation = donation_payment_settle(organisation=organisation, actor=actor, donation_id=donation.id, status=Status.FAILED,
                                       reason=(reason or "").strip()[:500] or "Marked missed: the standing order did not arrive.")
    plan_alert(plan=plan, actor=actor, kind="manual_missed", subject=f"A standing order of {_money(donation.amount_cents)} was missed",
               message=f"The expected gift of {donation.recurring_period.isoformat()} from {plan.donor} was marked missed.",
               extra={"donation_id": donation.id, "period": donation.recurring_period.isoformat()})
    return donation


__all__ = [
    "PLAN_FINAL_STATUSES", "organisation_today", "plan_next_date", "plan_create", "plan_update", "plan_pause", "plan_resume",
    "plan_cancel", "plan_create_from_payment", "plan_expected_gift_confirm", "plan_expected_gift_miss", "plan_alerts",
]
