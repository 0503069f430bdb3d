from __future__ import annotations

import django_filters

from engage.models import Frequency
from payments.models import PlanPaymentMethod, PlanStatus, RecurringPlan
from together.api.filters import BaseFilterSet


class RecurringPlanFilterSet(BaseFilterSet):
    date_range_filters = ("next_bill_date",)

    status = django_filters.ChoiceFilter(field_name="status", choices=PlanStatus.choices)
    frequency = django_filters.ChoiceFilter(field_name="frequency", choices=Frequency.choices)
    payment_method = django_filters.ChoiceFilter(field_name="payment_method", choices=PlanPaymentMethod.choices)
    donor_id = django_filters.CharFilter(field_name="donor_id")
    campaign_id = django_filters.CharFilter(field_name="campaign_id")
    next_bill_date = django_filters.DateFilter(field_name="next_bill_date")

    class Meta:
        model = RecurringPlan
        fields: list[str] = []
