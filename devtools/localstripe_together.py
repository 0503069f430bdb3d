#!/usr/bin/env python3
"""localstripe, extended for Together: a stateful fake Stripe for development and tests.

    python devtools/localstripe_together.py --port 8420

Stripe cannot be reached from our machines, so `make run` and `make test` talk
to localstripe (PyPI, pinned in pyproject.toml). This launcher imports its
aiohttp `app`, extends it with what Together's payments use and localstripe
lacks, and serves it. Nothing in the app knows it is a fake: the app talks to
it through the official `stripe` package and Stripe.js, as it would to Stripe.

The extensions (each section below says what and why):
  * requests: `Idempotency-Key` on POSTs; `Stripe-Account` scopes payouts;
    a publishable key + client_secret may confirm a PaymentIntent, as Stripe.js does.
  * PaymentIntent: transfer_group, setup_future_usage, description,
    receipt_email, statement_descriptor, on_behalf_of, transfer_data,
    automatic_payment_methods; confirm with payment_method / payment_method_data;
    off-session charges of a customer's saved card; `latest_charge` is an id
    unless expanded (as in Stripe's API).
  * Charge: carries the intent's transfer_group and metadata; its balance
    transaction has Stripe's Australian card fee (1.75% + 30c) and the net.
  * declines at charge time (4000000000000002, 4000000000009995, ...) with
    Stripe's 402 card_error; 3-D Secure cards keep localstripe's modal.
  * BECS Direct Debit (`au_becs_debit`): `processing`, then paid or failed.
  * SetupIntent: a confirmed setup saves the card to its customer; a refused
    card is a card_error (confirmCardSetup in the fake Stripe.js).
  * refunds: never more than what is left on the charge; `charge.refunded`.
  * /v1/transfers (+ reversals), payouts that take the available balance
    transactions (`/v1/balance_transactions?payout=po_...`) and send `payout.paid`,
    disputes (test route `POST /_config/disputes`), `/v1/disputes`.
  * webhooks: localstripe's own registry and signature, delivered to every
    endpoint at once with a timeout (one dead endpoint delays no other).
  * Stripe.js at /js.stripe.com/v3/: localstripe's file followed by
    localstripe_together.js (confirmCardPayment, confirmCardSetup with a card Element).

Test-only routes (all under /_config/, which localstripe leaves unauthenticated):
  GET  /_config/together                  our launcher: its version and pid (scripts/ensure-services.sh)
  POST /_config/webhooks/{id}             localstripe's: url, secret[, events]
  DELETE /_config/webhooks/{id}           forget it
  POST /_config/disputes                  charge | payment_intent [, reason, amount]
  POST /_config/disputes/{id}             status: won | lost | under_review
  DELETE /_config/data                    localstripe's: forget everything
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import hashlib
import hmac
import inspect
import json
import logging
import os
import pickle
import re
import sys
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import aiohttp
from aiohttp import web
from localstripe import server, webhooks
from localstripe.errors import UserError
from localstripe.resources import (
    BalanceTransaction,
    Charge,
    Customer,
    Event,
    List,
    PaymentIntent,
    PaymentMethod,
    Payout,
    Refund,
    SetupIntent,
    StripeObject,
    fingerprint,
    random_id,
    store,
    try_convert_to_bool,
    try_convert_to_int,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# What /_config/together reports: the launcher's own source, so that
# scripts/ensure-services.sh replaces a launcher older than the checkout.
VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
log = logging.getLogger("localstripe_together")
app = server.app


def emit(event_type: str, obj) -> None:
    """A Stripe event, sent to every registered webhook (localstripe's mechanism)."""
    webhooks.schedule_webhook(Event(event_type, obj))


_event_init = Event.__init__


def _event_init_with_account(self, type, data):
    """An event about a connected account's object names the account, as Connect's do."""
    _event_init(self, type, data)
    if getattr(data, "_account", None):
        self.account = data._account


Event.__init__ = _event_init_with_account


def stripe_error(status: int, message: str, error_type: str, **fields) -> UserError:
    """An error of Stripe's `type` (localstripe's are all invalid_request_error)."""
    error = UserError(status, message, dict(fields))
    error.body["error"]["type"] = error_type
    return error


def card_error(status: int, message: str, **fields) -> UserError:
    return stripe_error(status, message, "card_error", **fields)


def unexpected(kwargs: dict) -> None:
    if kwargs:
        raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))


# --- The store: written to our own file, at most once a second ---------------------
# localstripe pickles its whole store to /tmp/localstripe.pickle on every change;
# with the thousands of objects a test run makes that is quadratic. We keep the
# persistence (a restarted launcher still knows the payments of `make run`, and
# the webhooks registered) but debounce it.
STORE_FILE = ROOT / "var" / "localstripe.pickle"
EVENTS_KEPT = 3 * 24 * 3600
IDEMPOTENCY_TTL = 24 * 3600  # Stripe keeps a key's result for 24 hours
_dump_scheduled = False
# Pickling blocks the event loop, and a store of a whole test run is tens of MB:
# the wait before the next write grows with the last write's duration, so
# writing never takes more than about 1/20 of the fake's time.
_dump_interval = 1.0


def _dump_now() -> None:
    global _dump_scheduled, _dump_interval
    _dump_scheduled = False
    started = time.monotonic()
    STORE_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = STORE_FILE.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump({"store": dict(store), "webhooks": dict(webhooks._webhooks)}, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, STORE_FILE)
    _dump_interval = max(1.0, 20 * (time.monotonic() - started))


def _dump_soon(self=None) -> None:
    global _dump_scheduled
    if _dump_scheduled:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return _dump_now()
    _dump_scheduled = True
    loop.call_later(_dump_interval, _dump_now)


