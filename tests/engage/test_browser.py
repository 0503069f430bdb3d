"""Donation forms and checkout links end to end, in Chromium against the live
server and localstripe (Stripe.js's card Element and confirmCardPayment, Stripe's
signed events to /webhooks/stripe), with webhook deliveries to a real receiver.
Screenshots land in artifacts/screenshots/ (engage-*.png)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from django.utils import timezone
from playwright.sync_api import expect

from donations.models import Donation
from engage import services
from engage.models import CheckoutLink, LinkStatus
from organisations.models import Role
from payments.models import Payment, StripeEvent
from tests.dashboard.conftest import CHROMIUM_ARGS, browser, context, make_user, page, regime_rules, screenshot, sign_in  # noqa: F401
from tests.engage.test_services import ACTOR, connect, make_form
from tests.support.api import make_donor, seed_donation
from tests.support.stripe import DECLINE_MESSAGE, DECLINED_CARD, TEST_CARD, fill_card, wait_until
from tests.webhooks.receiver import Receiver
from webhooks import transport
from webhooks.services import webhook_endpoint_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]

PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _eager(settings):
    """Webhook deliveries run inline after the commit (the live server's thread sends them)."""
    from together.celery import app

    settings.RATE_LIMIT_ENABLED = False
    settings.PUBLIC_POST_RATE_LIMIT = "0"
    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, False
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
    transport.pools_clear()


@pytest.fixture
def connected(org):
    return connect(org)


def fill_donor(page, *, email="jane.donor@example.org"):
    page.fill("#id_first_name", "Jane")
    page.fill("#id_last_name", "Donor")
    page.fill("#id_email", email)
    page.fill("#id_address_line1", "12 Riverbank Road")
    page.fill("#id_suburb", "Abbotsford")
    page.fill("#id_state", "VIC")
    page.fill("#id_postcode", "3067")


def no_horizontal_overflow(page):
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide at {page.viewport_size['width']}px"


def test_form_gift_by_card_lands_in_the_books_and_the_webhook(page, live_server, stripe_webhooks, receiver, connected):
    form = make_form(connected, status="ACTIVE", slug="riverbank-e2e", title="Help protect the riverbank",
                     description="Every gift funds our campaign to protect the riverbank parklands.",
                     suggested_amounts_cents=[2500, 5000, 10000, 25000, 50000], default_amount_cents=5000, revenue_code="WEB-E2E")
    endpoint = webhook_endpoint_create(organisation=connected, actor=ACTOR, url=receiver.url("/hook"),
                                       enabled_events=["donation.created"])
    receiver.on("/hook", endpoint.secret)

    page.goto(f"/donate/{form.slug}")
    expect(page.locator("h1")).to_have_text("Help protect the riverbank")
    expect(page.locator("#pay-button")).to_have_text("Give $50")
    expect(page.locator("#card-element input").first).to_be_visible()
    screenshot(page, "engage-donate-desktop")
    page.locator("label.amount-button", has_text="$100").click()
    expect(page.locator("#pay-button")).to_have_text("Give $100")
    fill_donor(page)
    fill_card(page, TEST_CARD)
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/pay/c[0-9a-z]{23}$"), timeout=30_000)
    expect(page.locator("h1")).to_have_text("Thank you for your gift")

    payment = Payment.objects.get(form=form)
    donation = wait_until(lambda: Donation.objects.filter(organisation=connected, stripe_payment_intent_id=payment.payment_intent_id,
                                                         status="CONFIRMED").first(), message="the card donation")
    assert (donation.source, donation.amount_cents, donation.revenue_code) == ("STRIPE", 10000, "WEB-E2E")
    assert donation.donor.email == "jane.donor@example.org" and donation.donor.postcode == "3067"
    assert donation.stripe_charge_id and donation.fee_cents is not None
    # Stripe's own event reached /webhooks/stripe (signed) and was processed
    wait_until(lambda: StripeEvent.objects.filter(type="payment_intent.succeeded", processed_at__isnull=False).exists(),
               message="payment_intent.succeeded from localstripe")
    # and our donation.created reached the organisation's endpoint, signed
    delivered = wait_until(lambda: [r for r in receiver.received("/hook") if r.json["data"].get("id") == donation.id],
                           message="donation.created delivered")
    assert delivered[0].valid and delivered[0].json["type"] == "donation.created"
    assert delivered[0].json["data"]["source"] == "STRIPE" and delivered[0].json["data"]["status"] == "CONFIRMED"


def test_declined_card_shows_the_error_and_records_no_gift(page, live_server, stripe_webhooks, connected):
    form = make_form(connected, status="ACTIVE", slug="declines-e2e")
    page.goto(f"/donate/{form.slug}")
    page.locator("label.amount-button", has_text="$25").click()
    fill_donor(page, email="declined@example.org")
    fill_card(page, DECLINED_CARD)
    page.click("#pay-button")
    expect(page.locator("#card-errors")).to_have_text(DECLINE_MESSAGE, timeout=30_000)
    expect(page.locator("#pay-button")).to_be_enabled()
    expect(page.locator("#pay-button")).to_have_text("Give $25")
    assert "/donate/" in page.url
    screenshot(page, "engage-donate-declined")
    assert not Donation.objects.filter(organisation=connected, status="CONFIRMED").exists()
    # the donor tries again with a good card: the same attempt, the same PaymentIntent, one gift
    fill_card(page, TEST_CARD)
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/pay/"), timeout=30_000)
    expect(page.locator("h1")).to_have_text("Thank you for your gift")
    assert Payment.objects.filter(form=form).count() == 1
    assert Donation.objects.filter(organisation=connected, status="CONFIRMED", amount_cents=2500).count() == 1


def test_field_errors_show_beside_their_fields(page, live_server, connected):
    make_form(connected, status="ACTIVE", slug="errors-e2e", allow_custom=True, maximum_cents=100000)
    page.goto("/donate/errors-e2e")
    page.fill("#other_amount", "5000")
    page.fill("#id_email", "not-an-email")
    fill_card(page, TEST_CARD)
    page.click("#pay-button")
    expect(page.locator("#error-other_amount")).to_contain_text("largest gift here is $1,000")
    expect(page.locator("#error-first_name")).to_be_visible()
    expect(page.locator("#error-address_line1")).to_contain_text("electoral law")
    expect(page.locator("#id_email")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#pay-refusal")).to_have_text("Please check the highlighted details.")
    assert not Payment.objects.exists()


def test_cap_refuses_before_any_payment(page, live_server, connected):
    from compliance import rules
    from compliance.services import revenue_code_create

    revenue_code_create(organisation=connected, actor=ACTOR, code="NSW-E2E", jurisdiction="NSW")
    form = make_form(connected, status="ACTIVE", slug="cap-e2e", suggested_amounts_cents=[10000], revenue_code="NSW-E2E")
    donor = make_donor(connected, first_name="Near", last_name="Cap", email="near.cap@example.org")
    today = timezone.localdate()
    cap = rules.cap_room(donor_id=None, jurisdiction="NSW", day=today)["cap"]
    seed_donation(connected, donor, amount_cents=cap - 5000, donation_date=today, revenue_code="NSW-E2E")
    page.goto(f"/donate/{form.slug}")
    page.locator("label.amount-button", has_text="$100").click()
    fill_donor(page, email="near.cap@example.org")
    fill_card(page, TEST_CARD)
    page.click("#pay-button")
    expect(page.locator("#pay-refusal")).to_contain_text("We can't accept this gift online")
    expect(page.locator("#pay-button")).to_be_enabled()
    screenshot(page, "engage-donate-cap-refused")
    assert not Payment.objects.exists()  # no Payment, so no PaymentIntent was ever created
    assert Donation.objects.filter(donor=donor).count() == 1


def test_checkout_link_paid_once(page, live_server, stripe_webhooks, connected):
    donor = make_donor(connected, first_name="Alice", last_name="Ng", email="alice.ng@example.org",
                       address_line1="12 Riverbank Road", suburb="Abbotsford", state="VIC", postcode="3067")
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000,
                                         description="$250 donation from Alice Ng", revenue_code="LINK-E2E",
                                         consent_text="I confirm I am an Australian citizen or permanent resident.")
    page.goto(f"/c/{link.code}")
    expect(page.locator("h1")).to_have_text("$250 donation from Alice Ng")
    expect(page.locator("#pay-amount")).to_have_text("$250")
    expect(page.locator("#card-element input").first).to_be_visible()
    screenshot(page, "engage-checkout-desktop")
    page.check("#consent")
    fill_card(page, TEST_CARD)
    page.click("#pay-button")
    page.wait_for_url(re.compile(r"/pay/"), timeout=30_000)
    expect(page.locator("h1")).to_have_text("Thank you for your gift")

    link = wait_until(lambda: CheckoutLink.objects.filter(pk=link.pk, status=LinkStatus.COMPLETED).select_related("donation").first(),
                      message="the link completed")
    donation = link.donation
    assert (donation.source, donation.status, donation.amount_cents) == ("CHECKOUT_LINK", "CONFIRMED", 25000)
    assert donation.donor_id == donor.id and donation.revenue_code == "LINK-E2E"
    assert donation.consent_given is True and donation.consent_text == link.consent_text
    # a second payment is refused: the page says so, and the intent endpoint too
    page.goto(f"/c/{link.code}")
    expect(page.locator("h1")).to_have_text("This link has already been paid")
    expect(page.locator("#pay-form")).to_have_count(0)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    again = requests.post(f"{live_server.url}/c/{link.code}/intent", timeout=10, data={"attempt_key": f"link:{link.id}",
                          "csrfmiddlewaretoken": cookies.get("csrftoken", "")},
                          cookies=cookies, headers={"Referer": f"{live_server.url}/c/{link.code}"})
    assert again.status_code == 409 and "already been made" in again.json()["refusal"]
    assert Donation.objects.filter(organisation=connected, source="CHECKOUT_LINK").count() == 1


def test_expired_and_cancelled_links_refuse(page, live_server, connected):
    donor = make_donor(connected, first_name="Bo", last_name="Lee", email="bo.lee@example.org")
    expired = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=5000)
    CheckoutLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    cancelled = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=5000)
    services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=cancelled.id)
    response = page.goto(f"/c/{expired.code}")
    assert response.status == 410
    expect(page.locator("h1")).to_have_text("This link has expired")
    expect(page.locator("#pay-form")).to_have_count(0)
    screenshot(page, "engage-checkout-expired")
    response = page.goto(f"/c/{cancelled.code}")
    assert response.status == 410
    expect(page.locator("h1")).to_have_text("This link was cancelled")
    assert not Payment.objects.exists()


