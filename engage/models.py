"""Engage: the ways a donor is asked to give.

- `DonationForm`: a public page `/donate/<slug>` taking gifts of the donor's
  choosing (product.md §5).
- `CheckoutLink`: one pre-filled payment page `/c/<code>`: one donor, one
  exact amount, one expiry, paid at most once (product.md §4).

The money itself (PaymentIntents, Stripe events) lives in the payments app,
which points at these; engage never imports payments.
"""
from __future__ import annotations

import secrets
import string
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone

from together.models import OrganisationOwned

# A form without its own minimum uses this one. Organisations have no minimum
# setting of their own yet, so this is "the organisation minimum": $1, the
# smallest gift worth the card fee and the smallest Stripe accepts in AUD
# comfortably (Stripe's own floor is $0.50).
DEFAULT_MINIMUM_CENTS = 100
# Stripe's ceiling for one card charge in AUD is $999,999.99.
MAXIMUM_CHARGE_CENTS = 99_999_999
# A checkout link left unpaid expires after this many days unless its creator
# picks another expiry (product.md §7 leaves the default to us).
CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS = 30
CHECKOUT_LINK_MAX_EXPIRY_DAYS = 365
CONSENT_TEXT_MAX = 300
SLUG_MAX = 80
SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class FormStatus(models.TextChoices):
    DRAFT = "DRAFT", "Draft"
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"
    ARCHIVED = "ARCHIVED", "Archived"


class Visibility(models.TextChoices):
    NONE = "NONE", "Not asked"
    OPTIONAL = "OPTIONAL", "Optional"
    REQUIRED = "REQUIRED", "Required"


class Frequency(models.TextChoices):
    WEEKLY = "WEEKLY", "Weekly"
    FORTNIGHTLY = "FORTNIGHTLY", "Fortnightly"
    MONTHLY = "MONTHLY", "Monthly"
    QUARTERLY = "QUARTERLY", "Quarterly"
    ANNUALLY = "ANNUALLY", "Annually"


# Which status may follow which (ARCHIVED is final: its slug stays taken, and
# shared links answer 404 for good).
FORM_TRANSITIONS: dict[str, frozenset[str]] = {
    FormStatus.DRAFT: frozenset({FormStatus.ACTIVE, FormStatus.PAUSED, FormStatus.ARCHIVED}),
    FormStatus.ACTIVE: frozenset({FormStatus.PAUSED, FormStatus.DRAFT, FormStatus.ARCHIVED}),
    FormStatus.PAUSED: frozenset({FormStatus.ACTIVE, FormStatus.DRAFT, FormStatus.ARCHIVED}),
    FormStatus.ARCHIVED: frozenset(),
}


