"""Stripe in tests: localstripe, extended by devtools/localstripe_together.py, on
settings.STRIPE_API_BASE (http://127.0.0.1:8420 in development and tests).

The app reaches it through the official `stripe` package and Stripe.js exactly
as it would reach Stripe. These helpers play Stripe's other side: the donor's
browser confirming an intent, Stripe sending (or re-sending) a signed event, a
bank opening a dispute. Fixtures in tests/conftest.py: `localstripe` (session:
it answers) and `stripe_webhooks` (the live server's /webhooks/stripe receives
localstripe's events).

One localstripe serves every test process (and `make run`): ids are unique, but
its state is shared. Filter by your own ids (transfer_group, payment intent),
and make payouts under a `Stripe-Account` of your own (a payout takes every
available balance transaction of its account).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
import stripe
from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# Stripe's test cards (https://docs.stripe.com/testing); localstripe knows them.
TEST_CARD = "4242424242424242"  # succeeds
DECLINED_CARD = "4000000000000002"  # declined at charge time: "Your card was declined."
INSUFFICIENT_FUNDS_CARD = "4000000000009995"  # declined: "Your card has insufficient funds."
THREE_D_SECURE_CARD = "4000002760003184"  # always asks for 3-D Secure (localstripe's modal)
DECLINE_MESSAGE = "Your card was declined."


def api_base() -> str:
    return settings.STRIPE_API_BASE.rstrip("/")


def is_local() -> bool:
    return urlsplit(api_base()).hostname in ("127.0.0.1", "localhost", "::1")


def localstripe_answers() -> bool:
    try:
        return requests.get(api_base() + "/_config/together", timeout=2).json().get("together") is not None
    except (requests.RequestException, ValueError):
        return False


def ensure_localstripe() -> str:
    """localstripe answers on STRIPE_API_BASE, started as `make test` starts it when it
    does not (scripts/ensure-services.sh). Returns its address."""
    if not localstripe_answers():
        assert is_local(), f"STRIPE_API_BASE={api_base()} is not local and is not our localstripe"
        subprocess.run(["bash", str(ROOT / "scripts" / "ensure-services.sh")], check=True,
                       env={**os.environ, "STRIPE_API_BASE": api_base()})
        assert localstripe_answers(), f"localstripe did not start: see {ROOT / 'var' / 'localstripe.log'}"
    return api_base()


def client(secret_key: str | None = None, *, stripe_account: str | None = None) -> stripe.StripeClient:
    """A Stripe client on localstripe (the sandbox key unless told), as the gateway builds one."""
    return stripe.StripeClient(secret_key or settings.STRIPE_TEST_SECRET_KEY, stripe_account=stripe_account,
                               base_addresses={"api": api_base()}, max_network_retries=0)


# --- Webhooks ------------------------------------------------------------------------------

def webhook_secret() -> str:
    return settings.STRIPE_WEBHOOK_SECRETS[0]


def register_stripe_webhook(url: str, id: str, *, secret: str | None = None, events: list[str] | None = None) -> None:
    """localstripe sends its events to `url` (under `id`: registering the same id again
    replaces it), signed with `secret` (the first STRIPE_WEBHOOK_SECRET)."""
    body: dict = {"url": url, "secret": secret or webhook_secret()}
    if events is not None:
        body["events"] = events
    requests.post(f"{api_base()}/_config/webhooks/{id}", json=body, timeout=5).raise_for_status()


def unregister_stripe_webhook(id: str) -> None:
    requests.delete(f"{api_base()}/_config/webhooks/{id}", timeout=5).raise_for_status()


def signature_header(payload: bytes, *, secret: str | None = None, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe (and localstripe) compute it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new((secret or webhook_secret()).encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_payload(event_type: str, obj: dict, *, id: str | None = None, created: int | None = None) -> dict:
    """A Stripe event around an object (e.g. a PaymentIntent from localstripe, `.to_dict()`)."""
    return {"id": id or "evt_" + secrets.token_hex(10), "object": "event", "type": event_type,
            "api_version": "2017-08-15", "created": created or int(time.time()), "livemode": False,
            "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}


def send_signed_event(url: str, event: dict, *, secret: str | None = None, timestamp: int | None = None,
                      payload: bytes | None = None) -> requests.Response:
    """POST an event to `url` as Stripe does, signed (again: events are delivered at
    least once, in any order). `event` may be one of localstripe's (`find_event`)."""
    payload = payload if payload is not None else json.dumps(event).encode()
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Stripe-Signature": signature_header(payload, secret=secret, timestamp=timestamp)}
    return requests.post(url, data=payload, headers=headers, timeout=30)


