"""Recurring billing rows of `make bench` (issue 17).

Row: plans billed per second by one worker. PLANS due CARD plans (each its
donor, Stripe customer and saved card in localstripe, made through
payments.recurring.plan_create: not timed) are billed by one
`payments.billing.billing_run` in this process, as one Celery worker runs it
(BILLING_WORKERS threads, payments.billing.billing_workers(); a donor's plans in
one thread). Per plan: the claim (SKIP LOCKED), the cap check, the period's
Payment, the off-session PaymentIntent (create + confirm at Stripe, one round
trip, answered with its charge and fee expanded), the same recording path as
every card gift (payment_sync with that answer: the donation under the donor's
lock, the transfer to the connected account, the second round trip), the plan's
next date and its event. Afterwards every plan must have moved one period with
exactly one SUCCEEDED Payment and one CONFIRMED donation; anything else counts as
errors. The detail also gives the same billing one plan at a time (workers=1)
over another PLANS plans, in the same run.

Baseline: single card gifts through the same services, sequentially in this
process: payment_start (the cap check, the PaymentIntent), the donor's
confirmation (Stripe.js's confirmCardPayment with the publishable key: the same
confirm the engine does off-session), payment_sync (re-read, record, transfer).

Big run (BENCH_RECURRING_BIG=N, or `bench/run.py --recurring-big N`; off by
default since setting it up takes minutes): N due plans (BIG_DONORS donors, their
plans sharing the donor's saved card) billed by one billing_run; the row gives
its wall time, the detail its plans/s against the card-gift baseline of the same
run (when that row ran: `--only recurring`). 10,000 is the issue's figure.

Stripe is always localstripe here (bench/stripe_events.py STRIPE_ENV).
"""
from __future__ import annotations

import os
import secrets
import time

from bench.scenarios import BenchContext, Goal, Measurement, baseline, scenario

PLANS = int(os.environ.get("BENCH_RECURRING_PLANS", "100"))
GIFTS = int(os.environ.get("BENCH_RECURRING_GIFTS", str(PLANS)))
BIG = int(os.environ.get("BENCH_RECURRING_BIG", "0"))
BIG_DONORS = int(os.environ.get("BENCH_RECURRING_BIG_DONORS", "200"))
AMOUNT_CENTS = 2_000
GIFTS_ROW = "card gifts/s, one worker (payment_start + donor confirms + payment_sync)"


def _actor():
    from together.actors import Actor

    return Actor.system("make bench")


def _setup(ctx: BenchContext):
    from bench.stripe_events import _setup as stripe_setup

    stripe_setup(ctx)  # localstripe answering, the bench organisation connected, an ACTIVE form
    ctx.organisation.refresh_from_db()
    from bench.stripe_events import _state

    return _state["form"]


def _saved_card(organisation, email: str) -> tuple[str, str]:
    """A customer with a card saved for off-session charges (what a donor's recurring sign-up leaves)."""
    from together import stripe_gateway

    customer = stripe_gateway.customer_create(organisation, email=email, metadata={"bench": "1"},
                                              idempotency_key=f"bench-customer:{email}")
    client = stripe_gateway.client_for(organisation)
    method = client.v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}})
    client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def _due_plans(ctx: BenchContext, count: int, donors: int, *, copies: bool = False) -> list[str]:
    """`count` ACTIVE CARD plans due today for `donors` donors (not timed); `copies`: only
    each donor's first through plan_create, the others its twins (`_copies`)."""
    from donations.services import donor_create
    from payments import recurring

    organisation, actor = ctx.organisation, _actor()
    run = secrets.token_hex(4)
    today = recurring.organisation_today(organisation)
    cards = []
    for i in range(min(donors, count)):
        email = f"bench-plan-{run}-{i}@example.com"
        donor = donor_create(organisation=organisation, actor=actor, first_name="Bench", last_name=f"Giver {i}", email=email)
        cards.append((donor.id, *_saved_card(organisation, email)))
    ids = []
    made = []
    for i in range(count if not copies else len(cards)):
        donor_id, customer, method = cards[i % len(cards)]
        plan = recurring.plan_create(
            organisation=organisation, actor=actor, donor_id=donor_id, amount_cents=AMOUNT_CENTS, frequency="MONTHLY",
            payment_method="CARD", start_date=today, stripe_customer_id=customer, stripe_payment_method_id=method)
        ids.append(plan.id)
        made.append(plan)
    if copies and count > len(made):
        ids += _copies(made, count - len(made))
    return ids


