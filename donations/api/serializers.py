"""Input serializers validate shape and types; output serializers document the
objects the lean renderers in donations/representations.py produce."""
from __future__ import annotations

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from compliance.models import Jurisdiction
from donations.countries import ISO_3166_ALPHA2
from donations.crm import SOURCE_TEXT_PATTERN
from donations.custom_fields import KEY_PATTERN
from donations.models import Acknowledgement, CampaignStatus, DonationType, DonorType, InKindCategory, PaymentMethod, Source, Status
from donations.representations import CAMPAIGN_FIELDS, DONATION_FIELDS, DONOR_FIELDS, DONOR_WRITABLE
from together.api.fields import (
    IdField, MetadataField, PatternCharField, StrictCharField, StrictChoiceField, StrictDateField, StrictIntegerField,
    shape,
)
from together.api.schema import ANY_TEXT

# MetadataField's rules (together/api/fields.py); the JSON parser refuses NUL in a key or a value.
METADATA_SCHEMA = {
    "type": "object", "maxProperties": MetadataField.MAX_KEYS,
    "propertyNames": {"type": "string", "minLength": 1, "maxLength": MetadataField.MAX_KEY, "pattern": ANY_TEXT},
    "additionalProperties": {"type": "string", "maxLength": MetadataField.MAX_VALUE, "pattern": ANY_TEXT},
}
MetadataField = extend_schema_field(METADATA_SCHEMA)(MetadataField)

# Custom fields (issue 19): the organisation's own fields, by key (GET /api/v1/custom-fields).
CUSTOM_FIELD_VALUE = {"oneOf": [{"type": "string", "maxLength": 1000}, {"type": "number"}, {"type": "boolean"}]}
CUSTOM_FIELD_KEY = {"type": "string", "pattern": f"^{KEY_PATTERN}$", "maxLength": 40}


# A key is a field's key (KEY_PATTERN; any other is unknown: 400 `validation_failed`,
# `reason: unknown_custom_field`); null removes a value.
@extend_schema_field({
    "type": "object", "maxProperties": 50, "propertyNames": CUSTOM_FIELD_KEY,
    "additionalProperties": {"oneOf": [{"type": "string", "maxLength": 1000, "pattern": ANY_TEXT},
                                       {"type": "number"}, {"type": "boolean"}, {"type": "null"}]},
})
class CustomFieldsInput(serializers.Field):
    """Values by field key: TEXT and CHOICE a string, NUMBER a number (or numeric string),
    DATE an ISO 8601 date string, BOOLEAN true/false; null removes a value. Merged into
    the record's values on update. Checked by donations.custom_fields.custom_fields_clean
    (400 `validation_failed`, `param: custom_fields.<key>`)."""

    default_error_messages = {"invalid_type": "Must be an object of custom field keys to values."}

    def to_internal_value(self, data):
        if not isinstance(data, dict) or len(data) > 50:
            self.fail("invalid_type")
        return data

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "additionalProperties": CUSTOM_FIELD_VALUE})
class CustomFieldsOutput(serializers.Field):
    """The record's custom field values by key, typed as stored (see GET /api/v1/custom-fields)."""

    def to_representation(self, value):
        return value


def opt_str(max_length: int, **kwargs):
    return StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=max_length, **kwargs)


# --- donors ------------------------------------------------------------------

# Schema only: what donations.services checks, so the types say it.
# Exactly the codes, in any case (a pattern, not an enum: generated clients would
# clash on "AU" and "au"); blank or null means AU.
COUNTRY_PATTERN = "^\\s*(|" + "|".join("".join(f"[{c}{c.lower()}]" for c in code) for code in sorted(ISO_3166_ALPHA2)) + ")\\s*$"


@extend_schema_field({"type": "string", "pattern": COUNTRY_PATTERN})
class CountryField(StrictCharField):
    """ISO 3166-1 alpha-2, any case; blank or null means AU."""