def _load() -> None:
    try:
        with open(STORE_FILE, "rb") as f:
            data = pickle.load(f)
    except FileNotFoundError:
        return
    except (pickle.PickleError, EOFError, AttributeError, ImportError, TypeError, ValueError) as exc:
        # a file of another layout or version: start afresh rather than crash
        log.warning("localstripe: cannot read %s (%s); starting empty", STORE_FILE, exc)
        return
    if not (isinstance(data, dict) and set(data) == {"store", "webhooks"}):
        log.warning("localstripe: %s is not ours; starting empty", STORE_FILE)
        return
    # Old events (Stripe keeps 30 days; tests look a few minutes back) and expired
    # idempotency keys are dropped, or a developer's store would only ever grow.
    now = time.time()
    dict.update(store, {key: obj for key, obj in data["store"].items()
                        if not (key.startswith("event:") and obj.created < now - EVENTS_KEPT)
                        and not (key.startswith("idempotency:") and obj["at"] < now - IDEMPOTENCY_TTL)})
    webhooks._webhooks.update(data["webhooks"])


type(store).dump_to_disk = _dump_soon


# --- Requests: Stripe-Account, Idempotency-Key, publishable-key routes ----------------
STRIPE_ACCOUNT: contextvars.ContextVar[str | None] = contextvars.ContextVar("stripe_account", default=None)
_idempotency_locks: dict[str, asyncio.Lock] = {}


@web.middleware
async def stripe_account_middleware(request, handler):
    """`Stripe-Account: acct_...` (a request made on behalf of a connected account):
    objects made in it belong to that account, and so do payouts (see Payout)."""
    STRIPE_ACCOUNT.set(request.headers.get("Stripe-Account") or None)
    return await handler(request)


@web.middleware
async def idempotency_middleware(request, handler):
    """Stripe's `Idempotency-Key`: a POST repeated with the same key (same API key,
    same account) gets the first response again, even while the first is running;
    the same key with other parameters is a 400 idempotency_error."""
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key or not request.path.startswith("/v1/"):
        return await handler(request)
    scope = f"{server.get_api_key(request) or ''}:{request.headers.get('Stripe-Account', '')}:{key}"
    slot = "idempotency:" + hashlib.sha256(scope.encode()).hexdigest()
    body = await request.read()  # aiohttp keeps it for the handler
    fingerprint = hashlib.sha256(request.path.encode() + b"\n" + body).hexdigest()
    lock = _idempotency_locks.setdefault(slot, asyncio.Lock())
    async with lock:
        saved = store.get(slot)
        if saved and saved["at"] < time.time() - IDEMPOTENCY_TTL:
            del store[slot]
            saved = None
        if saved:
            if saved["fingerprint"] != fingerprint:  # (outside localstripe's error middleware: a response)
                return stripe_error(400, "Keys for idempotent requests can only be used with the same parameters "
                                    f"they were first used with. Try using a key other than '{key}' if you meant to "
                                    "execute a different request.", "idempotency_error").to_response()
            response = web.Response(body=saved["body"], status=saved["status"], content_type="application/json")
            response.headers["Idempotent-Replayed"] = "true"
            response.headers["Idempotency-Key"] = key
            return response
        response = await handler(request)
        # What ran is kept, errors included (a decline stays a decline); not a
        # refused login, a conflict or a server fault, which ran nothing.
        if isinstance(response, web.Response) and response.status not in (401, 409, 429) and response.status < 500:
            store[slot] = {"at": time.time(), "fingerprint": fingerprint, "status": response.status,
                           "body": response.body}
        response.headers["Idempotency-Key"] = key
    if not lock.locked():
        _idempotency_locks.pop(slot, None)
    return response


# Routes Stripe.js calls with the publishable key (`key=pk_...` in the body or
# query) instead of a secret key; a PaymentIntent also needs its client_secret.
PUBLISHABLE_KEY_ROUTES = (
    ("POST", re.compile(r"^/v1/payment_intents/(?P<id>pi_\w+?)/confirm$")),
    ("GET", re.compile(r"^/v1/payment_intents/(?P<id>pi_\w+?)$")),
    ("POST", re.compile(r"^/v1/payment_methods$")),
)


@web.middleware
async def auth_middleware(request, handler):
    """localstripe's auth, plus the publishable-key routes above."""
    if server.get_api_key(request) is None:
        for method, pattern in PUBLISHABLE_KEY_ROUTES:
            match = pattern.match(request.path)
            if request.method != method or not match:
                continue
            if method == "POST":
                data = await server.get_post_data(request, remove_auth=False) or {}
            else:
                data = server.unflatten_data(request.query)
            key = data.get("key")
            if not (isinstance(key, str) and key.startswith("pk_")):
                raise UserError(401, "Unauthorized")
            if "id" in match.groupdict():
                intent = PaymentIntent._api_retrieve(match["id"])
                if data.get("client_secret") != intent.client_secret:
                    raise UserError(400, "The client_secret provided does not match the client_secret associated "
                                    "with the PaymentIntent.", {"code": "payment_intent_invalid_parameter"})
            return await handler(request)
    return await server.auth_middleware(request, handler)


# --- Declines --------------------------------------------------------------------------
# Stripe's test cards that decline when charged (localstripe declines most of them
# only when attached to a customer): code, decline_code, message as Stripe sends them.
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000127": ("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    "4000000000000119": ("processing_error", "processing_error",
                         "An error occurred while processing your card. Try again in a little bit."),
}
_charging_is_declined = PaymentMethod._charging_is_declined


def _charging_is_declined_too(self):
    return getattr(self, "_card_number", None) in DECLINES or _charging_is_declined(self)


PaymentMethod._charging_is_declined = _charging_is_declined_too


def _set_auth_failure(self):
    pm = PaymentMethod._api_retrieve(self.payment_method)
    code, decline_code, message = DECLINES.get(getattr(pm, "_card_number", None),
                                               ("card_declined", "generic_decline", "Your card was declined."))
    self.status = "failed"
    self.failure_code, self.failure_message, self._decline_code = code, message, decline_code
    self.outcome = {"network_status": "declined_by_network", "reason": decline_code, "type": "issuer_declined",
                    "seller_message": "The bank did not return any further details with this decline."}


def _raise_failure(self):
    raise card_error(402, self.failure_message, code=self.failure_code, charge=self.id,
                     decline_code=getattr(self, "_decline_code", "generic_decline"))


Charge._set_auth_failure = _set_auth_failure
Charge._raise_failure = _raise_failure


