"""Split card gifts on the giving form `/give/<id>` (issue 16, item 5), against
localstripe and PostgreSQL.

When the recommending organisation and every recipient are connected to Stripe,
the page takes one card payment for the total (static/js/pay.js + Stripe.js,
the intent from `/give/<id>/intent`); once it succeeds each recipient has one
CONFIRMED STRIPE donation in its own books and one Stripe transfer to its
connected account, in the payment's transfer group. A cap in any recipient's
books refuses before any payment exists (all parts or none). Without Stripe the
page still takes pledges.

Screenshots go to artifacts/ (gitignored)."""
from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from compliance import services as compliance
from compliance.services import PUBLIC_REFUSAL_MESSAGE
from donations import services as donation_services
from donations.models import Donation
from organisations.models import AuditEntry, Role
from organisations.services import organisation_stripe_connect
from payments.models import Payment, PaymentStatus
from payments.services import payment_sync
from recommendations import services
from recommendations.models import SplitGift
from tests.conftest import make_org
from tests.recommendations.conftest import SYSTEM, link, make_user

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"

DONOR_LABELS = {
    "First name": "Alice", "Last name": "Ng", "Email": "alice.card@example.org", "Address": "1 River St",
    "Suburb": "Fitzroy", "State": "VIC", "Postcode": "3065",
}
DONOR_POST = {"first_name": "Alice", "last_name": "Ng", "email": "alice.card@example.org", "address_line1": "1 River St",
              "suburb": "Fitzroy", "state": "VIC", "postcode": "3065", "country": "AU"}


def connect(organisation):
    return organisation_stripe_connect(organisation=organisation, actor=SYSTEM, account_id="acct_" + secrets.token_hex(8))


def world(*, connected=True, mode="FIXED", amounts=(2500, 5000, 7500)):
    """A recommending organisation and three recipient organisations linked to it
    (the real passphrase exchange), a set over them; all connected to Stripe unless told."""
    directing = make_org("Climate Collective")
    recipients = [make_org(name) for name in ("Riverbank Action Fund", "Coastal Climate", "Forest Futures")]
    links = [link(directing, r) for r in recipients]
    if connected:
        directing = connect(directing)
        recipients = [connect(r) for r in recipients]
    the_set = services.recommendation_set_create(
        organisation=directing, actor=SYSTEM, name=f"Climate distribution - {mode.title()}", amount_mode=mode,
        description="One gift, shared between three climate groups.",
        allocations=[{"recipient_org_account_link_id": x.id, "amount_cents": a} for x, a in zip(links, amounts)])
    return directing, recipients, the_set


def attempt_key(body: str) -> str:
    return re.search(r'name="attempt_key" value="([^"]+)"', body).group(1)


def intent(client, the_set, data):
    page = client.get(f"/give/{the_set.id}")
    return client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, "attempt_key": attempt_key(page.content.decode()),
                                                       **data})


def pay(client_secret):
    from tests.support.stripe import pay_intent

    return pay_intent(client_secret, publishable_key=settings.STRIPE_PUBLISHABLE_KEY)


def stripe_transfers(payment):
    from tests.support.stripe import client as stripe_client

    listed = stripe_client(settings.STRIPE_SECRET_KEY).v1.transfers.list(
        params={"transfer_group": payment.transfer_group, "limit": 100})
    return sorted(listed.data, key=lambda t: t.destination)


def assert_landed_in_each_recipients_books(payment, recipients, amounts):
    """One CONFIRMED STRIPE donation per part in that recipient's books, one transfer
    per part to that recipient's connected account, in the payment's transfer group."""
    assert payment.status == PaymentStatus.SUCCEEDED and payment.kind == "SPLIT"
    parts = list(payment.parts.select_related("donation", "recipient_organisation").order_by("position"))
    assert [(p.recipient_organisation_id, p.amount_cents) for p in parts] == [
        (r.id, a) for r, a in zip(recipients, amounts) if a]
    for part in parts:
        recipient = part.recipient_organisation
        books = Donation.objects.for_organisation(recipient)
        assert books.count() == 1
        donation = books.select_related("donor").get()
        assert donation.id == part.donation_id
        assert (donation.status, donation.source, donation.amount_cents) == ("CONFIRMED", "STRIPE", part.amount_cents)
        assert donation.donor.email == DONOR_POST["email"] and donation.donor.organisation_id == recipient.id
        assert donation.stripe_payment_intent_id == payment.payment_intent_id and donation.stripe_charge_id
        assert donation.fee_cents == part.fee_cents and donation.net_cents == part.amount_cents - part.fee_cents
        assert donation.metadata["recommendation_set_id"] == payment.recommendation_set_id
        assert donation.stripe_transfer_id == part.stripe_transfer_id
    transfers = stripe_transfers(payment)
    assert len(transfers) == len(parts)
    by_destination = {t.destination: t for t in transfers}
    assert set(by_destination) == {p.recipient_organisation.stripe_account_id for p in parts}
    for part in parts:
        transfer = by_destination[part.recipient_organisation.stripe_account_id]
        assert (transfer.id, transfer.amount, transfer.transfer_group) == (
            part.stripe_transfer_id, part.amount_cents - part.fee_cents, payment.transfer_group)
        assert transfer.source_transaction == payment.stripe_charge_id
    # Nothing lands in the recommending organisation's own books; no pledge is stored for a card gift.
    assert not Donation.objects.for_organisation(payment.organisation).exists()
    assert not SplitGift.objects.filter(recommendation_set_id=payment.recommendation_set_id).exists()