@extend_schema_field({"type": "string", "maxLength": 254,
                      # after trimming: empty, or an @ neither first nor last, and no space
                      "pattern": "^\\s*$|^\\s*[^@\\s\\x00][^ \\x00]*@[^ \\x00]*[^@\\s\\x00]\\s*$"})
class DonorEmailField(StrictCharField):
    """An @ inside, no space; unique in the organisation, case-insensitive."""


@shape(*DONOR_WRITABLE)
class DonorInputBase(serializers.Serializer):
    donor_type = StrictChoiceField(choices=DonorType.choices, required=False)
    first_name = opt_str(100)
    last_name = opt_str(100)
    organisation_name = opt_str(200)
    email = DonorEmailField(required=False, allow_null=True, allow_blank=True, max_length=254,
                            help_text="Unique in the organisation, case-insensitive (409 `conflict` with `existing_id` otherwise).")
    phone = opt_str(40)
    address_line1 = opt_str(200)
    address_line2 = opt_str(200)
    suburb = opt_str(100)
    state = opt_str(50)
    postcode = opt_str(12)
    country = CountryField(required=False, allow_null=True, allow_blank=True, max_length=2,
                           help_text="ISO 3166-1 alpha-2, any case; blank or null means AU.")
    employer_id = IdField(required=False, allow_null=True,
                          help_text="INDIVIDUAL donors: the organisation they work for or give through, a donor of type "
                                    "ORGANISATION in this organisation (400 `validation_failed`, `param: employer_id`, otherwise). null clears it.")
    notes = opt_str(10000)
    external_id = opt_str(200)
    metadata = MetadataField(required=False, allow_null=True)
    custom_fields = CustomFieldsInput(required=False, allow_null=True,
                                      help_text="Values of the organisation's donor custom fields, by key; required ones must be given on create.")


class DonorCreateInput(DonorInputBase):
    # donor_create's rule: at least one of these, not blank.
    openapi_request_rules = {"anyOf": [
        {"required": [name], "properties": {name: {"type": "string", "pattern": "\\S"}}}
        for name in ("email", "first_name", "last_name", "organisation_name", "phone")
    ]}


class DonorUpdateInput(DonorInputBase):
    pass


class DonorMergeInput(serializers.Serializer):
    duplicate_id = IdField(help_text="The donor to fold into this one; it is deleted.")


@shape(*DONOR_FIELDS, "object")
class DonorSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    donor_type = serializers.ChoiceField(choices=DonorType.choices)
    first_name = serializers.CharField(allow_null=True)
    last_name = serializers.CharField(allow_null=True)
    organisation_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    address_line1 = serializers.CharField(allow_null=True)
    address_line2 = serializers.CharField(allow_null=True)
    suburb = serializers.CharField(allow_null=True)
    state = serializers.CharField(allow_null=True)
    postcode = serializers.CharField(allow_null=True)
    country = serializers.CharField()
    notes = serializers.CharField(allow_null=True)
    external_id = serializers.CharField(allow_null=True)
    metadata = MetadataField()
    custom_fields = CustomFieldsOutput(help_text="Values of the organisation's donor custom fields, by key; a field without a value is absent.")
    employer_id = serializers.CharField(allow_null=True, help_text="The ORGANISATION donor this individual works for or gives through.")
    tags = serializers.ListField(child=serializers.CharField(), help_text="The names of the donor's tags, sorted (case-insensitively).")
    donations_total_cents = serializers.IntegerField(help_text="Sum of CONFIRMED gifts, monetary and in-kind, each for what was kept after any partial refund.")
    donations_count = serializers.IntegerField(help_text="Number of CONFIRMED gifts.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


# --- campaigns -----------------------------------------------------------------

class CampaignCreateInput(serializers.Serializer):
    name = StrictCharField(max_length=200)
    description = opt_str(10000)
    goal_cents = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=10**13)
    starts_at = StrictDateField(required=False, allow_null=True)
    ends_at = StrictDateField(required=False, allow_null=True)
    external_id = opt_str(200)


