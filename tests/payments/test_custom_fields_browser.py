"""Issue 19 in Chromium: a donation form that asks a required gift custom field;
the donor's missing answer is refused beside its input, then the gift is paid by
card (localstripe) and recorded with the answer. Screenshots at 1280 and 390 px
(artifacts/screenshots/custom-fields-donate-*.png)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from donations.custom_fields import custom_field_create
from donations.models import Donation
from payments.models import Payment
from tests.dashboard.conftest import CHROMIUM_ARGS, browser, context, page, regime_rules, screenshot  # noqa: F401
from tests.engage.test_browser import fill_donor, no_horizontal_overflow
from tests.engage.test_services import ACTOR, connect, make_form
from tests.support.stripe import TEST_CARD, fill_card, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]


@pytest.fixture(autouse=True)
def _eager(settings):
    settings.RATE_LIMIT_ENABLED = False
    settings.PUBLIC_POST_RATE_LIMIT = "0"


def test_a_required_form_question_is_answered_and_recorded(page, live_server, stripe_webhooks, org):
    connected = connect(org)
    custom_field_create(organisation=connected, actor=ACTOR, applies_to="DONATION", key="heard_from",
                        label="How did you hear of us?", field_type="CHOICE", choices=["Friend", "Newsletter", "Other"],
                        required=True)
    form = make_form(connected, status="ACTIVE", slug="asks-e2e", title="Help protect the riverbank",
                     suggested_amounts_cents=[2500, 5000], custom_field_keys=["heard_from"])
    page.goto(f"/donate/{form.slug}")
    question = page.get_by_label(re.compile("How did you hear of us"))
    expect(question).to_be_visible()
    page.locator("label.amount-button", has_text="$25").click()
    fill_donor(page, email="asked@example.org")
    fill_card(page, TEST_CARD)
    question.evaluate("el => el.removeAttribute('required')")  # let the server refuse it, as a script-less post would be
    page.click("#pay-button")
    expect(page.locator("#error-cf_heard_from")).to_be_visible(timeout=30_000)
    expect(question).to_have_attribute("aria-invalid", "true")
    assert not Payment.objects.filter(form=form).exists()
    screenshot(page, "custom-fields-donate-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    no_horizontal_overflow(page)
    screenshot(page, "custom-fields-donate-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    question.select_option("Newsletter")
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/pay/c[0-9a-z]{23}$"), timeout=30_000)
    payment = Payment.objects.get(form=form)
    donation = wait_until(lambda: Donation.objects.filter(organisation=connected, stripe_payment_intent_id=payment.payment_intent_id,
                                                         status="CONFIRMED").first(), message="the card donation")
    assert donation.custom_fields == {"heard_from": "Newsletter"}