# --- the page and its intent endpoint (no browser) ----------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("mode, amounts, posted, expected", [
    ("FIXED", (2500, 5000, 7500), {}, (2500, 5000, 7500)),
    ("SUGGESTED", (2500, 5000, 7500), {"amount_0": "25", "amount_1": "10.50", "amount_2": "0"}, (2500, 1050, 0)),
    ("OPEN", (0, 0, 0), {"amount_0": "", "amount_1": "$40", "amount_2": "5.25"}, (0, 4000, 525)),
])
def test_each_amount_mode_pays_by_card_into_each_recipients_books(localstripe, mode, amounts, posted, expected):
    directing, recipients, the_set = world(mode=mode, amounts=amounts)
    client = Client()
    page = client.get(f"/give/{the_set.id}")
    body = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    assert 'id="pay-form"' in body and f'data-intent-url="/give/{the_set.id}/intent"' in body
    assert f'data-stripe-key="{settings.STRIPE_PUBLISHABLE_KEY}"' in body and 'id="card-element"' in body
    assert settings.STRIPE_JS_URL in body and "Pledge my gift" not in body
    response = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, "attempt_key": attempt_key(body), **posted})
    assert response.status_code == 200, response.content
    answer = response.json()
    payment = Payment.objects.get(organisation=directing)
    assert answer == {"client_secret": payment.client_secret, "return_url": f"/pay/{payment.id}"}
    assert (payment.kind, payment.source, payment.amount_cents, payment.recommendation_set_id) == (
        "SPLIT", "STRIPE", sum(expected), the_set.id)
    assert not Donation.objects.filter(organisation__in=recipients).exists()  # nothing until the money is in
    assert "paymentIntent" in pay(payment.client_secret)
    payment = payment_sync(payment_intent_id=payment.payment_intent_id)
    assert_landed_in_each_recipients_books(payment, recipients, expected)
    # The donor's status page names each share.
    status_page = Client().get(f"/pay/{payment.id}").content.decode()
    for recipient, amount in zip(recipients, expected):
        assert (recipient.name in status_page) == bool(amount)


@pytest.mark.django_db
def test_the_intent_checks_like_the_form(localstripe):
    directing, recipients, the_set = world(mode="SUGGESTED")
    client = Client()
    # The donor's details: every missing one named, as on the form.
    response = intent(client, the_set, {"first_name": "", "email": "not-an-email", "amount_0": "0.50"})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "first_name" in errors or "amount_0" in errors
    response = intent(client, the_set, {"amount_0": "0.50"})
    assert response.status_code == 400 and "at least $1.00" in response.json()["errors"]["amount_0"][0]
    response = intent(client, the_set, {"amount_0": "0", "amount_1": "0", "amount_2": "0"})
    assert response.status_code == 400 and "at least one recipient" in json.dumps(response.json())
    response = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST})  # no attempt key: a stale page
    assert response.status_code == 400 and "reload" in response.json()["refusal"]
    assert not Payment.objects.exists()
    # The same attempt (a retry after a declined card, with a changed amount): the same payment and intent.
    page = client.get(f"/give/{the_set.id}").content.decode()
    key = attempt_key(page)
    suggested = {"amount_0": "25.00", "amount_1": "50.00", "amount_2": "75.00"}
    first = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, **suggested, "attempt_key": key}).json()
    second = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, **suggested, "attempt_key": key,
                                                         "amount_1": "60"}).json()
    assert first["client_secret"] == second["client_secret"] and first["return_url"] == second["return_url"]
    payment = Payment.objects.get()
    assert payment.amount_cents == 2500 + 6000 + 7500
    # A deleted set is closed; another page visit is another attempt.
    services.recommendation_set_delete(organisation=directing, actor=SYSTEM, set_id=the_set.id)
    response = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, "attempt_key": "a" * 32})
    assert response.status_code == 410 and response.json()["refusal"] == "This giving form is closed."