class CampaignUpdateInput(CampaignCreateInput):
    name = StrictCharField(max_length=200, required=False)


class CampaignArchiveInput(serializers.Serializer):
    """No fields: an empty body (or none). Anything sent is an unknown field."""


@shape(*CAMPAIGN_FIELDS, "object", "currency", "raised_cents", "donations_count", "donors_count")
class CampaignSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    goal_cents = serializers.IntegerField(allow_null=True)
    currency = serializers.CharField()
    starts_at = serializers.DateField(allow_null=True)
    ends_at = serializers.DateField(allow_null=True)
    status = serializers.ChoiceField(choices=CampaignStatus.choices)
    external_id = serializers.CharField(allow_null=True)
    raised_cents = serializers.IntegerField(help_text="Sum of CONFIRMED gifts, each for what was kept after any partial refund.")
    donations_count = serializers.IntegerField()
    donors_count = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


SOURCE_FIGURES = ("donations_count", "donors_count", "raised_cents", "share_percent")


class SourceFiguresSerializer(serializers.Serializer):
    donations_count = serializers.IntegerField(help_text="Counted gifts in this group.")
    donors_count = serializers.IntegerField(help_text="Distinct donors of those gifts.")
    raised_cents = serializers.IntegerField(help_text="What those gifts raised and kept.")
    share_percent = serializers.FloatField(min_value=0, max_value=100,
                                           help_text="`raised_cents` as a percentage of the campaign's, to one decimal.")


@shape("source_code", *SOURCE_FIGURES)
class CampaignSourceCodeSerializer(SourceFiguresSerializer):
    source_code = serializers.CharField(allow_null=True, help_text="The gifts' source code; null: gifts without one.")


@shape("utm_source", "utm_medium", "utm_campaign", *SOURCE_FIGURES)
class CampaignSourceLinkSerializer(SourceFiguresSerializer):
    utm_source = serializers.CharField(allow_null=True, help_text="The gifts' utm_source (null: none).")
    utm_medium = serializers.CharField(allow_null=True, help_text="The gifts' utm_medium (null: none).")
    utm_campaign = serializers.CharField(allow_null=True, help_text="The gifts' utm_campaign (null: none).")


@shape("groups", "donations_count", "raised_cents", "share_percent")
class CampaignSourceOthersSerializer(serializers.Serializer):
    groups = serializers.IntegerField(min_value=1, help_text="How many groups were left out of the list.")
    donations_count = serializers.IntegerField(help_text="Their gifts.")
    raised_cents = serializers.IntegerField(help_text="What they raised.")
    share_percent = serializers.FloatField(min_value=0, max_value=100, help_text="Their share of the campaign's total.")


CAMPAIGN_SOURCES_FIELDS = ("object", "campaign_id", "currency", "donations_count", "donors_count", "raised_cents",
                           "source_codes", "source_codes_others", "utm", "utm_others")


@shape(*CAMPAIGN_SOURCES_FIELDS)
class CampaignSourcesSerializer(serializers.Serializer):
    object = serializers.ChoiceField(choices=[("campaign_sources", "campaign_sources")], help_text="Always `campaign_sources`.")
    campaign_id = serializers.CharField()
    currency = serializers.CharField()
    donations_count = serializers.IntegerField(help_text="The campaign's counted gifts (as its `donations_count`).")
    donors_count = serializers.IntegerField(help_text="Their distinct donors (as the campaign's `donors_count`).")
    raised_cents = serializers.IntegerField(help_text="What they raised and kept (as the campaign's `raised_cents`).")
    source_codes = CampaignSourceCodeSerializer(many=True, help_text="Per source code, most raised first.")
    source_codes_others = CampaignSourceOthersSerializer(allow_null=True, help_text="The source codes past the list, summed; null when none.")
    utm = CampaignSourceLinkSerializer(many=True, help_text="Per link (UTM source, medium and campaign together), most raised first.")
    utm_others = CampaignSourceOthersSerializer(allow_null=True, help_text="The links past the list, summed; null when none.")


