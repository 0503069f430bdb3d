"""The recurring billing engine: every few minutes (Celery beat, payments.tasks),
each plan with something due is billed, a few at once (`billing_run`'s threads,
settings.BILLING_WORKERS, default 4: a plan's time is mostly waiting for Stripe
and the database), each plan on its own connection and in its own transactions.

Claiming. A run reads the due plans (`due_on` on or before today) in small
batches, oldest due first (a keyset cursor), and takes each with `SELECT … FOR
UPDATE SKIP LOCKED`: two runs (two beat instances, two workers) or two threads
never work on the same plan at once, and a plan whose row another run holds is
simply left to it. A batch's plans are grouped by donor and a donor's plans are
billed one after another by one thread, so each charge's cap check sees the gift
the donor's previous plan just recorded.

Per plan and period, two short transactions:
1. decide, under the plan's lock: a plan at its end is ENDED; a charge the
   donor's cap has no room for (compliance.rules, on the charge's date) is not
   attempted: the plan is PAUSED with `CAP_REACHED` and the room in the alert,
   and looked at again on each later period date until a period has room (it
   resumes by itself); a MANUAL plan gets its expected PENDING gift; a CARD plan
   gets its Payment for the period (attempt key `plan:<plan id>:<period>`),
   committed before any money moves.
2. charge, under the plan's lock again: an off-session PaymentIntent on the
   saved card with the attempt key as Stripe's idempotency key (a retry
   confirms the same intent again under `…:retry:<n>`), then the same
   recording path as every card gift (payments.services.payment_sync, given
   Stripe's answer, which carries the charge and its fee, instead of reading the
   intent again: the donation, linked to its plan and period, and the transfer
   to the organisation's connected account), then the plan
   moves on. A worker killed anywhere in here leaves either nothing or a
   Payment without its intent id: the next run finds the intent Stripe made
   (the customer's intents, by the payment's id; and the idempotency key gives
   the same answer) and records it once. Donation.recurring_plan_id/period is
   unique too: a period is never recorded twice.

Failures (dunning): a declined charge is tried again 1, 3, 5 and 7 days after
the period's first attempt; with only the last retry left the plan is
PAST_DUE; when the last retry fails too it is CANCELED. A card that needs the
donor to authenticate (3-D Secure) cannot be charged off-session: PAST_DUE at
once, with the last retry only (a new card from the donor is tried at the next
run). Each step is an event, an alert on the dashboard and an email to the
organisation's ADMINs.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections import Counter

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from compliance import rules as compliance_rules
from compliance.selectors import jurisdiction_preview
from donations.models import Donation, DonationType, PaymentMethod, Source, Status
from donations.services import donation_record
from payments.models import (
    PLAN_RETRY_DAYS, PauseReason, Payment, PaymentKind, PaymentPart, PaymentStatus, Frequency, PlanPaymentMethod,
    PlanStatus, RecurringPlan,
)
from payments.recurring import (
    PLAN_ACTOR, _money, organisation_today, plan_alert, plan_end, plan_end_if_done, plan_event,
    plan_next_date,
)
from payments.representations import plan_render_loaded as _snap
from payments.services import payment_sync
from together import stripe_gateway

log = logging.getLogger("together.payments.billing")

BATCH_SIZE = 20
AUTHENTICATION_MESSAGE = (
    "The donor's bank asks them to authenticate this payment (3-D Secure), which cannot happen while they are away: "
    "the card cannot be charged until they update it through their plan's management link."
)


def attempt_key(plan: RecurringPlan, period: dt.date) -> str:
    return f"plan:{plan.id}:{period.isoformat()}"


def _due_ids(*, today: dt.date, after: tuple[dt.date, str] | None, batch: int) -> list[tuple[str, str, dt.date]]:
    """Due plans, oldest due first, past the cursor `after` (due_on, id), that no other
    run holds (skip locked): (plan id, donor id, due_on)."""
    queryset = RecurringPlan.objects.unscoped("celery sweep").select_for_update(skip_locked=True).filter(due_on__lte=today)
    if after is not None:
        queryset = queryset.filter(Q(due_on__gt=after[0]) | Q(due_on=after[0], id__gt=after[1]))
    with transaction.atomic():
        return list(queryset.order_by("due_on", "id").values_list("id", "donor_id", "due_on")[:batch])


def billing_workers() -> int:
    """How many plans one run bills at once (settings.BILLING_WORKERS, default 4)."""
    return max(1, int(getattr(settings, "BILLING_WORKERS", 4) or 1))


def billing_run(*, now: dt.datetime | None = None, limit: int | None = None, batch_size: int = BATCH_SIZE,
                workers: int | None = None) -> dict[str, int]:
    """Bill every plan due at `now` (default: the present), at most `limit` of them.
    Each plan moves at most one step per run. Returns counts by outcome: `charged`,
    `failed`, `expected` (MANUAL gifts), `capped`, `held`, `resumed`, `ended`,
    `waiting`, `skipped` (another run had it, or it was not due after all).

    `workers` (default billing_workers()): plans billed at once, each in its own
    thread, database connection and transactions, under its own row lock as
    always. Most of a plan's time is waiting (for Stripe, for the database), so a
    few threads bill several times as many plans a second. A donor's plans are
    billed one after another by one thread: each charge's cap check sees the gift
    the donor's previous plan just recorded (never a charge the cap then refuses).
    A run inside a transaction (a test's) bills on its own connection, one plan at a time."""
    now = now or timezone.now()
    today = organisation_today(None, now)
    workers = billing_workers() if workers is None else max(1, workers)
    if workers > 1 and transaction.get_connection().in_atomic_block:
        workers = 1  # other threads' connections could not see the caller's uncommitted rows
    counts: Counter[str] = Counter()
    seen: set[str] = set()
    cursor: tuple[dt.date, str] | None = None
    lock = threading.Lock()

    def bill(plan_ids: list[str]) -> None:
        for plan_id in plan_ids:
            try:
                outcome = plan_bill(plan_id=plan_id, now=now)
            except Exception:  # one plan's trouble never stops the others; it is due again next run
                log.exception("billing plan %s failed", plan_id)
                outcome = "error"
            with lock:
                counts[outcome] += 1

    work: queue.Queue = queue.Queue()

    def worker() -> None:
        try:
            while (plan_ids := work.get()) is not None:
                try:
                    bill(plan_ids)
                finally:
                    work.task_done()
        finally:
            connections.close_all()  # this thread's connections only

    threads = [threading.Thread(target=worker, name=f"billing-{n}", daemon=True) for n in range(workers)] if workers > 1 else []
    for thread in threads:
        thread.start()
    try:
        while limit is None or len(seen) < limit:
            size = batch_size * workers
            batch = size if limit is None else min(size, limit - len(seen))
            rows = _due_ids(today=today, after=cursor, batch=batch)
            if not rows:
                break
            cursor = (rows[-1][2], rows[-1][0])
            by_donor: dict[str, list[str]] = {}
            for plan_id, donor_id, _due_on in rows:
                if plan_id in seen:  # one step per plan per run (its due date moved on, still due)
                    continue
                seen.add(plan_id)
                by_donor.setdefault(donor_id, []).append(plan_id)
            if not threads:
                for plan_ids in by_donor.values():
                    bill(plan_ids)
                continue
            for plan_ids in by_donor.values():
                work.put(plan_ids)
            work.join()  # the batch is done before the next is read: a donor's plans never run in two threads
    finally:
        for _thread in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    return dict(counts)


def _lock_due(plan_id: str, today: dt.date, *, period: dt.date | None = None) -> RecurringPlan | None:
    queryset = (RecurringPlan.objects.unscoped("celery sweep").select_for_update(of=("self",), skip_locked=True)
                .select_related("organisation", "donor").filter(pk=plan_id, due_on__lte=today))
    if period is not None:
        queryset = queryset.filter(next_bill_date=period)
    return queryset.first()


def plan_bill(*, plan_id: str, now: dt.datetime | None = None) -> str:
    """One step of one plan (see the module's docstring). Returns the outcome."""
    now = now or timezone.now()
    with transaction.atomic():
        plan = _lock_due(plan_id, organisation_today(None, now))
        if plan is None:
            return "skipped"
        today = organisation_today(plan.organisation, now)
        if plan.due_on is None or plan.due_on > today or plan.next_bill_date is None:
            return "skipped"
        outcome, payment_id, payment_is_new = _decide(plan, today, now)
    if outcome != "charge":
        return outcome
    return _charge(plan_id=plan_id, payment_id=payment_id, payment_is_new=payment_is_new, now=now)


# --- deciding -----------------------------------------------------------------------------------

def _room(plan: RecurringPlan, day: dt.date) -> dict | None:
    """The tightest cap room for a gift of this plan on `day` (None: no cap applies)."""
    jurisdiction = jurisdiction_preview(organisation=plan.organisation, code=plan.revenue_code)
    return compliance_rules.cap_room(donor_id=plan.donor_id, jurisdiction=jurisdiction, day=day)


def _no_room(plan: RecurringPlan, day: dt.date) -> dict | None:
    room = _room(plan, day)
    if room is not None and plan.amount_cents > room["remaining"]:
        return room
    return None


def _cap_text(plan: RecurringPlan, room: dict) -> str:
    start, end = room["period"]
    jurisdiction = getattr(room.get("rule"), "jurisdiction", "") or ""
    return (f"A gift of {_money(plan.amount_cents)} would take the donor past the {jurisdiction} cap of "
            f"{_money(room['cap'])} for {start.isoformat()} to {end.isoformat()}: {_money(room['remaining'])} remains. "
            f"Nothing was charged. Billing resumes by itself in the first period with room (from {(end + dt.timedelta(days=1)).isoformat()} "
            f"at the latest, unless the cap's period is rolling).")


def _hold_for_cap(plan: RecurringPlan, period: dt.date, room: dict, today: dt.date, now: dt.datetime) -> str:
    """No partial charge, no over-cap gift: this period is not billed; the plan waits
    for the next period date with room."""
    before = _snap(plan)
    first_hold = not plan.held_by_cap
    plan.status = PlanStatus.PAUSED
    plan.pause_reason = PauseReason.CAP_REACHED
    plan.pause_detail = _cap_text(plan, room)
    plan.failure_count = 0
    plan.retry_at = None
    plan.next_bill_date = plan_next_date(plan, max(period, today))
    plan.save()
    if first_hold:
        plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.paused", before=before, after=_snap(plan))
        plan_alert(plan=plan, actor=PLAN_ACTOR, kind="cap_reached",
                   subject=f"A recurring gift of {_money(plan.amount_cents)} is paused: the donor's cap has no room",
                   message=f"{plan.donor}: {plan.pause_detail}",
                   extra={"remaining_cents": room["remaining"], "cap_cents": room["cap"], "period": period.isoformat(),
                          "cap_period": [room["period"][0].isoformat(), room["period"][1].isoformat()]})
    else:
        plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.updated", before=before, after=_snap(plan))
    plan_end_if_done(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now)
    return "capped" if first_hold else "held"


def _resume_after_cap(plan: RecurringPlan) -> None:
    before = _snap(plan)
    plan.status = PlanStatus.ACTIVE
    plan.pause_reason = None
    plan.pause_detail = ""
    plan.save()
    plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.resumed", before=before, after=_snap(plan))


def _skip_stale_period(plan: RecurringPlan, today: dt.date) -> bool:
    """Only the latest due period is billed: periods that fell while nothing ran
    (a long outage) are skipped, never charged in a burst."""
    if plan.failure_count:
        return False
    period = plan.next_bill_date
    following = plan_next_date(plan, period)
    if following > today:
        return False
    if Payment.objects.for_organisation(plan.organisation).filter(plan=plan, period=period).exists():
        return False  # an attempt was started for it: finish that one
    before = _snap(plan)
    while following <= today:
        period, following = following, plan_next_date(plan, following)
    plan.next_bill_date = period
    plan.save()
    plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.updated", before=before, after=_snap(plan))
    return True


def _decide(plan: RecurringPlan, today: dt.date, now: dt.datetime) -> tuple[str, str | None, bool]:
    if plan_end_if_done(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now):
        return "ended", None, False
    _skip_stale_period(plan, today)
    if plan_end_if_done(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now):
        return "ended", None, False
    period = plan.next_bill_date
    if not plan.is_failing:
        room = _no_room(plan, today)
        if room is not None:
            return _hold_for_cap(plan, period, room, today, now), None, False
        if plan.held_by_cap:
            _resume_after_cap(plan)
    if plan.payment_method == PlanPaymentMethod.MANUAL:
        _expected_gift(plan, period, today, now)
        return "expected", None, False
    payment, created = _payment_for_period(plan, period)
    if payment.status == PaymentStatus.SUCCEEDED:
        # Recorded already (e.g. Stripe's event arrived after a killed run): the plan just moves on.
        _paid(plan, payment, today, now)
        return "charged", None, False
    if payment.status == PaymentStatus.REFUNDED_OVER_CAP:
        room = _room(plan, today) or {"cap": 0, "remaining": 0, "period": (today, today)}
        return _hold_for_cap(plan, period, room, today, now), None, False
    return "charge", payment.id, created


def _payment_for_period(plan: RecurringPlan, period: dt.date) -> tuple[Payment, bool]:
    """The period's one Payment (created now, committed before any money moves)."""
    key = attempt_key(plan, period)
    if plan.failure_count:  # a retry: the period's payment was made at its first attempt
        payment = Payment.objects.for_organisation(plan.organisation).filter(attempt_key=key).first()
        if payment is not None:
            return payment, False
    donor = plan.donor
    details = {k: getattr(donor, k) for k in ("first_name", "last_name", "organisation_name", "email") if getattr(donor, k)}
    try:
        with transaction.atomic():
            payment = Payment(
                organisation=plan.organisation, kind=PaymentKind.RECURRING, source=Source.STRIPE, form_id=plan.form_id,
                attempt_key=key, amount_cents=plan.amount_cents, currency=plan.currency, donor_details=details,
                frequency=plan.frequency, stripe_customer_id=plan.stripe_customer_id, plan=plan, period=period,
                tracking=plan.tracking,  # the gift it records carries the plan's source fields
            )
            payment.transfer_group = f"payment_{payment.id}"
            payment.save(force_insert=True)
            PaymentPart.objects.create(organisation=plan.organisation, payment=payment, position=0,
                                       recipient_organisation=plan.organisation, amount_cents=plan.amount_cents,
                                       revenue_code=plan.revenue_code, campaign_id=plan.campaign_id)
    except IntegrityError:
        return Payment.objects.for_organisation(plan.organisation).get(attempt_key=key), False
    return payment, True


def _expected_gift(plan: RecurringPlan, period: dt.date, today: dt.date, now: dt.datetime) -> None:
    """A MANUAL plan's period: an expected (PENDING) gift for staff to confirm when the
    standing order arrives, or mark missed. No money counts until confirmed."""
    recorded = Donation.objects.for_organisation(plan.organisation).filter(
        recurring_plan_id=plan.id, recurring_period=period).exclude(status__in=[Status.FAILED, Status.VOIDED]).exists()
    if not recorded:
        try:
            with transaction.atomic():
                donation_record(
                    organisation=plan.organisation, actor=PLAN_ACTOR, donor_id=plan.donor_id,
                    donation_type=DonationType.MONETARY, amount_cents=plan.amount_cents, donation_date=period,
                    source=Source.MANUAL, status=Status.PENDING, payment_method=PaymentMethod.BANK_TRANSFER,
                    revenue_code=plan.revenue_code, campaign_id=plan.campaign_id,
                    notes=f"Expected {plan.get_frequency_display().lower()} standing-order gift (plan {plan.id}): confirm it "
                          f"when the money arrives, or mark it missed.",
                    recurring_plan_id=plan.id, recurring_period=period, **plan.tracking,
                )
        except IntegrityError:
            pass  # recorded concurrently: the unique (plan, period) index keeps one
    before = _snap(plan)
    plan.next_bill_date = plan_next_date(plan, period)
    plan.save()
    plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.updated", before=before, after=_snap(plan))
    if plan.max_payments is not None:
        expected = Donation.objects.for_organisation(plan.organisation).filter(recurring_plan_id=plan.id).exclude(
            status=Status.VOIDED).values("recurring_period").distinct().count()
        if expected >= plan.max_payments:  # its number of periods is reached: no further expected gift
            plan_end(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now)
            return
    plan_end_if_done(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now)


# --- charging -----------------------------------------------------------------------------------

def _intent_metadata(plan: RecurringPlan, payment: Payment) -> dict[str, str]:
    return {"organisation_id": plan.organisation_id, "payment_id": payment.id, "kind": PaymentKind.RECURRING,
            "plan_id": plan.id, "period": payment.period.isoformat(), "attempt_key": payment.attempt_key}


def _intent_already_made(plan: RecurringPlan, payment: Payment) -> dict | None:
    """After a killed run: the PaymentIntent Stripe made for this payment, if any
    (the customer's recent intents, by the payment's id)."""
    for intent in stripe_gateway.payment_intents_of_customer(plan.organisation, customer=plan.stripe_customer_id):
        if (intent.get("metadata") or {}).get("payment_id") == payment.id:
            return intent
    return None


def _charge_new(plan: RecurringPlan, payment: Payment, payment_is_new: bool) -> stripe_gateway.OffSessionCharge:
    """The period's PaymentIntent: made now, or (after a killed run) the one Stripe made then."""
    if not payment_is_new:
        found = _intent_already_made(plan, payment)
        if found is not None:
            return stripe_gateway.OffSessionCharge(intent=found)
    organisation = plan.organisation
    frequency = Frequency(plan.frequency).label.lower()
    return stripe_gateway.payment_intent_charge_off_session(
        organisation, amount_cents=payment.amount_cents, currency=payment.currency, customer=plan.stripe_customer_id,
        payment_method=plan.stripe_payment_method_id, metadata=_intent_metadata(plan, payment),
        idempotency_key=payment.attempt_key, description=f"{frequency.capitalize()} donation to {organisation.live.name}",
    )


def _retry_key(plan: RecurringPlan, payment: Payment) -> str:
    """A retry's idempotency key, from the plan's committed dunning state: the same after
    a killed run (the same request again), a new one after each recorded failure."""
    last = int(plan.last_failure_at.timestamp()) if plan.last_failure_at else 0
    return f"{payment.attempt_key}:retry:{plan.failure_count}:{last}"


def _charge(*, plan_id: str, payment_id: str, payment_is_new: bool, now: dt.datetime) -> str:
    with transaction.atomic():
        plan = _lock_due(plan_id, organisation_today(None, now))
        if plan is None:
            return "skipped"
        today = organisation_today(plan.organisation, now)
        payment = Payment.objects.select_for_update(of=("self",)).filter(pk=payment_id, plan=plan).first()
        if payment is None or payment.period != plan.next_bill_date:
            return "skipped"
        result: stripe_gateway.OffSessionCharge | None = None
        if payment.payment_intent_id:
            # Made before: where does it stand (a killed run, Stripe's event)? A failed one is tried again,
            # the same intent confirmed once more: a period has one PaymentIntent, which succeeds at most once.
            payment = payment_sync(payment_intent_id=payment.payment_intent_id, day=today)
            if payment.status == PaymentStatus.FAILED:
                result = stripe_gateway.payment_intent_confirm_off_session(
                    plan.organisation, payment_intent_id=payment.payment_intent_id,
                    payment_method=plan.stripe_payment_method_id, idempotency_key=_retry_key(plan, payment))
                payment = payment_sync(payment_intent_id=payment.payment_intent_id, day=today, intent=result.intent)
        else:
            result = _charge_new(plan, payment, payment_is_new)
            if not result.intent.get("id"):
                # Stripe refused the request itself (no intent made): a failed attempt.
                return _failed(plan, payment, today, now, code=result.error_code,
                               message=result.message or "Stripe refused the charge.",
                               authentication=result.needs_authentication)
            payment.payment_intent_id = result.intent["id"]
            payment.save(update_fields=["payment_intent_id", "updated_at"])
            # Stripe's answer is the intent as a read gives it (charge and fee expanded): recorded as it is.
            payment = payment_sync(payment_intent_id=payment.payment_intent_id, day=today, intent=result.intent)
        if payment.status == PaymentStatus.SUCCEEDED:
            _paid(plan, payment, today, now)
            return "charged"
        if payment.status == PaymentStatus.REFUNDED_OVER_CAP:
            room = _room(plan, today) or {"cap": 0, "remaining": 0, "period": (today, today)}
            return _hold_for_cap(plan, payment.period, room, today, now)
        if payment.status == PaymentStatus.FAILED:
            message = (result.message if result is not None else None) or payment.failure_message or "The card was declined."
            authentication = result.needs_authentication if result is not None else False
            return _failed(plan, payment, today, now, code=result.error_code if result is not None else None,
                           message=message, authentication=authentication)
        # PROCESSING, or Stripe still working on it: looked at again at the next run.
        return "waiting"


def _paid(plan: RecurringPlan, payment: Payment, today: dt.date, now: dt.datetime) -> None:
    before = _snap(plan)
    was_failing = plan.failure_count > 0
    plan.payments_made += 1
    plan.status = PlanStatus.ACTIVE
    plan.failure_count = 0
    plan.retry_at = None
    plan.failing_since = None
    plan.last_failure_code = None
    # On time: the next period. After retries: the next period still ahead (one that
    # fell during the retries is not charged on top).
    plan.next_bill_date = plan_next_date(plan, max(payment.period, today) if was_failing else payment.period)
    plan.save()
    plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.updated", before=before, after=_snap(plan))
    if was_failing:
        plan_alert(plan=plan, actor=PLAN_ACTOR, kind="recovered",
                   subject=f"A recurring gift of {_money(plan.amount_cents)} was paid after retries",
                   message=f"{plan.donor}: the charge for {payment.period.isoformat()} succeeded; the plan is ACTIVE.")
    plan_end_if_done(plan=plan, actor=PLAN_ACTOR, before=_snap(plan), now=now)


def _failed(plan: RecurringPlan, payment: Payment, today: dt.date, now: dt.datetime, *, code: str | None, message: str,
            authentication: bool) -> str:
    """One more failed charge of this period: the next retry, PAST_DUE or CANCELED."""
    from payments.recurring import plan_cancel_locked

    before = _snap(plan)
    if not plan.failure_count or plan.failing_since is None:
        plan.failing_since = today
    day0 = plan.failing_since
    failures = plan.failure_count + 1
    retries = len(PLAN_RETRY_DAYS)
    if authentication:
        failures = max(failures, retries)
        message = AUTHENTICATION_MESSAGE
        code = "authentication_required"
    plan.failure_count = min(failures, 32767)
    plan.last_failure_at = now
    plan.last_failure_message = message[:2000]
    plan.last_failure_code = (code or "card_declined")[:60]
    amount = _money(payment.amount_cents)
    if failures > retries:
        plan_cancel_locked(plan=plan, actor=PLAN_ACTOR, before=before, now=now,
                           reason=f"Payment failed: the last retry ({PLAN_RETRY_DAYS[-1]} days after the first) was declined.")
        plan_alert(plan=plan, actor=PLAN_ACTOR, kind="canceled",
                   subject=f"A recurring gift of {amount} was cancelled: every retry failed",
                   message=f"{plan.donor}: the charge for {payment.period.isoformat()} failed {failures} times "
                           f"(last: {message}). The plan is CANCELED.", extra={"code": plan.last_failure_code})
        return "canceled"
    plan.retry_at = max(day0 + dt.timedelta(days=PLAN_RETRY_DAYS[failures - 1]), today + dt.timedelta(days=1))
    past_due = failures >= retries
    plan.status = PlanStatus.PAST_DUE if past_due else PlanStatus.ACTIVE
    plan.save()
    plan_event(plan=plan, actor=PLAN_ACTOR, type="recurring_plan.updated", before=before, after=_snap(plan))
    if authentication:
        subject = f"A recurring gift of {amount} needs the donor: their bank asks for authentication"
    elif past_due:
        subject = f"A recurring gift of {amount} is past due: one retry left"
    else:
        subject = f"A recurring gift of {amount} was declined: retrying on {plan.retry_at.isoformat()}"
    plan_alert(plan=plan, actor=PLAN_ACTOR, kind="authentication_required" if authentication else
               ("past_due" if past_due else "payment_failed"), subject=subject,
               message=f"{plan.donor}: the charge for {payment.period.isoformat()} failed ({message}). "
                       f"Status {plan.status}; next try on {plan.retry_at.isoformat()}.",
               extra={"code": plan.last_failure_code, "failure_count": plan.failure_count,
                      "retry_at": plan.retry_at.isoformat()})
    return "failed"
