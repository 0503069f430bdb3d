import django_filters

from compliance.models import ComplianceBreach, DisclosureObligation, ElectionPeriod, Jurisdiction, ObligationStatus, RevenueCode, RevenueCodeStatus
from together.api.filters import BaseFilterSet


class RevenueCodeFilterSet(BaseFilterSet):
    jurisdiction = django_filters.ChoiceFilter(choices=Jurisdiction.choices)
    status = django_filters.ChoiceFilter(choices=RevenueCodeStatus.choices)
    reviewed = django_filters.BooleanFilter()
    code = django_filters.CharFilter(field_name="code_lower", method="by_code", help_text="Exact code, case-insensitive.")
    q = django_filters.CharFilter(method="search", help_text="Codes containing this text (case-insensitive).")

    class Meta:
        model = RevenueCode
        fields: list[str] = []

    def by_code(self, queryset, name, value):
        return queryset.filter(code_lower=value.strip().lower())

    def search(self, queryset, name, value):
        return queryset.filter(code_lower__contains=value.strip().lower())


class DisclosureObligationFilterSet(BaseFilterSet):
    date_range_filters = ("due_date", "period_start")
    status = django_filters.ChoiceFilter(choices=ObligationStatus.choices)
    jurisdiction = django_filters.ChoiceFilter(choices=Jurisdiction.choices)
    donor_id = django_filters.CharFilter(field_name="donor_id")

    class Meta:
        model = DisclosureObligation
        fields: list[str] = []


class ComplianceBreachFilterSet(BaseFilterSet):
    jurisdiction = django_filters.ChoiceFilter(choices=Jurisdiction.choices)
    donor_id = django_filters.CharFilter(field_name="donor_id")

    class Meta:
        model = ComplianceBreach
        fields: list[str] = []


class ElectionPeriodFilterSet(BaseFilterSet):
    jurisdiction = django_filters.ChoiceFilter(choices=Jurisdiction.choices)

    class Meta:
        model = ElectionPeriod
        fields: list[str] = []
