from __future__ import annotations

import datetime as dt

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce, Lower

from together.models import LifecycleRules, OrganisationOwned, OrganisationQuerySet, Refusal, organisation_key


# A donor without a counted gift sorts as if their last gift were on this day (before every real one).
LAST_GIFT_NONE = dt.date(1, 1, 1)


class Acknowledgement(models.TextChoices):
    """Whether a gift is to be receipted (issue 18; the receipts app issues them)."""
    NEEDS_RECEIPT = "NEEDS_RECEIPT"
    RECEIPTED = "RECEIPTED"
    DO_NOT_RECEIPT = "DO_NOT_RECEIPT"


TAG_NAME_MAX = 50


class DonorType(models.TextChoices):
    INDIVIDUAL = "INDIVIDUAL"
    ORGANISATION = "ORGANISATION"
    TRUST = "TRUST"
    UNKNOWN = "UNKNOWN"


class Donor(OrganisationOwned):
    organisation = organisation_key(db_index=False)  # the donor_org_* indexes lead with it (together.models)
    donor_type = models.CharField(max_length=12, choices=DonorType.choices, default=DonorType.INDIVIDUAL)
    first_name = models.CharField(max_length=100, null=True, blank=True)
    last_name = models.CharField(max_length=100, null=True, blank=True)
    organisation_name = models.CharField(max_length=200, null=True, blank=True)
    email = models.CharField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=40, null=True, blank=True)
    address_line1 = models.CharField(max_length=200, null=True, blank=True)
    address_line2 = models.CharField(max_length=200, null=True, blank=True)
    suburb = models.CharField(max_length=100, null=True, blank=True)
    state = models.CharField(max_length=50, null=True, blank=True)
    postcode = models.CharField(max_length=12, null=True, blank=True)
    country = models.CharField(max_length=2, default="AU")
    notes = models.TextField(null=True, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The organisation's custom fields for donors (CustomField), by key; written only
    # through donations.custom_fields.custom_fields_clean.
    custom_fields = models.JSONField(default=dict, blank=True)
    # The donor's default for gifts not yet receipted: NEEDS_RECEIPT or DO_NOT_RECEIPT.
    acknowledgement_default = models.CharField(max_length=15, choices=Acknowledgement.choices,
                                               default=Acknowledgement.NEEDS_RECEIPT)
    # Issue 19: an individual's employer, or the organisation they give through: a donor
    # of type ORGANISATION in the same organisation (donations.crm.employer_clean).
    employer = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="employees")
    # The donor's tag names, sorted: kept by donations.crm in the transaction of every
    # change to the donor's tags (DonorTag is the truth; this renders and filters cheaply).
    tags = ArrayField(models.CharField(max_length=TAG_NAME_MAX), default=list, blank=True, editable=False,
                      db_default=models.Value([], output_field=ArrayField(models.CharField(max_length=TAG_NAME_MAX))))
    # Maintained by the services in the transaction of every change to the donor's gifts.
    donations_total_cents = models.BigIntegerField(default=0, editable=False)
    donations_count = models.IntegerField(default=0, editable=False)
    # The gift date of the latest counted gift (None: none yet), kept with the totals, for the donors list's sort.
    last_donation_date = models.DateField(null=True, blank=True, editable=False)
    # The display name (display_name below), lower case: the donors list's name sort.
    sort_name = models.GeneratedField(
        expression=Lower(Coalesce(
            models.functions.NullIf(models.functions.Trim(models.functions.Concat(
                Coalesce("first_name", models.Value("")), models.Value(" "), Coalesce("last_name", models.Value("")),
                output_field=models.TextField())), models.Value("")),
            models.functions.NullIf("organisation_name", models.Value("")),
            models.functions.NullIf("email", models.Value("")), "id", output_field=models.TextField(),
        )),
        output_field=models.TextField(),
        db_persist=True,
    )
    search_text = models.GeneratedField(
        expression=Lower(
            models.functions.Concat(
                Coalesce("first_name", models.Value("")), models.Value(" "),
                Coalesce("last_name", models.Value("")), models.Value(" "),
                Coalesce("organisation_name", models.Value("")), models.Value(" "),
                Coalesce("email", models.Value("")),
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="donor_org_created"),
            models.Index(fields=["organisation", "-updated_at"], name="donor_org_updated"),
            models.Index(fields=["organisation", "external_id"], name="donor_org_external"),
            # An import matches a new row's donor by name within its postcode (imports.services.DonorIndex).
            models.Index(fields=["organisation", "postcode"], name="donor_org_postcode"),
            # The donors list's sorts (keyset: the key, then id).
            models.Index(fields=["organisation", "sort_name", "id"], name="donor_org_sort_name"),
            models.Index(fields=["organisation", "donations_total_cents", "id"], name="donor_org_total"),
            models.Index(models.F("organisation"), Coalesce("last_donation_date", models.Value(LAST_GIFT_NONE)), models.F("id"),
                         name="donor_org_last_gift"),
            GinIndex(OpClass("search_text", name="gin_trgm_ops"), name="donor_search_trgm"),
            GinIndex(OpClass("custom_fields", name="jsonb_path_ops"), name="donor_custom_fields"),
        ]
        constraints = [
            models.UniqueConstraint(Lower("email"), "organisation", condition=Q(email__isnull=False), name="uniq_donor_email_per_org"),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p)
        return name or self.organisation_name or self.email or self.id


class Tag(OrganisationOwned):
    """A label an organisation puts on donors (issue 19): unique in the
    organisation ignoring case; renamed in place, so its donors keep it."""

    name = models.CharField(max_length=TAG_NAME_MAX)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="tag_org_created")]
        constraints = [models.UniqueConstraint(Lower("name"), "organisation", name="uniq_tag_name_per_org")]

    def __str__(self) -> str:
        return self.name