def test_pages_at_390_px_and_the_dashboard_lists(browser, live_server, connected):
    """The donation page, the checkout page and the dashboard's Engage lists on a phone and a desktop."""
    donor = make_donor(connected, first_name="Alice", last_name="Ng", email="alice.ng@example.org")
    make_form(connected, status="ACTIVE", slug="phone-e2e", title="Help protect the riverbank",
              description="Every gift funds our campaign to protect the riverbank parklands.",
              suggested_amounts_cents=[2500, 5000, 10000, 25000, 50000, 100000], default_amount_cents=5000)
    make_form(connected, slug="draft-e2e", name="Winter appeal (draft)", title="Winter appeal")
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000,
                                         description="$250 donation from Alice Ng",
                                         consent_text="I confirm I am an Australian citizen or permanent resident.")
    services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=1000)
    editor = make_user(connected, Role.EDITOR, name="Eddie Editor")
    for name, viewport in (("phone", PHONE), ("desktop", {"width": 1280, "height": 900})):
        ctx = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-AU", timezone_id="Australia/Sydney")
        try:
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            if name == "phone":
                page.goto("/donate/phone-e2e")
                expect(page.locator("#card-element input").first).to_be_visible()
                no_horizontal_overflow(page)
                screenshot(page, "engage-donate-phone")
                page.goto(f"/c/{link.code}")
                expect(page.locator("#card-element input").first).to_be_visible()
                no_horizontal_overflow(page)
                screenshot(page, "engage-checkout-phone")
            sign_in(ctx, editor, live_server, connected)
            page.goto("/engage/forms/")
            expect(page.locator("h1")).to_have_text("Forms")
            expect(page.get_by_role("link", name="Winter appeal (draft)")).to_be_visible()
            no_horizontal_overflow(page)
            screenshot(page, f"engage-forms-{name}")
            page.goto("/engage/checkout-links/")
            expect(page.locator("tbody tr")).to_have_count(2)
            no_horizontal_overflow(page)
            screenshot(page, f"engage-links-{name}")
            page.goto("/engage/checkout-links/new")
            page.fill("#donor-search", "alice")
            page.locator(".pick-donor").first.click()
            page.fill("#id_amount", "250")
            page.click("#suggest")
            expect(page.locator("#id_description")).to_have_value("$250 donation from Alice Ng")
            no_horizontal_overflow(page)
            screenshot(page, f"engage-link-new-{name}")
            page.goto(f"/engage/forms/{make_form_id(connected, 'phone-e2e')}/")
            no_horizontal_overflow(page)
            screenshot(page, f"engage-form-edit-{name}")
            assert not errors, errors
        finally:
            ctx.close()


