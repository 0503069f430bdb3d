"""payment_start: nothing reaches Stripe until every organisation is connected and
every recipient's donor cap has room; the same attempt is the same intent."""
from __future__ import annotations

import datetime as dt

import pytest
import requests
from django.utils import timezone

from compliance.services import CapExceeded, public_refusal_message
from donations import services as donations
from organisations.models import AuditEntry
from organisations.services import organisation_stripe_disconnect
from payments import services as payments
from payments.models import Payment, PaymentKind, PaymentStatus
from tests.conftest import make_org
from tests.payments.helpers import (
    DONOR, NSW_CAP, SYSTEM, attempt_key, connect, make_donor, make_form, make_link, nsw_code, pay, start_form_payment,
    start_split_payment,
)
from tests.support import stripe as fake_stripe
from together.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db


def intents_of(organisation) -> list[dict]:
    """Every PaymentIntent localstripe holds for this organisation (by its metadata)."""
    out, params = [], {"limit": 100}
    while True:
        page = requests.get(f"{fake_stripe.api_base()}/v1/payment_intents", params=params,
                            auth=(fake_stripe.settings.STRIPE_TEST_SECRET_KEY, ""), timeout=30).json()
        out += [pi for pi in page["data"] if (pi.get("metadata") or {}).get("organisation_id") == organisation.id]
        if not page.get("has_more") or not page["data"]:
            return out
        params["starting_after"] = page["data"][-1]["id"]


def test_an_organisation_not_connected_to_stripe_takes_no_payment(org, localstripe):
    connect(org)
    form = make_form(org)  # ACTIVE while connected
    organisation_stripe_disconnect(organisation=org, actor=SYSTEM)
    org.refresh_from_db()
    with pytest.raises(ValidationFailed) as exc:
        start_form_payment(org, form, 2500)
    assert exc.value.param == "stripe_account" and exc.value.extra["reason"] == "stripe_not_connected"
    assert not Payment.objects.exists()
    assert intents_of(org) == []


def test_a_split_needs_every_recipient_connected(org, localstripe):
    connect(org)
    connected, unconnected = make_org("Recipient"), make_org("Unconnected")
    connect(connected)
    with pytest.raises(ValidationFailed) as exc:
        start_split_payment(org, [(connected, 2000), (unconnected, 3000)])
    assert exc.value.param == "stripe_account" and exc.value.extra["organisation_id"] == unconnected.id
    assert not Payment.objects.exists()


def test_a_sandbox_payment_pays_sandboxes_only(org, localstripe):
    connect(org)
    connect(org.sandbox)
    with pytest.raises(ValidationFailed, match="sandbox"):
        start_split_payment(org, [(org.sandbox, 2000)])


def test_over_the_cap_is_refused_before_any_intent_exists(org, localstripe):
    connect(org)
    code = nsw_code(org)
    form = make_form(org, revenue_code=code)
    donor = make_donor(org, email=DONOR["email"])
    donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                              amount_cents=700_000, donation_date=timezone.localdate(), revenue_code=code)
    with pytest.raises(CapExceeded) as exc:
        start_form_payment(org, form, 100_000, donor={**DONOR, "email": "DANA@example.com"})  # matched ignoring case
    assert exc.value.extra["remaining_cents"] == NSW_CAP - 700_000
    assert exc.value.param == "amount_cents" and "$900.00 remains" in exc.value.message
    # The public page says one fixed sentence, naming no amount.
    public = public_refusal_message(exc.value, organisation_name=org.name)
    assert "$" not in public and org.name in public
    # Staff see the refusal in the audit trail.
    refused = AuditEntry.objects.get(organisation=org, action="donation.refused")
    assert refused.after["remaining_cents"] == 90_000 and refused.object_id == donor.id
    assert not Payment.objects.exists()
    assert intents_of(org) == []
    # The room that is left is accepted.
    payment = start_form_payment(org, form, 90_000)
    assert payment.payment_intent_id and payment.amount_cents == 90_000


def test_a_new_donor_is_refused_over_the_whole_cap(org, localstripe):
    connect(org)
    form = make_form(org, revenue_code=nsw_code(org))
    with pytest.raises(CapExceeded) as exc:
        start_form_payment(org, form, NSW_CAP + 100, donor={**DONOR, "email": "new@example.com"})
    assert exc.value.extra["remaining_cents"] == NSW_CAP
    assert not Payment.objects.exists()