class DonorTag(models.Model):
    """A donor carries a tag."""

    donor = models.ForeignKey(Donor, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="donor_links")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["donor", "tag"], name="uniq_donor_tag")]
        indexes = [models.Index(fields=["tag", "donor"], name="donortag_tag_donor")]


class CampaignStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class Campaign(OrganisationOwned):
    name = models.CharField(max_length=200)
    description = models.TextField(null=True, blank=True)
    goal_cents = models.BigIntegerField(null=True, blank=True)
    starts_at = models.DateField(null=True, blank=True)
    ends_at = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.ACTIVE)
    external_id = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="campaign_org_created")]

    def __str__(self) -> str:
        return self.name


class DonationType(models.TextChoices):
    MONETARY = "MONETARY"
    IN_KIND = "IN_KIND"


class Source(models.TextChoices):
    MANUAL = "MANUAL"
    STRIPE = "STRIPE"
    CHECKOUT_LINK = "CHECKOUT_LINK"
    NATIONBUILDER = "NATIONBUILDER"
    RAISELY = "RAISELY"
    GATEWAY = "GATEWAY"


class Status(models.TextChoices):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"


class PaymentMethod(models.TextChoices):
    CASH = "CASH"
    CHEQUE = "CHEQUE"
    BANK_TRANSFER = "BANK_TRANSFER"
    CARD = "CARD"
    OTHER = "OTHER"


class InKindCategory(models.TextChoices):
    GOODS = "GOODS", "Donated goods"
    SERVICES = "SERVICES", "Donated services"
    DISCOUNT = "DISCOUNT", "Discount beyond normal terms"
    EXCESSIVE_PAYMENT = "EXCESSIVE_PAYMENT", "Excessive payment"
    OTHER = "OTHER", "Other in-kind benefit"


# Sources whose money Together itself refunds; others are refunded where they were paid.
REFUNDABLE_SOURCES = ("MANUAL", "STRIPE", "CHECKOUT_LINK")