def make_form_id(org, slug):
    from engage.models import DonationForm

    return DonationForm.objects.get(organisation=org, slug=slug).id


def test_new_link_in_the_dashboard(page, live_server, connected):
    """An editor picks a donor, lets Suggest fill the description, creates the link and copies its URL."""
    make_donor(connected, first_name="Priya", last_name="Raman", email="priya@example.org")
    editor = make_user(connected, Role.EDITOR)
    sign_in(page.context, editor, live_server, connected)
    page.goto("/engage/checkout-links/new")
    page.fill("#donor-search", "priya")
    page.locator(".pick-donor").first.click()
    expect(page.locator("#donor-chosen")).to_contain_text("Priya Raman")
    page.fill("#id_amount", "75")
    page.click("#suggest")
    expect(page.locator("#id_description")).to_have_value("$75 donation from Priya Raman")
    page.fill("#id_consent_text", "I am not a foreign donor.")
    page.click("#link-form button[type=submit]")
    expect(page.locator("#link-url")).to_contain_text("/c/")
    link = CheckoutLink.objects.get(organisation=connected)
    assert (link.amount_cents, link.description, link.consent_text) == (7500, "$75 donation from Priya Raman", "I am not a foreign donor.")
    expect(page.locator("#link-url")).to_have_text(re.compile(f"/c/{re.escape(link.code)}$"))
