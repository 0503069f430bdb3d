"""Receipts (issue 18): the organisation's receipt settings, its gap-free
number sequence, and the receipts themselves (issued once, never changed;
withdrawn with a reason, a correction pointing at its replacement)."""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from donations.models import Donation, Donor
from together.models import LifecycleRules, OrganisationOwned, Refusal


class Deductibility(models.TextChoices):
    NONE = "NONE", "Not tax-deductible"
    DGR = "DGR", "Deductible gift recipient (Division 30, ITAA 1997)"
    POLITICAL = "POLITICAL", "Gift to a registered political party or candidate (Subdivision 30-DA)"


class ReceiptingMode(models.TextChoices):
    ON_RECORD = "ON_RECORD", "As each confirmed gift is recorded"
    BATCH = "BATCH", "In batches, when staff issue them for a period"


class ReceiptSettings(OrganisationOwned):
    """What every receipt of the organisation states (Settings → Receipts)."""

    legal_name = models.CharField(max_length=200)
    fund_name = models.CharField(max_length=200, blank=True, default="",
                                 help_text="DGR: the name of the fund, authority or institution, if not the legal name.")
    abn = models.CharField(max_length=11, blank=True, default="")
    address = models.TextField(blank=True, default="")
    signatory_name = models.CharField(max_length=200, blank=True, default="")
    signatory_title = models.CharField(max_length=200, blank=True, default="")
    wording = models.TextField(blank=True, default="", help_text="A thank-you note printed on every receipt.")
    deductibility = models.CharField(max_length=10, choices=Deductibility.choices, default=Deductibility.NONE)
    mode = models.CharField(max_length=10, choices=ReceiptingMode.choices, default=ReceiptingMode.ON_RECORD)
    email_subject = models.CharField(max_length=200, blank=True, default="")
    email_body = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation"], name="uniq_receipt_settings_org")]

    @property
    def issuer_name(self) -> str:
        return self.fund_name or self.legal_name


class ReceiptCounter(OrganisationOwned):
    """The organisation's next receipt number. Issuing locks this row
    (SELECT … FOR UPDATE) in the issuing transaction: numbers are handed out one
    at a time and a rolled-back issue gives its number back."""

    next_number = models.BigIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation"], name="uniq_receipt_counter_org")]


class ReceiptKind(models.TextChoices):
    RECEIPT = "RECEIPT", "Receipt"                       # money
    ACKNOWLEDGEMENT = "ACKNOWLEDGEMENT", "Acknowledgement"  # in kind: fair value stated, not a deductible receipt


class ReceiptStatus(models.TextChoices):
    ISSUED = "ISSUED"
    WITHDRAWN = "WITHDRAWN"


class Receipt(LifecycleRules, OrganisationOwned):
    """One issued receipt. Everything it states is stored with it (the donor, the
    amount, the issuer, the PDF): it never changes after issue, only its status
    moves to WITHDRAWN (with when, why and, for a correction, its replacement)."""

    donation = models.ForeignKey(Donation, on_delete=models.PROTECT, related_name="receipts")
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="receipts")
    number = models.BigIntegerField()
    kind = models.CharField(max_length=15, choices=ReceiptKind.choices)
    status = models.CharField(max_length=10, choices=ReceiptStatus.choices, default=ReceiptStatus.ISSUED)
    issued_at = models.DateTimeField()
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    donation_date = models.DateField()
    deductibility = models.CharField(max_length=10, choices=Deductibility.choices)
    donor_snapshot = models.JSONField(default=dict)   # name, email, address lines as stated
    issuer_snapshot = models.JSONField(default=dict)  # the settings as stated
    gift_snapshot = models.JSONField(default=dict)    # payment method, reference, in-kind description and valuation
    pdf = models.BinaryField()
    # Emails asked for (the first on issue, one more per resend) and sent: a send
    # happens only while sent < requested, under the row's lock, so a task that
    # runs twice sends once.
    email_requested = models.IntegerField(default=0)
    email_count = models.IntegerField(default=0)
    emailed_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdraw_reason = models.TextField(null=True, blank=True)
    replaced_by = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaces")

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-issued_at", "-number"], name="receipt_org_issued"),
            models.Index(fields=["donor", "donation_date"], name="receipt_donor_date"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "number"], name="uniq_receipt_number_per_org"),
            # At most one standing receipt per gift.
            models.UniqueConstraint(fields=["donation"], condition=Q(status="ISSUED"), name="uniq_receipt_issued_per_donation"),
            models.CheckConstraint(condition=Q(number__gt=0), name="receipt_number_positive"),
            models.CheckConstraint(
                condition=Q(status="ISSUED", withdrawn_at__isnull=True) | Q(status="WITHDRAWN", withdrawn_at__isnull=False),
                name="receipt_withdrawn_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Receipt {self.number}"

    lifecycle_actions = ("withdraw", "resend")

    def _refusal_withdraw(self) -> Refusal | None:
        if self.status == ReceiptStatus.WITHDRAWN:
            return Refusal("This receipt is already withdrawn.", param="status")
        return None

    def _refusal_resend(self) -> Refusal | None:
        if self.status != ReceiptStatus.ISSUED:
            return Refusal("A withdrawn receipt is not sent again.", param="status")
        if not self.donor_snapshot.get("email"):
            return Refusal("The donor has no email address on this receipt.", param="email")
        return None

    @property
    def can_withdraw(self) -> bool:
        return self.can("withdraw")

    @property
    def can_resend(self) -> bool:
        return self.can("resend")

    @property
    def file_name(self) -> str:
        return f"receipt-{self.number}.pdf"


class RunStatus(models.TextChoices):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"


class ReceiptRun(OrganisationOwned):
    """Issue receipts in bulk for the gifts dated in a period (a Celery job with progress)."""

    date_from = models.DateField()
    date_to = models.DateField()
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    total = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    issued = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    error = models.TextField(null=True, blank=True)
    actor_label = models.CharField(max_length=200, blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="receipt_run_org_created")]

    @property
    def percent(self) -> int:
        return 100 if self.status == RunStatus.DONE else int(self.processed * 100 / self.total) if self.total else 0