# --- donations -----------------------------------------------------------------

REVENUE_CODE = dict(
    pattern=r"[A-Za-z0-9._\-:/+@]{1,100}",
    pattern_message="Letters, digits and . _ - : / + @, at most 100 characters.",
)


# donations.crm's rule for the free-text source fields, as the document states it
# (schemathesis found a referrer with a control character the document allowed).
SOURCE_TEXT = dict(pattern=SOURCE_TEXT_PATTERN, pattern_message="Text without control characters.")


SOURCE_HELP = {
    "source_code": "Your code for where the gift came from (an appeal, a mailing, a page). Letters, digits and . _ - : / + @.",
    "referrer": "Who or what referred the donor (a person's code, a site).",
    "utm_source": "The utm_source of the link the donor followed.",
    "utm_medium": "The utm_medium of the link the donor followed.",
    "utm_campaign": "The utm_campaign of the link the donor followed.",
}


class SourceFieldsInput(serializers.Serializer):
    """Source tracking (issue 19): optional, trimmed, blank as null (donations.crm.source_fields_clean)."""

    source_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                   help_text=SOURCE_HELP["source_code"], **REVENUE_CODE)
    referrer = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=200,
                                help_text=SOURCE_HELP["referrer"], **SOURCE_TEXT)
    utm_source = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                  help_text=SOURCE_HELP["utm_source"], **SOURCE_TEXT)
    utm_medium = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                  help_text=SOURCE_HELP["utm_medium"], **SOURCE_TEXT)
    utm_campaign = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text=SOURCE_HELP["utm_campaign"], **SOURCE_TEXT)


class SourceFieldsOutput(serializers.Serializer):
    source_code = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["source_code"])
    referrer = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["referrer"])
    utm_source = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["utm_source"])
    utm_medium = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["utm_medium"])
    utm_campaign = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["utm_campaign"])


class DonationCreateInput(SourceFieldsInput):
    donor_id = IdField()
    donation_type = StrictChoiceField(choices=DonationType.choices)
    amount_cents = StrictIntegerField(min_value=1, max_value=10**13, help_text="For IN_KIND, the fair value.")
    donation_date = StrictDateField(help_text="The date the gift was made; it selects the compliance regime.")
    campaign_id = IdField(required=False, allow_null=True)
    payment_method = StrictChoiceField(choices=PaymentMethod.choices, required=False, allow_null=True)
    reference = opt_str(100, help_text="Cheque number or bank reference.")
    in_kind_category = StrictChoiceField(choices=InKindCategory.choices, required=False, allow_null=True)
    in_kind_description = opt_str(5000)
    in_kind_valuation_method = opt_str(1000, help_text="How the fair value was set.")
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100, **REVENUE_CODE)
    notes = opt_str(10000)
    external_id = opt_str(200)
    metadata = MetadataField(required=False, allow_null=True)
    custom_fields = CustomFieldsInput(required=False, allow_null=True)


class DonationCreateCommon(SourceFieldsInput):
    """The fields of both kinds of gift (schema only: the `oneOf` variants below)."""

    donor_id = IdField(help_text="An existing donor of this organisation (400 `validation_failed`, `param: donor_id`, otherwise).")
    amount_cents = StrictIntegerField(min_value=1, max_value=10**13, help_text="Integer cents; for IN_KIND, the fair value.")
    donation_date = StrictDateField(help_text="The date the gift was made; it selects the compliance regime.")
    campaign_id = IdField(required=False, allow_null=True, help_text="An ACTIVE campaign of this organisation.")
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text="A code of the revenue-code library; it sets the gift's jurisdiction.", **REVENUE_CODE)
    notes = opt_str(10000, help_text="Internal notes.")
    external_id = opt_str(200, help_text="Your system's id for the gift.")
    metadata = MetadataField(required=False, allow_null=True, help_text="Up to 50 string values of your own.")
    custom_fields = CustomFieldsInput(required=False, allow_null=True,
                                      help_text="Values of the organisation's gift custom fields, by key; required ones must be given.")