# --- Fees --------------------------------------------------------------------------------
# Stripe's prices in Australia: domestic cards 1.75% + A$0.30; BECS Direct Debit
# 1% + A$0.30, at most A$3.50. localstripe's fee is 0.
def stripe_fee(amount: int, method: str = "card") -> int:
    if method == "au_becs_debit":
        return min(int((Decimal(amount) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + 30, 350)
    return int((Decimal(amount) * Decimal("0.0175")).quantize(Decimal(1), rounding=ROUND_HALF_UP)) + 30


def _account_of(source_id: str):
    obj = store.get(("charge:" if source_id.startswith("ch_") else "refund:") + source_id)
    if obj is not None and source_id.startswith("re_"):
        obj = store.get("charge:" + obj.charge)
    return getattr(obj, "_account", None)


_balance_transaction_init = BalanceTransaction.__init__


def _balance_transaction_init_with_fee(self, *args, **kwargs):
    _balance_transaction_init(self, *args, **kwargs)
    self._account = _account_of(self.source)
    self._payout = None
    if self.type == "charge":
        charge = store.get("charge:" + self.source)
        self.fee = stripe_fee(self.amount, PaymentMethod._api_retrieve(charge.payment_method).type)
        self.fee_details = [{"amount": self.fee, "application": None, "currency": self.currency,
                             "description": "Stripe processing fees", "type": "stripe_fee"}]


@classmethod
def _balance_transaction_list(cls, url, payout=None, type=None, source=None, limit=None, starting_after=None,
                              **kwargs):
    """`?payout=po_...` lists what a payout paid out; `type` and `source` filter too."""
    unexpected(kwargs)
    li = super(BalanceTransaction, cls)._api_list_all(url, limit=limit, starting_after=starting_after)
    li._list = [t for t in li._list
                if (payout is None or getattr(t, "_payout", None) == payout)
                and (type is None or t.type == type) and (source is None or t.source == source)]
    li._list.sort(key=lambda t: t.created, reverse=True)
    return li


BalanceTransaction.__init__ = _balance_transaction_init_with_fee
BalanceTransaction._api_list_all = _balance_transaction_list


# --- Charges -----------------------------------------------------------------------------
_charge_init = Charge.__init__
CHARGE_EXTRAS = ("transfer_group", "on_behalf_of", "transfer_data", "receipt_email")


def _charge_init_with_extras(self, *args, **kwargs):
    extras = {name: kwargs.pop(name, None) for name in CHARGE_EXTRAS}
    _charge_init(self, *args, **kwargs)
    for name, value in extras.items():
        setattr(self, name, value)
    # A new charge has no refund and has funded no transfer yet. Without the list,
    # its first export scanned the whole store for refunds (_charge_refund_ids):
    # every charge made cost O(store), a third of the fake's time in a billing run.
    self._together_refunds = []
    self._together_transferred = 0
    self._account = STRIPE_ACCOUNT.get()
    pm = PaymentMethod._api_retrieve(self.payment_method)
    if getattr(pm, "type", None) == "card" and isinstance(getattr(pm, "card", None), dict):
        self.billing_details = dict(pm.billing_details or {})
        self.payment_method_details = {"type": "card", "card": {
            key: pm.card.get(key) for key in ("brand", "country", "exp_month", "exp_year", "fingerprint", "funding", "last4")}}


Charge.__init__ = _charge_init_with_extras
Charge.disputed = property(lambda self: getattr(self, "_disputed", False))  # set by Dispute


# --- PaymentIntents ----------------------------------------------------------------------
PAYMENT_INTENT_EXTRAS = ("transfer_group", "setup_future_usage", "description", "receipt_email",
                         "statement_descriptor", "statement_descriptor_suffix", "on_behalf_of", "transfer_data",
                         "automatic_payment_methods")
_payment_intent_init = PaymentIntent.__init__


def _check_payment_intent_extras(extras: dict) -> dict:
    try:
        for name in ("transfer_group", "description", "receipt_email", "statement_descriptor_suffix"):
            assert extras.get(name) is None or type(extras[name]) is str
        assert extras.get("setup_future_usage") in (None, "on_session", "off_session")
        descriptor = extras.get("statement_descriptor")
        assert descriptor is None or (type(descriptor) is str and len(descriptor) <= 22
                                      and re.search("[a-zA-Z]", descriptor))
        assert extras.get("on_behalf_of") is None or re.match(r"^acct_\w+$", str(extras["on_behalf_of"]))
        if extras.get("transfer_data") is not None:
            data = extras["transfer_data"]
            assert type(data) is dict and re.match(r"^acct_\w+$", str(data.get("destination", "")))
            assert set(data) <= {"destination", "amount"}
            if "amount" in data:
                data["amount"] = try_convert_to_int(data["amount"])
                assert type(data["amount"]) is int and data["amount"] > 0
        if extras.get("automatic_payment_methods") is not None:
            apm = extras["automatic_payment_methods"]
            assert type(apm) is dict and set(apm) <= {"enabled", "allow_redirects"}
            apm["enabled"] = try_convert_to_bool(apm.get("enabled"))
            assert type(apm["enabled"]) is bool
            assert apm.get("allow_redirects") in (None, "always", "never")
    except AssertionError:
        raise UserError(400, "Bad request")
    return extras


def _payment_intent_init_with_extras(self, *args, **kwargs):
    extras = _check_payment_intent_extras({name: kwargs.pop(name, None) for name in PAYMENT_INTENT_EXTRAS})
    _payment_intent_init(self, *args, **kwargs)
    for name, value in extras.items():
        setattr(self, name, value)
    self._account = STRIPE_ACCOUNT.get()
    if isinstance(self.customer, str):
        customer = store.get("customer:" + self.customer)
        if customer is not None:
            ids = _customer_intent_ids(customer)  # (a list built by the scan has this one already)
            if self.id not in ids:
                ids.append(self.id)


def _customer_intent_ids(customer) -> list[str]:
    """A customer's PaymentIntents, oldest first, kept on it as they are made (listing
    them by customer scanned every intent in the store). A customer from an older
    store without the list is scanned once."""
    ids = getattr(customer, "_together_intents", None)
    if ids is None:
        ids = sorted((obj for key, obj in list(store.items()) if key.startswith("payment_intent:")
                      and obj.customer == customer.id), key=lambda i: i.created)
        ids = customer._together_intents = [i.id for i in ids]
    return ids


_payment_intent_export = PaymentIntent._export


def _payment_intent_export_charge_id(self, expand=None):
    """`latest_charge` is an id unless expanded, as in Stripe's API (localstripe embeds it)."""
    obj = _payment_intent_export(self, expand=expand)
    if self.latest_charge is not None and not any(path.split(".")[0] == "latest_charge" for path in expand or []):
        obj["latest_charge"] = self.latest_charge.id
    return obj


_last_payment_error = PaymentIntent.last_payment_error.fget


def _last_payment_error_as_stripe(self):
    error = _last_payment_error(self)
    if error and self.latest_charge is not None and self.latest_charge.status == "failed":
        error.update(type="card_error", decline_code=getattr(self.latest_charge, "_decline_code", None),
                     payment_method=PaymentMethod._api_retrieve(self.latest_charge.payment_method)._export())
    elif error:
        error["type"] = "card_error"
    return error


def _create_charge(self, on_failure_now):
    """localstripe's, with the intent's description, metadata, transfer group and
    connected-account fields on the charge; `setup_future_usage` saves the card."""
    if self.status != "requires_confirmation":
        raise UserError(400, "Bad request")
    charge = Charge(amount=self.amount, currency=self.currency, customer=self.customer, source=self.payment_method,
                    capture=(self.capture_method != "manual"), description=getattr(self, "description", None),
                    metadata=dict(self.metadata or {}), statement_descriptor=getattr(self, "statement_descriptor", None),
                    **{name: getattr(self, name, None) for name in CHARGE_EXTRAS})
    charge.payment_intent = self.id
    charge._account = getattr(self, "_account", None)
    self.latest_charge = charge

    def on_success():
        if getattr(self, "setup_future_usage", None) and self.customer:
            pm = PaymentMethod._api_retrieve(self.payment_method)
            if isinstance(pm, PaymentMethod) and pm.customer is None:
                pm.customer = self.customer
        self._on_success()

    if PaymentMethod._api_retrieve(self.payment_method).type == "au_becs_debit":  # see BECS below
        emit("payment_intent.processing", self)
        asyncio.get_running_loop().call_later(BECS_DELAY, _settle_becs, self, charge, on_success)
        return
    charge._initialize_charge(on_success, on_failure_now, self._report_async_failure)


_report_failure_now = PaymentIntent._report_failure


def _report_failure(self):
    """localstripe's 402, with the intent in the error as Stripe sends it."""
    try:
        _report_failure_now(self)
    except UserError as error:
        error.body["error"]["payment_intent"] = self._export()
        raise


def _default_payment_method(customer_id: str):
    customer = Customer._api_retrieve(customer_id)
    source = customer._get_default_payment_method_or_source()
    return source.id if source is not None else None


def _confirm_checked(self, *, off_session: bool):
    """Confirm; off-session, the card must be the customer's and need no 3-D Secure
    (Stripe declines it with authentication_required: the customer is not there)."""
    if not self.payment_method:
        raise UserError(400, "You cannot confirm this PaymentIntent because it's missing a payment method.",
                        {"code": "payment_intent_unexpected_state"})
    pm = PaymentMethod._api_retrieve(self.payment_method)
    if off_session:
        if self.customer and getattr(pm, "customer", None) != self.customer:
            raise UserError(400, f"The provided PaymentMethod {pm.id} does not belong to the customer "
                            f"{self.customer}.", {"code": "payment_method_invalid_parameter", "param": "payment_method"})
        if pm._requires_authentication():
            self.payment_method = None
            self._authentication_failed = True
            emit("payment_intent.payment_failed", self)
            raise card_error(402, "Your card was declined. This transaction requires authentication.",
                             code="authentication_required", decline_code="authentication_required",
                             payment_intent=self._export())
    self._confirm(on_failure_now=self._report_failure)


@classmethod
def _payment_intent_create(cls, confirm=None, off_session=None, mandate_data=None, return_url=None, **data):
    confirm, off_session = try_convert_to_bool(confirm), try_convert_to_bool(off_session)
    if confirm not in (None, True, False) or off_session not in (None, True, False) or (off_session and not confirm):
        raise UserError(400, "Bad request")
    if confirm and not data.get("payment_method") and isinstance(data.get("customer"), str):
        data["payment_method"] = _default_payment_method(data["customer"])  # the customer's saved card
    obj = cls(**data)
    if confirm:
        _confirm_checked(obj, off_session=bool(off_session))
    return obj


def _payment_intent_confirm(id, payment_method=None, payment_method_data=None, client_secret=None,
                            off_session=None, setup_future_usage=None, receipt_email=None, return_url=None,
                            use_stripe_sdk=None, mandate_data=None, **kwargs):
    """Confirm with a payment method, or with `payment_method_data` (Stripe.js: the
    card Element's card becomes a PaymentMethod), again after a decline."""
    unexpected(kwargs)
    obj = PaymentIntent._api_retrieve(id)
    if client_secret is not None and client_secret != obj.client_secret:
        raise UserError(400, "The client_secret provided does not match the client_secret associated with the "
                        "PaymentIntent.", {"code": "payment_intent_invalid_parameter"})
    if obj.status not in ("requires_payment_method", "requires_confirmation"):
        raise UserError(400, f"You cannot confirm this PaymentIntent because it has a status of {obj.status}.",
                        {"code": "payment_intent_unexpected_state", "payment_intent": obj._export()})
    if payment_method_data is not None:
        if payment_method is not None or type(payment_method_data) is not dict:
            raise UserError(400, "Bad request")
        payment_method = PaymentMethod(**{"type": "card", **payment_method_data}).id
    if payment_method is not None:
        obj.payment_method = PaymentMethod._api_retrieve(payment_method).id
        if obj.latest_charge is not None and obj.latest_charge.status == "failed":
            obj.latest_charge = None  # a new attempt after a decline
    if obj.status != "requires_confirmation":
        raise UserError(400, "You cannot confirm this PaymentIntent because it's missing a payment method.",
                        {"code": "payment_intent_unexpected_state"})
    extras = _check_payment_intent_extras({"setup_future_usage": setup_future_usage, "receipt_email": receipt_email})
    for name, value in extras.items():
        if value is not None:
            setattr(obj, name, value)
    _confirm_checked(obj, off_session=bool(try_convert_to_bool(off_session)))
    return obj


@classmethod
def _payment_intent_list(cls, url, customer=None, limit=None, starting_after=None, **kwargs):
    """`?customer=cus_...` lists a customer's PaymentIntents, newest first, as Stripe does
    (recurring billing finds the intent a killed run made; tests count a plan's intents)."""
    unexpected(kwargs)
    li = super(PaymentIntent, cls)._api_list_all(url, limit=limit, starting_after=starting_after) if customer is None \
        else List(url, limit=limit, starting_after=starting_after)
    if customer is not None:
        known = store.get("customer:" + customer)
        ids = _customer_intent_ids(known) if known is not None else []
        li._list = [store["payment_intent:" + pid] for pid in ids if "payment_intent:" + pid in store]
    li._list.sort(key=lambda i: i.created, reverse=True)
    return li


_customer_init = Customer.__init__


def _customer_init_with_intents(self, *args, **kwargs):
    _customer_init(self, *args, **kwargs)
    self._together_intents = []


PaymentIntent._api_list_all = _payment_intent_list
Customer.__init__ = _customer_init_with_intents
PaymentIntent.__init__ = _payment_intent_init_with_extras
PaymentIntent._export = _payment_intent_export_charge_id
PaymentIntent.last_payment_error = property(_last_payment_error_as_stripe)
PaymentIntent._create_charge = _create_charge
PaymentIntent._report_failure = _report_failure
PaymentIntent._api_create = _payment_intent_create


# --- SetupIntents: a card saved without a payment ------------------------------------------
# A donor replacing a recurring plan's card: Stripe.js confirmCardSetup with the
# card Element (localstripe_together.js). As at Stripe, a setup that succeeds saves
# the card to the intent's customer (localstripe's never attached it), and a
# refused card is a card_error.

_setup_intent_confirm = SetupIntent._api_confirm


def _setup_intent_confirm_saving(id, **data):
    try:
        obj = _setup_intent_confirm(id, **data)
    except UserError as error:
        if error.code == 402:
            error.body["error"]["type"] = "card_error"
        raise
    if obj.status == "succeeded" and obj.customer and obj.payment_method:
        pm = PaymentMethod._api_retrieve(obj.payment_method)
        if pm.customer is None:
            pm.customer = obj.customer
        emit("setup_intent.succeeded", obj)
    return obj


# --- BECS Direct Debit: paid days later ------------------------------------------------------
# An `au_becs_debit` PaymentMethod (Stripe's test BSB 000-000) is charged
# asynchronously: the intent is `processing` (`payment_intent.processing`) for
# BECS_DELAY seconds (days at Stripe), then succeeds or, for Stripe's failing
# test accounts, fails (`payment_intent.payment_failed`).
BECS_DELAY = 5.0
BECS_FAILURES = {
    "111111113": ("account_closed", "The customer's bank account has been closed."),
    "111111116": ("insufficient_funds", "The customer's account has insufficient funds to cover this payment."),
}
_payment_method_init = PaymentMethod.__init__


def _payment_method_init_becs(self, type=None, billing_details=None, metadata=None, au_becs_debit=None, **kwargs):
    if type != "au_becs_debit":
        if au_becs_debit is not None:
            kwargs["au_becs_debit"] = au_becs_debit  # refused as unexpected
        return _payment_method_init(self, type=type, billing_details=billing_details, metadata=metadata, **kwargs)
    unexpected(kwargs)
    try:
        assert isinstance(au_becs_debit, dict) and set(au_becs_debit) == {"bsb_number", "account_number"}
        bsb, account = str(au_becs_debit["bsb_number"]).replace("-", ""), str(au_becs_debit["account_number"])
        assert re.match(r"^\d{6}$", bsb) and re.match(r"^\d{5,9}$", account)
        # Stripe needs the account holder's name and email for the mandate.
        assert isinstance(billing_details, dict) and billing_details.get("name") and billing_details.get("email")
        assert metadata is None or isinstance(metadata, dict)
    except AssertionError:
        raise UserError(400, "Bad request")
    StripeObject.__init__(self)
    self._becs_account = account
    self.type = "au_becs_debit"
    self.billing_details = billing_details
    self.au_becs_debit = {"bsb_number": bsb, "last4": account[-4:], "fingerprint": fingerprint(bsb + account)}
    self.customer = None
    self.metadata = metadata or {}


def _settle_becs(intent, charge, on_success) -> None:
    if intent.latest_charge is not charge or charge.status != "pending":
        return
    pm = PaymentMethod._api_retrieve(charge.payment_method)
    if pm._becs_account in BECS_FAILURES:
        charge.status = "failed"
        charge.failure_code, charge.failure_message = BECS_FAILURES[pm._becs_account]
        intent._report_async_failure()
    else:
        txn = BalanceTransaction(amount=charge.amount, currency=charge.currency, description=charge.description,
                                 exchange_rate=1.0, reporting_category="charge", source=charge.id, type="charge")
        charge.balance_transaction = txn.id
        charge.status = "succeeded"
        on_success()
    _dump_soon()


PaymentMethod.__init__ = _payment_method_init_becs


# --- Refunds -------------------------------------------------------------------------------
_refund_init = Refund.__init__
REFUND_REASONS = (None, "duplicate", "fraudulent", "requested_by_customer")


def _refund_init_checked(self, charge=None, payment_intent=None, amount=None, metadata=None, reason=None, **kwargs):
    """Never more than is left on the charge (localstripe allows any amount, and its
    default is the whole charge even after a partial refund); `charge.refunded`."""
    unexpected(kwargs)
    if reason not in REFUND_REASONS:
        raise UserError(400, "Bad request")
    charge_obj = None
    if isinstance(charge, str):
        charge_obj = store.get("charge:" + charge)
    elif isinstance(payment_intent, str) and store.get("payment_intent:" + payment_intent) is not None:
        charge_obj = store["payment_intent:" + payment_intent].latest_charge
        if charge_obj is None:
            raise UserError(400, "This PaymentIntent has no charge to refund.", {"code": "charge_not_refundable"})
    if charge_obj is not None and charge_obj.status == "succeeded":
        left = charge_obj.amount - charge_obj.amount_refunded
        amount = try_convert_to_int(amount) if amount is not None else left
        if left <= 0:
            raise UserError(400, f"Charge {charge_obj.id} has already been refunded.", {"code": "charge_already_refunded"})
        if type(amount) is int and amount > left:
            raise UserError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                            {"code": "amount_too_large", "param": "amount"})
    _refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, metadata=metadata)
    self.reason = reason
    charge_obj = Charge._api_retrieve(self.charge)
    known = _charge_refund_ids(charge_obj)  # a charge from an older store: scanned once, this refund included
    if self.id not in known:
        charge_obj._together_refunds = [*known, self.id]
    self.payment_intent = self.payment_intent or charge_obj.payment_intent
    emit("charge.refunded", charge_obj)
    emit("refund.created", self)


