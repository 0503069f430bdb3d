from __future__ import annotations

import django_filters

from together.api.filters import BaseFilterSet
from webhooks.events import ALL_EVENT_TYPES
from webhooks.models import DeliveryStatus, EndpointStatus, Event, WebhookDelivery, WebhookEndpoint

TYPE_CHOICES = [(t, t) for t in ALL_EVENT_TYPES]


class EventFilterSet(BaseFilterSet):
    datetime_range_filters = ("created_at",)
    type = django_filters.ChoiceFilter(field_name="type", choices=TYPE_CHOICES, help_text="One event type, e.g. `donation.created`.")

    class Meta:
        model = Event
        fields: list[str] = []


class WebhookEndpointFilterSet(BaseFilterSet):
    status = django_filters.ChoiceFilter(field_name="status", choices=EndpointStatus.choices)

    class Meta:
        model = WebhookEndpoint
        fields: list[str] = []


class WebhookDeliveryFilterSet(BaseFilterSet):
    datetime_range_filters = ("created_at",)
    status = django_filters.ChoiceFilter(field_name="status", choices=DeliveryStatus.choices)
    event_id = django_filters.CharFilter(field_name="event_id")
    event_type = django_filters.ChoiceFilter(field_name="event__type", choices=TYPE_CHOICES)

    class Meta:
        model = WebhookDelivery
        fields: list[str] = []
