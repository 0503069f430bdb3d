"""The donor's management link (/plans/<token>, payments/selfservice.py and
payments/plan_links.py) against localstripe and PostgreSQL: what the donor can
change through it (amount, frequency, card, pause, cancel) through the plan
services with an actor naming the donor, and when it refuses (expired, tampered,
another plan's, after cancelling). A card update and the pages at 390 px in Chromium."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from django.conf import settings
from django.core import mail, signing
from django.test import Client
from django.utils import timezone

from organisations.models import AuditEntry
from payments import plan_links, recurring
from payments.models import RecurringPlan
from tests.dashboard.conftest import CHROMIUM_ARGS, browser, context, page, regime_rules  # noqa: F401
from tests.payments.helpers import SYSTEM, connect, make_donor, make_form
from tests.recurring.helpers import card_plan, manual_plan, stripe_for
from tests.support import stripe as fake_stripe
from tests.support.tenant_guard import guard_requests
from together.exceptions import NotFound, ValidationFailed
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("localstripe")

MASTERCARD = "5555555555554444"


@pytest.fixture(autouse=True)
def _public_settings(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"
    with guard_requests():  # every page and POST runs under the second tenancy guard
        yield


def today():
    return timezone.localdate()


def make_plan(org, *, email="regular@example.org", amount_cents=2500, frequency="MONTHLY", **fields):
    if not org.stripe_connected:
        connect(org)
    donor = make_donor(org, first_name="Rae", last_name="Regular", email=email)
    return card_plan(org, donor, amount_cents=amount_cents, frequency=frequency, start=today(), **fields)


def url(plan, *, now=None, suffix=""):
    return f"/plans/{plan_links.plan_manage_token(plan=plan, now=now)}{suffix}"


def last_event(plan, type_):
    return Event.objects.filter(organisation=plan.organisation, type=type_, data__id=plan.id).order_by("-created_at").first()


def confirm_setup(client_secret: str, number: str) -> dict:
    """What Stripe.js confirmCardSetup sends (publishable key, client secret, the card)."""
    seti = client_secret.split("_secret_")[0]
    body = requests.post(f"{fake_stripe.api_base()}/v1/setup_intents/{seti}/confirm", timeout=30, json={
        "key": settings.STRIPE_TEST_PUBLISHABLE_KEY, "client_secret": client_secret, "use_stripe_sdk": True,
        "payment_method_data": {"type": "card", "card": fake_stripe.card(number)}}).json()
    return body


# --- the page ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_page_shows_its_plan_with_the_card_and_is_never_cached(org, client):
    plan = make_plan(org, amount_cents=2500)
    response = client.get(url(plan))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your monthly gift" in html and "$25" in html and "a month" in html
    assert "Visa ending 4242" in html
    assert plan.next_bill_date.strftime("%-d %B %Y") in html
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "same-origin"
    assert "noindex" in response["X-Robots-Tag"]
    assert 'id="card-form"' in html and "js/plan_manage.js" in html
    assert "<script>" not in html  # no inline script (CSP)


# --- changes -----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_donor_changes_the_amount_and_the_frequency(org, client):
    plan = make_plan(org, amount_cents=2500)
    next_date = plan.next_bill_date
    response = client.post(url(plan, suffix="/change"), {"amount": "40.50", "frequency": "FORTNIGHTLY"})
    assert response.status_code == 303 and response["Location"].endswith("?done=changed")
    plan.refresh_from_db()
    assert (plan.amount_cents, plan.frequency, plan.next_bill_date) == (4050, "FORTNIGHTLY", next_date)
    event = last_event(plan, "recurring_plan.updated")
    assert event.data["amount_cents"] == 4050 and event.data["frequency"] == "FORTNIGHTLY"
    audit = AuditEntry.objects.filter(organisation=org, action="recurring_plan.updated", object_id=plan.id).latest("created_at")
    assert audit.actor_id == plan.donor_id and audit.actor_label == "Donor Rae Regular (plan management link)"
    page = client.get(response["Location"]).content.decode()
    assert "Your gift is updated." in page and "$40.50" in page and "a fortnight" in page


@pytest.mark.django_db
def test_a_change_outside_the_rules_is_refused_beside_its_field(org, client):
    connect(org)
    form = make_form(org, recurring_frequencies=["MONTHLY", "QUARTERLY"], minimum_cents=1000, maximum_cents=50000)
    plan = make_plan(org, amount_cents=2500)
    RecurringPlan.objects.filter(pk=plan.pk).update(form=form)
    for data, field, text in (
        ({"amount": "ten dollars", "frequency": "MONTHLY"}, "amount", "Enter"),
        ({"amount": "5", "frequency": "MONTHLY"}, "amount", "The smallest gift is $10."),
        ({"amount": "600", "frequency": "MONTHLY"}, "amount", "The largest gift is $500."),
        ({"amount": "25", "frequency": "WEEKLY"}, "frequency", "Choose one of the frequencies shown."),
    ):
        response = client.post(url(plan, suffix="/change"), data)
        assert response.status_code == 400, data
        html = response.content.decode()
        assert re.search(rf'id="error-{field}"\s*>[^<]*{re.escape(text)}', html), (data, html)
        assert "Your gift was not changed" in html
    plan.refresh_from_db()
    assert (plan.amount_cents, plan.frequency) == (2500, "MONTHLY")
    # The page offers only the form's frequencies.
    html = client.get(url(plan)).content.decode()
    assert 'value="QUARTERLY"' in html and 'value="WEEKLY"' not in html


@pytest.mark.django_db
def test_pause_and_restart_by_the_donor_but_not_a_pause_by_staff(org, client):
    plan = make_plan(org)
    response = client.post(url(plan, suffix="/pause"))
    assert response.status_code == 303 and response["Location"].endswith("?done=paused")
    plan.refresh_from_db()
    assert (plan.status, plan.pause_reason) == ("PAUSED", "DONOR")
    assert last_event(plan, "recurring_plan.paused").data["pause_reason"] == "DONOR"
    html = client.get(url(plan)).content.decode()
    assert "Paused by you" in html and 'id="resume-button"' in html and 'id="pause-button"' not in html
    assert client.post(url(plan, suffix="/resume")).status_code == 303
    plan.refresh_from_db()
    assert plan.status == "ACTIVE" and plan.next_bill_date >= today()
    # Staff pause it: the donor sees who, and cannot restart it.
    recurring.plan_pause(organisation=org, actor=SYSTEM, plan_id=plan.id, reason="STAFF")
    html = client.get(url(plan)).content.decode()
    assert f"Paused by {org.name}" in html and 'id="resume-button"' not in html
    response = client.post(url(plan, suffix="/resume"))
    assert response.status_code == 400 and "please contact them" in response.content.decode()
    plan.refresh_from_db()
    assert (plan.status, plan.pause_reason) == ("PAUSED", "STAFF")


@pytest.mark.django_db
def test_cancel_confirms_then_cancels_and_the_link_stops_working(org, client):
    plan = make_plan(org)
    link = url(plan)
    confirm = client.get(link + "/cancel")
    assert confirm.status_code == 200 and "Cancel your monthly gift?" in confirm.content.decode()
    plan.refresh_from_db()
    assert plan.status == "ACTIVE"  # looking at the question changes nothing
    response = client.post(link + "/cancel")
    assert response.status_code == 200 and "Your monthly gift is cancelled" in response.content.decode()
    plan.refresh_from_db()
    assert plan.status == "CANCELED" and plan.next_bill_date is None and plan.manage_link_version == 2
    assert last_event(plan, "recurring_plan.canceled") is not None
    # The link used to cancel, and every POST through it, are refused now.
    again = client.get(link)
    assert again.status_code == 410 and "This link no longer works" in again.content.decode()
    assert client.post(link + "/change", {"amount": "50", "frequency": "MONTHLY"}).status_code == 410
    assert client.post(link + "/card/intent").status_code == 410
    # A link sent after (staff) shows a cancelled plan with nothing left to do.
    html = client.get(url(plan)).content.decode()
    assert "Cancelled" in html and "nothing more will be charged" in html and "<form" not in html.split("</header>")[1]


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_an_expired_link_is_refused(org, client, settings):
    plan = make_plan(org)
    now = timezone.now()
    old = url(plan, now=now - dt.timedelta(days=31))
    response = client.get(old)
    assert response.status_code == 410 and "This link has expired" in response.content.decode()
    assert "work for 30 days" in response.content.decode() and org.name in response.content.decode()
    assert client.post(old + "/pause").status_code == 410
    plan.refresh_from_db()
    assert plan.status == "ACTIVE"
    assert client.get(url(plan, now=now - dt.timedelta(days=29))).status_code == 200
    # The lifetime is a setting; the signer's max_age decides.
    settings.PLAN_MANAGE_LINK_DAYS = 1
    assert client.get(url(plan, now=now - dt.timedelta(days=2))).status_code == 410
    token = plan_links.plan_manage_token(plan=plan)
    assert plan_links.plan_from_token(token=token).id == plan.id
    with pytest.raises(plan_links.LinkRefused) as refused:
        plan_links.plan_from_token(token=token, max_age=dt.timedelta(seconds=-1))
    assert refused.value.reason == "expired"


@pytest.mark.django_db
def test_a_tampered_token_or_another_plans_is_404_and_shows_no_plan(org, other_org, client):
    plan = make_plan(org, amount_cents=2500)
    other = make_plan(other_org, email="someone.else@example.org", amount_cents=9900)
    token = plan_links.plan_manage_token(plan=plan)
    _value, stamp, signature = token.rsplit(":", 2)
    forged = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),                         # signature edited
        f"{other.id}.{other.manage_link_version}:{stamp}:{signature}",           # another plan's id, this signature
        f"{plan.id}.{plan.manage_link_version + 1}:{stamp}:{signature}",         # a version made up
        signing.TimestampSigner(salt="another.salt").sign(f"{plan.id}.1"),       # signed for something else
        f"{plan.id}.1", "nonsense", "x" * 300,
    ]
    for bad in forged:
        response = client.get(f"/plans/{bad}")
        assert response.status_code == 404, bad
        html = response.content.decode()
        assert "This link isn&#x27;t valid" in html and "$25" not in html and "$99" not in html
        assert client.post(f"/plans/{bad}/cancel").status_code == 404
    # Each genuine link shows its own plan only.
    assert "$99" in client.get(url(other)).content.decode() and "$25" not in client.get(url(other)).content.decode()
    for p in (plan, other):
        p.refresh_from_db()
        assert p.status == "ACTIVE"


@pytest.mark.django_db
def test_posts_need_the_csrf_token_and_take_the_public_limit(org, settings):
    plan = make_plan(org)
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(url(plan, suffix="/pause")).status_code == 403
    plan.refresh_from_db()
    assert plan.status == "ACTIVE"
    settings.PUBLIC_POST_RATE_LIMIT = "2/600"
    client = Client()
    for amount in ("30", "31"):
        assert client.post(url(plan, suffix="/change"), {"amount": amount, "frequency": "MONTHLY"}).status_code == 303
    response = client.post(url(plan, suffix="/change"), {"amount": "99", "frequency": "MONTHLY"})
    assert response.status_code == 429 and "Too many changes" in response.content.decode()
    plan.refresh_from_db()
    assert plan.amount_cents == 3100


# --- the card ------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_donor_saves_a_new_card_through_a_setup_intent(org, client):
    plan = make_plan(org)
    old_method = plan.stripe_payment_method_id
    answer = client.post(url(plan, suffix="/card/intent"))
    assert answer.status_code == 200
    client_secret = answer.json()["client_secret"]
    seti = client_secret.split("_secret_")[0]
    # Saving before Stripe confirmed it changes nothing.
    early = client.post(url(plan, suffix="/card"), {"setup_intent": seti})
    assert early.status_code == 400 and "not saved" in early.json()["refusal"]
    assert confirm_setup(client_secret, MASTERCARD)["status"] == "succeeded"
    saved = client.post(url(plan, suffix="/card"), {"setup_intent": seti})
    assert saved.status_code == 200 and saved.json()["return_url"].endswith("?done=card")
    plan.refresh_from_db()
    assert plan.stripe_payment_method_id != old_method
    method = stripe_for(org).v1.payment_methods.retrieve(plan.stripe_payment_method_id)
    assert method.customer == plan.stripe_customer_id and method.card.last4 == "4444"
    assert last_event(plan, "recurring_plan.updated").data["stripe_payment_method_id"] == plan.stripe_payment_method_id
    assert "ending 4444" in client.get(saved.json()["return_url"]).content.decode()


@pytest.mark.django_db
def test_a_card_saved_for_another_plan_or_declined_is_not_taken(org, client):
    plan = make_plan(org)
    other = make_plan(org, email="other.donor@example.org")
    method = plan.stripe_payment_method_id
    secret = client.post(url(other, suffix="/card/intent")).json()["client_secret"]
    assert confirm_setup(secret, MASTERCARD)["status"] == "succeeded"
    response = client.post(url(plan, suffix="/card"), {"setup_intent": secret.split("_secret_")[0]})
    assert response.status_code == 400 and "not for this gift" in response.json()["refusal"]
    declined = client.post(url(plan, suffix="/card/intent")).json()["client_secret"]
    body = confirm_setup(declined, fake_stripe.DECLINED_CARD)
    assert body["error"]["message"] == fake_stripe.DECLINE_MESSAGE and body["error"]["type"] == "card_error"
    assert client.post(url(plan, suffix="/card"), {"setup_intent": declined.split("_secret_")[0]}).status_code == 400
    assert client.post(url(plan, suffix="/card"), {"setup_intent": "pm_notasetup"}).status_code == 400
    plan.refresh_from_db()
    assert plan.stripe_payment_method_id == method


@pytest.mark.django_db
def test_a_manual_plan_has_no_card_section(org, client):
    donor = make_donor(org, email="standing.order@example.org")
    plan = manual_plan(org, donor, start=today())
    html = client.get(url(plan)).content.decode()
    assert "Bank standing order" in html and 'id="card-form"' not in html and "change the standing order with your bank" in html
    assert client.post(url(plan, suffix="/card/intent")).status_code == 400


# --- staff send the link again --------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_staff_send_a_fresh_link_that_opens_the_plan(org, other_org, client):
    plan = make_plan(org)
    mail.outbox.clear()
    plan_links.plan_manage_link_send(organisation=org, actor=SYSTEM, plan_id=plan.id)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["regular@example.org"] and "Manage your monthly gift" in message.subject
    link = re.search(r"https?://\S+/plans/(\S+)", message.body).group(0)
    assert client.get(link.replace(settings.SITE_URL, "")).status_code == 200
    assert AuditEntry.objects.filter(organisation=org, action="recurring_plan.manage_link_sent", object_id=plan.id).exists()
    with pytest.raises(NotFound):
        plan_links.plan_manage_link_send(organisation=other_org, actor=SYSTEM, plan_id=plan.id)
    recurring.plan_cancel(organisation=org, actor=SYSTEM, plan_id=plan.id)
    with pytest.raises(ValidationFailed) as refused:
        plan_links.plan_manage_link_send(organisation=org, actor=SYSTEM, plan_id=plan.id)
    assert refused.value.param == "status"
    no_email = make_plan(org, email="")
    with pytest.raises(ValidationFailed) as refused:
        plan_links.plan_manage_link_send(organisation=org, actor=SYSTEM, plan_id=no_email.id)
    assert refused.value.param == "donor_id"
    assert len(mail.outbox) == 1


# --- in Chromium ---------------------------------------------------------------------------------

PHONE = {"width": 390, "height": 844}


def no_horizontal_overflow(page):
    """Nothing scrolls sideways, and no box sticks out of the page's column (a fieldset
    grows to its content's min-content width: a row of buttons can push it out)."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"page is {width}px wide at {page.viewport_size['width']}px"
    outside = page.evaluate("""() => {
        const edge = document.querySelector('main').getBoundingClientRect().right + 0.5;
        return [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > edge)
            .map(e => e.tagName + '#' + e.id + '.' + e.className);
    }""")
    assert not outside, f"sticking out of the column at {page.viewport_size['width']}px: {outside}"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("regime_rules")