Refund.__init__ = _refund_init_checked


def _charge_refund_ids(charge) -> list[str]:
    """The charge's refunds, kept on it as they are made. localstripe found them by
    scanning the whole store, three times per export of a charge (refunds,
    amount_refunded, refunded): in a long test run every intent read took 50 ms.
    A charge from an older store without the list is scanned once."""
    ids = getattr(charge, "_together_refunds", None)
    if ids is None:
        ids = [obj.id for key, obj in list(store.items()) if key.startswith("refund:") and obj.charge == charge.id]
        charge._together_refunds = ids
    return ids


def _charge_refunds(self):
    li = List("/v1/charges/" + self.id + "/refunds")
    li._list = sorted((store["refund:" + rid] for rid in _charge_refund_ids(self)), key=lambda r: r.date, reverse=True)
    return li


Charge.refunds = property(_charge_refunds)


# --- Transfers (Connect: separate charges and transfers) -----------------------------------
class Transfer(StripeObject):
    object = "transfer"
    _id_prefix = "tr_"

    def __init__(self, amount=None, currency=None, destination=None, transfer_group=None,
                 source_transaction=None, metadata=None, description=None, **kwargs):
        unexpected(kwargs)
        amount = try_convert_to_int(amount)
        try:
            assert type(amount) is int and amount > 0
            assert type(currency) is str and re.match(r"^[a-zA-Z]{3}$", currency)
            assert type(destination) is str and re.match(r"^acct_\w+$", destination)
            assert transfer_group is None or type(transfer_group) is str
            assert source_transaction is None or (type(source_transaction) is str and source_transaction.startswith("ch_"))
            assert metadata is None or type(metadata) is dict
            assert description is None or type(description) is str
        except AssertionError:
            raise UserError(400, "Bad request")
        if source_transaction is not None:
            charge = Charge._api_retrieve(source_transaction)
            if charge.status != "succeeded" or charge.currency != currency.lower():
                raise UserError(400, f"The source_transaction {charge.id} cannot fund this transfer.",
                                {"param": "source_transaction"})
            # What the charge already funded is kept on it (a scan of every transfer
            # in the store made each transfer O(store): 200 ms in a long test run).
            funded = getattr(charge, "_together_transferred", 0)
            if funded + amount > charge.amount:
                raise UserError(400, "Insufficient funds in Stripe account. The transfers funded by "
                                f"{charge.id} would exceed its amount.", {"code": "balance_insufficient"})
        super().__init__()
        self.amount = amount
        self.amount_reversed = 0
        self.balance_transaction = None
        self.currency = currency.lower()
        self.description = description
        self.destination = destination
        self.destination_payment = "py_" + random_id(14)
        self.metadata = metadata or {}
        self.reversed = False
        self.source_transaction = source_transaction
        self.source_type = "card"
        self.transfer_group = transfer_group
        self._together_reversals = []
        if source_transaction is not None:
            charge._together_transferred = funded + amount
        emit("transfer.created", self)

    @classmethod
    def _all(cls):
        return [obj for key, obj in list(store.items()) if key.startswith(cls.object + ":")]

    @property
    def reversals(self):
        li = List(f"/v1/transfers/{self.id}/reversals")
        li._list = [store[f"transfer_reversal:{rid}"] for rid in getattr(self, "_together_reversals", [])]
        return li

    @classmethod
    def _api_update(cls, id, metadata=None, description=None, **kwargs):
        unexpected(kwargs)
        return super()._api_update(id, **{k: v for k, v in (("metadata", metadata), ("description", description))
                                           if v is not None})

    @classmethod
    def _api_delete(cls, id):
        raise UserError(405, "Method Not Allowed")

    @classmethod
    def _api_list_all(cls, url, transfer_group=None, destination=None, limit=None, starting_after=None, **kwargs):
        unexpected(kwargs)
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        li._list = [t for t in li._list if (transfer_group is None or t.transfer_group == transfer_group)
                    and (destination is None or t.destination == destination)]
        li._list.sort(key=lambda t: t.created, reverse=True)
        return li

    @classmethod
    def _api_reverse(cls, id, **data):
        return TransferReversal(transfer=id, **data)

    @classmethod
    def _api_list_reversals(cls, id, limit=None, starting_after=None, **kwargs):
        unexpected(kwargs)
        li = List(f"/v1/transfers/{id}/reversals", limit=limit, starting_after=starting_after)
        li._list = cls._api_retrieve(id).reversals._list
        return li


