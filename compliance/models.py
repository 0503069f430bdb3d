"""Compliance: revenue codes → jurisdictions, the law's regimes as data, and the
per-donor aggregates, obligations and breaches computed from the ledger."""
from __future__ import annotations

import datetime as dt
import re

from django.db import models
from django.db.models import Q

from together.models import LifecycleRules, OrganisationOwned, Refusal, organisation_key


class Jurisdiction(models.TextChoices):
    FEDERAL = "FEDERAL", "Federal"
    NSW = "NSW", "New South Wales"
    VIC = "VIC", "Victoria"
    QLD = "QLD", "Queensland"
    SA = "SA", "South Australia"
    WA = "WA", "Western Australia"
    TAS = "TAS", "Tasmania"
    ACT = "ACT", "Australian Capital Territory"
    NT = "NT", "Northern Territory"
    UNREGULATED = "UNREGULATED", "Unregulated"


class EntityType(models.TextChoices):
    SIGNIFICANT_THIRD_PARTY = "SIGNIFICANT_THIRD_PARTY", "Significant Third Party"
    THIRD_PARTY = "THIRD_PARTY", "Third Party"
    ASSOCIATED_ENTITY = "ASSOCIATED_ENTITY", "Associated Entity"
    CANDIDATE = "CANDIDATE", "Candidate"
    MP_SENATOR = "MP_SENATOR", "MP / Senator"
    REGISTERED_POLITICAL_PARTY = "REGISTERED_POLITICAL_PARTY", "Registered Political Party"
    OTHER = "OTHER", "Other"


class AlertLevel(models.TextChoices):
    NONE = "NONE"
    AMBER = "AMBER"
    RED = "RED"
    CRITICAL = "CRITICAL"


class ComplianceSettings(models.Model):
    """Per organisation (live and sandbox each have their own)."""

    organisation = models.OneToOneField("organisations.Organisation", on_delete=models.CASCADE, primary_key=True, related_name="compliance_settings")
    default_jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices, default=Jurisdiction.FEDERAL)
    alert_amber_percent = models.PositiveSmallIntegerField(default=60)
    alert_red_percent = models.PositiveSmallIntegerField(default=90)
    alert_critical_percent = models.PositiveSmallIntegerField(default=98)
    entity_type = models.CharField(max_length=30, choices=EntityType.choices, default=EntityType.OTHER)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "compliance settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(alert_amber_percent__gt=0) & Q(alert_amber_percent__lt=models.F("alert_red_percent"))
                & Q(alert_red_percent__lt=models.F("alert_critical_percent")) & Q(alert_critical_percent__lte=100),
                name="alert_levels_ordered",
            )
        ]


# What a revenue code may be: letters, digits and . _ - : / + @, 1 to 100 characters.
REVENUE_CODE_RE = re.compile(r"^[A-Za-z0-9._\-:/+@]{1,100}$")


class RevenueCodeStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"


class RevenueCode(OrganisationOwned):
    code = models.CharField(max_length=100)
    code_lower = models.CharField(max_length=100, editable=False)
    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    description = models.TextField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=RevenueCodeStatus.choices, default=RevenueCodeStatus.ACTIVE)
    reviewed = models.BooleanField(default=False, help_text="False until someone maps the code explicitly.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "code_lower"], name="uniq_revenue_code_per_org")]
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="revcode_org_created")]

    def __str__(self) -> str:
        return f"{self.code} → {self.jurisdiction}"


class RemapStatus(models.TextChoices):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class Recompute(OrganisationOwned):
    """A background recomputation after a remap (or a default-jurisdiction change) and what it changed."""

    revenue_code = models.ForeignKey(RevenueCode, null=True, blank=True, on_delete=models.SET_NULL, related_name="recomputes")
    reason = models.CharField(max_length=200)
    from_jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    to_jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    status = models.CharField(max_length=10, choices=RemapStatus.choices, default=RemapStatus.PENDING)
    donations_affected = models.IntegerField(default=0)
    donors_affected = models.IntegerField(default=0)
    obligations_created = models.IntegerField(default=0)
    obligations_cancelled = models.IntegerField(default=0)
    breaches_created = models.IntegerField(default=0)
    completed_at = models.DateTimeField(null=True, blank=True)