class MonetaryDonationCreateInput(DonationCreateCommon):
    """An offline monetary gift: no in-kind fields."""

    donation_type = StrictChoiceField(choices=[(DonationType.MONETARY.value, DonationType.MONETARY.label)], help_text="`MONETARY`.")
    payment_method = StrictChoiceField(choices=PaymentMethod.choices, required=False, allow_null=True, help_text="How the money came.")
    reference = opt_str(100, help_text="Cheque number or bank reference.")

    class Meta:
        ref_name = "MonetaryDonationCreateInput"


class InKindDonationCreateInput(DonationCreateCommon):
    """An in-kind gift: category and description required, no payment method."""

    donation_type = StrictChoiceField(choices=[(DonationType.IN_KIND.value, DonationType.IN_KIND.label)], help_text="`IN_KIND`.")
    in_kind_category = StrictChoiceField(choices=InKindCategory.choices, help_text="What was given.")
    in_kind_description = StrictCharField(max_length=5000, help_text="What was given, in words.")
    in_kind_valuation_method = opt_str(1000, help_text="How the fair value was set.")
    reference = opt_str(100, help_text="Your reference for the gift.")

    class Meta:
        ref_name = "InKindDonationCreateInput"


DONATION_CREATE_BODY = PolymorphicProxySerializer(
    component_name="DonationCreateInput",
    serializers={DonationType.MONETARY.value: MonetaryDonationCreateInput, DonationType.IN_KIND.value: InKindDonationCreateInput},
    resource_type_field_name="donation_type",
)


class DonationUpdateInput(SourceFieldsInput):
    donor_id = IdField(required=False)
    campaign_id = IdField(required=False, allow_null=True)
    amount_cents = StrictIntegerField(required=False, min_value=1, max_value=10**13)
    donation_date = StrictDateField(required=False)
    payment_method = StrictChoiceField(choices=PaymentMethod.choices, required=False, allow_null=True)
    reference = opt_str(100)
    in_kind_category = StrictChoiceField(choices=InKindCategory.choices, required=False)
    in_kind_description = StrictCharField(required=False, max_length=5000)
    in_kind_valuation_method = opt_str(1000)
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100, **REVENUE_CODE)
    notes = opt_str(10000)
    external_id = opt_str(200)
    metadata = MetadataField(required=False, allow_null=True)
    custom_fields = CustomFieldsInput(required=False, allow_null=True,
                                      help_text="Merged into the gift's values; null removes one (not a required one).")


class DonationVoidInput(serializers.Serializer):
    reason = StrictCharField(max_length=1000)


class DonationRefundInput(serializers.Serializer):
    refund_date = StrictDateField()
    reason = StrictCharField(max_length=1000)
    amount_cents = StrictIntegerField(
        required=False, min_value=1, max_value=10**13,
        help_text="Card gifts (STRIPE, CHECKOUT_LINK): how much to give back, at most what is left "
                  "(amount_cents - refunded_cents); default all of it. A MANUAL gift is refunded in full.")