class TransferReversal(StripeObject):
    object = "transfer_reversal"
    _id_prefix = "trr_"

    def __init__(self, transfer=None, amount=None, metadata=None, description=None, **kwargs):
        unexpected(kwargs)
        transfer_obj = Transfer._api_retrieve(transfer)
        left = transfer_obj.amount - transfer_obj.amount_reversed
        amount = left if amount is None else try_convert_to_int(amount)
        if type(amount) is not int or amount <= 0 or (metadata is not None and type(metadata) is not dict):
            raise UserError(400, "Bad request")
        if amount > left:
            raise UserError(400, f"Reversal amount ({amount}) is greater than the amount left on the transfer "
                            f"({left}).", {"param": "amount"})
        super().__init__()
        self.amount = amount
        self.balance_transaction = None
        self.currency = transfer_obj.currency
        self.description = description
        self.destination_payment_refund = "pyr_" + random_id(14)
        self.metadata = metadata or {}
        self.source_refund = None
        self.transfer = transfer_obj.id
        transfer_obj._together_reversals = [*getattr(transfer_obj, "_together_reversals", []), self.id]
        transfer_obj.amount_reversed += amount
        transfer_obj.reversed = transfer_obj.amount_reversed >= transfer_obj.amount
        emit("transfer.reversed", transfer_obj)

    _all = classmethod(Transfer._all.__func__)