class Donation(LifecycleRules, OrganisationOwned):
    # Indexed by the donation_org_*, donation_donor_* and donation_campaign_status indexes (together.models).
    organisation = organisation_key(db_index=False)
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="donations", db_index=False)
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="donations",
                                 db_index=False)
    donation_type = models.CharField(max_length=10, choices=DonationType.choices)
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="AUD")
    donation_date = models.DateField()
    source = models.CharField(max_length=15, choices=Source.choices, default=Source.MANUAL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CONFIRMED)
    payment_method = models.CharField(max_length=15, choices=PaymentMethod.choices, null=True, blank=True)
    reference = models.CharField(max_length=100, null=True, blank=True)
    in_kind_category = models.CharField(max_length=20, choices=InKindCategory.choices, null=True, blank=True)
    in_kind_description = models.TextField(null=True, blank=True)
    in_kind_valuation_method = models.TextField(null=True, blank=True)
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    # Stamped by compliance from the revenue code's mapping (or the organisation's default).
    jurisdiction = models.CharField(max_length=12, null=True, blank=True, editable=False)
    notes = models.TextField(null=True, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The organisation's custom fields for gifts (CustomField), by key.
    custom_fields = models.JSONField(default=dict, blank=True)
    void_reason = models.TextField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    refund_date = models.DateField(null=True, blank=True)
    refund_reason = models.TextField(null=True, blank=True)
    refunded_at = models.DateTimeField(null=True, blank=True)
    # Money returned so far. A partial refund keeps the gift CONFIRMED and counts
    # amount_cents - refunded_cents; a full refund makes it REFUNDED.
    refunded_cents = models.BigIntegerField(default=0)
    # Card gifts (source STRIPE or CHECKOUT_LINK): what Stripe says of the money.
    stripe_payment_intent_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_charge_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_balance_transaction_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_transfer_id = models.CharField(max_length=255, null=True, blank=True)
    stripe_payout_id = models.CharField(max_length=255, null=True, blank=True)
    fee_cents = models.BigIntegerField(null=True, blank=True)
    net_cents = models.BigIntegerField(null=True, blank=True)
    dispute_status = models.CharField(max_length=30, null=True, blank=True)
    # A checkout link's consent checkbox: its text and the donor's answer.
    consent_text = models.TextField(null=True, blank=True)
    consent_given = models.BooleanField(null=True, blank=True)
    # What the donor typed on a public page (canonical record protection: an
    # existing donor's name, address and phone are never overwritten from it).
    donor_snapshot = models.JSONField(null=True, blank=True)
    # A recurring plan's gift (issue 17): the plan's id and the period it pays (the
    # period's scheduled date). Plain values: donations never imports payments.
    recurring_plan_id = models.CharField(max_length=24, null=True, blank=True, db_index=True)
    recurring_period = models.DateField(null=True, blank=True)
    # Kept by the receipts app: RECEIPTED while an issued receipt stands.
    acknowledgement_status = models.CharField(max_length=15, choices=Acknowledgement.choices,
                                              default=Acknowledgement.NEEDS_RECEIPT)
    # Source tracking (issue 19): where the gift came from. Set through the API and the
    # gift form, or carried from a public page's query string (donations.crm.SOURCE_FIELDS).
    source_code = models.CharField(max_length=100, null=True, blank=True)
    referrer = models.CharField(max_length=200, null=True, blank=True)
    utm_source = models.CharField(max_length=100, null=True, blank=True)
    utm_medium = models.CharField(max_length=100, null=True, blank=True)
    utm_campaign = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="donation_org_created"),
            models.Index(fields=["organisation", "-updated_at"], name="donation_org_updated"),
            # The donations list's sorts (keyset: the key, then id; the donor sort walks donor_org_sort_name).
            models.Index(fields=["organisation", "donation_date", "id"], name="donation_org_date_id"),
            models.Index(fields=["organisation", "amount_cents", "id"], name="donation_org_amount"),
            models.Index(fields=["donor", "status"], name="donation_donor_status"),
            models.Index(fields=["campaign", "status"], name="donation_campaign_status"),
            # Covers period totals (home page, reports) without touching the table: what a
            # counted gift counts is amount_cents - refunded_cents (compliance.rules.COUNTED_CENTS).
            models.Index(fields=["organisation", "donation_date"],
                         include=["status", "donation_type", "amount_cents", "refunded_cents"], name="donation_org_date"),
            models.Index(fields=["donor", "jurisdiction", "donation_date"], name="donation_donor_jur_date"),
            models.Index(fields=["stripe_payment_intent_id"], condition=Q(stripe_payment_intent_id__isnull=False),
                         name="donation_stripe_pi"),
            models.Index(fields=["stripe_charge_id"], condition=Q(stripe_charge_id__isnull=False),
                         name="donation_stripe_charge"),
            models.Index(fields=["stripe_payout_id"], condition=Q(stripe_payout_id__isnull=False),
                         name="donation_stripe_payout"),
            models.Index(fields=["organisation", "source_code"], condition=Q(source_code__isnull=False),
                         name="donation_org_source_code"),
            # Gifts by external ID (an import's duplicate check, reconciling with another system): without it
            # every lookup read all of the organisation's gifts through the organisation index.
            models.Index(fields=["organisation", "external_id"], condition=Q(external_id__isnull=False),
                         name="donation_org_external"),
            GinIndex(OpClass("custom_fields", name="jsonb_path_ops"), name="donation_custom_fields"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="donation_amount_positive"),
            models.CheckConstraint(
                condition=Q(donation_type="MONETARY", in_kind_category__isnull=True)
                | Q(donation_type="IN_KIND", in_kind_category__isnull=False, payment_method__isnull=True),
                name="donation_type_fields",
            ),
            models.CheckConstraint(condition=Q(refunded_cents__gte=0) & Q(refunded_cents__lte=models.F("amount_cents")),
                                   name="donation_refunded_within_amount"),
            # A plan's period is recorded once: one gift (expected, confirmed or refunded) per
            # plan and period. A FAILED attempt or a VOIDED record leaves the period open.
            models.UniqueConstraint(
                fields=["recurring_plan_id", "recurring_period"],
                condition=Q(recurring_plan_id__isnull=False, recurring_period__isnull=False)
                & ~Q(status__in=["FAILED", "VOIDED"]),
                name="uniq_donation_plan_period",
            ),
            models.CheckConstraint(condition=Q(recurring_plan_id__isnull=True) | Q(recurring_period__isnull=False),
                                   name="donation_plan_has_period"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.amount_cents}c {self.donation_type}"

    # --- lifecycle: the one statement of what may happen to a gift now -------------------

    lifecycle_actions = ("edit", "void", "refund")

    def _refusal_edit(self) -> Refusal | None:
        if self.source != Source.MANUAL:
            return Refusal(f"Only MANUAL donations can be edited; this one came from {self.source}.", param="source")
        if self.status in (Status.VOIDED, Status.REFUNDED):
            return Refusal(f"A {self.status} donation cannot be edited.", param="status")
        return None

    def _refusal_void(self) -> Refusal | None:
        if self.status == Status.VOIDED:
            return Refusal("This donation is already voided.", param="status")
        if self.status == Status.REFUNDED:
            return Refusal("A refunded donation cannot be voided.", param="status")
        return None

    def _refusal_refund(self) -> Refusal | None:
        if self.source not in REFUNDABLE_SOURCES:
            return Refusal(f"Only MANUAL and card donations are refunded here; {self.source} gifts are refunded where they were paid.",
                           param="source")
        if self.donation_type != DonationType.MONETARY:
            return Refusal("An in-kind gift cannot be refunded; void it if it was recorded in error.", param="donation_type")
        if self.status != Status.CONFIRMED:
            return Refusal(f"Only CONFIRMED donations can be refunded; this one is {self.status}.", param="status")
        if self.refunded_cents >= self.amount_cents:
            return Refusal("This donation is already refunded in full.", param="status")
        return None

    @property
    def can_edit(self) -> bool:
        return self.can("edit")

    @property
    def can_void(self) -> bool:
        return self.can("void")

    @property
    def can_refund(self) -> bool:
        return self.can("refund")

    @property
    def refundable_cents(self) -> int:
        """What is left to give back."""
        return self.amount_cents - self.refunded_cents


