"""Our localstripe extensions (devtools/localstripe_together.py), through the
official `stripe` package and Stripe.js as the app uses them: what the payments
code relies on the fake to do as Stripe does."""
from __future__ import annotations

import http.server
import json
import secrets
import threading
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests
import stripe
from django.conf import settings

from tests.support.stripe import (
    DECLINE_MESSAGE,
    DECLINED_CARD,
    INSUFFICIENT_FUNDS_CARD,
    TEST_CARD,
    THREE_D_SECURE_CARD,
    api_base,
    client,
    close_dispute,
    fill_card,
    open_dispute,
    pay_intent,
    register_stripe_webhook,
    unregister_stripe_webhook,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("localstripe")


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def expected_fee(amount: int) -> int:
    return int((Decimal(amount) * Decimal("0.0175")).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + 30


@pytest.fixture
def sc():
    return client()


def paid_intent(sc, amount=5000, *, options=None, **params):
    intent = sc.v1.payment_intents.create(params={"amount": amount, "currency": "aud", **params}, options=options or {})
    result = pay_intent(intent.client_secret, TEST_CARD)
    assert result["paymentIntent"]["status"] == "succeeded", result
    return sc.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge.balance_transaction"]})


class Receiver:
    """A tiny HTTP server standing in for /webhooks/stripe: keeps what it is sent."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        received = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/stripe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event(self, event_type: str, object_id: str, secret: str) -> stripe.Event:
        """The event about `object_id` (waits), its signature checked as the app checks it."""
        def find():
            for headers, body in list(self.requests):
                data = json.loads(body)
                if data["type"] == event_type and data["data"]["object"]["id"] == object_id:
                    return stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret, tolerance=300)
        return wait_until(find, message=f"{event_type} for {object_id}")


@pytest.fixture
def receiver():
    """localstripe's events, signed with a secret of this test's, at a receiver of its own."""
    receiver, hook_id = Receiver(), unique("test-receiver")
    receiver.secret = "whsec_" + secrets.token_hex(12)
    register_stripe_webhook(receiver.url, hook_id, secret=receiver.secret)
    yield receiver
    unregister_stripe_webhook(hook_id)
    receiver.server.shutdown()


# --- requests ---------------------------------------------------------------------------------

def test_an_idempotency_key_gives_the_same_intent_and_refuses_other_parameters(sc):
    key = unique("attempt")
    params = {"amount": 1500, "currency": "aud", "metadata": {"payment_id": "p1"}}
    first = sc.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    again = sc.v1.payment_intents.create(params=params, options={"idempotency_key": key})
    assert again.id == first.id and again.client_secret == first.client_secret
    other = sc.v1.payment_intents.create(params=params, options={"idempotency_key": unique("attempt")})
    assert other.id != first.id
    with pytest.raises(stripe.IdempotencyError):
        sc.v1.payment_intents.create(params={**params, "amount": 1600}, options={"idempotency_key": key})


def test_an_intent_takes_stripes_fields_and_its_charge_carries_them_with_a_fee(sc):
    group = unique("group")
    intent = paid_intent(sc, 12345, transfer_group=group, metadata={"organisation_id": "org_1", "kind": "SPLIT"},
                         description="Gift", receipt_email="donor@example.org", statement_descriptor="TOGETHER GIFT",
                         setup_future_usage="on_session", automatic_payment_methods={"enabled": True})
    assert intent.status == "succeeded" and intent.transfer_group == group
    assert intent.automatic_payment_methods.enabled is True
    charge = intent.latest_charge
    assert charge.transfer_group == group and charge.metadata.to_dict() == {"organisation_id": "org_1", "kind": "SPLIT"}
    assert charge.payment_intent == intent.id and charge.amount == 12345 and charge.paid
    assert charge.payment_method_details.card.last4 == "4242"
    txn = charge.balance_transaction
    assert txn.fee == expected_fee(12345) == 246 and txn.net == 12345 - 246 and txn.fee > 0
    assert txn.fee_details[0].type == "stripe_fee"
    # As in Stripe's API, the charge is an id unless expanded.
    assert sc.v1.payment_intents.retrieve(intent.id).latest_charge == charge.id


def test_connect_fields_are_checked(sc):
    intent = sc.v1.payment_intents.create(params={
        "amount": 1000, "currency": "aud", "on_behalf_of": "acct_1Recipient",
        "transfer_data": {"destination": "acct_1Recipient"}})
    assert intent.transfer_data.destination == "acct_1Recipient" and intent.on_behalf_of == "acct_1Recipient"
    with pytest.raises(stripe.InvalidRequestError):
        sc.v1.payment_intents.create(params={"amount": 1000, "currency": "aud", "transfer_data": {"destination": "x"}})


# --- confirming from the browser -----------------------------------------------------------

def test_the_publishable_key_confirms_only_with_the_intents_client_secret(sc):
    intent = sc.v1.payment_intents.create(params={"amount": 2000, "currency": "aud"})
    url = f"{api_base()}/v1/payment_intents/{intent.id}/confirm"
    card = {"type": "card", "card": {"number": TEST_CARD, "exp_month": "12", "exp_year": "2040", "cvc": "123"}}
    no_key = requests.post(url, json={"client_secret": intent.client_secret, "payment_method_data": card})
    assert no_key.status_code == 401
    wrong = requests.post(url, json={"key": settings.STRIPE_TEST_PUBLISHABLE_KEY,
                                     "client_secret": intent.client_secret + "x", "payment_method_data": card})
    assert wrong.status_code == 400
    assert sc.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    result = pay_intent(intent.client_secret, TEST_CARD, billing_details={"name": "Dana Donor"})
    assert result["paymentIntent"]["status"] == "succeeded"
    again = pay_intent(intent.client_secret, TEST_CARD)
    assert again["error"]["code"] == "payment_intent_unexpected_state"


def test_declined_cards_fail_at_charge_time_and_the_donor_can_try_another(sc):
    intent = sc.v1.payment_intents.create(params={"amount": 3000, "currency": "aud"})
    result = pay_intent(intent.client_secret, DECLINED_CARD)
    assert result["error"]["message"] == DECLINE_MESSAGE == "Your card was declined."
    assert result["error"]["type"] == "card_error" and result["error"]["code"] == "card_declined"
    after = sc.v1.payment_intents.retrieve(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.message == DECLINE_MESSAGE
    result = pay_intent(intent.client_secret, INSUFFICIENT_FUNDS_CARD)
    assert result["error"]["decline_code"] == "insufficient_funds"
    result = pay_intent(intent.client_secret, TEST_CARD)
    assert result["paymentIntent"]["status"] == "succeeded"
    # Server side, the stripe package raises a CardError.
    declined = sc.v1.payment_methods.create(params={"type": "card", "card": {
        "number": DECLINED_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
    with pytest.raises(stripe.CardError) as raised:
        sc.v1.payment_intents.create(params={"amount": 1000, "currency": "aud", "payment_method": declined.id,
                                             "confirm": True})
    assert raised.value.user_message == DECLINE_MESSAGE


# --- refunds, transfers, payouts, disputes -----------------------------------------------

def test_refunds_never_exceed_the_charge_and_send_a_signed_charge_refunded(sc, receiver):
    intent = paid_intent(sc, 5000)
    charge_id = intent.latest_charge.id
    refund = sc.v1.refunds.create(params={"payment_intent": intent.id, "amount": 1200, "reason": "requested_by_customer"},
                                  options={"idempotency_key": unique("refund")})
    assert refund.amount == 1200 and refund.charge == charge_id and refund.payment_intent == intent.id
    assert sc.v1.charges.retrieve(charge_id).amount_refunded == 1200
    event = receiver.event("charge.refunded", charge_id, receiver.secret)
    assert event.data.object.amount_refunded == 1200
    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount"):
        sc.v1.refunds.create(params={"charge": charge_id, "amount": 3801})
    rest = sc.v1.refunds.create(params={"charge": charge_id})  # what is left
    assert rest.amount == 3800
    charge = sc.v1.charges.retrieve(charge_id)
    assert charge.amount_refunded == 5000 and charge.refunded is True
    with pytest.raises(stripe.InvalidRequestError, match="already been refunded"):
        sc.v1.refunds.create(params={"charge": charge_id})
    # A signature made with another secret does not verify.
    headers, body = receiver.requests[0]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other", tolerance=300)


def test_transfers_by_group_and_their_reversals(sc):
    group = unique("group")
    intent = paid_intent(sc, 9000, transfer_group=group)
    charge = intent.latest_charge.id
    made = [sc.v1.transfers.create(params={"amount": amount, "currency": "aud", "destination": f"acct_1Recipient{n}",
                                           "transfer_group": group, "source_transaction": charge,
                                           "metadata": {"part": str(n)}})
            for n, amount in enumerate((3000, 4000, 2000))]
    listed = sc.v1.transfers.list(params={"transfer_group": group})
    assert sorted(t.id for t in listed.data) == sorted(t.id for t in made)
    assert sc.v1.transfers.retrieve(made[1].id).metadata["part"] == "1"
    with pytest.raises(stripe.InvalidRequestError):  # more than the charge funds
        sc.v1.transfers.create(params={"amount": 1, "currency": "aud", "destination": "acct_1Recipient9",
                                       "transfer_group": group, "source_transaction": charge})
    reversal = sc.v1.transfers.reversals.create(made[0].id, params={"amount": 1000})
    assert reversal.amount == 1000 and reversal.transfer == made[0].id
    transfer = sc.v1.transfers.retrieve(made[0].id)
    assert transfer.amount_reversed == 1000 and transfer.reversed is False
    sc.v1.transfers.reversals.create(made[0].id)  # the rest
    transfer = sc.v1.transfers.retrieve(made[0].id)
    assert transfer.amount_reversed == 3000 and transfer.reversed is True
    assert len(sc.v1.transfers.reversals.list(made[0].id).data) == 2
    with pytest.raises(stripe.InvalidRequestError):
        sc.v1.transfers.reversals.create(made[0].id, params={"amount": 1})


def test_a_payout_takes_its_accounts_available_balance_transactions(receiver):
    account = unique("acct")  # payouts are per account: this test's own
    sc = client(stripe_account=account)
    first, second = paid_intent(sc, 10000), paid_intent(sc, 2000)
    refund = sc.v1.refunds.create(params={"payment_intent": second.id, "amount": 500})
    payout = sc.v1.payouts.create(params={"currency": "aud"})
    assert payout.status == "paid"
    txns = sc.v1.balance_transactions.list(params={"payout": payout.id, "limit": 100}).data
    assert {t.source for t in txns} == {first.latest_charge.id, second.latest_charge.id, refund.id}
    assert payout.amount == sum(t.net for t in txns) == 10000 + 2000 - 500 - expected_fee(10000) - expected_fee(2000)
    event = receiver.event("payout.paid", payout.id, receiver.secret)
    assert event.data.object.amount == payout.amount and event.account == account
    with pytest.raises(stripe.InvalidRequestError, match="insufficient funds"):
        sc.v1.payouts.create(params={"currency": "aud"})  # nothing left


def test_disputes_open_and_close_with_their_events(sc, receiver):
    intent = paid_intent(sc, 4000)
    charge_id = intent.latest_charge.id
    opened = open_dispute(payment_intent=intent.id)
    assert opened["charge"] == charge_id and opened["status"] == "needs_response" and opened["amount"] == 4000
    created = receiver.event("charge.dispute.created", opened["id"], receiver.secret)
    assert created.data.object.payment_intent == intent.id
    dispute = sc.v1.disputes.retrieve(opened["id"])
    assert dispute.status == "needs_response" and dispute.reason == "fraudulent"
    assert sc.v1.charges.retrieve(charge_id).disputed is True
    close_dispute(opened["id"], "lost")
    closed = receiver.event("charge.dispute.closed", opened["id"], receiver.secret)
    assert closed.data.object.status == "lost"
    with pytest.raises(requests.HTTPError):
        close_dispute(opened["id"], "won")
    won = open_dispute(charge=paid_intent(sc, 1000).latest_charge.id, reason="product_not_received")
    assert close_dispute(won["id"], "won")["status"] == "won"
    assert [d.id for d in sc.v1.disputes.list(params={"charge": won["charge"]}).data] == [won["id"]]


# --- off-session charges (recurring gifts) -------------------------------------------------

def test_a_saved_card_is_charged_off_session(sc):
    customer = sc.v1.customers.create(params={"email": "regular@example.org"})
    first = sc.v1.payment_intents.create(params={"amount": 2500, "currency": "aud", "customer": customer.id,
                                                 "setup_future_usage": "off_session"})
    assert pay_intent(first.client_secret, TEST_CARD)["paymentIntent"]["status"] == "succeeded"
    card = sc.v1.payment_intents.retrieve(first.id).payment_method
    assert sc.v1.payment_methods.retrieve(card).customer == customer.id  # saved for later
    monthly = sc.v1.payment_intents.create(params={
        "amount": 2500, "currency": "aud", "customer": customer.id, "payment_method": card,
        "off_session": True, "confirm": True, "metadata": {"frequency": "MONTHLY"}})
    assert monthly.status == "succeeded"
    # The customer's card without naming it: its default payment method.
    sc.v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": card}})
    again = sc.v1.payment_intents.create(params={"amount": 2500, "currency": "aud", "customer": customer.id,
                                                 "off_session": True, "confirm": True})
    assert again.status == "succeeded" and again.payment_method == card
    # Another customer's card is refused; a card that needs 3-D Secure declines off-session.
    stranger = sc.v1.customers.create(params={"email": "stranger@example.org"})
    with pytest.raises(stripe.InvalidRequestError):
        sc.v1.payment_intents.create(params={"amount": 100, "currency": "aud", "customer": stranger.id,
                                             "payment_method": card, "off_session": True, "confirm": True})
    secure = sc.v1.payment_methods.create(params={"type": "card", "card": {
        "number": THREE_D_SECURE_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
    sc.v1.payment_methods.attach(secure.id, params={"customer": customer.id})
    with pytest.raises(stripe.CardError) as raised:
        sc.v1.payment_intents.create(params={"amount": 100, "currency": "aud", "customer": customer.id,
                                             "payment_method": secure.id, "off_session": True, "confirm": True})
    assert raised.value.code == "authentication_required"

    # Listed by customer: theirs only (the 3-D Secure attempt included), newest first, each once.
    listed = sc.v1.payment_intents.list(params={"customer": customer.id, "limit": 100}).data
    assert [i.id for i in listed][:3] == [i.id for i in sorted(listed, key=lambda i: i.created, reverse=True)][:3]
    assert {first.id, monthly.id, again.id} <= {i.id for i in listed} and len(listed) == len({i.id for i in listed}) == 4
    theirs = sc.v1.payment_intents.list(params={"customer": stranger.id}).data  # the refused attempt only
    assert len(theirs) == 1 and theirs[0].amount == 100 and theirs[0].id not in {i.id for i in listed}


def test_an_off_session_charge_answers_with_its_charge_and_fee_expanded(sc):
    """What the billing engine records without reading the intent again."""
    customer = sc.v1.customers.create(params={"email": "expanded@example.org"})
    card = sc.v1.payment_methods.create(params={"type": "card", "card": {
        "number": TEST_CARD, "exp_month": 12, "exp_year": 2040, "cvc": "123"}})
    sc.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    intent = sc.v1.payment_intents.create(params={
        "amount": 2500, "currency": "aud", "customer": customer.id, "payment_method": card.id, "off_session": True,
        "confirm": True, "expand": ["latest_charge.balance_transaction"]})
    charge = intent.latest_charge
    assert intent.status == "succeeded" and charge.status == "succeeded" and charge.refunds.data == []
    assert (charge.balance_transaction.fee, charge.balance_transaction.net) == (74, 2500 - 74)  # 1.75% + 30c
    assert sc.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge.balance_transaction"]}).to_dict() \
        == intent.to_dict()


# --- BECS Direct Debit: processing, then paid or failed ----------------------------------

def test_a_becs_debit_is_processing_then_paid_or_failed(sc, receiver):
    def debit(account_number):
        method = sc.v1.payment_methods.create(params={
            "type": "au_becs_debit", "au_becs_debit": {"bsb_number": "000000", "account_number": account_number},
            "billing_details": {"name": "Dana Donor", "email": "dana@example.org"}})
        return sc.v1.payment_intents.create(params={
            "amount": 10000, "currency": "aud", "payment_method_types": ["au_becs_debit"],
            "payment_method": method.id, "confirm": True,
            "mandate_data": {"customer_acceptance": {"type": "offline"}}})

    paid, failed = debit("000123456"), debit("111111113")
    assert paid.status == failed.status == "processing"
    receiver.event("payment_intent.processing", paid.id, receiver.secret)
    succeeded = receiver.event("payment_intent.succeeded", paid.id, receiver.secret)
    assert succeeded.data.object.status == "succeeded"
    charge = sc.v1.payment_intents.retrieve(paid.id, params={"expand": ["latest_charge.balance_transaction"]}).latest_charge
    assert charge.balance_transaction.fee == min(100 + 30, 350)  # 1% + 30c, at most $3.50

    event = receiver.event("payment_intent.payment_failed", failed.id, receiver.secret)
    assert event.data.object.status == "requires_payment_method"
    assert event.data.object.last_payment_error.message == "The customer's bank account has been closed."


# --- Stripe.js in a browser ------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>pay</title>
<script src="%(js)s"></script></head>
<body>
<form id="pay-form"><div id="card-element"></div><div id="card-errors" role="alert"></div>
<button type="submit">Pay</button></form>
<p id="result"></p>
<script nonce="%(nonce)s">
const params = new URLSearchParams(location.search);
const stripe = Stripe(params.get('pk'));
const card = stripe.elements().create('card', {hidePostalCode: params.has('nopostcode')});
card.mount('#card-element');
let changes = 0;
card.on('change', event => { changes += 1; document.body.dataset.complete = event.complete; });
document.getElementById('pay-form').addEventListener('submit', async event => {
  event.preventDefault();
  const result = await stripe.confirmCardPayment(params.get('cs'), {
    payment_method: {card: card, billing_details: {name: 'Dana Donor', email: 'dana@example.org'}}});
  if (result.error) {
    document.getElementById('card-errors').textContent = result.error.message;
  } else {
    document.getElementById('result').textContent = result.paymentIntent.status;
  }
});
</script></body></html>"""


@pytest.fixture(scope="module")
def chromium():
    path = Path("/usr/bin/chromium")
    if not path.exists():
        pytest.fail("/usr/bin/chromium is missing: `make chromium` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(path), args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture
def pay_page(tmp_path):
    """A static page on a throwaway server of its own origin (as the site's pages
    are), under the policy of the site's card pages: Stripe.js, its calls to the API
    and its frames must be allowed by settings.CSP with settings.CSP_STRIPE, the
    sources together.csp.stripe_js_url adds to a page that loads Stripe.js."""
    from together.csp import build_policy, stripe_directives

    nonce = secrets.token_urlsafe(12)
    (tmp_path / "pay.html").write_text(PAGE % {"js": settings.STRIPE_JS_URL, "nonce": nonce})
    policy = build_policy(stripe_directives(), nonce=nonce)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def end_headers(self):
            self.send_header("Content-Security-Policy", policy)
            super().end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/pay.html"
    server.shutdown()


def test_stripe_js_confirms_a_card_payment_in_the_browser(sc, chromium, pay_page):
    page = chromium.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: "Content Security Policy" in message.text and errors.append(message.text))
    pk = settings.STRIPE_TEST_PUBLISHABLE_KEY

    paid = sc.v1.payment_intents.create(params={"amount": 4200, "currency": "aud"})
    page.goto(f"{pay_page}?pk={pk}&cs={paid.client_secret}")
    fill_card(page, TEST_CARD)
    assert page.locator("body").get_attribute("data-complete") == "true"  # Stripe's change event
    page.get_by_role("button", name="Pay").click()
    page.locator("#result").filter(has_text="succeeded").wait_for(timeout=10_000)
    intent = sc.v1.payment_intents.retrieve(paid.id, params={"expand": ["latest_charge"]})
    assert intent.status == "succeeded"
    assert intent.latest_charge.billing_details.name == "Dana Donor"

    declined = sc.v1.payment_intents.create(params={"amount": 4200, "currency": "aud"})
    page.goto(f"{pay_page}?pk={pk}&cs={declined.client_secret}")
    fill_card(page, DECLINED_CARD)
    page.get_by_role("button", name="Pay").click()
    page.locator("#card-errors").filter(has_text=DECLINE_MESSAGE).wait_for(timeout=10_000)
    assert page.locator("#result").inner_text() == ""
    assert sc.v1.payment_intents.retrieve(declined.id).status == "requires_payment_method"

    # A card that asks for 3-D Secure: localstripe's modal stands for the bank's page.
    secure = sc.v1.payment_intents.create(params={"amount": 4200, "currency": "aud"})
    page.goto(f"{pay_page}?pk={pk}&cs={secure.client_secret}")
    fill_card(page, THREE_D_SECURE_CARD)
    page.get_by_role("button", name="Pay").click()
    page.get_by_role("button", name="Complete authentication").click()
    page.locator("#result").filter(has_text="succeeded").wait_for(timeout=10_000)
    assert sc.v1.payment_intents.retrieve(secure.id).status == "succeeded"

    # As pay.js makes it: no postcode.
    page.goto(f"{pay_page}?pk={pk}&cs={paid.client_secret}&nopostcode=1")
    assert page.locator("#card-element input").count() == 4

    # An incomplete card never reaches Stripe: Stripe.js's own message.
    fill_card(page, "4242424242")
    page.get_by_role("button", name="Pay").click()
    page.locator("#card-errors").filter(has_text="Your card number is incomplete.").wait_for(timeout=5_000)
    assert errors == []
    page.close()