def _copies(plans: list, count: int) -> list[str]:
    """`count` more plans like `plans` (round robin), written in bulk: each donor's first
    plan went through plan_create; the big run's other thousands are its twins (as
    seed_bench COPYs the ledger), or setting them up would take longer than billing them."""
    from payments.models import RecurringPlan

    skip = {"id", "created_at", "updated_at"}
    fields = [f.attname for f in RecurringPlan._meta.concrete_fields if f.attname not in skip]
    rows = []
    for i in range(count):
        source = plans[i % len(plans)]
        twin = RecurringPlan(**{name: getattr(source, name) for name in fields})
        twin.due_on = twin.compute_due_on()
        rows.append(twin)
    RecurringPlan.objects.bulk_create(rows, batch_size=1000)
    return [row.id for row in rows]


def _check(plan_ids: list[str]) -> tuple[int, str]:
    """Every plan moved one period, with one SUCCEEDED Payment and one CONFIRMED donation."""
    from donations.models import Donation
    from payments.models import Payment, PaymentStatus, RecurringPlan

    moved = RecurringPlan.objects.filter(pk__in=plan_ids, payments_made=1, status="ACTIVE").count()
    paid = Payment.objects.filter(plan_id__in=plan_ids, status=PaymentStatus.SUCCEEDED).count()
    payments = Payment.objects.filter(plan_id__in=plan_ids).count()
    gifts = Donation.objects.filter(recurring_plan_id__in=plan_ids, status="CONFIRMED", source="STRIPE").count()
    n = len(plan_ids)
    errors = (n - moved) + (n - paid) + abs(payments - n) + abs(gifts - n)
    return errors, f"{moved}/{n} plans moved on, {paid} payments SUCCEEDED ({payments} made), {gifts} donations"


