"""Stripe events row of `make bench` (issue 16): events processed per second by
`POST /webhooks/stripe`.

Setup, per round (not timed): the bench organisation is connected to Stripe
and has an ACTIVE donation form; EVENTS payments are started through
payments.services.payment_start (a PaymentIntent each, in localstripe) and
paid as a donor's browser pays them (the publishable key confirms the intent
with a test card). For each, one `payment_intent.succeeded` event around the
intent as Stripe sends it, with its own event id, signed with the webhook secret
(`Stripe-Signature: t=…,v1=…`); then DUPLICATES of those events (Stripe
delivers at least once) are mixed into the second half of the stream.

Timed: ctx.concurrency keep-alive connections POST the stream to
/webhooks/stripe; every answer must be 200. A first delivery verifies the
signature, stores the event id, re-reads the PaymentIntent from Stripe
(localstripe: an HTTP round trip, part of the real cost), and records the
donation under the payment's lock (donor match or create, the cap check,
audit, the donation.created webhook event) and transfers the money to the
organisation's connected account (another round trip). A duplicate verifies,
finds the id processed, answers.

After each round: every payment SUCCEEDED with exactly one CONFIRMED STRIPE
donation, one StripeEvent row per distinct event id, all PROCESSED; anything
else counts as errors.

Baseline: the same bodies and headers POSTed the same way to a bare Django view
(`POST /_bench/post`: CSRF-exempt, reads the body, answers {}), in the same run.
Each side is measured ROUNDS times and its best round counts.

Stripe is always localstripe here (BENCH_STRIPE_API_BASE, default
http://127.0.0.1:8420, started like `make run` starts it): a bench never talks
to Stripe itself.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import random
import secrets
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

ROOT = Path(__file__).resolve().parent.parent
EVENTS = int(os.environ.get("BENCH_STRIPE_EVENTS", "300"))
DUPLICATES = int(os.environ.get("BENCH_STRIPE_DUPLICATES", str(max(1, EVENTS // 5))))
ROUNDS = int(os.environ.get("BENCH_STRIPE_ROUNDS", "2"))
BARE = "POST /_bench/post (same signed bodies)"
AMOUNT_CENTS = 2_500

_state: dict = {}

# The Stripe settings of the bench's server and of this process (run.py puts them in
# the environment before Django starts): localstripe with development's test keys.
STRIPE_ENV = {
    "STRIPE_API_BASE": os.environ.get("BENCH_STRIPE_API_BASE", "http://127.0.0.1:8420"),
    "STRIPE_SECRET_KEY": "sk_test_together_dev_live",
    "STRIPE_TEST_SECRET_KEY": "sk_test_together_dev_sandbox",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_together_dev_live",
    "STRIPE_TEST_PUBLISHABLE_KEY": "pk_test_together_dev_sandbox",
    "STRIPE_WEBHOOK_SECRET": "whsec_together_bench",
}


# --- localstripe ----------------------------------------------------------------------------

def _localstripe_answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/_config/together", timeout=2) as response:
            return json.loads(response.read()).get("together") is not None
    except (OSError, ValueError):
        return False


def _ensure_localstripe(base: str) -> None:
    if _localstripe_answers(base):
        return
    host = urlsplit(base).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"BENCH_STRIPE_API_BASE={base} is not a local localstripe")
    subprocess.run(["bash", str(ROOT / "scripts" / "ensure-services.sh")], check=True,
                   env={**os.environ, "STRIPE_API_BASE": base})
    if not _localstripe_answers(base):
        raise SystemExit(f"localstripe did not start on {base}: see var/localstripe.log")


def _post_json(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")


# --- events -------------------------------------------------------------------------------------

def _signed(event: dict, secret: str) -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac

    payload = json.dumps(event, separators=(",", ":")).encode()
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": f"t={timestamp},v1={digest}",
                     "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}


def _setup(ctx: BenchContext) -> None:
    """Once per run: Stripe connected, an ACTIVE form."""
    if "form" in _state:
        return
    from engage.models import DonationForm
    from engage.services import form_create
    from organisations.services import organisation_stripe_connect
    from together.actors import Actor

    import logging

    logging.getLogger("stripe").setLevel(logging.WARNING)  # one INFO line per Stripe call otherwise
    _ensure_localstripe(STRIPE_ENV["STRIPE_API_BASE"])
    actor = Actor.system("make bench")
    organisation = ctx.organisation
    if not organisation.stripe_connected:
        organisation_stripe_connect(organisation=organisation, actor=actor, account_id="acct_benchtogether01")
    form = DonationForm.objects.for_organisation(organisation).filter(slug="bench-stripe-events").first()
    if form is None:
        form = form_create(organisation=organisation, actor=actor, name="Bench: Stripe events", title="Bench gifts",
                           slug="bench-stripe-events", suggested_amounts_cents=[AMOUNT_CENTS], status="ACTIVE")
    _state["form"] = form


def _paid_payments(ctx: BenchContext, round_: int) -> list[tuple[str, dict]]:
    """EVENTS payments started and paid (not timed): [(payment id, the succeeded intent)]."""
    from django.conf import settings

    from payments.models import PaymentKind
    from payments.services import PartSpec, payment_start

    base = STRIPE_ENV["STRIPE_API_BASE"]
    run = secrets.token_hex(4)
    out = []
    for i in range(EVENTS):
        payment = payment_start(
            organisation=ctx.organisation, kind=PaymentKind.FORM, form=_state["form"],
            attempt_key=f"bench-{run}-{round_}-{i}",
            donor_details={"email": f"bench-stripe-{run}-{round_}-{i}@example.com", "first_name": "Bench",
                           "last_name": f"Donor {i}", "address_line1": "1 Bench St", "suburb": "Carlton", "state": "VIC",
                           "postcode": "3053", "country": "AU"},
            parts=[PartSpec(recipient_organisation=ctx.organisation, amount_cents=AMOUNT_CENTS)],
        )
        # As Stripe.js confirms it in the donor's browser: publishable key, client secret, card.
        intent = _post_json(base, f"/v1/payment_intents/{payment.payment_intent_id}/confirm", {
            "key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": payment.client_secret,
            "payment_method_data": {"type": "card", "card": {"number": "4242424242424242", "exp_month": "12",
                                                             "exp_year": "2034", "cvc": "123"}},
        })
        if intent.get("status") != "succeeded":
            raise SystemExit(f"localstripe did not take the bench payment {payment.id}: {intent}")
        out.append((payment.id, intent))
    return out


def _stream(paid: list[tuple[str, dict]], secret: str) -> tuple[list[tuple[bytes, dict, bool]], list[str]]:
    """The deliveries: one event per payment, then DUPLICATES re-sends (same event id,
    signed again) mixed into the second half. [(body, headers, is_duplicate)], event ids."""
    rng = random.Random(16)
    events = []
    for _payment_id, intent in paid:
        events.append({"id": "evt_bench" + secrets.token_hex(10), "object": "event", "type": "payment_intent.succeeded",
                       "api_version": "2017-08-15", "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
                       "request": {"id": None, "idempotency_key": None}, "data": {"object": intent}})
    stream = [(*_signed(e, secret), False) for e in events]
    half = len(stream) // 2
    for event in rng.sample(events[:half] or events, min(DUPLICATES, len(events[:half] or events))):
        position = rng.randint(half, len(stream))
        stream.insert(position, (*_signed(event, secret), True))
    return stream, [e["id"] for e in events]


def _drive(base_url: str, path: str, stream: list[tuple[bytes, dict, bool]], connections: int) -> dict:
    """POST the stream over `connections` keep-alive connections, each taking the next
    delivery as soon as its last answer arrived. Wall time, statuses, latencies by kind."""
    parts = urlsplit(base_url)
    counter = itertools.count()
    lock = threading.Lock()
    results: list[tuple[int, float, bool]] = []

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        mine = []
        while True:
            index = next(counter)
            if index >= len(stream):
                break
            body, headers, duplicate = stream[index]
            began = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            mine.append((status, (time.perf_counter() - began) * 1000, duplicate))
        conn.close()
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "results": results}


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def _retrieve_round_trip_ms(ctx: BenchContext, paid: list[tuple[str, dict]]) -> float:
    """What one re-read of a PaymentIntent from localstripe costs, alone (p50 of 50, sequential, in this process)."""
    from together import stripe_gateway

    times = []
    for _payment_id, intent in paid[:50]:
        began = time.perf_counter()
        stripe_gateway.payment_intent_retrieve(ctx.organisation, payment_intent_id=intent["id"])
        times.append((time.perf_counter() - began) * 1000)
    return _p(times, 0.5)


# --- the rows -------------------------------------------------------------------------------

@baseline(BARE)
def bare_post(ctx: BenchContext) -> Measurement:
    """The stripe row's bodies and headers, POSTed the same way to a bare view; best of ROUNDS."""
    stream = _state.get("stream")
    if stream is None:  # run alone (--only): sign events of a made-up intent
        secret = STRIPE_ENV["STRIPE_WEBHOOK_SECRET"]
        stream, _ids = _stream([("none", {"id": "pi_bench", "object": "payment_intent", "status": "succeeded"})] * EVENTS,
                               secret)
    _drive(ctx.base_url, "/_bench/post", stream[: min(len(stream), 50)], ctx.concurrency)  # warm-up
    rounds = [_drive(ctx.base_url, "/_bench/post", stream, ctx.concurrency) for _ in range(ROUNDS)]
    errors = sum(1 for r in rounds for status, _ms, _dup in r["results"] if status != 200)
    rates = [len(stream) / r["elapsed"] for r in rounds]
    latencies = [ms for r in rounds for _s, ms, _d in r["results"]]
    return Measurement(
        value=max(rates), unit="events/s", errors=errors,
        detail=(f"{len(stream)} POSTs per round, {ctx.concurrency} keep-alive connections, best of {ROUNDS} "
                f"({', '.join(f'{r:,.0f}' for r in rates)} /s); p50 {_p(latencies, 0.5):.1f} ms"),
    )


