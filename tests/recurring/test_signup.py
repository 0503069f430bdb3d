"""Signing up for a recurring gift on a donation form (issue 17, item 2), against
localstripe and PostgreSQL: the donor picks One-off or one of the form's
frequencies; a recurring gift's PaymentIntent saves the card to a Stripe customer
(setup_future_usage=off_session); once paid, the plan is ACTIVE with its next date
one period on, the first gift is its period 1, the card is on the plan, and the
donor is emailed their management link. End to end in Chromium, plus the page and
the intent endpoint through the test client."""
from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from donations.models import Donation
from payments import billing
from payments.models import Payment, RecurringPlan
from payments.recurring import add_months
from tests.dashboard.conftest import CHROMIUM_ARGS, browser, context, page, regime_rules, screenshot  # noqa: F401
from tests.payments.helpers import connect, make_form
from tests.recurring.helpers import at, stripe_for
from tests.support import stripe as fake_stripe
from tests.support.stripe import TEST_CARD, fill_card, wait_until
from tests.support.tenant_guard import guard_requests

pytestmark = pytest.mark.usefixtures("localstripe")

PHONE = {"width": 390, "height": 844}
DONOR_FIELDS = {"first_name": "Mo", "last_name": "Monthly", "email": "mo.monthly@example.org", "address_line1": "3 Creek Rd",
                "suburb": "Bendigo", "state": "VIC", "postcode": "3550", "country": "AU"}