class DonorMerge(OrganisationOwned):
    """Audit record of a merge: the duplicate's last state and what moved."""

    survivor = models.ForeignKey(Donor, on_delete=models.CASCADE, related_name="merges")
    duplicate_id_value = models.CharField(max_length=24)
    duplicate_snapshot = models.JSONField()
    moved_donation_ids = models.JSONField(default=list)
    actor_label = models.CharField(max_length=200, blank=True)


class BatchStatus(models.TextChoices):
    DRAFT = "DRAFT"
    POSTED = "POSTED"


class DepositBatch(LifecycleRules, OrganisationOwned):
    """A bank deposit of many gifts (cheques, usually) entered against control
    totals, saved as a draft and posted only when the rows match."""

    reference = models.CharField(max_length=100, help_text="Deposit slip or bank reference.")
    deposit_date = models.DateField()
    payment_method = models.CharField(max_length=15, choices=PaymentMethod.choices, default=PaymentMethod.CHEQUE)
    control_count = models.PositiveIntegerField()
    control_total_cents = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=BatchStatus.choices, default=BatchStatus.DRAFT)
    posted_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="batch_org_created")]

    def __str__(self) -> str:
        return f"{self.reference} ({self.deposit_date})"

    lifecycle_actions = ("edit", "post")

    def _refusal_edit(self) -> Refusal | None:
        if self.status != BatchStatus.DRAFT:
            return Refusal("A posted batch cannot be changed.", param="status")
        return None

    def _refusal_post(self) -> Refusal | None:
        if self.status != BatchStatus.DRAFT:
            return Refusal("This batch is already posted.", param="status")
        return None

    @property
    def can_edit(self) -> bool:
        return self.can("edit")

    @property
    def can_post(self) -> bool:
        return self.can("post")


