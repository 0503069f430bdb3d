from __future__ import annotations

import django_filters

from donations.models import Campaign, CampaignStatus, Donation, DonationType, Donor, DonorType, PaymentMethod, Source, Status
from donations.crm import filter_by_tag
from donations.selectors import donors_with_email
from together.api.filters import BaseFilterSet


class DonorFilterSet(BaseFilterSet):
    email = django_filters.CharFilter(
        method="filter_email",
        help_text="Exact email, case-insensitive. A '+' sent unencoded (which form decoding reads as a space) still matches '+'.",
    )
    external_id = django_filters.CharFilter(field_name="external_id")
    donor_type = django_filters.ChoiceFilter(field_name="donor_type", choices=DonorType.choices)
    q = django_filters.CharFilter(method="search", help_text="Search in name, organisation name and email (substring, case-insensitive).")
    tag = django_filters.CharFilter(method=filter_by_tag, help_text="Donors carrying this tag (its name, case-insensitive).")
    employer_id = django_filters.CharFilter(field_name="employer_id", help_text="Donors naming this ORGANISATION donor as their employer.")

    class Meta:
        model = Donor
        fields: list[str] = []

    def filter_email(self, queryset, name, value):
        # An email never holds a space: one here is a '+' that arrived unencoded.
        return donors_with_email(queryset, value.strip().replace(" ", "+"))

    def search(self, queryset, name, value):
        value = value.strip().lower()
        if not value:
            return queryset
        for term in value.split()[:5]:
            queryset = queryset.filter(search_text__contains=term)
        return queryset


class DonationFilterSet(BaseFilterSet):
    date_range_filters = ("donation_date",)
    integer_range_filters = ("amount_cents",)

    donor_id = django_filters.CharFilter(field_name="donor_id")
    campaign_id = django_filters.CharFilter(field_name="campaign_id")
    donation_type = django_filters.ChoiceFilter(field_name="donation_type", choices=DonationType.choices)
    status = django_filters.ChoiceFilter(field_name="status", choices=Status.choices)
    source = django_filters.ChoiceFilter(field_name="source", choices=Source.choices)
    payment_method = django_filters.ChoiceFilter(field_name="payment_method", choices=PaymentMethod.choices)
    revenue_code = django_filters.CharFilter(field_name="revenue_code", lookup_expr="iexact", help_text="Case-insensitive.")
    donation_date = django_filters.DateFilter(field_name="donation_date")
    tag = django_filters.CharFilter(method=filter_by_tag, help_text="Gifts of donors carrying this tag (its name, case-insensitive).")
    source_code = django_filters.CharFilter(field_name="source_code", lookup_expr="iexact", help_text="Case-insensitive.")
    referrer = django_filters.CharFilter(field_name="referrer", lookup_expr="iexact", help_text="Case-insensitive.")
    utm_source = django_filters.CharFilter(field_name="utm_source", lookup_expr="iexact", help_text="Case-insensitive.")
    utm_medium = django_filters.CharFilter(field_name="utm_medium", lookup_expr="iexact", help_text="Case-insensitive.")
    utm_campaign = django_filters.CharFilter(field_name="utm_campaign", lookup_expr="iexact", help_text="Case-insensitive.")

    class Meta:
        model = Donation
        fields: list[str] = []


class CampaignFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(field_name="status", choices=CampaignStatus.choices)
    external_id = django_filters.CharFilter(field_name="external_id")

    class Meta:
        model = Campaign
        fields: list[str] = []