@pytest.fixture(autouse=True)
def _public_settings(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"
    settings.RATE_LIMIT_ENABLED = False
    with guard_requests():
        yield


def recurring_form(org, **fields):
    if not org.stripe_connected:
        connect(org)
    fields = {"suggested_amounts_cents": [2500, 5000, 10000], "default_amount_cents": 5000, "allow_recurring": True,
              "recurring_frequencies": ["MONTHLY", "WEEKLY", "ANNUALLY"], **fields}
    return make_form(org, **fields)


def no_horizontal_overflow(page):
    """Nothing scrolls sideways, and no box sticks out of the page's column."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide at {page.viewport_size['width']}px"
    outside = page.evaluate("""() => {
        const edge = document.querySelector('main').getBoundingClientRect().right + 0.5;
        return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > edge)
            .map(e => e.tagName + '#' + e.id + '.' + e.className);
    }""")
    assert not outside, f"sticking out of the column at {page.viewport_size['width']}px: {outside}"


def manage_link(message) -> str:
    return re.search(r"https?://\S+(/plans/\S+)", message.body).group(1)


# --- Chromium, end to end -------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_a_monthly_gift_by_card_sets_up_the_plan_end_to_end(page, live_server, stripe_webhooks, org):
    form = recurring_form(org, slug="monthly-e2e", title="Become a monthly supporter")
    mail.outbox.clear()
    page.goto(f"/donate/{form.slug}")
    group = page.get_by_role("group", name="How often?")
    expect(group.get_by_role("radio")).to_have_count(4)  # One-off and the form's three, in the usual order
    expect(group.get_by_role("radio", name="One-off")).to_be_checked()
    expect(page.locator("#pay-button")).to_have_text("Give $50")
    page.locator("label.amount-button", has_text="Monthly").click()
    expect(group.get_by_role("radio", name="Monthly")).to_be_checked()
    expect(page.locator("#pay-button")).to_have_text("Give $50 monthly")
    for name in ("first_name", "last_name", "email", "address_line1", "suburb", "state", "postcode"):
        page.fill(f"#id_{name}", DONOR_FIELDS[name])
    fill_card(page, TEST_CARD)
    screenshot(page, "recurring-signup-desktop")
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/pay/c[0-9a-z]{23}$"), timeout=30_000)
    expect(page.locator("h1")).to_have_text("Thank you for your gift")
    today = timezone.localdate()
    next_date = add_months(today, 1)
    expect(page.locator("#plan-status")).to_contain_text("You've set up a monthly gift of $50.00")
    expect(page.locator("#plan-next")).to_have_text(f"{next_date.day} {next_date.strftime('%B %Y')}")
    screenshot(page, "recurring-signup-thanks")
    page.set_viewport_size(PHONE)
    no_horizontal_overflow(page)
    screenshot(page, "recurring-signup-thanks-390")

    plan = RecurringPlan.objects.get(organisation=org)
    assert (plan.status, plan.frequency, plan.amount_cents, plan.payment_method) == ("ACTIVE", "MONTHLY", 5000, "CARD")
    assert (plan.start_date, plan.next_bill_date, plan.payments_made, plan.form_id) == (today, next_date, 1, form.id)
    payment = Payment.objects.get(form=form)
    assert (payment.plan_id, payment.period, payment.frequency) == (plan.id, today, "MONTHLY")
    gift = wait_until(lambda: Donation.objects.filter(organisation=org, status="CONFIRMED").first(), message="the first gift")
    assert (gift.recurring_plan_id, gift.recurring_period, gift.amount_cents) == (plan.id, today, 5000)
    assert gift.donor_id == plan.donor_id and plan.donor.email == "mo.monthly@example.org"
    # The card is saved for off-session use: the intent's customer and method are the plan's.
    sc = stripe_for(org)
    intent = sc.v1.payment_intents.retrieve(payment.payment_intent_id)
    assert intent.setup_future_usage == "off_session"
    assert plan.stripe_customer_id == intent.customer == payment.stripe_customer_id
    assert plan.stripe_payment_method_id == intent.payment_method
    assert sc.v1.payment_methods.retrieve(plan.stripe_payment_method_id).customer == plan.stripe_customer_id

    # The donor's email has their management link, and it opens this plan.
    message = wait_until(lambda: [m for m in mail.outbox if "mo.monthly@example.org" in m.to], message="the sign-up email")[0]
    assert "Your monthly gift" in message.subject and "$50" in message.body
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(manage_link(message))
    expect(page.locator("h1")).to_have_text("Your monthly gift")
    expect(page.locator("#plan-card")).to_contain_text("Visa ending 4242")
    expect(page.locator("#plan-next")).to_have_text(f"{next_date.day} {next_date.strftime('%B %Y')}")

    # The saved card pays the next period, off-session, with nobody there.
    assert billing.billing_run(now=at(next_date)) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date) == (2, add_months(today, 2))


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_every_frequency_fits_a_phone(page, live_server, org):
    form = recurring_form(org, recurring_frequencies=["WEEKLY", "FORTNIGHTLY", "MONTHLY", "QUARTERLY", "ANNUALLY"])
    page.set_viewport_size(PHONE)
    page.goto(f"/donate/{form.slug}")
    group = page.get_by_role("group", name="How often?")
    expect(group.get_by_role("radio")).to_have_count(6)
    group.get_by_text("Fortnightly").click()
    expect(page.locator("#pay-button")).to_have_text("Give $50 fortnightly")
    page.locator("label.amount-button", has_text="One-off").click()
    expect(page.locator("#pay-button")).to_have_text("Give $50")
    no_horizontal_overflow(page)
    screenshot(page, "recurring-signup-390")


# --- the page and the intent endpoint ---------------------------------------------------------------

@pytest.mark.django_db
def test_the_frequency_choice_shows_only_when_the_form_allows_recurring(org):
    client = Client()
    offered = recurring_form(org, recurring_frequencies=["ANNUALLY", "MONTHLY"])
    html = client.get(f"/donate/{offered.slug}").content.decode()
    assert "<legend>How often?</legend>" in html
    values = re.findall(r'name="frequency" value="([A-Z]*)"', html)
    assert values == ["", "MONTHLY", "ANNUALLY"]
    assert re.search(r'name="frequency" value=""[^>]*checked', html)  # one-off unless the donor chooses
    one_off = recurring_form(org, allow_recurring=False, recurring_frequencies=[])
    html = client.get(f"/donate/{one_off.slug}").content.decode()
    assert 'name="frequency"' not in html and "A one-off gift in Australian dollars" in html


def intent(client, form, **data):
    body = {"attempt_key": f"form:{'k' * 30}{data.pop('key', '')}", "amount": "5000", **DONOR_FIELDS, **data}
    return client.post(f"/donate/{form.slug}/intent", body)


@pytest.mark.django_db
def test_a_frequency_the_form_does_not_offer_is_refused_before_any_payment(org):
    client = Client()
    form = recurring_form(org, recurring_frequencies=["MONTHLY"])
    response = intent(client, form, frequency="WEEKLY")
    assert response.status_code == 400
    assert response.json()["errors"] == {"frequency": ["Choose how often to give from the options shown."]}
    closed = recurring_form(org, allow_recurring=False, recurring_frequencies=[])
    assert intent(client, closed, frequency="MONTHLY").json()["errors"]["frequency"]
    assert not Payment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_recurring_intent_saves_the_card_and_the_paid_gift_starts_the_plan(org):
    client = Client()
    form = recurring_form(org)
    mail.outbox.clear()
    response = intent(client, form, frequency="weekly", key="w")
    assert response.status_code == 200
    payment = Payment.objects.get(form=form)
    assert payment.frequency == "WEEKLY" and payment.stripe_customer_id
    pi = stripe_for(org).v1.payment_intents.retrieve(payment.payment_intent_id)
    assert (pi.customer, pi.setup_future_usage) == (payment.stripe_customer_id, "off_session")
    assert "paymentIntent" in fake_stripe.pay_intent(response.json()["client_secret"])
    thanks = client.get(response.json()["return_url"]).content.decode()
    plan = RecurringPlan.objects.get(organisation=org)
    assert (plan.frequency, plan.amount_cents, plan.status) == ("WEEKLY", 5000, "ACTIVE")
    assert plan.next_bill_date == timezone.localdate() + timezone.timedelta(days=7)
    assert "weekly gift of $50.00" in thanks and plan.next_bill_date.strftime("%B %Y") in thanks
    (message,) = [m for m in mail.outbox if DONOR_FIELDS["email"] in m.to]
    assert client.get(manage_link(message)).status_code == 200
    assert settings.SITE_URL in message.body


@pytest.mark.django_db(transaction=True)
def test_a_one_off_gift_saves_no_card_and_starts_no_plan(org):
    client = Client()
    form = recurring_form(org)
    response = intent(client, form, frequency="", key="o")
    payment = Payment.objects.get(form=form)
    assert payment.frequency is None and payment.stripe_customer_id is None
    pi = stripe_for(org).v1.payment_intents.retrieve(payment.payment_intent_id)
    assert pi.customer is None and not getattr(pi, "setup_future_usage", None)
    fake_stripe.pay_intent(response.json()["client_secret"])
    thanks = client.get(response.json()["return_url"]).content.decode()
    assert "Thank you for your gift" in thanks and 'id="plan-status"' not in thanks
    assert not RecurringPlan.objects.exists()
