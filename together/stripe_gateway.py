"""The one place Together talks to Stripe (the official `stripe` package).

Base layer: imports no app. Functions take duck-typed organisation objects
(`is_sandbox`, `id`) and plain ids, and return Stripe objects.

Keys: a sandbox organisation uses `STRIPE_TEST_SECRET_KEY`, a live one
`STRIPE_SECRET_KEY`. A sandbox can never move live money: a sandbox whose key
is a live key (`sk_live_…`, `rk_live_…`), or not a test key at all, is refused
before any request, and so is a live organisation whose key is the sandboxes'
key (live and sandbox gifts would share one Stripe account and mode).

Errors: Stripe's refusals (4xx: a card declined, a charge already refunded)
become `PaymentRefused` (a validation error naming Stripe's message); network
failures and Stripe's 5xx become `PaymentGatewayUnavailable` (503).
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from together.exceptions import ApplicationError, ValidationFailed


class _Stripe:
    """The `stripe` package, imported on first use: a web or worker process that never
    talks to Stripe (a CSV export, a webhook delivery) does not carry its ~300 modules."""

    def __getattr__(self, name: str):
        module = importlib.import_module("stripe")
        globals()["stripe"] = module
        return getattr(module, name)


stripe = _Stripe()

LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
WEBHOOK_TOLERANCE_SECONDS = 300


class PaymentGatewayUnavailable(ApplicationError):
    """Stripe could not be reached, or answered with a server error."""

    code = "service_unavailable"
    default_message = "The payment service is temporarily unavailable. Retry after a short wait."


class PaymentsMisconfigured(ApplicationError):
    """The platform's Stripe keys are missing or of the wrong kind for this organisation."""

    code = "service_unavailable"
    default_message = "Payments are not configured for this organisation."


class PaymentRefused(ValidationFailed):
    """Stripe refused the request (4xx): its message is kept."""


class SignatureInvalid(Exception):
    """A webhook whose Stripe-Signature matches none of the configured secrets."""


# --- configuration ------------------------------------------------------------------------

def _setting(name: str, default: Any = "") -> Any:
    return getattr(settings, name, default)


def webhook_secrets() -> list[str]:
    secrets = _setting("STRIPE_WEBHOOK_SECRETS", None)
    if secrets is None:
        secrets = [s.strip() for s in str(_setting("STRIPE_WEBHOOK_SECRET", "")).split(",")]
    return [s for s in secrets if s]


def api_base() -> str:
    return (_setting("STRIPE_API_BASE", "") or stripe.DEFAULT_API_BASE).rstrip("/")


def is_live_key(key: str) -> bool:
    return key.startswith(LIVE_KEY_PREFIXES) or key.startswith("pk_live_")


def secret_key_for(organisation) -> str:
    """The secret key `organisation` may use, or PaymentsMisconfigured."""
    if organisation.is_sandbox:
        key = _setting("STRIPE_TEST_SECRET_KEY", "")
        if not key:
            raise PaymentsMisconfigured("Payments are not configured for sandboxes: STRIPE_TEST_SECRET_KEY is not set.")
        if is_live_key(key) or not key.startswith(TEST_KEY_PREFIXES):
            # Never let a sandbox move live money, whatever the environment says.
            raise PaymentsMisconfigured("A sandbox organisation can never use a live Stripe key: STRIPE_TEST_SECRET_KEY "
                                        "must be a test key (sk_test_…).")
        return key
    key = _setting("STRIPE_SECRET_KEY", "")
    if not key:
        raise PaymentsMisconfigured("Payments are not configured: STRIPE_SECRET_KEY is not set.")
    if not (key.startswith(LIVE_KEY_PREFIXES) or key.startswith(TEST_KEY_PREFIXES)):
        raise PaymentsMisconfigured("STRIPE_SECRET_KEY is not a Stripe secret key.")
    if key == _setting("STRIPE_TEST_SECRET_KEY", ""):
        # One key for both would mix live and sandbox gifts in one Stripe account and mode.
        raise PaymentsMisconfigured("STRIPE_SECRET_KEY and STRIPE_TEST_SECRET_KEY are the same key: live organisations "
                                    "need their own.")
    return key


def publishable_key_for(organisation) -> str:
    """The publishable key Stripe.js uses on `organisation`'s payment pages."""
    if organisation.is_sandbox:
        key = _setting("STRIPE_TEST_PUBLISHABLE_KEY", "")
        if not key:
            raise PaymentsMisconfigured("STRIPE_TEST_PUBLISHABLE_KEY is not set.")
        if key.startswith("pk_live_"):
            raise PaymentsMisconfigured("A sandbox organisation can never use a live Stripe key: STRIPE_TEST_PUBLISHABLE_KEY "
                                        "must be a test key (pk_test_…).")
        return key
    key = _setting("STRIPE_PUBLISHABLE_KEY", "")
    if not key:
        raise PaymentsMisconfigured("STRIPE_PUBLISHABLE_KEY is not set.")
    return key