class DonationForm(OrganisationOwned):
    name = models.CharField(max_length=200, help_text="Internal name, shown only to staff.")
    slug = models.CharField(max_length=SLUG_MAX, unique=True, help_text="Public address /donate/<slug>.")
    status = models.CharField(max_length=10, choices=FormStatus.choices, default=FormStatus.DRAFT)
    title = models.CharField(max_length=200)
    description = models.TextField(null=True, blank=True)
    # Whole dollars, kept in cents, ascending, no repeats.
    suggested_amounts_cents = models.JSONField(default=list)
    allow_custom = models.BooleanField(default=True)
    default_amount_cents = models.BigIntegerField(null=True, blank=True)
    minimum_cents = models.BigIntegerField(null=True, blank=True)
    maximum_cents = models.BigIntegerField(null=True, blank=True)
    allow_recurring = models.BooleanField(default=True)
    recurring_frequencies = models.JSONField(default=list)
    phone_visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.OPTIONAL)
    address_visibility = models.CharField(max_length=8, choices=Visibility.choices, default=Visibility.OPTIONAL)
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    campaign = models.ForeignKey("donations.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The organisation's gift custom fields the page asks (their keys, in order; issue 19).
    custom_field_keys = models.JSONField(default=list, blank=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="form_org_created"),
            models.Index(fields=["organisation", "status"], name="form_org_status"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(slug__regex=SLUG_PATTERN), name="form_slug_shape"),
            models.CheckConstraint(condition=Q(minimum_cents__isnull=True) | Q(minimum_cents__gt=0), name="form_minimum_positive"),
            models.CheckConstraint(
                condition=Q(maximum_cents__isnull=True) | Q(minimum_cents__isnull=True) | Q(maximum_cents__gte=models.F("minimum_cents")),
                name="form_maximum_over_minimum",
            ),
            models.CheckConstraint(condition=Q(status="ARCHIVED") | Q(archived_at__isnull=True), name="form_archived_at_consistent"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (/donate/{self.slug})"

    @property
    def effective_minimum_cents(self) -> int:
        return self.minimum_cents if self.minimum_cents is not None else DEFAULT_MINIMUM_CENTS

    @property
    def effective_maximum_cents(self) -> int:
        return min(self.maximum_cents, MAXIMUM_CHARGE_CENTS) if self.maximum_cents is not None else MAXIMUM_CHARGE_CENTS

    @property
    def takes_gifts(self) -> bool:
        return self.status == FormStatus.ACTIVE

    @property
    def open_to_donors(self) -> bool:
        """ACTIVE and its organisation connected to Stripe: the public page takes cards."""
        return self.takes_gifts and self.organisation.stripe_connected

    def can_move_to(self, status: str) -> bool:
        return status == self.status or status in FORM_TRANSITIONS[self.status]

    def visible_amounts_cents(self) -> list[int]:
        """Suggestions the donor may pick: those under the minimum or over the maximum are hidden."""
        low, high = self.effective_minimum_cents, self.effective_maximum_cents
        return [a for a in self.suggested_amounts_cents if low <= a <= high]


class PaymentMethodType(models.TextChoices):
    CARD = "CARD", "Card"
    BECS = "BECS", "BECS Direct Debit"
    PAYTO = "PAYTO", "PayTo"


class LinkStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    COMPLETED = "COMPLETED", "Completed"
    EXPIRED = "EXPIRED", "Expired"
    CANCELED = "CANCELED", "Cancelled"


CODE_ALPHABET = string.ascii_letters + string.digits


def new_link_code() -> str:
    """22 letters and digits, 131 random bits: unguessable, and nothing a mail client or
    a copy-and-paste mangles (no leading "-", no "_" read as an underline)."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(22))


def default_link_expiry():
    return timezone.now() + timedelta(days=CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS)


class CheckoutLink(OrganisationOwned):
    code = models.CharField(max_length=43, unique=True, default=new_link_code, editable=False)
    donor = models.ForeignKey("donations.Donor", on_delete=models.CASCADE, related_name="checkout_links")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    description = models.CharField(max_length=200, null=True, blank=True)
    payment_methods = models.JSONField(default=list)
    consent_text = models.CharField(max_length=CONSENT_TEXT_MAX, null=True, blank=True)
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    campaign = models.ForeignKey("donations.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Stored status: ACTIVE until paid, cancelled, or persisted as EXPIRED by
    # the periodic task. Readers use `effective_status`, which is EXPIRED as
    # soon as `expires_at` passes, before any job runs.
    status = models.CharField(max_length=10, choices=LinkStatus.choices, default=LinkStatus.ACTIVE)
    expires_at = models.DateTimeField(default=default_link_expiry)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    donation = models.OneToOneField(
        "donations.Donation", null=True, blank=True, on_delete=models.PROTECT, related_name="checkout_link"
    )

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="link_org_created"),
            models.Index(fields=["status", "expires_at"], name="link_status_expiry"),
            models.Index(fields=["donor"], name="link_donor"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="link_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="COMPLETED") | Q(completed_at__isnull=False, donation__isnull=False),
                name="link_completed_has_donation",
            ),
            models.CheckConstraint(condition=~Q(status="CANCELED") | Q(canceled_at__isnull=False), name="link_canceled_has_time"),
        ]

    def __str__(self) -> str:
        return f"/c/{self.code} ({self.amount_cents}c)"

    def effective_status(self, now=None) -> str:
        if self.status == LinkStatus.ACTIVE and self.expires_at <= (now or timezone.now()):
            return LinkStatus.EXPIRED
        return self.status

    @property
    def is_payable(self) -> bool:
        return self.effective_status() == LinkStatus.ACTIVE

    @property
    def can_cancel(self) -> bool:
        return self.effective_status() == LinkStatus.ACTIVE
