"""Demo recurring plans for `make run` (a load_demo step, after engage's connects
the demo organisation to Stripe): a handful in every status, each made the way
the product makes it, through payments.recurring and the billing engine.

- ACTIVE CARD plans on cards saved to Stripe customers (localstripe in
  development: the customer through the gateway, the card as the donor's sign-up
  saves it); one charged today (a gift on its page), one due today that `make
  run`'s beat (payments.tasks.recurring_billing_sweep, every 5 minutes) charges,
  and two starting in the next fortnight;
- PAUSED: one by staff, one held by the donor's NSW cap (the engine found no room);
- PAST_DUE: two cards that need the donor to authenticate (3-D Secure), which the
  engine cannot charge off-session;
- CANCELED: two, by staff;
- ENDED: a standing order whose end date passed, and one whose payments are all made;
- MANUAL (bank standing orders): one with today's expected gift to confirm, one
  quarterly not due yet.

Idempotent: each plan belongs to its own demo donor (found by email); a donor who
has a plan is left alone. A CARD plan whose card Stripe would not save (Stripe
unreachable) is left for the next run, and the report says so.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from donations.models import Donor
from donations.services import donation_record, donor_create
from payments import billing, recurring
from payments.models import RecurringPlan
from together import stripe_gateway
from together.demo import DemoContext, demo_step
from together.exceptions import ApplicationError

log = logging.getLogger("together.payments.demo")

CARD_OK = "4242424242424242"
CARD_3DS = "4000002760003184"
NSW_CODE = "NSW-STATE"  # donations/demo.py's revenue code counting under NSW ($7,900 a financial year)


def _address(suburb: str, state: str, postcode: str, line: str) -> dict:
    return {"address_line1": line, "suburb": suburb, "state": state, "postcode": postcode}


# (donor, plan, what happens after it is created). Dates are days from today.
PLANS: list[dict] = [
    {"donor": {"first_name": "Maya", "last_name": "Chen", "email": "maya.chen@example.org",
               **_address("Fitzroy", "VIC", "3065", "14 Napier St")},
     "plan": {"payment_method": "CARD", "amount_cents": 2_500, "frequency": "MONTHLY", "start": 0, "revenue_code": "FCA-2026"},
     "card": CARD_OK, "then": "bill"},
    {"donor": {"first_name": "Tom", "last_name": "Okafor", "email": "tom.okafor@example.org",
               **_address("Newtown", "VIC", "3220", "3 Pakington St")},
     "plan": {"payment_method": "CARD", "amount_cents": 1_000, "frequency": "WEEKLY", "start": 0}, "card": CARD_OK},
    {"donor": {"first_name": "Priya", "last_name": "Natarajan", "email": "priya.natarajan@example.org",
               **_address("West End", "QLD", "4101", "88 Boundary St")},
     "plan": {"payment_method": "CARD", "amount_cents": 30_000, "frequency": "ANNUALLY", "start": 14}, "card": CARD_OK},
    {"donor": {"first_name": "Lena", "last_name": "Fischer", "email": "lena.fischer@example.org",
               **_address("Fremantle", "WA", "6160", "5 Market St")},
     "plan": {"payment_method": "CARD", "amount_cents": 1_500, "frequency": "FORTNIGHTLY", "start": 2}, "card": CARD_OK},
    {"donor": {"first_name": "George", "last_name": "Papadopoulos", "email": "george.papadopoulos@example.org",
               **_address("Glenelg", "SA", "5045", "21 Jetty Rd")},
     "plan": {"payment_method": "CARD", "amount_cents": 5_000, "frequency": "MONTHLY", "start": 3}, "card": CARD_OK,
     "then": "pause"},
    {"donor": {"first_name": "Harriet", "last_name": "Wong", "email": "harriet.wong@example.org",
               **_address("Newtown", "NSW", "2042", "200 King St")},
     "plan": {"payment_method": "CARD", "amount_cents": 25_000, "frequency": "MONTHLY", "start": 0, "revenue_code": NSW_CODE},
     "card": CARD_OK, "gift_first": 780_000, "then": "bill"},
    {"donor": {"first_name": "Sione", "last_name": "Tupou", "email": "sione.tupou@example.org",
               **_address("Parap", "NT", "0820", "9 Parap Rd")},
     "plan": {"payment_method": "CARD", "amount_cents": 4_000, "frequency": "MONTHLY", "start": 0}, "card": CARD_3DS,
     "then": "bill"},
    {"donor": {"first_name": "Mele", "last_name": "Fifita", "email": "mele.fifita@example.org",
               **_address("Fremantle", "WA", "6160", "17 High St")},
     "plan": {"payment_method": "CARD", "amount_cents": 2_000, "frequency": "WEEKLY", "start": 0}, "card": CARD_3DS,
     "then": "bill"},
    {"donor": {"first_name": "Ruth", "last_name": "Adeyemi", "email": "ruth.adeyemi@example.org",
               **_address("Braddon", "ACT", "2612", "40 Lonsdale St")},
     "plan": {"payment_method": "CARD", "amount_cents": 2_000, "frequency": "MONTHLY", "start": 5}, "card": CARD_OK,
     "then": "cancel", "reason": "The donor asked by phone to stop."},
    {"donor": {"first_name": "Colin", "last_name": "Baxter", "email": "colin.baxter@example.org",
               **_address("Battery Point", "TAS", "7004", "2 Hampden Rd")},
     "plan": {"payment_method": "MANUAL", "amount_cents": 7_500, "frequency": "QUARTERLY", "start": 10},
     "then": "cancel", "reason": "Standing order closed by the donor's bank."},
    {"donor": {"first_name": "June", "last_name": "Walker", "email": "june.walker@example.org",
               **_address("Fitzroy", "VIC", "3065", "7 Rose St")},
     "plan": {"payment_method": "MANUAL", "amount_cents": 10_000, "frequency": "MONTHLY", "start": 0, "revenue_code": "FCA-2026"},
     "then": "bill"},
    {"donor": {"first_name": "Arjun", "last_name": "Mehta", "email": "arjun.mehta@example.org",
               **_address("Braddon", "ACT", "2612", "11 Mort St")},
     "plan": {"payment_method": "MANUAL", "amount_cents": 15_000, "frequency": "QUARTERLY", "start": -45}},
    {"donor": {"first_name": "Beatrice", "last_name": "Nolan", "email": "beatrice.nolan@example.org",
               **_address("Glenelg", "SA", "5045", "6 Moseley St")},
     "plan": {"payment_method": "MANUAL", "amount_cents": 5_000, "frequency": "MONTHLY", "start": -200, "end": -30}},
    {"donor": {"first_name": "Declan", "last_name": "Reilly", "email": "declan.reilly@example.org",
               **_address("West End", "QLD", "4101", "30 Vulture St")},
     "plan": {"payment_method": "MANUAL", "amount_cents": 2_000, "frequency": "WEEKLY", "start": -90, "max_payments": 12,
              "payments_made": 12}},
]


class CardNotSaved(Exception):
    pass


def _saved_card(organisation, donor: Donor, number: str) -> tuple[str, str]:
    """A Stripe customer for the donor with `number` saved for off-session charges, as
    the sign-up on a donation form leaves it: the customer through the gateway, the
    card attached to it (in production Stripe.js saves it from the donor's browser;
    the demo's Stripe is localstripe, which takes the test card from here)."""
    if not organisation.stripe_connected:
        raise CardNotSaved("the demo organisation is not connected to Stripe")
    try:
        customer = stripe_gateway.customer_create(
            organisation, email=donor.email, name=donor.display_name, metadata={"donor_id": donor.id, "demo": "1"},
            idempotency_key=f"demo-customer:{organisation.id}:{donor.id}")
        client = stripe_gateway.client_for(organisation)
        method = client.v1.payment_methods.create(params={
            "type": "card", "card": {"number": number, "exp_month": "12", "exp_year": str(dt.date.today().year + 3), "cvc": "123"}})
        client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    except (ApplicationError, stripe_gateway.stripe.StripeError) as exc:  # unreachable, or refused
        raise CardNotSaved(str(exc)) from exc
    return customer.id, method.id


def _donor(ctx: DemoContext, organisation, fields: dict) -> Donor:
    donor = Donor.objects.for_organisation(organisation).filter(email__iexact=fields["email"]).first()
    return donor or donor_create(organisation=organisation, actor=ctx.actor, **fields)


def _make(ctx: DemoContext, organisation, spec: dict, today: dt.date) -> RecurringPlan | None:
    donor = _donor(ctx, organisation, spec["donor"])
    if RecurringPlan.objects.for_organisation(organisation).filter(donor=donor).exists():
        return None
    plan_spec = dict(spec["plan"])
    start = today + dt.timedelta(days=plan_spec.pop("start"))
    end = plan_spec.pop("end", None)
    fields = {"end_date": today + dt.timedelta(days=end)} if end is not None else {}
    if plan_spec["payment_method"] == "CARD":
        fields["stripe_customer_id"], fields["stripe_payment_method_id"] = _saved_card(organisation, donor, spec["card"])
    if spec.get("gift_first"):
        # Gifts this financial year that leave less room under the NSW cap than one charge.
        donation_record(organisation=organisation, actor=ctx.actor, donor_id=donor.id, donation_type="MONETARY",
                        amount_cents=spec["gift_first"], donation_date=today, payment_method="CHEQUE",
                        revenue_code=plan_spec.get("revenue_code"), reference="DEMO-CHQ-1")
    plan = recurring.plan_create(organisation=organisation, actor=ctx.actor, donor_id=donor.id, start_date=start,
                                 **plan_spec, **fields)
    then = spec.get("then")
    if then == "bill":
        # The engine's own step for this plan now (the beat does the same for every due plan).
        billing.plan_bill(plan_id=plan.id)
    elif then == "pause":
        recurring.plan_pause(organisation=organisation, actor=ctx.actor, plan_id=plan.id, reason="STAFF",
                             detail="The donor is travelling until March and asked to pause.")
    elif then == "cancel":
        recurring.plan_cancel(organisation=organisation, actor=ctx.actor, plan_id=plan.id, reason=spec["reason"])
    plan.refresh_from_db()
    return plan


@demo_step(order=160, name="payments.recurring")
def demo_recurring_plans(ctx: DemoContext) -> None:
    organisation = ctx.organisation
    organisation.refresh_from_db()
    today = recurring.organisation_today(organisation)
    made, not_made = [], []
    for spec in PLANS:
        try:
            with transaction.atomic():
                plan = _make(ctx, organisation, spec, today)
        except CardNotSaved as exc:
            not_made.append(f"{spec['donor']['email']}: {exc}")
            log.warning("demo recurring plan of %s not made: %s", spec["donor"]["email"], exc)
            continue
        if plan is not None:
            made.append(plan)
    plans = RecurringPlan.objects.for_organisation(organisation)
    by_status = {status: plans.filter(status=status).count() for status in ("ACTIVE", "PAUSED", "PAST_DUE", "CANCELED", "ENDED")}
    summary = ", ".join(f"{n} {status}" for status, n in by_status.items())
    ctx.report(f"Demo recurring plans: {summary} ({len(made)} new) at /recurring")
    if not_made:
        ctx.report(f"Demo card plans not made ({len(not_made)}; the next `make run` tries again): {not_made[0][:160]}")


# Standing orders that have run for most of a year, so Recurring's revenue by month has a history:
# (donor email, monthly amount in cents, months ago it started, day of the month).
STANDING_ORDERS = [
    ("standing.order.nguyen@example.org", "Thi", "Nguyen", 5_000, 11, 3),
    ("standing.order.kelly@example.org", "Liam", "Kelly", 2_500, 9, 15),
    ("standing.order.patel@example.org", "Priya", "Patel", 10_000, 7, 1),
    ("standing.order.walker@example.org", "Sione", "Walker", 3_000, 4, 20),
]


@demo_step(order=165, name="payments.recurring_history")
def demo_standing_order_history(ctx: DemoContext) -> None:
    """MANUAL monthly plans that started months ago, with the gifts staff confirmed each month
    (recorded through donations.services with the plan and its period). Idempotent: a donor
    who has a plan is left alone."""
    organisation = ctx.organisation
    today = recurring.organisation_today(organisation)
    made = 0
    for email, first, last, amount, months_ago, day in STANDING_ORDERS:
        donor = _donor(ctx, organisation, {"email": email, "first_name": first, "last_name": last})
        if RecurringPlan.objects.for_organisation(organisation).filter(donor=donor).exists():
            continue
        start = dt.date(today.year - (today.month - months_ago <= 0), (today.month - months_ago - 1) % 12 + 1, day)
        periods = []
        period = start
        while period < today:
            periods.append(period)
            period = dt.date(period.year + (period.month == 12), period.month % 12 + 1, day)
        with transaction.atomic():
            plan = recurring.plan_create(organisation=organisation, actor=ctx.actor, donor_id=donor.id, amount_cents=amount,
                                         frequency="MONTHLY", payment_method="MANUAL", start_date=start,
                                         payments_made=len(periods))
            for period in periods:
                donation_record(organisation=organisation, actor=ctx.actor, donor_id=donor.id, donation_type="MONETARY",
                                amount_cents=amount, donation_date=period, payment_method="BANK_TRANSFER",
                                recurring_plan_id=plan.id, recurring_period=period, reference=f"SO-{period:%Y%m}")
        made += 1
    if made:
        ctx.report(f"Demo standing orders with a history: {made} (Recurring → revenue by month)")