# --- Payouts -------------------------------------------------------------------------------
def _payout_init(self, amount=None, currency=None, description=None, metadata=None, statement_descriptor=None,
                 method=None, status=None, **kwargs):
    """A payout takes every available charge and refund balance transaction of its
    account (the platform, or the `Stripe-Account` of the request) not paid out
    yet: `GET /v1/balance_transactions?payout=po_...` lists them. `amount` may be
    left out; given, it must be that available balance. It is paid at once
    (`payout.created`, then `payout.paid`) unless `status` says pending or failed."""
    unexpected(kwargs)
    amount = try_convert_to_int(amount)
    try:
        assert amount is None or (type(amount) is int and amount > 0)
        assert type(currency) is str and re.match(r"^[a-zA-Z]{3}$", currency)
        assert metadata is None or type(metadata) is dict
        assert description is None or type(description) is str
        assert statement_descriptor is None or (type(statement_descriptor) is str and len(statement_descriptor) <= 22)
        assert method in (None, "standard", "instant")
        assert status in (None, "paid", "pending", "failed")
    except AssertionError:
        raise UserError(400, "Bad request")
    currency = currency.lower()
    account = STRIPE_ACCOUNT.get()
    paid_out = [t for key, t in list(store.items())
                if key.startswith("balance_transaction:") and t.type in ("charge", "refund") and t.status == "available"
                and t.currency == currency and getattr(t, "_payout", None) is None
                and getattr(t, "_account", None) == account]
    available = sum(t.net for t in paid_out)
    if available <= 0:
        raise UserError(400, "You have insufficient funds in your Stripe account for this transfer.",
                        {"code": "balance_insufficient"})
    if amount is not None and amount != available:
        raise UserError(400, f"localstripe pays out the whole available balance: {available} {currency}.",
                        {"code": "balance_insufficient", "param": "amount"})
    StripeObject.__init__(self)
    self.amount = available
    self.arrival_date = self.created + 2 * 24 * 3600
    self.automatic = False
    self.balance_transaction = None
    self.currency = currency
    self.description = description or ""
    self.destination = "ba_" + random_id(24)
    self.failure_balance_transaction = None
    self.failure_code = None
    self.failure_message = None
    self.metadata = metadata or {}
    self.method = method or "standard"
    self.original_payout = None
    self.reversed_by = None
    self.source_type = "card"
    self.statement_descriptor = statement_descriptor or ""
    self.status = status or "paid"
    self.type = "bank_account"
    self._account = account
    for t in paid_out:
        t._payout = self.id
    if self.status == "failed":
        self.failure_code = "could_not_process"
        self.failure_message = "The bank could not process this payout."
    emit("payout.created", self)
    if self.status in ("paid", "failed"):
        emit(f"payout.{self.status}", self)


