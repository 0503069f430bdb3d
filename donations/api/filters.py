from __future__ import annotations

import django_filters
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django import forms

from donations.custom_fields import custom_field_definitions, custom_field_value_clean
from donations.models import (
    LAST_GIFT_NONE, Campaign, CampaignStatus, Donation, DonationType, Donor, DonorType, PaymentMethod, Source, Status,
)
from donations.crm import filter_by_tag
from donations.selectors import donors_with_email
from together.api.filters import BaseFilterSet
from together.api.pagination import KeysetOrdering
from together.exceptions import ValidationFailed

CUSTOM_FILTER_PREFIX = "cf_"


class CustomFieldValueFormField(forms.Field):
    """A filter value typed as the field stores it (custom_field_value_clean)."""

    def __init__(self, *, definition: dict | None, **kwargs):
        self.definition = definition
        super().__init__(**kwargs)

    def to_python(self, value):
        if self.definition is None:
            raise forms.ValidationError("No such custom field.")
        if value in (None, ""):
            return None
        try:
            return custom_field_value_clean(self.definition, value)
        except ValidationFailed as exc:
            raise forms.ValidationError(exc.message) from None


class CustomFieldFilter(django_filters.Filter):
    """`cf_<key>=value`: records whose value equals it exactly (jsonb @>, the GIN index)."""

    field_class = CustomFieldValueFormField

    def __init__(self, *, key: str, definition: dict | None, **kwargs):
        self.key = key
        super().__init__(field_name="custom_fields", definition=definition, **kwargs)

    def filter(self, qs, value):
        if value is None:
            return qs
        return qs.filter(custom_fields__contains={self.key: value})


class CustomFieldFilters:
    """Adds a `cf_<key>` filter per custom field named in the query (the
    organisation's fields of `custom_field_kind`, from the request's organisation)."""

    custom_field_kind = ""
    dynamic_filter_prefix = CUSTOM_FILTER_PREFIX

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, organisation=None):
        super().__init__(data=data, queryset=queryset, request=request, prefix=prefix)
        names = [n for n in (data or {}) if isinstance(n, str) and n.startswith(CUSTOM_FILTER_PREFIX)]
        if not names:
            return
        organisation = organisation or getattr(request, "organisation", None)
        definitions = {}
        if organisation is not None:
            definitions = {d["key"]: d for d in custom_field_definitions(organisation=organisation,
                                                                         applies_to=self.custom_field_kind)}
        for name in names:
            key = name[len(CUSTOM_FILTER_PREFIX):]
            self.filters[name] = CustomFieldFilter(key=key, definition=definitions.get(key))
            self.filters[name].parent = self


# A donor's last gift date as the index donor_org_last_gift holds it (no gift: before every real one).
LAST_GIFT = Coalesce("last_donation_date", Value(LAST_GIFT_NONE))


def both_ways(name: str, keys: tuple[str, ...], *, prefix: int = 0) -> dict[str, KeysetOrdering]:
    """`name` ascending and `-name` descending, on the same keys (one index serves both)."""
    return {name: KeysetOrdering(keys=keys, descending=False, prefix=prefix),
            f"-{name}": KeysetOrdering(keys=keys, descending=True, prefix=prefix)}


class DonorFilterSet(CustomFieldFilters, BaseFilterSet):
    custom_field_kind = "DONOR"

    email = django_filters.CharFilter(
        method="filter_email",
        help_text="Exact email, case-insensitive. A '+' sent unencoded (which form decoding reads as a space) still matches '+'.",
    )
    external_id = django_filters.CharFilter(field_name="external_id")
    donor_type = django_filters.ChoiceFilter(field_name="donor_type", choices=DonorType.choices)
    q = django_filters.CharFilter(method="search", help_text="Search in name, organisation name and email (substring, case-insensitive).")
    tag = django_filters.CharFilter(method=filter_by_tag, help_text="Donors carrying this tag (its name, case-insensitive).")
    employer_id = django_filters.CharFilter(field_name="employer_id", help_text="Donors naming this ORGANISATION donor as their employer.")

    # The lists' sorts (dashboard and its CSV), each a keyset order with an index of its own (donations 0012).
    orderings = {"-created_at": KeysetOrdering(keys=("created_at",)), **both_ways("name", ("sort_name",)),
                 **both_ways("donations_total_cents", ("donations_total_cents",)),
                 **both_ways("last_donation_date", (LAST_GIFT,))}
    default_ordering = "-created_at"

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


class DonationFilterSet(CustomFieldFilters, BaseFilterSet):
    custom_field_kind = "DONATION"

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

    # The lists' sorts (dashboard and its CSV), each a keyset order with an index of its own (donations 0012).
    # By donor: the donor's name then the gift's id, walked from the donors' name index (prefix: its condition
    # on the donor's name alone is that index's condition).
    orderings = {**both_ways("donation_date", ("donation_date",)), **both_ways("amount_cents", ("amount_cents",)),
                 **both_ways("donor", ("donor__sort_name",), prefix=1)}
    default_ordering = "-donation_date"

    @staticmethod
    def ordering_scope(queryset, name: str):
        """The donor sort reads the donors of the list's organisation only (so the plan walks their index)."""
        if name.lstrip("-") == "donor":
            return queryset.filter(donor__organisation_id=F("organisation_id"))
        return queryset

    class Meta:
        model = Donation
        fields: list[str] = []


class CampaignFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(field_name="status", choices=CampaignStatus.choices)
    external_id = django_filters.CharFilter(field_name="external_id")

    class Meta:
        model = Campaign
        fields: list[str] = []