@shape(*DONATION_FIELDS, "object", "donor", "campaign", "receipt_number", "receipt_status")  # expand[]; the API's receipt columns
class DonationSerializer(SourceFieldsOutput):
    id = serializers.CharField()
    object = serializers.CharField()
    donor_id = serializers.CharField()
    campaign_id = serializers.CharField(allow_null=True)
    donation_type = serializers.ChoiceField(choices=DonationType.choices)
    amount_cents = serializers.IntegerField()
    currency = serializers.CharField()
    donation_date = serializers.DateField()
    source = serializers.ChoiceField(choices=Source.choices)
    status = serializers.ChoiceField(choices=Status.choices)
    payment_method = serializers.ChoiceField(choices=PaymentMethod.choices, allow_null=True)
    reference = serializers.CharField(allow_null=True)
    in_kind_category = serializers.ChoiceField(choices=InKindCategory.choices, allow_null=True)
    in_kind_description = serializers.CharField(allow_null=True)
    in_kind_valuation_method = serializers.CharField(allow_null=True)
    revenue_code = serializers.CharField(allow_null=True)
    jurisdiction = serializers.ChoiceField(
        choices=Jurisdiction.choices, allow_null=True,
        help_text="The jurisdiction whose rules the gift counts under (from its revenue code, else the organisation's default); null until computed.",
    )
    notes = serializers.CharField(allow_null=True)
    external_id = serializers.CharField(allow_null=True)
    metadata = MetadataField()
    custom_fields = CustomFieldsOutput(help_text="Values of the organisation's gift custom fields, by key; a field without a value is absent.")
    void_reason = serializers.CharField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    refund_date = serializers.DateField(allow_null=True)
    refund_reason = serializers.CharField(allow_null=True)
    refunded_at = serializers.DateTimeField(allow_null=True)
    refunded_cents = serializers.IntegerField(
        help_text="Money given back so far. A partial refund of a card gift keeps it CONFIRMED, counting "
                  "amount_cents - refunded_cents; all of it back makes it REFUNDED.")
    stripe_payment_intent_id = serializers.CharField(allow_null=True, help_text="Card gifts: Stripe's PaymentIntent.")
    stripe_charge_id = serializers.CharField(allow_null=True, help_text="Card gifts: Stripe's charge.")
    fee_cents = serializers.IntegerField(allow_null=True, help_text="Card gifts: Stripe's fee on this gift.")
    net_cents = serializers.IntegerField(allow_null=True, help_text="Card gifts: what reached the organisation (amount less fee).")
    stripe_payout_id = serializers.CharField(allow_null=True, help_text="Card gifts: the Stripe payout that took it to the bank.")
    dispute_status = serializers.CharField(
        allow_null=True, help_text="Card gifts: Stripe's status of a dispute on the charge (e.g. needs_response, won, lost); "
                                   "null when never disputed. A lost dispute refunds the gift.")
    consent_given = serializers.BooleanField(
        allow_null=True, help_text="Checkout links with a consent checkbox: the donor's answer; null when not asked.")
    recurring_plan_id = serializers.CharField(
        allow_null=True, help_text="A recurring plan's charge or expected gift: the plan (GET /api/v1/recurring-plans/{id}).")
    recurring_period = serializers.DateField(
        allow_null=True, help_text="With recurring_plan_id: the plan period this gift pays (its bill date). "
                                   "A plan never has two gifts for one period.")
    acknowledgement_status = serializers.ChoiceField(
        choices=Acknowledgement.choices,
        help_text="NEEDS_RECEIPT, RECEIPTED (a receipt stands) or DO_NOT_RECEIPT (set per gift, or by the donor's default).")
    receipt_number = serializers.IntegerField(
        allow_null=True,
        help_text="The gift's standing receipt number, else its latest withdrawn one; null when never receipted. "
                  "A gift is receipted just after it is recorded, so donation.created events carry null; see receipt.* events.")
    receipt_status = serializers.ChoiceField(
        choices=["ISSUED", "WITHDRAWN"], allow_null=True,
        help_text="ISSUED or WITHDRAWN: the status of the receipt in receipt_number; null when never receipted.")
    donor = DonorSerializer(required=False, help_text="With expand[]=donor.")
    campaign = CampaignSerializer(required=False, allow_null=True, help_text="With expand[]=campaign.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
