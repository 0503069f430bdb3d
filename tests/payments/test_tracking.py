"""Issue 19: a public page's ?source=, ?ref= and ?utm_* travel through the payment
onto the recorded donation (HTTP pages and intents, localstripe's card flow)."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from donations.models import Donation
from engage import services as engage
from payments.models import Payment
from tests.engage.test_services import ACTOR, connect, make_form
from tests.payments.helpers import pay_and_sync
from tests.support.api import make_donor

pytestmark = [pytest.mark.django_db]

DONOR = {"first_name": "Jane", "last_name": "Smith", "email": "jane.tracked@example.org", "address_line1": "1 River Rd",
         "suburb": "Abbotsford", "state": "VIC", "postcode": "3067", "country": "AU"}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"


def hidden_inputs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def test_a_form_pages_query_string_reaches_the_donation(org, localstripe):
    connected = connect(org)
    make_form(connected, status="ACTIVE", slug="tracked", revenue_code="WEB")
    page = Client().get("/donate/tracked?utm_source=newsletter&utm_medium=email&utm_campaign=spring%2026"
                        "&ref=jane.v&source=EOFY-26&utm_term=ignored")
    assert page.status_code == 200
    fields = hidden_inputs(page.content.decode())
    assert {k: fields[k] for k in ("source_code", "referrer", "utm_source", "utm_medium", "utm_campaign")} == {
        "source_code": "EOFY-26", "referrer": "jane.v", "utm_source": "newsletter", "utm_medium": "email",
        "utm_campaign": "spring 26"}
    # what the page's form posts (its hidden inputs and the donor's fields)
    response = Client().post("/donate/tracked/intent", {**fields, "amount": "5000", **DONOR})
    assert response.status_code == 200, response.content
    payment = Payment.objects.get(organisation=connected)
    assert payment.tracking["utm_campaign"] == "spring 26"
    pay_and_sync(payment)
    donation = Donation.objects.for_organisation(connected).get(stripe_payment_intent_id=payment.payment_intent_id)
    assert (donation.source_code, donation.referrer, donation.utm_source, donation.utm_medium, donation.utm_campaign) == (
        "EOFY-26", "jane.v", "newsletter", "email", "spring 26")


def test_a_bad_tracking_value_never_stops_a_gift(org, localstripe):
    connected = connect(org)
    make_form(connected, status="ACTIVE", slug="tracked-bad")
    page = Client().get("/donate/tracked-bad?source=not%20a%20code&utm_source=" + "x" * 300)
    fields = hidden_inputs(page.content.decode())
    assert "source_code" not in fields and fields["utm_source"] == "x" * 100
    response = Client().post("/donate/tracked-bad/intent", {**fields, "source": "<bad code>", "amount": "2500", **DONOR})
    assert response.status_code == 200, response.content
    payment = Payment.objects.get(organisation=connected)
    assert payment.tracking == {"utm_source": "x" * 100}


def test_a_checkout_links_query_string_reaches_the_donation(org, localstripe):
    connected = connect(org)
    donor = make_donor(connected, first_name="Jane", last_name="Smith", email="jane.link@example.org",
                       address_line1="1 River Rd", suburb="Abbotsford", state="VIC", postcode="3067")
    link = engage.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=4200)
    page = Client().get(f"/c/{link.code}?utm_source=sms&ref=organiser-7")
    assert page.status_code == 200, page.content
    fields = hidden_inputs(page.content.decode())
    assert fields["utm_source"] == "sms" and fields["referrer"] == "organiser-7"
    assert Client().post(f"/c/{link.code}/intent", fields).status_code == 200
    payment = Payment.objects.get(organisation=connected)
    pay_and_sync(payment)
    donation = Donation.objects.for_organisation(connected).get(stripe_payment_intent_id=payment.payment_intent_id)
    assert (donation.utm_source, donation.referrer, donation.source_code) == ("sms", "organiser-7", None)
