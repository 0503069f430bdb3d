"""Inputs validate shape and types; outputs document what webhooks/representations.py renders."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from together.api.fields import StrictCharField, StrictChoiceField
from webhooks.events import ALL_EVENT_TYPES, EVENT_TYPES
from webhooks.models import DeliveryStatus, EndpointStatus

EVENT_TYPE_HELP = "Event types to send, or `[\"*\"]` for all of them (the default). Known types: " + ", ".join(
    f"`{t}`" for t in EVENT_TYPES
) + "."


class StrictListField(serializers.ListField):
    default_error_messages = {"not_a_list": "Must be a list."}


@extend_schema_field({
    # What _clean_enabled_events accepts: `["*"]` alone, or known types.
    "oneOf": [
        {"type": "array", "items": {"type": "string", "enum": ["*"]}, "minItems": 1, "maxItems": 1},
        {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}, "minItems": 1},
    ],
})
class EventTypesField(StrictListField):
    """Schema only: the list of event types an endpoint receives."""


@extend_schema_field({"type": "string", "format": "uri", "pattern": "^https://", "maxLength": 2000})
class HttpsUrlField(StrictCharField):
    """Schema only: an https URL (it must also resolve to public addresses, checked by the service)."""


class WebhookEndpointCreateInput(serializers.Serializer):
    url = HttpsUrlField(max_length=2000, help_text="https only; must resolve to a public address. Redirects are not followed.")
    description = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=500)
    enabled_events = EventTypesField(child=StrictCharField(max_length=80), required=False, help_text=EVENT_TYPE_HELP)


class WebhookEndpointUpdateInput(WebhookEndpointCreateInput):
    url = HttpsUrlField(max_length=2000, required=False)
    status = StrictChoiceField(choices=EndpointStatus.choices, required=False,
                               help_text="DISABLED stops deliveries (pending ones fail); ENABLED resumes.")


class WebhookEndpointSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="webhook_endpoint")
    url = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    enabled_events = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=EndpointStatus.choices)
    disabled_reason = serializers.CharField(allow_null=True, help_text="Why the endpoint was disabled (410 Gone, 5 days of failures, or by a user).")
    disabled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(
        help_text="The signing secret, shown only now. Receivers pass base64(UTF-8 bytes of the secret) to a Standard Webhooks library.",
    )


class WebhookEndpointRotatedSerializer(WebhookEndpointWithSecretSerializer):
    previous_secret_expires_at = serializers.DateTimeField(
        help_text="Until then every delivery carries two `v1,` signatures: one with the new secret and one with the old.",
    )


class EventSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(default="event")
    type = serializers.ChoiceField(choices=[(t, t) for t in ALL_EVENT_TYPES])
    occurred_at = serializers.DateTimeField()
    organisation_id = serializers.CharField()
    data = serializers.JSONField(help_text="The object as the API rendered it when the event occurred (before deletion for `*.deleted`).")
    created_at = serializers.DateTimeField()


class WebhookAttemptSerializer(serializers.Serializer):
    attempt_number = serializers.IntegerField()
    url = serializers.CharField()
    succeeded = serializers.BooleanField()
    status_code = serializers.IntegerField(allow_null=True)
    latency_ms = serializers.IntegerField(allow_null=True)
    response_excerpt = serializers.CharField(allow_null=True, help_text="The first 1 KB of the receiver's answer.")
    error = serializers.CharField(allow_null=True)
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    attempted_at = serializers.DateTimeField()


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="`dlv_…`: the `webhook-id` header, the same on every attempt. Receivers dedupe on it.")
    object = serializers.CharField(default="webhook_delivery")
    endpoint_id = serializers.CharField()
    event_id = serializers.CharField()
    event_type = serializers.CharField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempt_count = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    attempts = WebhookAttemptSerializer(many=True)