_clients: dict[tuple[str, str], stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def client_for(organisation) -> stripe.StripeClient:
    """A StripeClient with the key `organisation` may use (one per key and base, reused)."""
    key = secret_key_for(organisation)
    base = api_base()
    with _clients_lock:
        client = _clients.get((key, base))
        if client is None:
            client = stripe.StripeClient(key, base_addresses={"api": base}, max_network_retries=2)
            _clients[(key, base)] = client
        return client


def _call(fn, *args, **kwargs):
    """Run one Stripe call; map its errors onto ours."""
    try:
        return fn(*args, **kwargs)
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise PaymentGatewayUnavailable() from exc
    except stripe.AuthenticationError as exc:
        raise PaymentsMisconfigured("Stripe refused the platform's key.") from exc
    except stripe.StripeError as exc:
        status = getattr(exc, "http_status", None) or 500
        if status >= 500:
            raise PaymentGatewayUnavailable() from exc
        message = getattr(exc, "user_message", None) or str(getattr(exc, "_message", "") or exc) or "Stripe refused the request."
        raise PaymentRefused(f"Stripe refused: {message}", param="stripe", stripe_code=getattr(exc, "code", None)) from exc


def _options(idempotency_key: str | None = None, stripe_account: str | None = None) -> dict:
    options: dict[str, Any] = {}
    if idempotency_key:
        options["idempotency_key"] = idempotency_key
    if stripe_account:
        options["stripe_account"] = stripe_account
    return options


# --- payment intents ------------------------------------------------------------------------

def payment_intent_create(organisation, *, amount_cents: int, currency: str, metadata: dict[str, str],
                          idempotency_key: str, transfer_group: str | None = None, description: str | None = None,
                          receipt_email: str | None = None, customer: str | None = None,
                          setup_future_usage: str | None = None) -> stripe.PaymentIntent:
    """`customer` + `setup_future_usage="off_session"`: the card the donor confirms
    with is saved to the customer for later off-session charges (a recurring gift)."""
    params: dict[str, Any] = {
        "amount": int(amount_cents),
        "currency": currency.lower(),
        "metadata": {k: str(v) for k, v in metadata.items() if v is not None},
        "payment_method_types": ["card"],
    }
    if customer:
        params["customer"] = customer
    if setup_future_usage:
        params["setup_future_usage"] = setup_future_usage
    if transfer_group:
        params["transfer_group"] = transfer_group
    if description:
        params["description"] = description[:1000]
    if receipt_email:
        params["receipt_email"] = receipt_email
    client = client_for(organisation)
    return _call(client.v1.payment_intents.create, params=params, options=_options(idempotency_key))


def payment_intent_update_amount(organisation, *, payment_intent_id: str, amount_cents: int) -> stripe.PaymentIntent:
    client = client_for(organisation)
    return _call(client.v1.payment_intents.update, payment_intent_id, params={"amount": int(amount_cents)})


def payment_intent_cancel(organisation, *, payment_intent_id: str) -> stripe.PaymentIntent:
    client = client_for(organisation)
    return _call(client.v1.payment_intents.cancel, payment_intent_id)


# What recording a payment reads of its intent: the charge and its fee (balance transaction).
INTENT_EXPAND = ("latest_charge.balance_transaction",)


def payment_intent_retrieve(organisation, *, payment_intent_id: str) -> stripe.PaymentIntent:
    """The intent with its latest charge and that charge's balance transaction expanded."""
    client = client_for(organisation)
    return _call(client.v1.payment_intents.retrieve, payment_intent_id, params={"expand": list(INTENT_EXPAND)})


def charge_retrieve(organisation, *, charge_id: str) -> stripe.Charge:
    client = client_for(organisation)
    return _call(client.v1.charges.retrieve, charge_id, params={"expand": ["balance_transaction"]})


def dispute_retrieve(organisation, *, dispute_id: str) -> stripe.Dispute:
    client = client_for(organisation)
    return _call(client.v1.disputes.retrieve, dispute_id)


def charge_refunds(organisation, *, charge_id: str) -> list[dict]:
    """Every refund of a charge (all pages), as dicts."""
    client = client_for(organisation)
    out: list[dict] = []
    params: dict[str, Any] = {"charge": charge_id, "limit": 100}
    for _page in range(100):
        page = _call(client.v1.refunds.list, params=params)
        data = [to_dict(r) for r in page.data]
        out.extend(data)
        if not page.has_more or not data:
            break
        params = {**params, "starting_after": data[-1]["id"]}
    return out


# --- refunds and transfers ------------------------------------------------------------------

def refund(organisation, *, charge_id: str | None = None, payment_intent_id: str | None = None,
           amount_cents: int | None = None, idempotency_key: str, reason: str | None = None,
           metadata: dict[str, str] | None = None) -> stripe.Refund:
    """Give money back to the donor (all of it when `amount_cents` is None)."""
    if bool(charge_id) == bool(payment_intent_id):
        raise ValueError("refund needs exactly one of charge_id and payment_intent_id")
    params: dict[str, Any] = {"charge": charge_id} if charge_id else {"payment_intent": payment_intent_id}
    if amount_cents is not None:
        params["amount"] = int(amount_cents)
    if metadata:
        params["metadata"] = {k: str(v) for k, v in metadata.items()}
    client = client_for(organisation)
    return _call(client.v1.refunds.create, params=params, options=_options(idempotency_key))


def transfer_create(organisation, *, amount_cents: int, currency: str, destination: str, transfer_group: str | None,
                    source_transaction: str | None, idempotency_key: str,
                    metadata: dict[str, str] | None = None) -> stripe.Transfer:
    """Move part of a charge to a connected account (separate charges and transfers)."""
    params: dict[str, Any] = {"amount": int(amount_cents), "currency": currency.lower(), "destination": destination}
    if transfer_group:
        params["transfer_group"] = transfer_group
    if source_transaction:
        params["source_transaction"] = source_transaction
    if metadata:
        params["metadata"] = {k: str(v) for k, v in metadata.items()}
    client = client_for(organisation)
    return _call(client.v1.transfers.create, params=params, options=_options(idempotency_key))


def transfer_retrieve(organisation, *, transfer_id: str) -> stripe.Transfer:
    client = client_for(organisation)
    return _call(client.v1.transfers.retrieve, transfer_id)


def transfer_reverse(organisation, *, transfer_id: str, amount_cents: int | None, idempotency_key: str,
                     metadata: dict[str, str] | None = None) -> stripe.TransferReversal:
    """Take back (part of) a transfer from the connected account, e.g. for a refund."""
    params: dict[str, Any] = {}
    if amount_cents is not None:
        params["amount"] = int(amount_cents)
    if metadata:
        params["metadata"] = {k: str(v) for k, v in metadata.items()}
    client = client_for(organisation)
    return _call(client.v1.transfers.reversals.create, transfer_id, params=params, options=_options(idempotency_key))


# --- payouts ----------------------------------------------------------------------------------

def payout_retrieve(organisation, *, payout_id: str, stripe_account: str | None = None) -> stripe.Payout:
    client = client_for(organisation)
    return _call(client.v1.payouts.retrieve, payout_id, options=_options(stripe_account=stripe_account))


def payout_balance_transactions(organisation, *, payout_id: str, stripe_account: str | None = None) -> list:
    """Every balance transaction paid out in `payout_id` (all pages)."""
    client = client_for(organisation)
    out: list = []
    params: dict[str, Any] = {"payout": payout_id, "limit": 100}
    for _page in range(1000):
        page = _call(client.v1.balance_transactions.list, params=params, options=_options(stripe_account=stripe_account))
        data = list(page.data)
        out.extend(data)
        if not page.has_more or not data:
            break
        params = {**params, "starting_after": data[-1].id}
    return out


# --- customers and off-session charges (recurring gifts) -----------------------------------

def customer_create(organisation, *, email: str, name: str | None = None, metadata: dict[str, str],
                    idempotency_key: str) -> stripe.Customer:
    params: dict[str, Any] = {"email": email, "metadata": {k: str(v) for k, v in metadata.items() if v is not None}}
    if name:
        params["name"] = name[:256]
    client = client_for(organisation)
    return _call(client.v1.customers.create, params=params, options=_options(idempotency_key))


def payment_method_retrieve(organisation, *, payment_method_id: str) -> stripe.PaymentMethod:
    client = client_for(organisation)
    return _call(client.v1.payment_methods.retrieve, payment_method_id)


def setup_intent_create(organisation, *, customer: str, metadata: dict[str, str],
                        idempotency_key: str | None = None) -> stripe.SetupIntent:
    """A SetupIntent that saves a card to `customer` for off-session charges (a donor
    replacing a recurring plan's card: Stripe.js confirmCardSetup with its client secret)."""
    params: dict[str, Any] = {"customer": customer, "usage": "off_session", "payment_method_types": ["card"],
                              "metadata": {k: str(v) for k, v in metadata.items() if v is not None}}
    client = client_for(organisation)
    return _call(client.v1.setup_intents.create, params=params, options=_options(idempotency_key))


def setup_intent_retrieve(organisation, *, setup_intent_id: str) -> stripe.SetupIntent:
    client = client_for(organisation)
    return _call(client.v1.setup_intents.retrieve, setup_intent_id)


def payment_intents_of_customer(organisation, *, customer: str, limit: int = 100) -> list[dict]:
    """The customer's most recent PaymentIntents (newest first), as dicts."""
    client = client_for(organisation)
    page = _call(client.v1.payment_intents.list, params={"customer": customer, "limit": limit})
    return [to_dict(i) for i in page.data]


@dataclass
class OffSessionCharge:
    """What Stripe answered to an off-session charge: the PaymentIntent (as a dict;
    Stripe returns it with a card error too) and, when the card was refused, Stripe's
    code (`card_declined`, `authentication_required`, …), decline code and message."""

    intent: dict
    error_code: str | None = None
    decline_code: str | None = None
    message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.intent.get("status") == "succeeded"

    @property
    def needs_authentication(self) -> bool:
        """The donor's bank wants them to authenticate (3-D Secure): off-session, the
        card cannot be charged until they come back."""
        error = self.intent.get("last_payment_error") or {}
        return (self.error_code == "authentication_required" or self.intent.get("status") == "requires_action"
                or error.get("code") in ("authentication_required", "payment_intent_authentication_failure"))


def _off_session(fn, *args, **kwargs) -> OffSessionCharge:
    def attempt() -> OffSessionCharge:
        try:
            return OffSessionCharge(intent=to_dict(fn(*args, **kwargs)))
        except stripe.CardError as exc:
            error = getattr(exc, "error", None)
            intent = getattr(error, "payment_intent", None) if error is not None else None
            return OffSessionCharge(
                intent=to_dict(intent), error_code=getattr(exc, "code", None),
                decline_code=getattr(error, "decline_code", None) if error is not None else None,
                message=getattr(exc, "user_message", None) or str(getattr(exc, "_message", "") or exc) or "The card was declined.",
            )
    return _call(attempt)


def payment_intent_charge_off_session(organisation, *, amount_cents: int, currency: str, customer: str,
                                      payment_method: str, metadata: dict[str, str], idempotency_key: str,
                                      description: str | None = None) -> OffSessionCharge:
    """Create and confirm a PaymentIntent on a customer's saved card, the donor not
    present (`off_session`). The same idempotency key gives back the same intent
    and answer, so a retried request never charges twice. The intent comes back as
    `payment_intent_retrieve` gives it (its charge and balance transaction
    expanded): the caller records it without reading it again."""
    params: dict[str, Any] = {
        "amount": int(amount_cents), "currency": currency.lower(), "customer": customer, "payment_method": payment_method,
        "payment_method_types": ["card"], "off_session": True, "confirm": True,
        "metadata": {k: str(v) for k, v in metadata.items() if v is not None},
        "expand": list(INTENT_EXPAND),
    }
    if description:
        params["description"] = description[:1000]
    client = client_for(organisation)
    return _off_session(client.v1.payment_intents.create, params=params, options=_options(idempotency_key))


def payment_intent_confirm_off_session(organisation, *, payment_intent_id: str, payment_method: str,
                                       idempotency_key: str) -> OffSessionCharge:
    """Try a failed off-session PaymentIntent again (the same intent: one per period)."""
    client = client_for(organisation)
    return _off_session(client.v1.payment_intents.confirm, payment_intent_id,
                        params={"payment_method": payment_method, "off_session": True, "expand": list(INTENT_EXPAND)},
                        options=_options(idempotency_key))


# --- webhooks ---------------------------------------------------------------------------------

def construct_event(payload: bytes, sig_header: str) -> stripe.Event:
    """The event if its signature matches one of the configured secrets (rotation:
    several may be live at once) within 5 minutes; else SignatureInvalid."""
    if not sig_header:
        raise SignatureInvalid("No Stripe-Signature header.")
    last: Exception | None = None
    for secret in webhook_secrets():
        try:
            return stripe.Webhook.construct_event(payload, sig_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            last = exc
        except ValueError as exc:  # the body is not JSON
            raise SignatureInvalid("The payload is not a Stripe event.") from exc
    raise SignatureInvalid(str(last) if last else "No webhook secret is configured.")


def to_dict(obj) -> dict:
    """A Stripe object as plain dicts and lists (for reading nested fields safely)."""
    if obj is None:
        return {}
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return dict(obj)
