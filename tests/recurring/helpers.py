"""Helpers for the recurring-plan tests: a donor's card saved to a Stripe customer in
localstripe (as the sign-up on a form leaves it), plans made through the services,
billing runs at a chosen moment, and Stripe's count of a plan's PaymentIntents."""
from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo

from django.conf import settings

from payments import recurring
from payments.models import RecurringPlan
from tests.payments.helpers import SYSTEM, connect, make_donor  # noqa: F401 (re-exported for the tests)
from tests.support import stripe as fake_stripe
from together import stripe_gateway

SYDNEY = zoneinfo.ZoneInfo(settings.TIME_ZONE)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    """An aware moment on `day` in the organisation's time zone (billing runs are given `now`)."""
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SYDNEY)


def stripe_for(organisation):
    """The Stripe client the app uses for this organisation (localstripe)."""
    return stripe_gateway.client_for(organisation)


def saved_card(organisation, number: str = fake_stripe.TEST_CARD, *, email: str | None = None) -> tuple[str, str]:
    """A Stripe customer with `number` saved for off-session charges: (customer id, payment method id)."""
    sc = stripe_for(organisation)
    customer = sc.v1.customers.create(params={"email": email or f"donor-{secrets.token_hex(4)}@example.com"})
    method = sc.v1.payment_methods.create(params={"type": "card", "card": fake_stripe.card(number)})
    sc.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def card_plan(organisation, donor, *, amount_cents: int = 2500, frequency: str = "MONTHLY", start: dt.date,
              number: str = fake_stripe.TEST_CARD, **fields) -> RecurringPlan:
    customer, method = saved_card(organisation, number, email=donor.email)
    return recurring.plan_create(
        organisation=organisation, actor=SYSTEM, donor_id=donor.id, amount_cents=amount_cents, frequency=frequency,
        payment_method="CARD", start_date=start, stripe_customer_id=customer, stripe_payment_method_id=method,
        now=at(start, 9), **fields)


def manual_plan(organisation, donor, *, amount_cents: int = 5000, frequency: str = "MONTHLY", start: dt.date, **fields):
    return recurring.plan_create(
        organisation=organisation, actor=SYSTEM, donor_id=donor.id, amount_cents=amount_cents, frequency=frequency,
        payment_method="MANUAL", start_date=start, now=at(start, 9), **fields)


def plan_intents(plan: RecurringPlan) -> list[dict]:
    """Every PaymentIntent Stripe holds for this plan (its customer's, made by the engine)."""
    sc = stripe_for(plan.organisation)
    intents = [stripe_gateway.to_dict(i) for i in
               sc.v1.payment_intents.list(params={"customer": plan.stripe_customer_id, "limit": 100}).data]
    return [i for i in intents if (i.get("metadata") or {}).get("plan_id") == plan.id]


def swap_card(plan: RecurringPlan, number: str) -> str:
    """Attach another card to the plan's customer and make it the plan's card (behind the services' back:
    a test of what the engine does with whatever card the plan names)."""
    sc = stripe_for(plan.organisation)
    method = sc.v1.payment_methods.create(params={"type": "card", "card": fake_stripe.card(number)})
    sc.v1.payment_methods.attach(method.id, params={"customer": plan.stripe_customer_id})
    RecurringPlan.objects.filter(pk=plan.pk).update(stripe_payment_method_id=method.id)
    return method.id
