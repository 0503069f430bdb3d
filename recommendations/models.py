"""Recommendations: who may direct funds to whom, and how one gift is split.

- `DistributionPassphrase`: a recipient organisation's secret, handed to an
  organisation that will direct funds to it. Only its SHA-256 is kept.
- `RecipientOrgAccountLink`: owned by the directing organisation; points at a
  recipient organisation. Made by exchanging a passphrase or by an accepted
  `Introduction`.
- `RecommendationSet` + `Allocation`: one donation split across linked
  recipients, in a fixed display order.
- `SplitGift` + `SplitGiftPart`: one gift made through a set. Each recorded part
  is a `Donation` in the recipient organisation's own books.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from together.exceptions import Conflict
from together.models import LifecycleRules, OrganisationOwned, Refusal


class DistributionPassphrase(OrganisationOwned):
    """A recipient organisation's distribution passphrase (at most one active)."""

    class EndReason(models.TextChoices):
        ROTATED = "ROTATED"
        REVOKED = "REVOKED"

    hashed = models.CharField(max_length=64, unique=True)
    word_count = models.PositiveSmallIntegerField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=10, choices=EndReason.choices, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at"], name="passphrase_org_created")]
        constraints = [
            models.UniqueConstraint(fields=["organisation"], condition=Q(ended_at__isnull=True), name="one_active_passphrase_per_org"),
        ]

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class DeactivatedBy(models.TextChoices):
    OWNER = "OWNER"
    RECIPIENT = "RECIPIENT"


class RecipientOrgAccountLink(LifecycleRules, OrganisationOwned):
    """`organisation` may direct funds to `recipient_organisation`."""

    recipient_organisation = models.ForeignKey(
        "organisations.Organisation", on_delete=models.CASCADE, related_name="incoming_recipient_links"
    )
    label = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)
    deactivated_by = models.CharField(max_length=10, choices=DeactivatedBy.choices, null=True, blank=True)
    introduction = models.OneToOneField(
        "recommendations.Introduction", null=True, blank=True, on_delete=models.SET_NULL, related_name="link"
    )
    passphrase = models.ForeignKey(DistributionPassphrase, null=True, blank=True, on_delete=models.SET_NULL, related_name="links")

    class Meta:
        verbose_name = "recipient account"
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="reclink_org_created"),
            models.Index(fields=["recipient_organisation", "-created_at"], name="reclink_recipient"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "recipient_organisation"], name="uniq_link_per_recipient"),
            models.CheckConstraint(condition=~Q(organisation=models.F("recipient_organisation")), name="link_not_to_self"),
            models.CheckConstraint(
                condition=Q(is_active=True, deactivated_by__isnull=True) | Q(is_active=False, deactivated_by__isnull=False),
                name="link_deactivated_by_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} → {self.recipient_organisation_id}"

    # Who may turn the link on: whoever turned it off. The owner's switch never
    # overrides the recipient's; the recipient may stop any link to it.
    lifecycle_actions = ("owner_reactivate", "recipient_reactivate")

    def _refusal_owner_reactivate(self) -> Refusal | None:
        if self.deactivated_by == DeactivatedBy.RECIPIENT:
            return Refusal("The recipient organisation deactivated this link; only it can reactivate it.",
                           param="is_active", extra={"reason": "deactivated_by_recipient"})
        return None

    def _refusal_recipient_reactivate(self) -> Refusal | None:
        if self.deactivated_by != DeactivatedBy.RECIPIENT:
            return Refusal("Only a link the recipient deactivated is reactivated by the recipient.", param="is_active")
        return None

    @property
    def can_recipient_reactivate(self) -> bool:
        return self.can("recipient_reactivate")

    @property
    def can_recipient_deactivate(self) -> bool:
        return self.deactivated_by != DeactivatedBy.RECIPIENT


class IntroductionStatus(models.TextChoices):
    PENDING = "pending"
    VIEWED = "viewed"
    ACCEPTED = "accepted"
    LINKED = "linked"
    EXPIRED = "expired"
    REVOKED = "revoked"


OPEN_INTRODUCTION_STATES = (IntroductionStatus.PENDING, IntroductionStatus.VIEWED, IntroductionStatus.ACCEPTED)


class Introduction(LifecycleRules, OrganisationOwned):
    """An invitation from `organisation` (the inviter) to a prospective recipient."""

    status = models.CharField(max_length=10, choices=IntroductionStatus.choices, default=IntroductionStatus.PENDING)
    invitee_email = models.CharField(max_length=254)
    invitee_org_name_hint = models.CharField(max_length=200, blank=True, default="")
    invitee_message = models.TextField(blank=True, default="")
    label = models.CharField(max_length=200, blank=True, default="")
    token_hash = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    viewed_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    accepted_organisation = models.ForeignKey(
        "organisations.Organisation", null=True, blank=True, on_delete=models.SET_NULL, related_name="accepted_introductions"
    )
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="intro_org_created"),
            models.Index(fields=["status", "expires_at"], name="intro_status_expiry"),
        ]

    # --- lifecycle: pending → viewed → accepted → linked, or expired / revoked ---------

    lifecycle_actions = ("accept", "link", "revoke")

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_INTRODUCTION_STATES

    @property
    def is_past_expiry(self) -> bool:
        """Open, but its time ran out (the sweep will mark it expired)."""
        return self.is_open and self.expires_at <= timezone.now()

    def _refusal_in(self, allowed: tuple[str, ...]) -> Refusal | None:
        if self.is_past_expiry:
            return Refusal("This introduction has expired.", param="introduction", extra={"reason": "introduction_expired"})
        if self.status not in allowed:
            return Refusal(f"This introduction is {self.status}.", param="introduction",
                           extra={"reason": f"introduction_{self.status}"})
        return None

    def _refusal_accept(self) -> Refusal | None:
        return self._refusal_in((IntroductionStatus.PENDING, IntroductionStatus.VIEWED))

    def _refusal_link(self) -> Refusal | None:
        return self._refusal_in((IntroductionStatus.ACCEPTED,))

    def _refusal_revoke(self) -> Refusal | None:
        if not self.is_open:
            return Refusal(f"Introduction {self.id} is already {self.status}; only pending, viewed or accepted "
                           "introductions can be revoked.", error=Conflict, extra={"status": self.status})
        return None

    @property
    def can_accept(self) -> bool:
        return self.can("accept")

    @property
    def can_link(self) -> bool:
        return self.can("link")

    @property
    def can_revoke(self) -> bool:
        return self.can("revoke")


