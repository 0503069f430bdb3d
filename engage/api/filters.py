from __future__ import annotations

import django_filters

from engage.models import CheckoutLink, DonationForm, FormStatus, LinkStatus
from engage.selectors import links_with_status
from together.api.filters import BaseFilterSet


class FormFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(field_name="status", choices=FormStatus.choices)
    slug = django_filters.CharFilter(field_name="slug", help_text="Exact slug.")
    campaign_id = django_filters.CharFilter(field_name="campaign_id")

    class Meta:
        model = DonationForm
        fields: list[str] = []


class CheckoutLinkFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(
        method="filter_status", choices=LinkStatus.choices,
        help_text="By status as shown: EXPIRED includes links whose expiry has passed before the sweep recorded it.",
    )
    donor_id = django_filters.CharFilter(field_name="donor_id")
    campaign_id = django_filters.CharFilter(field_name="campaign_id")

    class Meta:
        model = CheckoutLink
        fields: list[str] = []

    def filter_status(self, queryset, name, value):
        return links_with_status(queryset, value)
