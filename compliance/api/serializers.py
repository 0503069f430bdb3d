from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from compliance.models import (
    AlertLevel, Comparator, ElectionType, EntityType, Jurisdiction, ObligationStatus, PeriodKind, RemapStatus, RevenueCodeStatus,
)
from together.api.fields import StrictCharField, StrictChoiceField, StrictDateField, StrictIntegerField


class RecomputeSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    reason = serializers.CharField()
    from_jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    to_jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    status = serializers.ChoiceField(choices=RemapStatus.choices)
    donations_affected = serializers.IntegerField()
    donors_affected = serializers.IntegerField()
    obligations_created = serializers.IntegerField()
    obligations_cancelled = serializers.IntegerField()
    breaches_created = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


class RevenueCodeSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    code = serializers.CharField()
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    description = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=RevenueCodeStatus.choices)
    reviewed = serializers.BooleanField(help_text="False until someone maps the code (codes first seen on a gift start unreviewed).")
    last_recompute = RecomputeSerializer(allow_null=True, help_text="The latest background recomputation this code's remapping started, and what it changed.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_field({"type": "string", "pattern": "^[A-Za-z0-9._\\-:/+@]{1,100}$"})
class RevenueCodeTextField(StrictCharField):
    """Schema only: the code's characters (checked by revenue_code_create)."""


class RevenueCodeCreateInput(serializers.Serializer):
    code = RevenueCodeTextField(max_length=100, help_text="Letters, digits and . _ - : / + @; matched case-insensitively.")
    jurisdiction = StrictChoiceField(choices=Jurisdiction.choices, required=False, help_text="Default: the organisation's default jurisdiction (then unreviewed).")
    description = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=1000)


class RevenueCodeUpdateInput(serializers.Serializer):
    jurisdiction = StrictChoiceField(choices=Jurisdiction.choices, required=False)
    description = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=1000)


class DonorComplianceEntrySerializer(serializers.Serializer):
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    regime = serializers.CharField(allow_null=True)
    period_kind = serializers.ChoiceField(choices=PeriodKind.choices, allow_null=True)
    period_start = serializers.DateField(allow_null=True)
    period_end = serializers.DateField(allow_null=True)
    total_cents = serializers.IntegerField()
    threshold_cents = serializers.IntegerField(allow_null=True)
    threshold_comparator = serializers.ChoiceField(choices=Comparator.choices, allow_null=True)
    above_threshold = serializers.BooleanField()
    cap_cents = serializers.IntegerField(allow_null=True)
    cap_period_start = serializers.DateField(allow_null=True)
    cap_period_end = serializers.DateField(allow_null=True)
    cap_total_cents = serializers.IntegerField(allow_null=True)
    cap_remaining_cents = serializers.IntegerField(allow_null=True)
    alert_level = serializers.ChoiceField(choices=AlertLevel.choices)


class DonorComplianceSerializer(serializers.Serializer):
    object = serializers.CharField()
    donor_id = serializers.CharField()
    as_of = serializers.DateField()
    currency = serializers.CharField()
    data = DonorComplianceEntrySerializer(many=True)


class DisclosureObligationSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    donor_id = serializers.CharField()
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    threshold_cents = serializers.IntegerField()
    aggregate_cents = serializers.IntegerField()
    currency = serializers.CharField()
    crossed_on = serializers.DateField()
    crossing_donation_id = serializers.CharField(allow_null=True)
    due_date = serializers.DateField()
    deadline_basis = serializers.CharField()
    status = serializers.ChoiceField(choices=ObligationStatus.choices)
    lodged_reference = serializers.CharField(allow_null=True)
    lodged_date = serializers.DateField(allow_null=True)
    cancelled_reason = serializers.CharField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ObligationLodgeInput(serializers.Serializer):
    reference = StrictCharField(max_length=200)
    lodged_date = StrictDateField()


class ComplianceBreachSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    donor_id = serializers.CharField()
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    cap_cents = serializers.IntegerField()
    aggregate_cents = serializers.IntegerField()
    excess_cents = serializers.IntegerField()
    currency = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ComplianceSettingsSerializer(serializers.Serializer):
    object = serializers.CharField()
    default_jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    alert_amber_percent = serializers.IntegerField()
    alert_red_percent = serializers.IntegerField()
    alert_critical_percent = serializers.IntegerField()
    entity_type = serializers.ChoiceField(choices=EntityType.choices)
    updated_at = serializers.DateTimeField()


class ComplianceSettingsUpdateInput(serializers.Serializer):
    default_jurisdiction = StrictChoiceField(choices=Jurisdiction.choices, required=False)
    alert_amber_percent = StrictIntegerField(required=False, min_value=1, max_value=100)
    alert_red_percent = StrictIntegerField(required=False, min_value=1, max_value=100)
    alert_critical_percent = StrictIntegerField(required=False, min_value=1, max_value=100)
    entity_type = StrictChoiceField(choices=EntityType.choices, required=False)


class ElectionPeriodSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    election_type = serializers.ChoiceField(choices=ElectionType.choices)
    jurisdiction = serializers.ChoiceField(choices=Jurisdiction.choices)
    name = serializers.CharField()
    writ_date = serializers.DateField()
    polling_date = serializers.DateField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ElectionPeriodCreateInput(serializers.Serializer):
    election_type = StrictChoiceField(choices=ElectionType.choices)
    jurisdiction = StrictChoiceField(choices=Jurisdiction.choices, required=False)
    name = StrictCharField(max_length=200)
    writ_date = StrictDateField()
    polling_date = StrictDateField()