class PeriodKind(models.TextChoices):
    FINANCIAL_YEAR = "FINANCIAL_YEAR"
    CALENDAR_YEAR = "CALENDAR_YEAR"
    EXPLICIT_RANGE = "EXPLICIT_RANGE"


class Comparator(models.TextChoices):
    MORE_THAN = "MORE_THAN", "more than"
    AT_OR_ABOVE = "AT_OR_ABOVE", "at or above"


class DeadlineRule(models.TextChoices):
    ANNUAL_RETURN = "ANNUAL_RETURN", "Annual return (fixed day after the period)"
    NEXT_MONTH_DAY = "NEXT_MONTH_DAY", "A day of the month after the gift"
    WITHIN_DAYS = "WITHIN_DAYS", "Within N days of the gift"


class RegimeRule(models.Model):
    """One rule of the law, picked by donation date. Amounts indexed per period are rows.

    A rule may carry a disclosure threshold, a cap, or both, each aggregated over
    the rule's own period (Victoria discloses per financial year but caps per
    election period: two rows)."""

    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    name = models.CharField(max_length=200)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Inclusive; blank = open-ended.")
    period_kind = models.CharField(max_length=15, choices=PeriodKind.choices)
    period_start = models.DateField(null=True, blank=True, help_text="EXPLICIT_RANGE only.")
    period_end = models.DateField(null=True, blank=True, help_text="EXPLICIT_RANGE only.")
    threshold_cents = models.BigIntegerField(null=True, blank=True)
    threshold_comparator = models.CharField(max_length=12, choices=Comparator.choices, default=Comparator.MORE_THAN)
    cap_cents = models.BigIntegerField(null=True, blank=True)
    deadline_rule = models.CharField(max_length=15, choices=DeadlineRule.choices, default=DeadlineRule.ANNUAL_RETURN)
    deadline_days = models.PositiveSmallIntegerField(null=True, blank=True)
    deadline_month = models.PositiveSmallIntegerField(null=True, blank=True)
    deadline_day = models.PositiveSmallIntegerField(null=True, blank=True)
    election_deadlines = models.BooleanField(default=False, help_text="7 days / 24 hours inside the organisation's election periods.")
    source = models.TextField(blank=True)

    class Meta:
        ordering = ["jurisdiction", "effective_from"]
        constraints = [
            models.CheckConstraint(condition=Q(threshold_cents__isnull=False) | Q(cap_cents__isnull=False), name="rule_has_threshold_or_cap"),
            models.CheckConstraint(
                condition=~Q(period_kind="EXPLICIT_RANGE") | Q(period_start__isnull=False, period_end__isnull=False),
                name="explicit_range_has_bounds",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    # Which rule applies on a date, its aggregation period and its threshold test
    # are answered by compliance.rules (applies_on, rule_period, passes_threshold).


class ElectionType(models.TextChoices):
    FEDERAL_GENERAL = "FEDERAL_GENERAL"
    FEDERAL_BYELECTION = "FEDERAL_BYELECTION"
    FEDERAL_DOUBLE_DISSOLUTION = "FEDERAL_DOUBLE_DISSOLUTION"
    SENATE_ONLY = "SENATE_ONLY"
    STATE_GENERAL = "STATE_GENERAL"
    STATE_BYELECTION = "STATE_BYELECTION"


class ElectionPeriod(OrganisationOwned):
    """From the writ to one week after polling day."""

    election_type = models.CharField(max_length=30, choices=ElectionType.choices)
    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices, default=Jurisdiction.FEDERAL)
    name = models.CharField(max_length=200)
    writ_date = models.DateField()
    polling_date = models.DateField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(polling_date__gte=models.F("writ_date")), name="polling_after_writ")]

    @property
    def final_week_start(self) -> dt.date:
        """The Saturday before polling day."""
        back = (self.polling_date.weekday() - 5) % 7 or 7
        return self.polling_date - dt.timedelta(days=back)

    @property
    def end_date(self) -> dt.date:
        return self.polling_date + dt.timedelta(days=7)


