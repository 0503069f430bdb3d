"""Payments: the money side of card gifts.

- `Payment`: one checkout attempt = one Stripe PaymentIntent, for a donation
  form, a checkout link or a split giving form. Its `parts` say whose books
  get which donation once the money is in.
- `StripeEvent`: every Stripe webhook event received, by id (dedupe).
- `Payout`: a Stripe payout and the donations paid out in it.
- `RecurringPlan`: a donor's regular gift (CARD, charged off-session by the
  billing engine, payments.billing; or MANUAL, a standing order staff confirm).

Payments point at engage (forms, links) and donations; nothing points back.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from engage.models import Frequency
from together.models import LifecycleRules, OrganisationOwned, PublicIdField, Refusal


class PaymentKind(models.TextChoices):
    FORM = "FORM", "Donation form"
    CHECKOUT_LINK = "CHECKOUT_LINK", "Checkout link"
    SPLIT = "SPLIT", "Split giving form"
    # A recurring plan's charge for one period, made off-session by the billing engine.
    RECURRING = "RECURRING", "Recurring plan charge"


class PaymentStatus(models.TextChoices):
    REQUIRES_PAYMENT = "REQUIRES_PAYMENT", "Waiting for the donor"
    PROCESSING = "PROCESSING", "Processing"
    SUCCEEDED = "SUCCEEDED", "Succeeded"
    FAILED = "FAILED", "Failed"
    REFUNDED_OVER_CAP = "REFUNDED_OVER_CAP", "Refunded (over a donor cap)"


# Where a payment may go from each status. Events arrive in any order and are
# re-read from Stripe, so a payment only ever moves forward: a succeeded payment
# never goes back to processing. A FAILED attempt may still succeed (the donor
# retries with another card on the same PaymentIntent).
PAYMENT_FORWARD: dict[str, frozenset[str]] = {
    PaymentStatus.REQUIRES_PAYMENT: frozenset({PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED,
                                               PaymentStatus.REFUNDED_OVER_CAP}),
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.REFUNDED_OVER_CAP}),
    PaymentStatus.FAILED: frozenset({PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.REFUNDED_OVER_CAP}),
    PaymentStatus.SUCCEEDED: frozenset(),
    PaymentStatus.REFUNDED_OVER_CAP: frozenset(),
}


class Payment(OrganisationOwned):
    """One checkout attempt: one PaymentIntent in the paying organisation's name."""

    kind = models.CharField(max_length=15, choices=PaymentKind.choices)
    # The `source` of the donations it records: STRIPE (forms, split) or CHECKOUT_LINK.
    source = models.CharField(max_length=15)
    form = models.ForeignKey("engage.DonationForm", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    checkout_link = models.ForeignKey("engage.CheckoutLink", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    recommendation_set_id = models.CharField(max_length=24, null=True, blank=True)
    # The PaymentIntent's idempotency key; for a checkout link `link:<id>`, so a
    # link has exactly one PaymentIntent and is paid at most once.
    attempt_key = models.CharField(max_length=200)
    payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    client_secret = models.CharField(max_length=255, null=True, blank=True)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    status = models.CharField(max_length=20, choices=PaymentStatus.choices, default=PaymentStatus.REQUIRES_PAYMENT)
    # What the donor typed (name, email, address, phone): the snapshot kept on
    # each donation; an existing donor's record is never overwritten from it.
    donor_details = models.JSONField(default=dict)
    consent_text = models.TextField(null=True, blank=True)
    consent_given = models.BooleanField(null=True, blank=True)
    frequency = models.CharField(max_length=12, null=True, blank=True)
    # A recurring gift's Stripe customer (the first payment saves the card for
    # off-session charges); a RECURRING charge's plan and the period it pays.
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True)
    plan = models.ForeignKey("payments.RecurringPlan", null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    period = models.DateField(null=True, blank=True)
    transfer_group = models.CharField(max_length=100, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, null=True, blank=True)
    failure_message = models.TextField(null=True, blank=True)
    request_id = models.CharField(max_length=40, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Where the donor came from (issue 19): the public page's source fields
    # (donations.crm.SOURCE_FIELDS), carried onto every donation the payment records.
    tracking = models.JSONField(default=dict, blank=True)
    # A form page's answers to the gift custom fields it asks (donations.custom_fields), for the gift.
    custom_fields = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="payment_org_created"),
            models.Index(fields=["organisation", "status"], name="payment_org_status"),
            models.Index(fields=["stripe_charge_id"], condition=Q(stripe_charge_id__isnull=False), name="payment_charge"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "attempt_key"], name="uniq_payment_attempt_per_org"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=~Q(kind="FORM") | Q(form__isnull=False), name="payment_form_has_form"),
            models.CheckConstraint(condition=~Q(kind="CHECKOUT_LINK") | Q(checkout_link__isnull=False),
                                   name="payment_link_has_link"),
            models.CheckConstraint(condition=~Q(kind="SPLIT") | Q(recommendation_set_id__isnull=False),
                                   name="payment_split_has_set"),
            models.CheckConstraint(condition=~Q(kind="RECURRING") | Q(plan__isnull=False, period__isnull=False),
                                   name="payment_recurring_has_plan_period"),
            # One charge per plan and period, whatever runs the engine twice.
            models.UniqueConstraint(fields=["plan", "period"], condition=Q(plan__isnull=False),
                                    name="uniq_payment_plan_period"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents}c {self.status} ({self.payment_intent_id or 'no intent'})"

    def can_move_to(self, status: str) -> bool:
        return status == self.status or status in PAYMENT_FORWARD[self.status]

    @property
    def is_final(self) -> bool:
        return not PAYMENT_FORWARD[self.status]

    @property
    def donor_email(self) -> str:
        return (self.donor_details or {}).get("email") or ""


class PaymentPart(OrganisationOwned):
    """One recipient's share of a payment: a donation in the recipient's books
    (for a form or link, the paying organisation itself). `organisation` is the
    paying organisation (the part belongs to the payment)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="parts")
    position = models.PositiveSmallIntegerField()
    recipient_organisation = models.ForeignKey("organisations.Organisation", on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    campaign_id = models.CharField(max_length=24, null=True, blank=True)
    donation = models.OneToOneField("donations.Donation", null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="payment_part")
    # The recipient's share of Stripe's fee (the charge's fee split pro rata).
    fee_cents = models.BigIntegerField(null=True, blank=True)
    stripe_transfer_id = models.CharField(max_length=255, null=True, blank=True)
    # What was taken back from the recipient's account for refunds so far.
    transfer_reversed_cents = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["payment", "position"], name="uniq_payment_part_position"),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="payment_part_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"part {self.position}: {self.amount_cents}c → {self.recipient_organisation_id}"


class StripeEventOutcome(models.TextChoices):
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"
    FAILED = "FAILED"


class StripeEvent(models.Model):
    """A Stripe webhook event, stored once by its id: the same event delivered
    twice is processed once. Platform level (one Stripe account for all)."""

    id = PublicIdField()
    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    livemode = models.BooleanField(default=False)
    object_id = models.CharField(max_length=255, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=StripeEventOutcome.choices, blank=True, default="")
    detail = models.TextField(blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["-received_at"], name="stripe_event_received")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.outcome or 'pending'})"


class Payout(OrganisationOwned):
    """A Stripe payout as it touches one organisation's donations. A platform
    payout holding several organisations' gifts has one row per organisation."""

    payout_id = models.CharField(max_length=255)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    arrival_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20)
    paid_at = models.DateTimeField(null=True, blank=True)
    # This organisation's donations in the payout: their count and gross/fee/net.
    donations_count = models.IntegerField(default=0)
    gross_cents = models.BigIntegerField(default=0)
    fee_cents = models.BigIntegerField(default=0)
    net_cents = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="payout_org_created")]
        constraints = [models.UniqueConstraint(fields=["organisation", "payout_id"], name="uniq_payout_per_org")]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.amount_cents}c {self.status}"


