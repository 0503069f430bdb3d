"""Input serializers check shape and JSON types; output serializers document the
objects rendered by recommendations/representations.py."""
from __future__ import annotations

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from recommendations.models import AmountMode, DeactivatedBy, IntroductionStatus
from together.api.fields import IdField, StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField


def opt_str(max_length: int, **kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=max_length, **kwargs)


# --- recipient accounts -------------------------------------------------------------

class RecipientAccountCreateInput(serializers.Serializer):
    passphrase = StrictCharField(max_length=500, help_text="The recipient organisation's distribution passphrase (words separated by spaces or hyphens; case does not matter).")
    label = StrictCharField(max_length=200, help_text="Your name for this recipient account, shown in lists.")


class RecipientAccountUpdateInput(serializers.Serializer):
    label = StrictCharField(max_length=200, required=False)
    is_active = StrictBooleanField(required=False, help_text="false stops new allocations and gifts to this recipient. A link the recipient deactivated cannot be turned back on from here.")


class RecipientAccountSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="Use as `recipient_org_account_link_id` in recommendation-set allocations.")
    object = serializers.CharField()
    label = serializers.CharField()
    recipient_organisation_id = serializers.CharField()
    recipient_org_name = serializers.CharField()
    is_active = serializers.BooleanField()
    can_receive_funds = serializers.BooleanField(help_text="Whether gifts can be directed to this recipient now. Today this equals `is_active`; once Stripe Connect onboarding exists it also needs the recipient's account to accept charges.")
    deactivated_by = serializers.ChoiceField(choices=DeactivatedBy.choices, allow_null=True, help_text="Who turned the link off: OWNER (you) or RECIPIENT; null while active.")
    introduction_id = serializers.CharField(allow_null=True, help_text="The introduction that produced this link, if any.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- introductions ------------------------------------------------------------------

@extend_schema_field({"type": "string", "format": "email", "maxLength": 254})
class EmailAddressField(StrictCharField):
    """Schema only: an email address (Django's validate_email, in the service)."""


class IntroductionCreateInput(serializers.Serializer):
    invitee_email = EmailAddressField(max_length=254, help_text="Where the invite email goes.")
    invitee_org_name_hint = opt_str(200, help_text="The organisation's name as you know it; shown on the invite.")
    invitee_message = opt_str(5000, help_text="A note from you, included in the email and on the invite page.")
    label = opt_str(200, help_text="The label of the recipient account the introduction creates; default: the recipient's name.")


class IntroductionSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    status = serializers.ChoiceField(choices=IntroductionStatus.choices)
    invitee_email = serializers.CharField()
    invitee_org_name_hint = serializers.CharField(allow_null=True)
    invitee_message = serializers.CharField(allow_null=True)
    label = serializers.CharField(allow_null=True)
    recipient_organisation_id = serializers.CharField(allow_null=True, help_text="The organisation that accepted; null before `accepted`.")
    recipient_org_name = serializers.CharField(allow_null=True)
    recipient_org_account_link_id = serializers.CharField(allow_null=True, help_text="Set once `linked`.")
    expires_at = serializers.DateTimeField(help_text="14 days after creation; open introductions past it become `expired` (swept hourly).")
    viewed_at = serializers.DateTimeField(allow_null=True)
    accepted_at = serializers.DateTimeField(allow_null=True)
    linked_at = serializers.DateTimeField(allow_null=True)
    expired_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- recommendation sets ------------------------------------------------------------

class AllocationInput(serializers.Serializer):
    """One allocation. Not an object, or an unknown key, is 400 invalid_request
    with `param` pointing into the array (`allocations[1].amount`)."""

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail("Each allocation must be an object.", code="invalid_type")]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({unknown[0]: [ErrorDetail(f"Unknown field '{unknown[0]}'.", code="invalid_type")]})
        return super().to_internal_value(data)

    recipient_org_account_link_id = IdField(help_text="An id from GET /api/v1/recipient-accounts.")
    amount_cents = StrictIntegerField(min_value=0, max_value=10**11, help_text="> 0 for FIXED and SUGGESTED; 0 for OPEN.")


@extend_schema_field(AllocationInput(many=True, min_length=1, max_length=50))
class AllocationListField(serializers.Field):
    """A JSON array of allocations. Errors come back list-shaped, so the error
    handler names them `allocations[2].amount_cents` (a ListSerializer keys them
    by index in a dict, which would read `allocations.2.amount_cents`)."""

    default_error_messages = {"not_a_list": "Must be an array of allocations."}

    def to_internal_value(self, data):
        if not isinstance(data, list):
            self.fail("not_a_list")
        items, errors, failed = [], [], False
        for item in data:
            serializer = AllocationInput(data=item)
            try:
                items.append(serializer.run_validation(item))
                errors.append({})
            except serializers.ValidationError as exc:
                errors.append(exc.detail)
                failed = True
        if failed:
            raise serializers.ValidationError(errors)
        return items

    def to_representation(self, value):
        return value


class RecommendationSetCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=200)
    description = opt_str(5000)
    amount_mode = StrictChoiceField(choices=AmountMode.choices, required=False, help_text="Default FIXED.")
    allocations = AllocationListField(help_text="One or more, at most 50; array order is the order shown to donors.")


class RecommendationSetUpdateInput(serializers.Serializer):
    name = StrictCharField(max_length=200, required=False)
    description = opt_str(5000)
    amount_mode = StrictChoiceField(choices=AmountMode.choices, required=False)
    allocations = AllocationListField(required=False, help_text="Replaces every allocation at once.")


class AllocationSerializer(serializers.Serializer):
    id = serializers.CharField()
    recipient_org_account_link_id = serializers.CharField()
    recipient_org_name = serializers.CharField()
    amount_cents = serializers.IntegerField()
    position = serializers.IntegerField(help_text="0-based display order on the giving form.")


class RecommendationSetSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    amount_mode = serializers.ChoiceField(choices=AmountMode.choices)
    allocations = AllocationSerializer(many=True)
    total_cents = serializers.IntegerField(help_text="Sum of the allocations (0 for OPEN).")
    currency = serializers.CharField()
    is_active = serializers.BooleanField(help_text="false once deleted.")
    giving_form_url = serializers.URLField(help_text="The public giving form, {SITE_URL}/give/{id}.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
