from __future__ import annotations

import django_filters

from recommendations.models import AmountMode, Introduction, IntroductionStatus, RecipientOrgAccountLink, RecommendationSet
from together.api.filters import BaseFilterSet

class RecipientAccountFilterSet(BaseFilterSet):
    is_active = django_filters.BooleanFilter(field_name="is_active", help_text="true or false.")

    class Meta:
        model = RecipientOrgAccountLink
        fields: list[str] = []


class IntroductionFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(field_name="status", choices=IntroductionStatus.choices)
    invitee_email = django_filters.CharFilter(field_name="invitee_email", lookup_expr="iexact", help_text="Exact, case-insensitive.")

    class Meta:
        model = Introduction
        fields: list[str] = []


class RecommendationSetFilterSet(BaseFilterSet):
    amount_mode = django_filters.ChoiceFilter(field_name="amount_mode", choices=AmountMode.choices)

    class Meta:
        model = RecommendationSet
        fields: list[str] = []