# --- recurring plans (issue 17) -----------------------------------------------------------

class PlanStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"
    PAST_DUE = "PAST_DUE", "Past due"
    CANCELED = "CANCELED", "Cancelled"
    ENDED = "ENDED", "Ended"


class PlanPaymentMethod(models.TextChoices):
    CARD = "CARD", "Card (charged through Stripe)"
    MANUAL = "MANUAL", "Bank standing order (confirmed by staff)"


class PauseReason(models.TextChoices):
    CAP_REACHED = "CAP_REACHED", "The donor's cap has no room"
    STAFF = "STAFF", "Paused by staff"
    DONOR = "DONOR", "Paused by the donor"


# A plan's source tracking (donations.crm.SOURCE_FIELDS, the gift's fields of the same names).
PLAN_SOURCE_FIELDS = ("source_code", "referrer", "utm_source", "utm_medium", "utm_campaign")
# Statuses a plan never leaves.
PLAN_FINAL_STATUSES = frozenset({PlanStatus.CANCELED, PlanStatus.ENDED})
# Days after a period's first failed charge on which the charge is tried again. The
# plan is PAST_DUE once only the last retry is left, CANCELED when that one fails too.
PLAN_RETRY_DAYS: tuple[int, ...] = (1, 3, 5, 7)