class DonorAggregate(OrganisationOwned):
    """A donor's counted total under one rule for one period, recomputed from the ledger."""

    # Indexed by aggregate_org_* and uniq_aggregate (together.models).
    organisation = organisation_key(db_index=False)
    donor = models.ForeignKey("donations.Donor", on_delete=models.CASCADE, related_name="compliance_aggregates",
                              db_index=False)
    rule = models.ForeignKey(RegimeRule, on_delete=models.PROTECT, related_name="+")
    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    total_cents = models.BigIntegerField(default=0)
    monetary_cents = models.BigIntegerField(default=0)
    in_kind_cents = models.BigIntegerField(default=0)
    donations_count = models.IntegerField(default=0)
    alert_level = models.CharField(max_length=10, choices=AlertLevel.choices, default=AlertLevel.NONE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["donor", "rule", "period_start"], name="uniq_aggregate")]
        indexes = [
            models.Index(fields=["organisation", "alert_level"], name="aggregate_org_alert"),
            models.Index(fields=["organisation", "jurisdiction", "period_start"], name="aggregate_org_period"),
            # The home page's and the alert history's near-cap lists, and the obligations page's near-cap
            # count: only the few aggregates with an alert, not every aggregate of the organisation (which
            # grows with its donors and periods).
            models.Index(fields=["organisation", "period_end"], condition=~Q(alert_level="NONE"),
                         name="aggregate_org_alerting"),
        ]


class ObligationStatus(models.TextChoices):
    OPEN = "OPEN"
    LODGED = "LODGED"
    CANCELLED = "CANCELLED"


class DisclosureObligation(LifecycleRules, OrganisationOwned):
    donor = models.ForeignKey("donations.Donor", on_delete=models.PROTECT, related_name="disclosure_obligations")
    rule = models.ForeignKey(RegimeRule, on_delete=models.PROTECT, related_name="+")
    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    threshold_cents = models.BigIntegerField()
    aggregate_cents = models.BigIntegerField(help_text="The donor's total in the period when last computed.")
    crossed_on = models.DateField(help_text="Date of the gift that crossed the threshold.")
    crossing_donation = models.ForeignKey("donations.Donation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    due_date = models.DateField()
    deadline_basis = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=ObligationStatus.choices, default=ObligationStatus.OPEN)
    lodged_reference = models.CharField(max_length=200, null=True, blank=True)
    lodged_date = models.DateField(null=True, blank=True)
    cancelled_reason = models.CharField(max_length=200, null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # One OPEN obligation per donor, jurisdiction and period. LODGED ones are
            # history: a merge may bring two donors' lodged obligations together.
            models.UniqueConstraint(
                fields=["donor", "jurisdiction", "period_start", "period_end"],
                condition=Q(status="OPEN"),
                name="uniq_open_obligation",
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at", "-id"], name="obligation_org_created"),
            models.Index(fields=["organisation", "status", "due_date"], name="obligation_org_due"),
        ]

    lifecycle_actions = ("lodge",)

    def _refusal_lodge(self) -> Refusal | None:
        if self.status != ObligationStatus.OPEN:
            return Refusal(f"Only OPEN obligations can be lodged; this one is {self.status}.", param="status")
        return None

    @property
    def can_lodge(self) -> bool:
        return self.can("lodge")


class ComplianceBreach(OrganisationOwned):
    """A cap exceeded by a change after the fact (a remap, a rule edit): never silently accepted."""

    donor = models.ForeignKey("donations.Donor", on_delete=models.PROTECT, related_name="compliance_breaches")
    rule = models.ForeignKey(RegimeRule, on_delete=models.PROTECT, related_name="+")
    jurisdiction = models.CharField(max_length=12, choices=Jurisdiction.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    cap_cents = models.BigIntegerField()
    aggregate_cents = models.BigIntegerField()
    excess_cents = models.BigIntegerField()
    reason = models.CharField(max_length=200)

    class Meta:
        indexes = [models.Index(fields=["organisation", "-created_at", "-id"], name="breach_org_created")]
