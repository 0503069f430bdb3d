"""Issue 19: a donation form asks gift custom fields (DonationForm.custom_field_keys):
the page shows an input per field, the intent refuses a missing required answer or a
bad value beside its input (nothing started), and the answers travel through the
payment onto the recorded donation (localstripe's card flow)."""
from __future__ import annotations

import re

import pytest
from django.test import Client

from donations.custom_fields import custom_field_archive, custom_field_create
from donations.models import Donation
from engage import services as engage
from payments.models import Payment
from tests.engage.test_services import ACTOR, connect, make_form
from tests.payments.helpers import pay_and_sync
from together.exceptions import ValidationFailed

pytestmark = [pytest.mark.django_db]

DONOR = {"first_name": "Jane", "last_name": "Smith", "email": "jane.fields@example.org", "address_line1": "1 River Rd",
         "suburb": "Abbotsford", "state": "VIC", "postcode": "3067", "country": "AU"}


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"


def hidden_inputs(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


@pytest.fixture
def asked(org):
    connected = connect(org)
    custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONATION", key="heard_from", label="How did you hear of us?",
                        field_type="CHOICE", choices=["Friend", "Newsletter", "Other"], required=True)
    custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONATION", key="in_memory_of", label="In memory of",
                        field_type="TEXT")
    custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONATION", key="staff_only", label="Staff only",
                        field_type="TEXT", required=True)
    form = make_form(connected, status="ACTIVE", slug="asks-fields", custom_field_keys=["heard_from", "in_memory_of"])
    return connected, form


def test_the_page_asks_the_forms_fields_and_the_gift_carries_the_answers(asked, localstripe):
    connected, form = asked
    page = Client().get("/donate/asks-fields").content.decode()
    assert 'name="cf_heard_from"' in page and 'name="cf_in_memory_of"' in page and "cf_staff_only" not in page
    fields = hidden_inputs(page)
    base = {**fields, "amount": "5000", **DONOR}

    missing = Client().post("/donate/asks-fields/intent", base)
    assert missing.status_code == 400 and "cf_heard_from" in missing.json()["errors"]
    bad = Client().post("/donate/asks-fields/intent", {**base, "cf_heard_from": "Radio"})
    assert bad.status_code == 400 and "cf_heard_from" in bad.json()["errors"]
    assert not Payment.objects.filter(organisation=connected).exists()

    ok = Client().post("/donate/asks-fields/intent", {**base, "cf_heard_from": "Newsletter", "cf_in_memory_of": " Nan "})
    assert ok.status_code == 200, ok.content
    payment = Payment.objects.get(organisation=connected)
    assert payment.custom_fields == {"heard_from": "Newsletter", "in_memory_of": "Nan"}
    pay_and_sync(payment)
    donation = Donation.objects.for_organisation(connected).get(stripe_payment_intent_id=payment.payment_intent_id)
    # The staff-only required field binds people's entries, not a card gift whose money has moved.
    assert donation.custom_fields == {"heard_from": "Newsletter", "in_memory_of": "Nan"}


def test_a_form_asks_only_active_gift_fields(asked):
    connected, form = asked
    custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONOR", key="tier", label="Tier", field_type="TEXT")
    for keys in (["tier"], ["nothing"], ["heard_from", "heard_from"], "heard_from"):
        with pytest.raises(ValidationFailed) as exc:
            engage.form_update(organisation=connected, actor=ACTOR, form_id=form.id, custom_field_keys=keys)
        assert exc.value.param == "custom_field_keys"
    field = custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONATION", key="old", label="Old", field_type="TEXT")
    custom_field_archive(organisation=connected, actor=ACTOR, custom_field_id=field.id)
    with pytest.raises(ValidationFailed):
        engage.form_update(organisation=connected, actor=ACTOR, form_id=form.id, custom_field_keys=["old"])
