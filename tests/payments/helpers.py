"""Helpers for the payments tests: connected organisations, forms and links made
through the services, and payments started and paid as a donor's browser does
(tests/support/stripe.py plays Stripe's side against localstripe)."""
from __future__ import annotations

import secrets

from django.conf import settings

from compliance import services as compliance
from donations import services as donations
from engage import services as engage
from organisations.services import organisation_stripe_connect
from payments import services as payments
from payments.models import Payment, PaymentKind
from tests.support import stripe as fake_stripe
from together.actors import Actor

SYSTEM = Actor.system("tests")
NSW_CAP = 790_000  # NSW: $7,900 per donor per financial year (compliance/regimes.py)
NSW_CODE = "NSW-STATE"
DONOR = {"first_name": "Dana", "last_name": "Donor", "email": "dana@example.com", "address_line1": "1 Main St",
         "suburb": "Sydney", "state": "NSW", "postcode": "2000", "phone": "+61 400 000 000"}


def connect(organisation) -> str:
    account = "acct_" + secrets.token_hex(8)
    organisation_stripe_connect(organisation=organisation, actor=SYSTEM, account_id=account)
    organisation.refresh_from_db()
    return account


def nsw_code(organisation) -> str:
    """A revenue code counting under NSW, whose cap ($7,900 a financial year) is in force now."""
    compliance.revenue_code_create(organisation=organisation, actor=SYSTEM, code=NSW_CODE, jurisdiction="NSW")
    return NSW_CODE


def make_form(organisation, **fields):
    fields = {"name": "Spring appeal", "title": "Give to our spring appeal", "slug": f"spring-{secrets.token_hex(4)}",
              "suggested_amounts_cents": [2500, 5000, 10000], "status": "ACTIVE", **fields}
    return engage.form_create(organisation=organisation, actor=SYSTEM, **fields)


def make_link(organisation, donor, amount_cents: int, **fields):
    return engage.checkout_link_create(organisation=organisation, actor=SYSTEM, donor_id=donor.id, amount_cents=amount_cents,
                                       **fields)


def make_donor(organisation, **fields):
    fields = {"first_name": "Kept", "last_name": "Name", "email": "dana@example.com", **fields}
    return donations.donor_create(organisation=organisation, actor=SYSTEM, **fields)


def attempt_key() -> str:
    return "att_" + secrets.token_urlsafe(12)


def start_form_payment(organisation, form, amount_cents: int, *, donor: dict | None = None, revenue_code=None,
                       key: str | None = None) -> Payment:
    return payments.payment_start(
        organisation=organisation, kind=PaymentKind.FORM, attempt_key=key or attempt_key(), donor_details=donor or DONOR,
        parts=[payments.PartSpec(recipient_organisation=organisation, amount_cents=amount_cents,
                                 revenue_code=revenue_code if revenue_code is not None else form.revenue_code,
                                 campaign_id=form.campaign_id)],
        form=form,
    )


def start_split_payment(organisation, recipients_amounts: list[tuple], *, donor: dict | None = None,
                        set_id: str = "cm3set0001abc123xyz45678", revenue_code=None) -> Payment:
    return payments.payment_start(
        organisation=organisation, kind=PaymentKind.SPLIT, attempt_key=attempt_key(), donor_details=donor or DONOR,
        parts=[payments.PartSpec(recipient_organisation=r, amount_cents=a, revenue_code=revenue_code)
               for r, a in recipients_amounts],
        recommendation_set_id=set_id,
    )


def publishable_key(organisation) -> str:
    return settings.STRIPE_TEST_PUBLISHABLE_KEY if organisation.is_sandbox else settings.STRIPE_PUBLISHABLE_KEY


def pay(payment: Payment, number: str = fake_stripe.TEST_CARD) -> dict:
    """The donor confirms the intent with a card (Stripe.js's confirmCardPayment)."""
    return fake_stripe.pay_intent(payment.client_secret, number, publishable_key=publishable_key(payment.organisation),
                                  billing_details={"name": "Dana Donor", "email": payment.donor_email})


def pay_and_sync(payment: Payment, number: str = fake_stripe.TEST_CARD) -> Payment:
    pay(payment, number)
    return payments.payment_sync(payment_intent_id=payment.payment_intent_id)
