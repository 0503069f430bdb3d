"""Payments: the money side of card gifts.

- `Payment`: one checkout attempt = one Stripe PaymentIntent, for a donation
  form, a checkout link or a split giving form. Its `parts` say whose books
  get which donation once the money is in.
- `StripeEvent`: every Stripe webhook event received, by id (dedupe).
- `Payout`: a Stripe payout and the donations paid out in it.

Payments point at engage (forms, links) and donations; nothing points back.
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from together.models import OrganisationOwned, PublicIdField


class PaymentKind(models.TextChoices):
    FORM = "FORM", "Donation form"
    CHECKOUT_LINK = "CHECKOUT_LINK", "Checkout link"
    SPLIT = "SPLIT", "Split giving form"


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
    transfer_group = models.CharField(max_length=100, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, null=True, blank=True)
    failure_message = models.TextField(null=True, blank=True)
    request_id = models.CharField(max_length=40, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)

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