def test_the_donor_manages_their_gift_in_chromium(page, live_server, org):
    from playwright.sync_api import expect

    from tests.dashboard.conftest import screenshot

    plan = make_plan(org, amount_cents=2500)
    link = url(plan)
    page.goto(link)
    expect(page.locator("h1")).to_have_text("Your monthly gift")
    expect(page.locator("#plan-card")).to_contain_text("Visa ending 4242")
    expect(page.locator("#card-element input").first).to_be_visible()
    screenshot(page, "recurring-manage-desktop")
    page.set_viewport_size(PHONE)
    no_horizontal_overflow(page)
    screenshot(page, "recurring-manage-390")

    # A declined card: Stripe's message, nothing changes; then a good one is saved through confirmCardSetup.
    fake_stripe.fill_card(page, fake_stripe.DECLINED_CARD)
    page.click("#card-button")
    expect(page.locator("#card-errors")).to_have_text(fake_stripe.DECLINE_MESSAGE, timeout=20_000)
    expect(page.locator("#card-button")).to_be_enabled()
    fake_stripe.fill_card(page, MASTERCARD)
    page.click("#card-button")
    page.wait_for_url(re.compile(r"\?done=card$"), timeout=20_000)
    expect(page.locator("#plan-done")).to_contain_text("Your new card is saved")
    expect(page.locator("#plan-card")).to_contain_text("ending 4444")
    plan.refresh_from_db()
    assert stripe_for(org).v1.payment_methods.retrieve(plan.stripe_payment_method_id).card.last4 == "4444"

    # The amount and how often.
    page.fill("#plan-amount-input", "0.20")
    page.click("#change-button")
    expect(page.locator("#error-amount")).to_have_text("The smallest gift is $0.50.")
    expect(page.locator("#plan-amount-input")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "recurring-manage-error-390")
    page.fill("#plan-amount-input", "35")
    page.get_by_role("radiogroup", name="How often").get_by_text("Quarterly").click()
    page.click("#change-button")
    page.wait_for_url(re.compile(r"\?done=changed$"))
    expect(page.locator("#plan-amount")).to_have_text("$35 a quarter")
    no_horizontal_overflow(page)
    screenshot(page, "recurring-manage-changed-390")
    plan.refresh_from_db()
    assert (plan.amount_cents, plan.frequency) == (3500, "QUARTERLY")

    # Pause, restart, then cancel (confirm page first); the link then stops working.
    page.click("#pause-button")
    page.wait_for_url(re.compile(r"\?done=paused$"))
    expect(page.locator("#plan-status")).to_have_text("Paused by you")
    page.click("#resume-button")
    page.wait_for_url(re.compile(r"\?done=resumed$"))
    expect(page.locator("#plan-status")).to_have_text("Active")
    page.click("#cancel-button")
    expect(page.locator("h1")).to_have_text("Cancel your quarterly gift?")
    no_horizontal_overflow(page)
    screenshot(page, "recurring-manage-cancel-390")
    page.click("#confirm-cancel")
    expect(page.locator("h1")).to_have_text("Your quarterly gift is cancelled")
    screenshot(page, "recurring-manage-cancelled-390")
    plan.refresh_from_db()
    assert plan.status == "CANCELED"
    page.goto(link)
    expect(page.locator("h1")).to_have_text("This link no longer works")
    no_horizontal_overflow(page)
    screenshot(page, "recurring-manage-revoked-390")
