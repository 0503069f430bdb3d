"""Input serializers check shape and types; engage.services checks the rules.
Output serializers document what engage/representations.py renders."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from donations.api.serializers import REVENUE_CODE
from donations.custom_fields import KEY_PATTERN
from engage.models import (
    CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS, CHECKOUT_LINK_MAX_EXPIRY_DAYS, CONSENT_TEXT_MAX, DEFAULT_MINIMUM_CENTS,
    MAXIMUM_CHARGE_CENTS, SLUG_MAX, SLUG_PATTERN, FormStatus, Frequency, LinkStatus, PaymentMethodType, Visibility,
)
from engage.services import MAX_SUGGESTED_AMOUNTS, STRIPE_MINIMUM_CENTS
from together.api.fields import (
    IdField, PatternCharField, StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField,
)


class KeyListField(serializers.ListField):
    """Custom field keys, each once (engage.services refuses a repeat)."""

    unique_items = True


def opt_str(max_length: int, **kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=max_length, **kwargs)


class StrictDateTimeField(serializers.DateTimeField):
    default_error_messages = {"invalid_type": "Must be a date-time string (ISO 8601 with a time zone)."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_type")
        return super().to_internal_value(data)


@extend_schema_field({
    "type": "array", "minItems": 1, "maxItems": MAX_SUGGESTED_AMOUNTS, "uniqueItems": True,
    "items": {"type": "integer", "minimum": 100, "maximum": MAXIMUM_CHARGE_CENTS - MAXIMUM_CHARGE_CENTS % 100, "multipleOf": 100},
})
class AmountListField(serializers.ListField):
    child = StrictIntegerField()


@extend_schema_field({
    "type": "array", "maxItems": len(Frequency.values), "uniqueItems": True,
    "items": {"$ref": "#/components/schemas/RecurringFrequencyEnum"},  # engage.models.Frequency (ENUM_NAME_OVERRIDES)
})
class FrequencyListField(serializers.ListField):
    child = StrictChoiceField(choices=Frequency.choices)


SLUG = dict(pattern=SLUG_PATTERN.strip("^$"), pattern_message="Lower-case letters and digits in words joined by single hyphens.")
FREQUENCIES_HELP = "Frequencies a donor may pick for a recurring gift, each once; at least one while allow_recurring is true (default [\"MONTHLY\"])."


@extend_schema_field({"type": "string", "pattern": SLUG_PATTERN, "minLength": 1, "maxLength": SLUG_MAX})
class SlugField(PatternCharField):
    pass


class FormCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=200, help_text="Internal name, shown only to staff.")
    slug = SlugField(max_length=SLUG_MAX, help_text="The public address /donate/{slug}: unique across Together (409 `conflict` when taken). "
                                                     "Permanent once the form leaves DRAFT.", **SLUG)
    title = StrictCharField(max_length=200, help_text="The page's headline.")
    description = opt_str(5000, help_text="The page's subhead.")
    status = StrictChoiceField(choices=[c for c in FormStatus.choices if c[0] != FormStatus.ARCHIVED], required=False,
                               help_text="Default DRAFT (a preview for signed-in staff). ACTIVE needs Stripe connected.")
    suggested_amounts_cents = AmountListField(help_text="Whole dollars in cents, shown ascending as buttons; those under the minimum or over the maximum are hidden.")
    allow_custom = StrictBooleanField(required=False, help_text="Offer an \"Other\" amount. Default true.")
    default_amount_cents = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAXIMUM_CHARGE_CENTS,
                                              help_text="Pre-selected suggestion: one of the suggested amounts donors can pick.")
    minimum_cents = StrictIntegerField(required=False, allow_null=True, min_value=STRIPE_MINIMUM_CENTS, max_value=MAXIMUM_CHARGE_CENTS,
                                       help_text=f"Smallest gift. Null: the organisation minimum, {DEFAULT_MINIMUM_CENTS} cents.")
    maximum_cents = StrictIntegerField(required=False, allow_null=True, min_value=STRIPE_MINIMUM_CENTS, max_value=MAXIMUM_CHARGE_CENTS,
                                       help_text="Largest gift. Null: no maximum of the form's own.")
    allow_recurring = StrictBooleanField(required=False, help_text="Default true.")
    recurring_frequencies = FrequencyListField(required=False, max_length=len(Frequency.values), help_text=FREQUENCIES_HELP)
    phone_visibility = StrictChoiceField(choices=Visibility.choices, required=False, help_text="Default OPTIONAL.")
    address_visibility = StrictChoiceField(
        choices=Visibility.choices, required=False,
        help_text="Default OPTIONAL. Gifts counted under a regulated jurisdiction always ask the address (electoral "
                  "disclosure needs it); NONE and OPTIONAL apply only to forms whose gifts are UNREGULATED.",
    )
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text="Stamped on every gift; a new code joins the library.", **REVENUE_CODE)
    campaign_id = IdField(required=False, allow_null=True, help_text="An ACTIVE campaign of this organisation.")
    custom_field_keys = KeyListField(
        child=PatternCharField(pattern=KEY_PATTERN, pattern_message="A custom field key: lower-case letters, digits and underscores, starting with a letter.", max_length=40,
                               trim_whitespace=False), required=False, max_length=20,
        help_text="Gift custom fields the page asks (keys of active DONATION fields, each once, in order); "
                  "a required one must be answered. Default [].")


class FormUpdateInput(FormCreateInput):
    name = StrictCharField(max_length=200, required=False)
    slug = SlugField(max_length=SLUG_MAX, required=False, help_text="Changeable only while the form is DRAFT.", **SLUG)
    title = StrictCharField(max_length=200, required=False, help_text="The page's headline.")
    status = StrictChoiceField(choices=[c for c in FormStatus.choices if c[0] != FormStatus.ARCHIVED], required=False,
                               help_text="DRAFT, ACTIVE or PAUSED (archive with POST /api/v1/forms/{id}/archive).")
    suggested_amounts_cents = AmountListField(required=False)


class FormArchiveInput(serializers.Serializer):
    """No fields: an empty body (or none). Anything sent is an unknown field."""


class DonationFormSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=[("form", "form")])
    name = serializers.CharField()
    slug = serializers.CharField(help_text="The public address /donate/{slug}: unique across Together, permanent once published.")
    url = serializers.CharField(help_text="The public page, /donate/{slug}.")
    status = serializers.ChoiceField(choices=FormStatus.choices)
    title = serializers.CharField(help_text="The page's headline.")
    description = serializers.CharField(allow_null=True, help_text="The page's subhead.")
    currency = serializers.CharField(help_text="The organisation's currency: every amount of the form is in it.")
    suggested_amounts_cents = serializers.ListField(child=serializers.IntegerField())
    allow_custom = serializers.BooleanField(help_text="The page offers an \"Other\" amount.")
    default_amount_cents = serializers.IntegerField(allow_null=True)
    minimum_cents = serializers.IntegerField(allow_null=True, help_text="Null: the organisation minimum applies.")
    effective_minimum_cents = serializers.IntegerField(help_text="The minimum in force (the form's, or the organisation's).")
    maximum_cents = serializers.IntegerField(allow_null=True)
    allow_recurring = serializers.BooleanField(help_text="The page asks \"How often?\": one-off or one of recurring_frequencies.")
    recurring_frequencies = serializers.ListField(child=serializers.ChoiceField(choices=Frequency.choices),
                                                  help_text="The frequencies a donor may pick for a recurring gift.")
    phone_visibility = serializers.ChoiceField(choices=Visibility.choices, help_text="Whether the page asks the donor's phone.")
    address_visibility = serializers.ChoiceField(
        choices=Visibility.choices,
        help_text="Whether the page asks the address; gifts counted under a regulated jurisdiction always require it.")
    revenue_code = serializers.CharField(allow_null=True)
    campaign_id = serializers.CharField(allow_null=True)
    custom_field_keys = serializers.ListField(child=serializers.CharField(),
                                              help_text="The gift custom fields the page asks, by key (GET /api/v1/custom-fields).")
    archived_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- checkout links ------------------------------------------------------------------

class CheckoutLinkCreateInput(serializers.Serializer):
    donor_id = IdField(help_text="A donor of this organisation with an email (400 `validation_failed`, `param: donor_id`, otherwise).")
    amount_cents = StrictIntegerField(min_value=STRIPE_MINIMUM_CENTS, max_value=MAXIMUM_CHARGE_CENTS,
                                      help_text="The exact amount; the donor cannot change it.")
    currency = StrictChoiceField(choices=[("AUD", "AUD")], required=False, help_text="The organisation's currency (AUD).")
    description = opt_str(200, help_text="The page's heading, e.g. \"$250 donation from Jane Smith\".")
    payment_methods = serializers.ListField(
        child=StrictChoiceField(choices=[(PaymentMethodType.CARD.value, "Card")]), required=False, min_length=1, max_length=1,
        help_text="Default [\"CARD\"]. BECS and PAYTO are not available at checkout yet.",
    )
    consent_text = opt_str(CONSENT_TEXT_MAX, help_text="A checkbox shown above Pay; the donor's answer is stored on the donation.")
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text="Stamped on the donation; a new code joins the library.", **REVENUE_CODE)
    campaign_id = IdField(required=False, allow_null=True, help_text="An ACTIVE campaign of this organisation.")
    expires_at = StrictDateTimeField(
        required=False, allow_null=True,
        help_text=f"Default {CHECKOUT_LINK_DEFAULT_EXPIRY_DAYS} days from now; between 5 minutes and {CHECKOUT_LINK_MAX_EXPIRY_DAYS} days away.",
    )


class CheckoutLinkCancelInput(serializers.Serializer):
    """No fields: an empty body (or none). Anything sent is an unknown field."""


class CheckoutLinkSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.ChoiceField(choices=[("checkout_link", "checkout_link")])
    code = serializers.CharField(help_text="The unguessable code in the link's address.")
    url = serializers.CharField(help_text="The page to send the donor: /c/{code}.")
    donor_id = serializers.CharField()
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    payment_methods = serializers.ListField(child=serializers.ChoiceField(choices=PaymentMethodType.choices),
                                            help_text="How the donor may pay.")
    consent_text = serializers.CharField(allow_null=True, help_text="The consent checkbox's text, shown above Pay; the answer is stored on the donation.")
    revenue_code = serializers.CharField(allow_null=True)
    campaign_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=LinkStatus.choices,
                                     help_text="ACTIVE (payable), COMPLETED (paid once), EXPIRED (from expires_at on, at once), CANCELED.")
    expires_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    canceled_at = serializers.DateTimeField(allow_null=True)
    donation_id = serializers.CharField(allow_null=True, help_text="The donation that paid it (COMPLETED).")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