class AmountMode(models.TextChoices):
    FIXED = "FIXED"
    SUGGESTED = "SUGGESTED"
    OPEN = "OPEN"


class RecommendationSet(OrganisationOwned):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    amount_mode = models.CharField(max_length=10, choices=AmountMode.choices, default=AmountMode.FIXED)
    is_active = models.BooleanField(default=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="recset_org_created")]

    def __str__(self) -> str:
        return self.name


class Allocation(OrganisationOwned):
    """One recipient of a set, at `position` (0-based, the donor-facing order)."""

    recommendation_set = models.ForeignKey(RecommendationSet, on_delete=models.CASCADE, related_name="allocations")
    link = models.ForeignKey(RecipientOrgAccountLink, on_delete=models.PROTECT, related_name="allocations")
    amount_cents = models.BigIntegerField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["recommendation_set", "position"], name="uniq_allocation_position"),
            models.UniqueConstraint(fields=["recommendation_set", "link"], name="uniq_allocation_link"),
            models.CheckConstraint(condition=Q(amount_cents__gte=0), name="allocation_amount_not_negative"),
        ]


class SplitGiftStatus(models.TextChoices):
    PLEDGED = "PLEDGED"      # from the public form: validated, no payment taken, nothing in recipients' books
    RECORDED = "RECORDED"    # money received: one Donation per part in each recipient's books


class SplitGift(OrganisationOwned):
    """One gift through a set, owned by the recommending organisation."""

    recommendation_set = models.ForeignKey(RecommendationSet, on_delete=models.PROTECT, related_name="split_gifts")
    status = models.CharField(max_length=10, choices=SplitGiftStatus.choices)
    total_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    donation_date = models.DateField()
    payment_reference = models.CharField(max_length=100, blank=True, default="")
    payment_method = models.CharField(max_length=15, blank=True, default="")
    donor_details = models.JSONField(default=dict)
    recorded_at = models.DateTimeField(null=True, blank=True)
    recorded_by_label = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="splitgift_org_created"),
            models.Index(fields=["recommendation_set", "status"], name="splitgift_set_status"),
        ]
        constraints = [models.CheckConstraint(condition=Q(total_cents__gt=0), name="splitgift_total_positive")]


class SplitGiftPart(OrganisationOwned):
    """A recipient's share; `donation` (in the recipient's books) once recorded."""

    split_gift = models.ForeignKey(SplitGift, on_delete=models.CASCADE, related_name="parts")
    link = models.ForeignKey(RecipientOrgAccountLink, on_delete=models.PROTECT, related_name="+")
    recipient_organisation = models.ForeignKey("organisations.Organisation", on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    position = models.PositiveSmallIntegerField()
    donation = models.OneToOneField("donations.Donation", null=True, blank=True, on_delete=models.PROTECT, related_name="split_gift_part")

    class Meta:
        ordering = ["position"]
        constraints = [models.CheckConstraint(condition=Q(amount_cents__gt=0), name="splitgiftpart_amount_positive")]
