"""The public payment pages (payments/public.py) through Django's test client, the
intents against localstripe: what each form and link status shows, the donor's
fields, the JSON contract of the intent endpoints, the cap before any intent."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.utils import timezone

from engage import services
from engage.models import CheckoutLink, FormStatus
from organisations.models import Role
from payments.models import Payment
from tests.dashboard.conftest import client_as, make_user
from tests.engage.test_services import ACTOR, connect, make_form
from tests.support.api import make_donor, seed_donation

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"


@pytest.fixture
def connected(org):
    return connect(org)


def page_attempt_key(html: str) -> str:
    return re.search(r'name="attempt_key" value="([^"]+)"', html).group(1)


def csrf_client() -> Client:
    return Client()  # the test client skips CSRF checks; the browser tests send the real token


DONOR = {"first_name": "Jane", "last_name": "Smith", "email": "Jane@Example.org", "address_line1": "1 River Rd",
         "suburb": "Abbotsford", "state": "vic", "postcode": "3067", "country": "AU"}


# --- /donate/<slug> ---------------------------------------------------------------------------

def test_active_form_page(connected, settings):
    form = make_form(connected, status="ACTIVE", slug="give-now", suggested_amounts_cents=[500, 2500, 5000, 10000, 25000, 50000],
                     minimum_cents=1000, default_amount_cents=5000, description="Every dollar counts.",
                     allow_recurring=False, recurring_frequencies=[])  # one-off only: no "How often?" buttons
    response = Client().get("/donate/give-now")
    html = response.content.decode()
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "Help the riverbank" in html and "Every dollar counts." in html
    # $5 is under the minimum: hidden; five buttons in balanced rows of 3 + 2
    assert 'value="500"' not in html
    assert html.count("amount-buttons cols-3") == 1 and html.count("amount-buttons cols-2") == 1
    assert 'value="5000" data-cents="5000" checked' in html and "Give $50" in html
    assert 'name="other_amount"' in html
    assert "name, email and address" in html  # regulated by default: the law's sentence
    for name in ("first_name", "last_name", "email", "address_line1", "suburb", "state", "postcode", "country", "phone"):
        assert f'name="{name}"' in html, name
    assert 'id="pay-form"' in html and 'data-stripe-key="pk_' in html and 'data-intent-url="/donate/give-now/intent"' in html
    assert 'id="card-element"' in html and 'id="card-errors"' in html
    nonce = re.search(r'<script src="[^"]*js\.stripe\.com/v3/" nonce="([^"]+)"', html).group(1)
    assert f"'nonce-{nonce}'" in response["Content-Security-Policy"]
    assert "<script>" not in html  # no inline script
    script_src = response["Content-Security-Policy"].split("script-src ")[1].split(";")[0].split()
    assert set(settings.CSP_STRIPE["script-src"]) <= set(script_src)  # Stripe.js is allowed on this page (together.csp)


def test_phone_and_address_visibility(connected):
    from compliance.services import revenue_code_create

    revenue_code_create(organisation=connected, actor=ACTOR, code="MERCH", jurisdiction="UNREGULATED")
    make_form(connected, status="ACTIVE", slug="no-address", revenue_code="MERCH", address_visibility="NONE", phone_visibility="NONE")
    html = Client().get("/donate/no-address").content.decode()
    assert 'name="address_line1"' not in html and 'name="phone"' not in html and "name, email and address" not in html
    make_form(connected, status="ACTIVE", slug="regulated-none", address_visibility="NONE", phone_visibility="REQUIRED")
    html = Client().get("/donate/regulated-none").content.decode()
    assert 'name="address_line1"' in html and "name, email and address" in html  # the law wins over NONE
    assert re.search(r'name="phone"[^>]*required', html)


def test_paused_draft_archived(connected, other_org):
    form = make_form(connected, status="ACTIVE", slug="lifecycle")
    services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="PAUSED")
    paused = Client().get("/donate/lifecycle")
    assert paused.status_code == 200 and "not accepting gifts" in paused.content.decode()
    assert 'id="pay-form"' not in paused.content.decode()
    services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="DRAFT")
    assert Client().get("/donate/lifecycle").status_code == 404
    assert client_as(make_user(other_org, Role.ADMIN)).get("/donate/lifecycle").status_code == 404
    preview = client_as(make_user(connected, Role.VIEWER)).get("/donate/lifecycle")
    html = preview.content.decode()
    assert preview.status_code == 200 and "Preview of a draft" in html and "disabled" in html and "js.stripe.com" not in html
    assert Client().post("/donate/lifecycle/intent", DONOR).status_code == 404
    services.form_archive(organisation=connected, actor=ACTOR, form_id=form.id)
    assert Client().get("/donate/lifecycle").status_code == 404
    assert client_as(make_user(connected, Role.ADMIN)).get("/donate/lifecycle").status_code == 404
    assert Client().get("/donate/no-such-form").status_code == 404


def test_intent_validation_errors_are_json_beside_fields(connected):
    make_form(connected, status="ACTIVE", slug="checks", maximum_cents=100000)
    key = page_attempt_key(Client().get("/donate/checks").content.decode())
    response = csrf_client().post("/donate/checks/intent", {"attempt_key": key, "other_amount": "5000", "email": "nope",
                                                             "first_name": "", "state": "XYZ"})
    assert response.status_code == 400
    body = response.json()
    assert set(body["errors"]) >= {"other_amount", "email", "first_name", "last_name", "address_line1", "state"}
    assert "largest gift" in body["errors"]["other_amount"][0]
    assert body["refusal"]
    no_amount = csrf_client().post("/donate/checks/intent", {"attempt_key": key, **DONOR}).json()
    assert list(no_amount["errors"]) == ["amount"]
    not_shown = csrf_client().post("/donate/checks/intent", {"attempt_key": key, "amount": "1234", **DONOR}).json()
    assert list(not_shown["errors"]) == ["amount"]
    stale = csrf_client().post("/donate/checks/intent", {"attempt_key": "bogus", "amount": "2500", **DONOR})
    assert stale.status_code == 400 and "reload" in stale.json()["refusal"]
    assert not Payment.objects.exists()


def test_intent_creates_the_payment_intent(connected, localstripe):
    form = make_form(connected, status="ACTIVE", slug="pays", revenue_code="WEB")
    key = page_attempt_key(Client().get("/donate/pays").content.decode())
    response = csrf_client().post("/donate/pays/intent", {"attempt_key": key, "amount": "5000", **DONOR})
    assert response.status_code == 200, response.content
    body = response.json()
    payment = Payment.objects.get(organisation=connected)
    assert body == {"client_secret": payment.client_secret, "return_url": f"/pay/{payment.id}"}
    assert body["client_secret"].startswith(payment.payment_intent_id + "_secret_")
    assert (payment.kind, payment.form_id, payment.amount_cents) == ("FORM", form.id, 5000)
    assert payment.donor_details["email"] == "jane@example.org" and payment.donor_details["state"] == "VIC"
    assert payment.parts.get().revenue_code == "WEB"
    # the same attempt again (a donor who pressed Pay twice): the same intent
    again = csrf_client().post("/donate/pays/intent", {"attempt_key": key, "amount": "5000", **DONOR}).json()
    assert again == body and Payment.objects.count() == 1


def test_cap_refuses_before_any_intent(connected, localstripe):
    """A donor with no room under the federal cap: the fixed sentence, no Payment, no PaymentIntent."""
    from compliance import rules
    from compliance.services import revenue_code_create

    revenue_code_create(organisation=connected, actor=ACTOR, code="NSW-STATE", jurisdiction="NSW")
    make_form(connected, status="ACTIVE", slug="capped", suggested_amounts_cents=[10000], revenue_code="NSW-STATE")
    donor = make_donor(connected, first_name="Full", last_name="Cap", email="full.cap@example.org")
    today = timezone.localdate()
    cap = rules.cap_room(donor_id=None, jurisdiction="NSW", day=today)["cap"]  # NSW's cap in force today
    seed_donation(connected, donor, amount_cents=cap - 5000, donation_date=today, revenue_code="NSW-STATE")  # $50 of room
    key = page_attempt_key(Client().get("/donate/capped").content.decode())
    response = csrf_client().post("/donate/capped/intent", {"attempt_key": key, "amount": "10000", **DONOR,
                                                             "email": "FULL.cap@example.org"})
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["errors"] == {} and "can't accept this gift online" in body["refusal"]
    assert "$" not in body["refusal"]  # no room figure for a stranger who typed the email
    assert not Payment.objects.exists()


def test_rate_limited(connected, settings):
    settings.PUBLIC_POST_RATE_LIMIT = "2/600"
    make_form(connected, status="ACTIVE", slug="limited")
    client = Client(REMOTE_ADDR=f"10.9.{connected.id[-2:].encode()[0] % 250}.7")
    statuses = [client.post("/donate/limited/intent", {"attempt_key": "form:xxxxxxxxxxxxxxxx"}).status_code for _ in range(3)]
    assert statuses[:2] == [400, 400] and statuses[2] == 429
    last = client.post("/donate/limited/intent", {})
    assert last.status_code == 429 and int(last["Retry-After"]) > 0 and "Too many" in last.json()["refusal"]


# --- /c/<code> ------------------------------------------------------------------------------------

@pytest.fixture
def link(connected):
    donor = make_donor(connected, first_name="Jane", last_name="Smith", email="jane.smith@example.org",
                       address_line1="1 River Rd", suburb="Abbotsford", state="VIC", postcode="3067")
    return services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=25000,
                                         consent_text="I am an Australian citizen or permanent resident.")


def test_checkout_page(link):
    response = Client().get(f"/c/{link.code}")
    html = response.content.decode()
    assert response.status_code == 200 and response["Referrer-Policy"] == "no-referrer"
    assert "$250" in html and "Jane Smith" in html and "ja•••@example.org" in html and "jane.smith@" not in html
    assert "I am an Australian citizen or permanent resident." in html and 'name="consent"' in html
    assert 'name="address_line1"' not in html  # the donor's address is on file
    assert f'data-intent-url="/c/{link.code}/intent"' in html and 'data-billing-name="Jane Smith"' in html
    assert Client().get("/c/not-a-real-code").status_code == 404


def test_checkout_asks_the_address_when_the_donor_has_none(connected):
    donor = make_donor(connected, first_name="No", last_name="Address", email="noaddr@example.org")
    link = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=5000)
    html = Client().get(f"/c/{link.code}").content.decode()
    assert 'name="address_line1"' in html and "name, email and address" in html
    response = csrf_client().post(f"/c/{link.code}/intent", {"attempt_key": f"link:{link.id}"})
    assert response.status_code == 400 and "address_line1" in response.json()["errors"]


def test_checkout_refusals(link, connected):
    expired = services.checkout_link_create(organisation=connected, actor=ACTOR, donor_id=link.donor_id, amount_cents=1000)
    CheckoutLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    response = Client().get(f"/c/{expired.code}")
    assert response.status_code == 410 and "has expired" in response.content.decode() and 'id="pay-form"' not in response.content.decode()
    intent = csrf_client().post(f"/c/{expired.code}/intent", {"attempt_key": f"link:{expired.id}"})
    assert intent.status_code == 409 and "expired" in intent.json()["refusal"]
    services.checkout_link_cancel(organisation=connected, actor=ACTOR, link_id=link.id)
    response = Client().get(f"/c/{link.code}")
    assert response.status_code == 410 and "was cancelled" in response.content.decode()
    assert csrf_client().post(f"/c/{link.code}/intent", {"attempt_key": f"link:{link.id}"}).status_code == 409
    assert not Payment.objects.exists()


def test_checkout_intent_stores_the_consent_answer(link, localstripe):
    response = csrf_client().post(f"/c/{link.code}/intent", {"attempt_key": "anything-the-page-sent", "consent": "yes"})
    assert response.status_code == 200, response.content
    payment = Payment.objects.get(checkout_link=link)
    assert payment.attempt_key == f"link:{link.id}" and payment.amount_cents == 25000
    assert payment.consent_given is True and payment.consent_text == link.consent_text
    assert payment.donor_details["email"] == "jane.smith@example.org"


def test_form_status_guard_on_intent(connected):
    form = make_form(connected, status="ACTIVE", slug="guarded")
    services.form_update(organisation=connected, actor=ACTOR, form_id=form.id, status="PAUSED")
    response = csrf_client().post("/donate/guarded/intent", {"attempt_key": "form:abcdefgh12345678", "amount": "2500", **DONOR})
    assert response.status_code == 409 and "not accepting gifts" in response.json()["refusal"]
    assert DonationFormStatus(form) == FormStatus.PAUSED


def DonationFormStatus(form):
    form.refresh_from_db()
    return form.status


def test_payments_unavailable_says_so_without_detail(connected, settings):
    """Missing platform keys: the page and the intent answer 503 with a plain sentence, never the configuration detail."""
    make_form(connected, status="ACTIVE", slug="no-keys")
    settings.STRIPE_PUBLISHABLE_KEY = ""
    settings.STRIPE_SECRET_KEY = ""
    page = Client().get("/donate/no-keys")
    assert page.status_code == 503 and "Card payments are unavailable" in page.content.decode()
    assert "STRIPE" not in page.content.decode()
    response = csrf_client().post("/donate/no-keys/intent", {"attempt_key": "form:abcdefgh12345678", "amount": "2500", **DONOR})
    assert response.status_code == 503 and response.json()["refusal"].startswith("Card payments are unavailable")
    assert "STRIPE" not in response.content.decode()
    assert not Payment.objects.exists()