Payout.__init__ = _payout_init


# --- Disputes ------------------------------------------------------------------------------
class Dispute(StripeObject):
    object = "dispute"
    _id_prefix = "dp_"
    _REASONS = ("bank_cannot_process", "credit_not_processed", "customer_initiated", "debit_not_authorized",
               "duplicate", "fraudulent", "general", "incorrect_account_details", "insufficient_funds",
               "product_not_received", "product_unacceptable", "subscription_canceled", "unrecognized")

    def __init__(self, charge=None, reason=None, amount=None, **kwargs):
        unexpected(kwargs)
        charge_obj = Charge._api_retrieve(charge) if isinstance(charge, str) else None
        amount = charge_obj.amount if charge_obj is not None and amount is None else try_convert_to_int(amount)
        if charge_obj is None or charge_obj.status != "succeeded" or reason not in (None, *self._REASONS) \
                or type(amount) is not int or not 0 < amount <= charge_obj.amount:
            raise UserError(400, "Bad request")
        super().__init__()
        self.amount = amount
        self.balance_transactions = []
        self.charge = charge_obj.id
        self.currency = charge_obj.currency
        self.evidence = {}
        self.evidence_details = {"due_by": self.created + 7 * 24 * 3600, "has_evidence": False, "past_due": False,
                                 "submission_count": 0}
        self.is_charge_refundable = False
        self.metadata = {}
        self.payment_intent = charge_obj.payment_intent
        self.reason = reason or "fraudulent"
        self.status = "needs_response"
        charge_obj._disputed = True
        emit("charge.dispute.created", self)

    def _set_status(self, status):
        if status not in ("won", "lost", "under_review", "warning_under_review", "needs_response"):
            raise UserError(400, "Bad request")
        if self.status in ("won", "lost"):
            raise UserError(400, f"This dispute is already closed ({self.status}).")
        self.status = status
        emit("charge.dispute.closed" if status in ("won", "lost") else "charge.dispute.updated", self)
        return self

    @classmethod
    def _api_create(cls, **data):
        raise UserError(405, "Method Not Allowed")  # only a cardholder's bank opens one: /_config/disputes

    @classmethod
    def _api_update(cls, id, metadata=None, **kwargs):
        unexpected(kwargs)
        return super()._api_update(id, **({"metadata": metadata} if metadata else {}))

    @classmethod
    def _api_delete(cls, id):
        raise UserError(405, "Method Not Allowed")

    @classmethod
    def _api_close(cls, id, **kwargs):
        """Stripe's `POST /v1/disputes/{id}/close`: the merchant accepts it (lost)."""
        unexpected(kwargs)
        return cls._api_retrieve(id)._set_status("lost")

    @classmethod
    def _api_list_all(cls, url, charge=None, payment_intent=None, limit=None, starting_after=None, **kwargs):
        unexpected(kwargs)
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        li._list = [d for d in li._list if (charge is None or d.charge == charge)
                    and (payment_intent is None or d.payment_intent == payment_intent)]
        return li

    @classmethod
    def _config_open(cls, charge=None, payment_intent=None, reason=None, amount=None, status=None, **kwargs):
        """Test route: the cardholder disputes a charge (or an intent's charge)."""
        if charge is None and isinstance(payment_intent, str):
            latest = PaymentIntent._api_retrieve(payment_intent).latest_charge
            charge = latest.id if latest is not None else None
        dispute = cls(charge=charge, reason=reason, amount=amount, **kwargs)
        return dispute._set_status(status) if status else dispute

    @classmethod
    def _config_update(cls, id, status=None, **kwargs):
        """Test route: the bank decides (won, lost) or the dispute moves on (under_review)."""
        unexpected(kwargs)
        return cls._api_retrieve(id)._set_status(status)