@pytest.mark.django_db
def test_a_cap_in_one_recipients_books_refuses_before_any_payment(localstripe):
    """NSW caps gifts at $7,900 a financial year per donor per recipient. The donor
    gave Coastal Climate $7,880 already: its $50 share is refused, so no part is
    paid: no PaymentIntent, no donation in any recipient's books."""
    directing, recipients, the_set = world(mode="FIXED", amounts=(2500, 5000, 7500))
    nsw = recipients[1]
    compliance.compliance_settings_update(organisation=nsw, actor=SYSTEM, default_jurisdiction="NSW")
    known = donation_services.donor_create(organisation=nsw, actor=SYSTEM, email=DONOR_POST["email"], first_name="Alice")
    donation_services.donation_record(organisation=nsw, actor=SYSTEM, donor_id=known.id, donation_type="MONETARY",
                                      amount_cents=788_000, donation_date=timezone.localdate())
    books_before = {r.id: Donation.objects.for_organisation(r).count() for r in recipients}
    response = intent(Client(), the_set, {})
    assert response.status_code == 400
    refusal = PUBLIC_REFUSAL_MESSAGE.format(organisation=directing.name)
    assert response.json() == {"errors": {}, "refusal": refusal}
    assert "7,9" not in response.content.decode() and "cap" not in response.content.decode().lower()
    assert not Payment.objects.exists()  # a Payment row comes before its PaymentIntent: none
    assert {r.id: Donation.objects.for_organisation(r).count() for r in recipients} == books_before
    # Staff of the refusing recipient see why.
    entry = AuditEntry.objects.filter(organisation=nsw, action="donation.refused").latest("created_at")
    assert entry.after["reason"] == "donor_cap_exceeded" and entry.after["remaining_cents"] == 2_000


@pytest.mark.django_db
@pytest.mark.parametrize("not_connected", ["the recipients", "the recommending organisation"])
def test_not_connected_still_pledges(not_connected):
    directing, recipients, the_set = world(connected=False)
    if not_connected == "the recipients":
        connect(directing)
    else:
        for recipient in recipients:
            connect(recipient)
    client = Client()
    body = client.get(f"/give/{the_set.id}").content.decode()
    assert 'id="give-form"' in body and 'id="pay-form"' not in body and "card-element" not in body
    assert "Card payment isn't available for this giving form yet" in body and "Pledge my gift" in body
    response = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, "attempt_key": "k" * 32})
    assert response.status_code == 400 and response.json() == {"errors": {}, "refusal": services.CARD_UNAVAILABLE}
    response = client.post(f"/give/{the_set.id}", DONOR_POST)
    assert response.status_code == 200 and "your pledge is recorded" in response.content.decode()
    pledge = SplitGift.objects.get()
    assert pledge.status == "PLEDGED" and pledge.total_cents == 15_000
    assert not Payment.objects.exists() and not Donation.objects.exists()


@pytest.mark.django_db
def test_a_plain_post_to_a_card_form_takes_nothing():
    directing, recipients, the_set = world()
    response = Client().post(f"/give/{the_set.id}", DONOR_POST)  # a browser without JavaScript
    assert response.status_code == 400 and "needs JavaScript" in response.content.decode()
    assert not SplitGift.objects.exists() and not Payment.objects.exists() and not Donation.objects.exists()


@pytest.mark.django_db
def test_a_sandbox_set_pays_its_sandbox_recipients_with_test_keys(localstripe):
    directing = connect(make_org("Sandbox Collective").sandbox)
    sandboxes = [connect(make_org(name).sandbox) for name in ("Riverbank", "Coastal")]
    the_set = services.recommendation_set_create(
        organisation=directing, actor=SYSTEM, name="Sandbox split", amount_mode="FIXED",
        allocations=[{"recipient_org_account_link_id": link(directing, r).id, "amount_cents": 1000} for r in sandboxes])
    client = Client()
    body = client.get(f"/give/{the_set.id}").content.decode()
    assert f'data-stripe-key="{settings.STRIPE_TEST_PUBLISHABLE_KEY}"' in body and "Sandbox giving form" in body
    response = client.post(f"/give/{the_set.id}/intent", {**DONOR_POST, "attempt_key": attempt_key(body)})
    assert response.status_code == 200, response.content
    from tests.support.stripe import pay_intent

    assert "paymentIntent" in pay_intent(response.json()["client_secret"])  # the sandbox's (test) publishable key
    payment = payment_sync(payment_intent_id=Payment.objects.get(organisation=directing).payment_intent_id)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert [Donation.objects.for_organisation(r).get().amount_cents for r in sandboxes] == [1000, 1000]


@pytest.mark.django_db
def test_without_the_platforms_stripe_keys_the_page_says_so(settings):
    directing, recipients, the_set = world()
    settings.STRIPE_PUBLISHABLE_KEY = ""
    response = Client().get(f"/give/{the_set.id}")
    body = response.content.decode()
    assert response.status_code == 503 and "Card payments are unavailable at the moment" in body
    assert "<form" not in body.split("</header>")[-1].replace('<form class="inline" method="post" action="/logout/">', "")