def _localstripe_write_ms(ctx: BenchContext) -> float:
    """One localstripe write alone (a customer made, p50 of 5): it saves its whole store
    to disk on every write, which bounds both rows here (several writes a gift)."""
    from together import stripe_gateway

    times = []
    for _ in range(5):
        began = time.perf_counter()
        stripe_gateway.customer_create(ctx.organisation, email="bench-probe@example.com", metadata={"bench": "probe"},
                                       idempotency_key=f"bench-probe:{secrets.token_hex(6)}")
        times.append((time.perf_counter() - began) * 1000)
    return sorted(times)[len(times) // 2]


def _bill(plan_ids: list[str], workers: int | None = None) -> tuple[float, dict]:
    from payments import billing

    started = time.perf_counter()
    counts = billing.billing_run(limit=len(plan_ids) + 50, workers=workers)
    return time.perf_counter() - started, counts


def _workers() -> int:
    from payments.billing import billing_workers

    return billing_workers()


@baseline(GIFTS_ROW)
def card_gifts(ctx: BenchContext) -> Measurement:
    from django.conf import settings

    from bench.stripe_events import STRIPE_ENV, _post_json
    from payments.models import Payment, PaymentKind, PaymentStatus
    from payments.services import PartSpec, payment_start, payment_sync

    form = _setup(ctx)
    run = secrets.token_hex(4)
    card = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2034", "cvc": "123"}

    def one(i: int) -> str:
        payment = payment_start(
            organisation=ctx.organisation, kind=PaymentKind.FORM, form=form, attempt_key=f"bench-gift-{run}-{i}",
            donor_details={"email": f"bench-gift-{run}-{i}@example.com", "first_name": "Bench", "last_name": f"Gift {i}",
                           "address_line1": "1 Bench St", "suburb": "Carlton", "state": "VIC", "postcode": "3053", "country": "AU"},
            parts=[PartSpec(recipient_organisation=ctx.organisation, amount_cents=AMOUNT_CENTS)])
        _post_json(STRIPE_ENV["STRIPE_API_BASE"], f"/v1/payment_intents/{payment.payment_intent_id}/confirm", {
            "key": settings.STRIPE_PUBLISHABLE_KEY, "client_secret": payment.client_secret,
            "payment_method_data": {"type": "card", "card": card}})
        return payment_sync(payment_intent_id=payment.payment_intent_id).id

    for i in range(min(5, GIFTS)):  # warm-up (connections, caches)
        one(-1 - i)
    started = time.perf_counter()
    ids = [one(i) for i in range(GIFTS)]
    elapsed = time.perf_counter() - started
    succeeded = Payment.objects.filter(pk__in=ids, status=PaymentStatus.SUCCEEDED).count()
    return Measurement(value=GIFTS / elapsed, unit="gifts/s", errors=GIFTS - succeeded,
                       detail=f"{GIFTS} gifts in {elapsed:.1f} s, {succeeded} SUCCEEDED ({elapsed / GIFTS * 1000:.0f} ms a gift)")


@scenario("recurring plans billed/s, one worker (billing_run)", baseline=GIFTS_ROW, goal=Goal.of("issue 17", note="no numeric goal"))
def plans_billed(ctx: BenchContext) -> Measurement:
    _setup(ctx)
    warm = _due_plans(ctx, min(5, PLANS), min(5, PLANS))
    _bill(warm)
    # One plan at a time first (the detail), then the row: the worker's threads.
    serial_ids = _due_plans(ctx, PLANS, PLANS)
    serial, serial_counts = _bill(serial_ids, workers=1)
    serial_errors, _ = _check(serial_ids)
    plan_ids = _due_plans(ctx, PLANS, PLANS)
    elapsed, counts = _bill(plan_ids)
    errors, checked = _check(plan_ids)
    return Measurement(value=len(plan_ids) / elapsed, unit="plans/s", errors=errors + serial_errors,
                       metrics={"serial_plans_per_s": PLANS / serial, "workers": _workers()},
                       detail=f"{PLANS} due CARD plans in {elapsed:.1f} s with {_workers()} threads "
                              f"({elapsed / PLANS * 1000:.0f} ms a plan), outcomes {counts}; {checked}; one plan at a time: "
                              f"{PLANS / serial:.1f} plans/s ({serial / PLANS * 1000:.0f} ms a plan, outcomes {serial_counts}, "
                              f"{serial_errors} errors); one localstripe write alone: p50 {_localstripe_write_ms(ctx):.0f} ms")


if BIG > 0:
    @scenario(f"billing run over {BIG:,} due plans (wall time)", goal=Goal.of("issue 17", ("errors", "==", 0), note="every plan billed once"))
    def big_run(ctx: BenchContext) -> Measurement:
        _setup(ctx)
        began = time.perf_counter()
        plan_ids = _due_plans(ctx, BIG, BIG_DONORS, copies=True)
        setup = time.perf_counter() - began
        elapsed, counts = _bill(plan_ids)
        errors, checked = _check(plan_ids)
        gifts = ctx.baselines.get(GIFTS_ROW)
        versus = (f"; single card gifts in this run: {gifts.value:.2f} gifts/s, so {BIG / elapsed / gifts.value:.1f}x"
                  if gifts is not None and gifts.value else "")
        return Measurement(value=elapsed, unit="s", higher_is_better=False, errors=errors,
                           metrics={"plans_per_s": BIG / elapsed, "setup_s": setup},
                           detail=f"{BIG:,} due CARD plans ({BIG_DONORS} donors) billed by one billing_run "
                                  f"({_workers()} threads) in {elapsed:.0f} s ({BIG / elapsed:.1f} plans/s{versus}; "
                                  f"setting them up took {setup:.0f} s), outcomes {counts}; {checked}")