def find_event(event_type: str, object_id: str, *, timeout: float = 10.0) -> dict:
    """The event localstripe made of type `event_type` about object `object_id` in
    the last ten minutes (waits for it)."""
    deadline = time.monotonic() + timeout
    since = int(time.time()) - 600
    while True:
        params: dict = {"type": event_type, "created[gte]": since, "limit": 100}
        while True:
            page = requests.get(f"{api_base()}/v1/events", params=params, auth=(settings.STRIPE_TEST_SECRET_KEY, ""),
                                timeout=10).json()
            for event in page["data"]:
                if event["data"]["object"].get("id") == object_id:
                    return event
            if not page["has_more"]:
                break
            params["starting_after"] = page["data"][-1]["id"]
        if time.monotonic() > deadline:
            raise AssertionError(f"localstripe made no {event_type} event for {object_id}")
        time.sleep(0.2)


# --- The donor's side ----------------------------------------------------------------------

def card(number: str = TEST_CARD) -> dict:
    return {"number": number, "exp_month": "12", "exp_year": str(time.gmtime().tm_year + 3), "cvc": "123"}


def pay_intent(client_secret: str, number: str = TEST_CARD, *, billing_details: dict | None = None,
               publishable_key: str | None = None) -> dict:
    """Confirm a PaymentIntent with a test card as the donor's browser does with
    Stripe.js (`confirmCardPayment`): publishable key, client secret, the card.
    Returns {"paymentIntent": {...}} or {"error": {...}} (a decline: message
    "Your card was declined."), like confirmCardPayment's result. For tests that
    do not drive a browser; a 3-D Secure card stays `requires_action`."""
    intent_id = client_secret.split("_secret_")[0]
    response = requests.post(f"{api_base()}/v1/payment_intents/{intent_id}/confirm", timeout=30, json={
        "key": publishable_key or settings.STRIPE_TEST_PUBLISHABLE_KEY, "client_secret": client_secret,
        "payment_method_data": {"type": "card", "card": card(number), "billing_details": billing_details or {}},
    })
    body = response.json()
    return {"error": body["error"]} if "error" in body else {"paymentIntent": body}


def fill_card(page, number: str = TEST_CARD, *, within: str = "#card-element", exp_month: str = "12",
              exp_year: str = "34", cvc: str = "123", postal_code: str = "2000") -> None:
    """Type a card into the card Element mounted in `within` (Playwright page).
    localstripe's Element is plain inputs named by their placeholder (no postcode
    with `hidePostalCode`)."""
    for field, value in (("number", number), ("exp_month", exp_month), ("exp_year", exp_year), ("cvc", cvc),
                         ("postal_code", postal_code)):
        inputs = page.locator(f"{within} input[placeholder={field}]")
        if field != "postal_code" or inputs.count():
            inputs.fill(value)


def open_dispute(*, charge: str | None = None, payment_intent: str | None = None, reason: str = "fraudulent") -> dict:
    """The cardholder's bank disputes a charge: `charge.dispute.created`."""
    body = {"reason": reason, **({"charge": charge} if charge else {"payment_intent": payment_intent})}
    response = requests.post(f"{api_base()}/_config/disputes", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def close_dispute(dispute_id: str, status: str) -> dict:
    """The bank decides: `won` or `lost` (`charge.dispute.closed`)."""
    response = requests.post(f"{api_base()}/_config/disputes/{dispute_id}", json={"status": status}, timeout=10)
    response.raise_for_status()
    return response.json()


def stripe_env() -> dict[str, str]:
    """The Stripe settings of this test process as environment variables, for a
    server process started with DEBUG=0 (tests/support/servers.Gunicorn(env=...)),
    whose own defaults would be Stripe's real addresses."""
    return {
        "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY,
        "STRIPE_TEST_SECRET_KEY": settings.STRIPE_TEST_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": settings.STRIPE_PUBLISHABLE_KEY,
        "STRIPE_TEST_PUBLISHABLE_KEY": settings.STRIPE_TEST_PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": ",".join(settings.STRIPE_WEBHOOK_SECRETS),
        "STRIPE_API_BASE": settings.STRIPE_API_BASE,
        "STRIPE_JS_URL": settings.STRIPE_JS_URL,
    }


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.2, message: str = "condition"):
    """Poll until `predicate()` is truthy (localstripe sends events a second after
    the request that caused them); returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