# --- Chromium, end to end -------------------------------------------------------------------------

browser_db = pytest.mark.django_db(transaction=True)  # a live server and localstripe's events


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 900, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def fill_donor(page):
    for label, value in DONOR_LABELS.items():
        page.get_by_label(label, exact=True).fill(value)


@browser_db
def test_browser_a_split_card_gift_across_three_recipients(live_server, stripe_webhooks, page, browser):
    from tests.support.stripe import fill_card, wait_until

    directing, recipients, the_set = world(mode="SUGGESTED", amounts=(2500, 5000, 7500))
    page.goto(f"{live_server.url}/give/{the_set.id}")
    page.get_by_label(recipients[1].name, exact=True).fill("20")
    assert page.locator("#total").inner_text() == "$120.00"
    fill_donor(page)
    fill_card(page)
    page.screenshot(path=str(ARTIFACTS / "give-card-form.png"), full_page=True)
    page.get_by_role("button", name="Pay by card").click()
    page.wait_for_url(re.compile(r"/pay/"))
    payment = Payment.objects.get(organisation=directing)
    assert page.url.endswith(f"/pay/{payment.id}")
    page.wait_for_selector("text=Thank you")
    page.screenshot(path=str(ARTIFACTS / "give-card-done.png"), full_page=True)
    # localstripe's payment_intent.succeeded reaches /webhooks/stripe too: processed once, nothing doubles.
    wait_until(lambda: Payment.objects.get(pk=payment.pk).parts.filter(stripe_transfer_id__isnull=False).count() == 3,
               message="three transfers")
    payment.refresh_from_db()
    assert_landed_in_each_recipients_books(payment, recipients, (2500, 2000, 7500))
    # The recommending organisation's set page lists the card gift.
    staff = make_user(directing, Role.VIEWER)
    context = browser.new_context(viewport={"width": 390, "height": 900})
    dashboard = context.new_page()
    dashboard.goto(f"{live_server.url}/login/")
    dashboard.get_by_label("Email").fill(staff.email)
    dashboard.get_by_label("Password").fill("correct-horse-battery")
    dashboard.get_by_role("button", name=re.compile("Sign in", re.I)).click()
    dashboard.goto(f"{live_server.url}/engage/recommendation-sets/{the_set.id}")
    card_gifts = dashboard.locator("#card-gifts + p + div table")
    assert "$120.00" in card_gifts.inner_text() and "Succeeded" in card_gifts.inner_text()
    for recipient in recipients:
        assert recipient.name in card_gifts.inner_text()
    assert dashboard.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    dashboard.screenshot(path=str(ARTIFACTS / "set-gifts-card-390.png"), full_page=True)
    context.close()


@browser_db
def test_browser_a_cap_refusal_shows_the_public_sentence_and_takes_nothing(live_server, localstripe, page):
    directing, recipients, the_set = world(mode="FIXED", amounts=(2500, 5000, 7500))
    nsw = recipients[2]
    compliance.compliance_settings_update(organisation=nsw, actor=SYSTEM, default_jurisdiction="NSW")
    known = donation_services.donor_create(organisation=nsw, actor=SYSTEM, email=DONOR_POST["email"], first_name="Alice")
    donation_services.donation_record(organisation=nsw, actor=SYSTEM, donor_id=known.id, donation_type="MONETARY",
                                      amount_cents=788_000, donation_date=timezone.localdate())
    page.goto(f"{live_server.url}/give/{the_set.id}")
    fill_donor(page)
    from tests.support.stripe import fill_card

    fill_card(page)
    page.get_by_role("button", name="Pay by card").click()
    refusal = PUBLIC_REFUSAL_MESSAGE.format(organisation=directing.name)
    page.wait_for_selector(f"text={refusal[:40]}")
    page.screenshot(path=str(ARTIFACTS / "give-card-refused.png"), full_page=True)
    assert "/give/" in page.url
    assert not Payment.objects.exists()
    assert Donation.objects.for_organisation(nsw).count() == 1
    assert not Donation.objects.filter(organisation__in=recipients[:2]).exists()


@browser_db
def test_browser_not_connected_pledges_and_says_card_is_not_available(live_server, page):
    directing, recipients, the_set = world(connected=False)
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server.url}/give/{the_set.id}")
    assert "Card payment isn't available for this giving form yet" in page.content()
    assert page.locator("#card-element").count() == 0
    fill_donor(page)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.screenshot(path=str(ARTIFACTS / "give-pledge-390.png"), full_page=True)
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#pledge-total")
    assert page.locator("#pledge-total").inner_text() == "$150.00"
    assert SplitGift.objects.get().status == "PLEDGED" and not Payment.objects.exists()