class DepositBatchRow(models.Model):
    batch = models.ForeignKey(DepositBatch, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField()
    donor = models.ForeignKey(Donor, on_delete=models.PROTECT, related_name="+")
    amount_cents = models.BigIntegerField()
    donation_date = models.DateField()
    reference = models.CharField(max_length=100, null=True, blank=True, help_text="Cheque number.")
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    revenue_code = models.CharField(max_length=100, null=True, blank=True)
    donation = models.OneToOneField(Donation, null=True, blank=True, on_delete=models.PROTECT, related_name="batch_row")

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["batch", "position"], name="uniq_batch_position")]


# --- custom fields (issue 19) -------------------------------------------------------

class CustomFieldAppliesTo(models.TextChoices):
    DONOR = "DONOR"
    DONATION = "DONATION"


class CustomFieldType(models.TextChoices):
    TEXT = "TEXT", "Text"
    NUMBER = "NUMBER", "Number"
    DATE = "DATE", "Date"
    BOOLEAN = "BOOLEAN", "Yes/no"
    CHOICE = "CHOICE", "Choice"


class CustomField(OrganisationOwned):
    """An organisation's own field on its donors or its gifts. Values live in the
    record's `custom_fields` object under `key`; donations.custom_fields checks them."""

    applies_to = models.CharField(max_length=10, choices=CustomFieldAppliesTo.choices)
    # Lower-case slug; fixed once any record holds a value for it.
    key = models.CharField(max_length=40)
    label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=10, choices=CustomFieldType.choices)
    # CHOICE only: the allowed values, in display order.
    choices = models.JSONField(default=list, blank=True)
    required = models.BooleanField(default=False)
    help_text = models.CharField(max_length=300, blank=True, default="")
    position = models.PositiveIntegerField(default=0)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="customfield_org_created")]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "applies_to", "key"], name="uniq_customfield_key"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


class DailyRollup(models.Model):
    """Counted gifts of one organisation per day, type, whether a recurring plan paid
    them and campaign (not per jurisdiction: a revenue-code remap moves gifts between
    jurisdictions without touching their days): the sum of COUNTED_CENTS and how many. A cache of the
    ledger for the dashboard's pictures (a year is at most 1,460 rows, not 150,000 gifts),
    kept by donations.rollups.rollup_apply in the transaction that changes a gift (a
    delta row per key the change moved: committed or rolled back with the gift, so a
    key's rows always sum to the ledger; no lock, so gifts of one day never queue),
    folded one row per key by rollup_compact (beat) and rebuilt whole by rollup_rebuild
    (migration, seed_bench). Readers SUM a key's rows."""

    organisation = organisation_key(db_index=False)  # rollup_org_day leads with it (together.models)
    day = models.DateField()
    donation_type = models.CharField(max_length=10)
    recurring = models.BooleanField(default=False)
    # The gifts' campaign (None: none): a campaign's raised, gifts and weeks read its rows.
    campaign = models.ForeignKey(Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    counted_cents = models.BigIntegerField(default=0)
    gifts = models.IntegerField(default=0)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["organisation", "day"], name="rollup_org_day",
                         include=["donation_type", "recurring", "counted_cents", "gifts"]),
            models.Index(fields=["campaign", "day"], name="rollup_campaign_day", include=["counted_cents", "gifts"],
                         condition=Q(campaign__isnull=False)),
        ]


class CampaignDonor(models.Model):
    """A donor's counted gifts to a campaign (one row while there is at least one): a
    campaign's distinct donors are its rows. Kept by donations.rollups.rollup_apply
    for the donors a change touches (recomputed from their ledger under their lock)."""

    organisation = models.ForeignKey("organisations.Organisation", on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    donor = models.ForeignKey(Donor, on_delete=models.CASCADE, related_name="+")
    counted_cents = models.BigIntegerField(default=0)
    gifts = models.IntegerField(default=0)

    objects = OrganisationQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "donor"], name="uniq_campaign_donor")]