def test_a_split_checks_each_recipients_cap_in_its_own_books(org, localstripe):
    connect(org)
    a, b = make_org("Alpha"), make_org("Beta")
    connect(a)
    connect(b)
    for recipient in (a, b):
        nsw_code(recipient)
    donor_b = make_donor(b, email=DONOR["email"])
    donations.donation_record(organisation=b, actor=SYSTEM, donor_id=donor_b.id, donation_type="MONETARY",
                              amount_cents=780_000, donation_date=timezone.localdate(), revenue_code="NSW-STATE")
    with pytest.raises(CapExceeded) as exc:
        start_split_payment(org, [(a, 50_000), (b, 50_000)], revenue_code="NSW-STATE")
    assert exc.value.param == "parts[1].amount_cents" and exc.value.extra["recipient_organisation_id"] == b.id
    assert exc.value.extra["remaining_cents"] == 10_000
    assert not Payment.objects.exists()
    payment = start_split_payment(org, [(a, 50_000), (b, 10_000)], revenue_code="NSW-STATE")
    assert [p.amount_cents for p in payment.parts.order_by("position")] == [50_000, 10_000]


def test_the_same_attempt_is_the_same_payment_and_intent(org, localstripe):
    connect(org)
    form = make_form(org)
    key = attempt_key()
    first = start_form_payment(org, form, 2500, key=key)
    again = start_form_payment(org, form, 2500, key=key, donor={**DONOR, "first_name": "Dana-Typo-Fixed"})
    assert again.id == first.id and again.payment_intent_id == first.payment_intent_id
    assert again.client_secret == first.client_secret
    assert again.donor_details["first_name"] == "Dana-Typo-Fixed"
    # A donor who changes the amount after a decline keeps the attempt; the intent's amount follows.
    assert pay(first, fake_stripe.DECLINED_CARD)["error"]["message"] == fake_stripe.DECLINE_MESSAGE
    changed = start_form_payment(org, form, 4000, key=key)
    assert changed.id == first.id and changed.amount_cents == 4000
    intent = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY).v1.payment_intents.retrieve(first.payment_intent_id)
    assert int(intent.amount) == 4000
    assert intent.metadata["payment_id"] == first.id and intent.metadata["form_id"] == form.id
    assert intent.metadata["organisation_id"] == org.id and intent.metadata["kind"] == "FORM"
    assert Payment.objects.count() == 1


def test_a_paid_attempt_is_not_started_again(org, localstripe):
    connect(org)
    form = make_form(org)
    key = attempt_key()
    payment = start_form_payment(org, form, 2500, key=key)
    pay(payment)
    payments.payment_sync(payment_intent_id=payment.payment_intent_id)
    with pytest.raises(ValidationFailed) as exc:
        start_form_payment(org, form, 2500, key=key)
    assert exc.value.extra["reason"] == "payment_complete"


def test_a_form_that_is_not_active_takes_no_payment(org, localstripe):
    connect(org)
    form = make_form(org, status="PAUSED")
    with pytest.raises(ValidationFailed) as exc:
        start_form_payment(org, form, 2500)
    assert exc.value.extra["reason"] == "form_not_active"


def test_a_checkout_link_has_one_intent_and_refuses_when_not_payable(org, localstripe):
    connect(org)
    donor = make_donor(org, email="linked@example.com")
    link = make_link(org, donor, 12_500)

    def start(**overrides):
        return payments.payment_start(
            organisation=org, kind=PaymentKind.CHECKOUT_LINK, attempt_key=overrides.pop("key", attempt_key()),
            donor_details={"email": donor.email},
            parts=[payments.PartSpec(recipient_organisation=org, amount_cents=overrides.pop("amount", 12_500))],
            checkout_link=link, consent_text="Yes, keep me informed", consent_given=True,
        )

    first, second = start(), start()  # whatever key the page sent: the link's own
    assert first.id == second.id and first.attempt_key == f"link:{link.id}" and first.source == "CHECKOUT_LINK"
    with pytest.raises(ValidationFailed):
        start(amount=10_000)
    link.expires_at = timezone.now() - dt.timedelta(minutes=1)
    link.save(update_fields=["expires_at"])
    with pytest.raises(ValidationFailed) as exc:
        start()
    assert exc.value.extra["reason"] == "link_expired"


def test_donor_details_need_a_valid_email(org, localstripe):
    connect(org)
    form = make_form(org)
    for bad in ({**DONOR, "email": ""}, {**DONOR, "email": "not-an-email"}, {**DONOR, "first_name": 5}):
        with pytest.raises(ValidationFailed):
            start_form_payment(org, form, 2500, donor=bad)
    assert not Payment.objects.exists()
    assert PaymentStatus.REQUIRES_PAYMENT == start_form_payment(org, form, 2500).status