@scenario("Stripe events/s (POST /webhooks/stripe: verify, dedupe, record)", baseline=BARE, goal=Goal.of("not in issue 15's table"))
def stripe_events(ctx: BenchContext) -> Measurement:
    from django.db import connection

    from donations.models import Status
    from payments.models import Payment, PaymentPart, PaymentStatus, StripeEvent, StripeEventOutcome

    _setup(ctx)
    secret = STRIPE_ENV["STRIPE_WEBHOOK_SECRET"]
    rates, errors, notes = [], 0, []
    first_ms: list[float] = []
    duplicate_ms: list[float] = []
    round_trip = None
    for round_ in range(ROUNDS):
        paid = _paid_payments(ctx, round_)
        if round_trip is None:
            round_trip = _retrieve_round_trip_ms(ctx, paid)
        stream, event_ids = _stream(paid, secret)
        connection.close()  # nothing held open while the server works
        run = _drive(ctx.base_url, "/webhooks/stripe", stream, ctx.concurrency)
        rates.append(len(stream) / run["elapsed"])
        bad = [status for status, _ms, _dup in run["results"] if status != 200]
        first_ms += [ms for status, ms, dup in run["results"] if not dup]
        duplicate_ms += [ms for status, ms, dup in run["results"] if dup]
        # Every payment recorded once, every event stored once and processed.
        payment_ids = [payment_id for payment_id, _intent in paid]
        succeeded = Payment.objects.filter(pk__in=payment_ids, status=PaymentStatus.SUCCEEDED).count()
        donations = PaymentPart.objects.filter(payment_id__in=payment_ids, donation__source="STRIPE",
                                               donation__status=Status.CONFIRMED).count()
        events = StripeEvent.objects.filter(event_id__in=event_ids)
        processed = events.filter(outcome=StripeEventOutcome.PROCESSED).count()
        round_errors = len(bad) + (EVENTS - succeeded) + abs(EVENTS - donations) + (len(event_ids) - processed)
        errors += round_errors
        notes.append(f"round {round_ + 1}: {succeeded}/{EVENTS} payments SUCCEEDED, {donations} donations, "
                     f"{events.count()} events stored ({processed} PROCESSED), {len(bad)} non-200")
        connection.close()
        _state["stream"] = stream
    return Measurement(
        value=max(rates), unit="events/s", errors=errors,
        detail=(f"{EVENTS} payment_intent.succeeded events for paid payments + {DUPLICATES} re-sent duplicates per round, "
                f"{ctx.concurrency} connections, best of {ROUNDS} ({', '.join(f'{r:,.0f}' for r in rates)} /s); "
                f"first delivery p50 {_p(first_ms, 0.5):.0f} ms, p99 {_p(first_ms, 0.99):.0f} ms (re-reads the intent "
                f"from localstripe, records the donation, transfers to the connected account); duplicate p50 "
                f"{_p(duplicate_ms, 0.5):.0f} ms; one localstripe PaymentIntent read alone: p50 {round_trip:.1f} ms; "
                + "; ".join(notes)),
    )