# --- Webhooks: localstripe's registry and signature, every endpoint at once ---------------
WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=30)


async def _deliver(session, webhook, event, payload: bytes, signed_payload: bytes) -> None:
    signature = hmac.new(webhook.secret.encode(), signed_payload, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Stripe-Signature": f"t={event.created},v1={signature}"}
    try:
        async with session.post(webhook.url, data=payload, headers=headers) as response:
            log.info('webhook "%s" %s to %s: %d', event.type, event.id, webhook.url, response.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.info('webhook "%s" %s to %s failed: %r', event.type, event.id, webhook.url, exc)


async def _send_webhook(event) -> None:
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    signed_payload = b"%d.%s" % (event.created, payload)
    await asyncio.sleep(1)  # as localstripe: after the response that caused it
    targets = [w for w in list(webhooks._webhooks.values()) if w.events is None or event.type in w.events]
    async with aiohttp.ClientSession(timeout=WEBHOOK_TIMEOUT) as session:
        await asyncio.gather(*(_deliver(session, w, event, payload, signed_payload) for w in targets))


webhooks._send_webhook = _send_webhook


# --- Stripe.js -------------------------------------------------------------------------------
def stripe_js(request):
    source = (Path(server.__file__).parent / "localstripe-v3.js").read_text() + "\n" + \
        (HERE / "localstripe_together.js").read_text()
    return web.Response(text=source, content_type="application/javascript",
                        headers={"Cache-Control": "no-cache"})


# --- Routes ------------------------------------------------------------------------------------
async def together(request):
    return server.json_response({"together": VERSION, "pid": os.getpid()})


async def unregister_webhook(request):
    """What localstripe lacks: forget a webhook (tests' servers come and go)."""
    webhooks._webhooks.pop(request.match_info["id"], None)
    return web.Response()


def config_route(func):
    async def handler(request):
        data = await server.get_post_data(request) or {}
        if "id" in request.match_info:
            data["id"] = request.match_info["id"]
        return server.json_response(func(**data)._export())
    return handler


# localstripe bound some handlers when it was imported (its `extra_apis`); those we
# replace are swapped in by this middleware, keyed by method and route pattern.
OVERRIDES = {
    ("POST", "/v1/payment_intents/{id}/confirm"): server.api_extra(_payment_intent_confirm, None),
    ("POST", "/v1/setup_intents/{id}/confirm"): server.api_extra(_setup_intent_confirm_saving, None),
    ("GET", "/v1/balance/history"): server.api_list_all(BalanceTransaction, "/v1/balance/history"),
    ("GET", "/js.stripe.com/v3/"): stripe_js,
}


@web.middleware
async def override_middleware(request, handler):
    resource = getattr(request.match_info.route, "resource", None)
    override = OVERRIDES.get((request.method, getattr(resource, "canonical", None)))
    if override is None:
        return await handler(request)
    response = override(request)  # localstripe's handlers are plain functions or coroutines
    return await response if inspect.isawaitable(response) else response


for cls in (Transfer, Dispute):
    plural = f"/v1/{cls.object}s"
    app.router.add_post(plural, server.api_create(cls, plural))
    app.router.add_get(plural, server.api_list_all(cls, plural))
    app.router.add_get(plural + "/{id}", server.api_retrieve(cls, plural))
    app.router.add_post(plural + "/{id}", server.api_update(cls, plural))
app.router.add_post("/v1/transfers/{id}/reversals", server.api_extra(Transfer._api_reverse, None))
app.router.add_get("/v1/transfers/{id}/reversals", server.api_extra(Transfer._api_list_reversals, None))
app.router.add_post("/v1/disputes/{id}/close", server.api_extra(Dispute._api_close, None))
app.router.add_get("/_config/together", together)
app.router.add_delete("/_config/webhooks/{id}", unregister_webhook)
app.router.add_post("/_config/disputes", config_route(Dispute._config_open))
app.router.add_post("/_config/disputes/{id}", config_route(Dispute._config_update))

# localstripe's middlewares are [error, auth, save store]. Ours: the account and the
# idempotency key around everything (a replay skips the rest), the publishable-key
# routes in place of its auth, the overrides just before the handler.
app.middlewares.insert(0, idempotency_middleware)
app.middlewares.insert(0, stripe_account_middleware)
app.middlewares[app.middlewares.index(server.auth_middleware)] = auth_middleware
app.middlewares.append(override_middleware)


async def _save_on_exit(app) -> None:
    _dump_now()


app.on_cleanup.append(_save_on_exit)


def main(argv=None) -> None:
    global STORE_FILE, BECS_DELAY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--store", type=Path, default=STORE_FILE, help="where the fake keeps its objects")
    parser.add_argument("--from-scratch", action="store_true", help="forget the objects of earlier runs")
    parser.add_argument("--becs-delay", type=float, default=BECS_DELAY, help="seconds a BECS debit is processing")
    args = parser.parse_args(argv)
    STORE_FILE, BECS_DELAY = args.store, args.becs_delay
    if not args.from_scratch:
        _load()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    web.run_app(app, host=args.host, port=args.port, access_log=logging.getLogger("aiohttp.access"),
                print=lambda *a: log.info("localstripe (Together) on http://%s:%d", args.host, args.port))


if __name__ == "__main__":
    main()