class RecurringPlan(LifecycleRules, OrganisationOwned):
    """A donor's regular gift: a CARD plan is charged off-session through Stripe by
    the billing engine (payments.billing) on each period's date; a MANUAL plan (a
    bank standing order) gets an expected PENDING gift each period for staff to
    confirm or mark missed. Dates are anchored to `start_date` (period 1): 31 Jan →
    28/29 Feb → 31 Mar (payments.recurring.plan_next_date).

    `due_on` is when the engine next has something to do with the plan (the next
    bill date, or the retry date of a failing charge; none for a plan paused by
    people, cancelled or ended); it is derived from the other fields on every save."""

    donor = models.ForeignKey("donations.Donor", on_delete=models.PROTECT, related_name="recurring_plans")
    campaign = models.ForeignKey("donations.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    form = models.ForeignKey("engage.DonationForm", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    frequency = models.CharField(max_length=12, choices=Frequency.choices)
    status = models.CharField(max_length=10, choices=PlanStatus.choices, default=PlanStatus.ACTIVE)
    payment_method = models.CharField(max_length=6, choices=PlanPaymentMethod.choices)
    start_date = models.DateField()
    # What the schedule counts from: the start date, or a next bill date set since
    # (a changed frequency or date re-anchors the plan). Null: the start date.
    anchor_date = models.DateField(null=True, blank=True)
    # The date of the next period to bill (null once cancelled or ended).
    next_bill_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    max_payments = models.PositiveIntegerField(null=True, blank=True)
    payments_made = models.PositiveIntegerField(default=0)
    pause_reason = models.CharField(max_length=40, null=True, blank=True)
    pause_detail = models.TextField(blank=True, default="")
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_payment_method_id = models.CharField(max_length=255, null=True, blank=True)
    # Dunning: failed charges of the period being billed, the last one, the next retry.
    failure_count = models.PositiveSmallIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_message = models.TextField(null=True, blank=True)
    last_failure_code = models.CharField(max_length=60, null=True, blank=True)
    retry_at = models.DateField(null=True, blank=True)
    # The day of the period's first failed charge: retries count their days from it.
    failing_since = models.DateField(null=True, blank=True)
    due_on = models.DateField(null=True, blank=True, editable=False)
    cancel_reason = models.CharField(max_length=200, null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The donor's management links (payments.plan_links) carry this number; raising it
    # (the donor cancels through a link) makes every link sent before stop working.
    manage_link_version = models.PositiveIntegerField(default=1)
    # Where the donor came from (issue 19): the source fields of the public page they signed
    # up on (or set when the plan was made), carried onto every gift the plan produces.
    source_code = models.CharField(max_length=100, null=True, blank=True)
    referrer = models.CharField(max_length=200, null=True, blank=True)
    utm_source = models.CharField(max_length=100, null=True, blank=True)
    utm_medium = models.CharField(max_length=100, null=True, blank=True)
    utm_campaign = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="plan_org_created"),
            models.Index(fields=["organisation", "status"], name="plan_org_status"),
            models.Index(fields=["organisation", "next_bill_date"], name="plan_org_next_bill"),
            models.Index(fields=["donor", "status"], name="plan_donor_status"),
            # The engine's scan: plans with something to do on or before today.
            models.Index(fields=["due_on", "id"], condition=Q(due_on__isnull=False), name="plan_due"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="plan_amount_positive"),
            models.CheckConstraint(condition=Q(frequency__in=Frequency.values), name="plan_frequency_valid"),
            models.CheckConstraint(condition=Q(status__in=PlanStatus.values), name="plan_status_valid"),
            models.CheckConstraint(condition=Q(payment_method__in=PlanPaymentMethod.values), name="plan_payment_method_valid"),
            models.CheckConstraint(condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                                   name="plan_end_after_start"),
            models.CheckConstraint(condition=Q(max_payments__isnull=True) | Q(max_payments__gt=0), name="plan_max_payments_positive"),
            models.CheckConstraint(
                condition=~Q(payment_method="CARD") | ~Q(status__in=["ACTIVE", "PAST_DUE"])
                | Q(stripe_customer_id__isnull=False, stripe_payment_method_id__isnull=False),
                name="plan_card_has_stripe_card",
            ),
            models.CheckConstraint(condition=~Q(status="PAUSED") | Q(pause_reason__isnull=False), name="plan_paused_has_reason"),
        ]

    def __str__(self) -> str:
        return f"{self.frequency} {self.amount_cents}c {self.status} ({self.id})"

    # --- derived state ------------------------------------------------------------------------

    @property
    def is_final(self) -> bool:
        return self.status in PLAN_FINAL_STATUSES

    @property
    def is_failing(self) -> bool:
        """A charge of the current period failed and is being retried."""
        return self.failure_count > 0 and self.status in (PlanStatus.ACTIVE, PlanStatus.PAST_DUE)

    @property
    def held_by_cap(self) -> bool:
        return self.status == PlanStatus.PAUSED and self.pause_reason == PauseReason.CAP_REACHED

    def compute_due_on(self):
        if self.status in PLAN_FINAL_STATUSES:
            return None
        if self.status == PlanStatus.PAUSED:
            # Held by the cap: looked at again on each period's date, resumed by itself
            # in the first period with room. Paused by people: waits for them.
            return self.next_bill_date if self.pause_reason == PauseReason.CAP_REACHED else None
        if self.failure_count > 0:
            return self.retry_at
        return self.next_bill_date

    def save(self, *args, **kwargs):
        self.due_on = self.compute_due_on()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = set(update_fields) | {"due_on", "updated_at"}
        super().save(*args, **kwargs)

    @property
    def tracking(self) -> dict[str, str]:
        """The plan's source fields that are set: what each of its gifts carries."""
        return {name: value for name in PLAN_SOURCE_FIELDS if (value := getattr(self, name))}

    @property
    def monthly_cents(self) -> int:
        """The plan's amount as a monthly figure (monthly recurring revenue), rounded down."""
        per_year = {Frequency.WEEKLY: 52, Frequency.FORTNIGHTLY: 26, Frequency.MONTHLY: 12,
                    Frequency.QUARTERLY: 4, Frequency.ANNUALLY: 1}[self.frequency]
        return self.amount_cents * per_year // 12

    # --- lifecycle: what people may do with the plan now ----------------------------------------

    lifecycle_actions = ("pause", "resume", "cancel", "change")

    def _refusal_final(self) -> Refusal | None:
        if self.status == PlanStatus.CANCELED:
            return Refusal("This plan is cancelled.", param="status")
        if self.status == PlanStatus.ENDED:
            return Refusal("This plan has ended.", param="status")
        return None

    def _refusal_pause(self) -> Refusal | None:
        refusal = self._refusal_final()
        if refusal is not None:
            return refusal
        if self.status == PlanStatus.PAUSED:
            return Refusal("This plan is already paused.", param="status")
        return None

    def _refusal_resume(self) -> Refusal | None:
        refusal = self._refusal_final()
        if refusal is not None:
            return refusal
        if self.status != PlanStatus.PAUSED:
            return Refusal(f"Only a paused plan can be resumed; this one is {self.status}.", param="status")
        if self.payment_method == PlanPaymentMethod.CARD and not (self.stripe_customer_id and self.stripe_payment_method_id):
            return Refusal("This card plan has no saved card to charge.", param="stripe_payment_method_id")
        return None

    def _refusal_cancel(self) -> Refusal | None:
        return self._refusal_final()

    def _refusal_change(self) -> Refusal | None:
        return self._refusal_final()

    @property
    def can_pause(self) -> bool:
        return self.can("pause")

    @property
    def can_resume(self) -> bool:
        return self.can("resume")

    @property
    def can_cancel(self) -> bool:
        return self.can("cancel")

    @property
    def can_change(self) -> bool:
        return self.can("change")
