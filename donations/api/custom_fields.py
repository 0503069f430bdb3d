"""/api/v1/custom-fields: an organisation's own fields on donors and gifts (issue 19)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action

from donations import custom_fields as services
from donations.custom_fields import CUSTOM_FIELD_FIELDS, KEY_PATTERN, render_custom_field
from donations.models import CustomField, CustomFieldAppliesTo, CustomFieldType
from together.api.docs import LIST_PARAMETERS
from together.api.fields import (
    PatternCharField, StrictBooleanField, StrictCharField, StrictChoiceField, StrictIntegerField, shape,
)
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet

KEY_HELP = ("1 to 40 lower-case letters, digits and underscores, starting with a letter. The name of the value in "
            "a record's `custom_fields` and of the list filter `cf_<key>`. Fixed once a record holds a value.")


def key_field(**kwargs) -> PatternCharField:
    """The key exactly as sent (no trimming): what the document's pattern says."""
    return PatternCharField(pattern=KEY_PATTERN, pattern_message="key is 1 to 40 lower-case letters, digits and "
                            "underscores, starting with a letter.", max_length=40, trim_whitespace=False,
                            help_text=KEY_HELP, **kwargs)


class ChoicesField(serializers.ListField):
    child = StrictCharField(max_length=100)


class CustomFieldCreateInput(serializers.Serializer):
    applies_to = StrictChoiceField(choices=CustomFieldAppliesTo.choices, help_text="DONOR or DONATION (gifts).")
    key = key_field()
    label = StrictCharField(max_length=100, help_text="What forms and pages call the field.")
    field_type = StrictChoiceField(choices=CustomFieldType.choices,
                                   help_text="TEXT, NUMBER, DATE, BOOLEAN (yes/no) or CHOICE.")
    choices = ChoicesField(required=False, allow_empty=True, max_length=100,
                           help_text="CHOICE only (required there): the allowed values, in display order.")
    required = StrictBooleanField(required=False, help_text="New records must carry a value (gifts: those people enter).")
    help_text = StrictCharField(required=False, allow_blank=True, max_length=300, help_text="Shown under the input.")
    position = StrictIntegerField(required=False, min_value=0, max_value=10_000, help_text="Display order (ascending).")

    # custom_field_create's rule: a CHOICE field lists its choices, any other lists none.
    openapi_request_rules = {"anyOf": [
        {"required": ["choices"], "properties": {"field_type": {"type": "string", "const": CustomFieldType.CHOICE.value},
                                                 "choices": {"minItems": 1}}},
        {"properties": {"field_type": {"type": "string", "not": {"const": CustomFieldType.CHOICE.value}},
                        "choices": {"maxItems": 0}}},
    ]}


class CustomFieldUpdateInput(serializers.Serializer):
    key = key_field(required=False)
    label = StrictCharField(required=False, max_length=100, help_text="What forms and pages call the field.")
    field_type = StrictChoiceField(required=False, choices=CustomFieldType.choices,
                                   help_text="Fixed once a record holds a value.")
    choices = ChoicesField(required=False, allow_empty=True, max_length=100,
                           help_text="CHOICE: the allowed values (a value stored before stays as it is).")
    required = StrictBooleanField(required=False, help_text="Binds new records and edits that would remove the value.")
    help_text = StrictCharField(required=False, allow_blank=True, max_length=300, help_text="Shown under the input.")
    position = StrictIntegerField(required=False, min_value=0, max_value=10_000, help_text="Display order (ascending).")


class CustomFieldArchiveInput(serializers.Serializer):
    """No fields: an empty body (or none)."""


@shape(*CUSTOM_FIELD_FIELDS, "object", "archived")
class CustomFieldSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The field's id.")
    object = serializers.CharField(help_text="`custom_field`.")
    applies_to = serializers.ChoiceField(choices=CustomFieldAppliesTo.choices, help_text="DONOR or DONATION (gifts).")
    key = serializers.CharField(help_text=KEY_HELP)
    label = serializers.CharField(help_text="What forms and pages call the field.")
    field_type = serializers.ChoiceField(choices=CustomFieldType.choices,
                                         help_text="TEXT (a string), NUMBER (a JSON number), DATE (YYYY-MM-DD), "
                                                   "BOOLEAN (true/false) or CHOICE (one of `choices`).")
    choices = serializers.ListField(child=serializers.CharField(), help_text="CHOICE: the allowed values; otherwise empty.")
    required = serializers.BooleanField(help_text="New records must carry a value, and none may remove it.")
    help_text = serializers.CharField(help_text="Shown under the input; may be empty.")
    position = serializers.IntegerField(help_text="Display order (ascending).")
    archived = serializers.BooleanField(help_text="Archived fields take no new values; stored ones stay.")
    archived_at = serializers.DateTimeField(allow_null=True, help_text="When it was archived; null while active.")
    created_at = serializers.DateTimeField(help_text="When it was defined.")
    updated_at = serializers.DateTimeField(help_text="When it last changed.")


CustomFieldList = list_envelope("CustomFieldList", CustomFieldSerializer)


@extend_schema_view(
    list=extend_schema(summary="List custom fields", parameters=LIST_PARAMETERS, responses={200: CustomFieldList}),
    retrieve=extend_schema(summary="Retrieve a custom field", responses={200: CustomFieldSerializer}),
)
class CustomFieldViewSet(OrganisationViewSet):
    schema_tags = ["custom-fields"]
    fields = CUSTOM_FIELD_FIELDS

    def get_base_queryset(self):
        return CustomField.objects

    def render(self, row):
        return render_custom_field(row)

    @extend_schema(summary="Create a custom field", request=CustomFieldCreateInput, responses={201: CustomFieldSerializer},
                   description="A duplicate key for the same kind of record is 400 `validation_failed` with `param: key`.")
    def create(self, request):
        data = self.validate_input(CustomFieldCreateInput)
        field = services.custom_field_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(field.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Update a custom field", request=CustomFieldUpdateInput, responses={200: CustomFieldSerializer},
                   description="The key and the type are fixed once any record holds a value (400 `validation_failed`).")
    def partial_update(self, request, pk=None):
        data = self.validate_input(CustomFieldUpdateInput, partial=True)
        services.custom_field_update(organisation=request.organisation, actor=request.actor, custom_field_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Archive a custom field", request=None, responses={200: CustomFieldSerializer},
                   description="Hidden from forms and closed to new values; stored values stay in records, filters and "
                               "exports. No body needed; archiving twice changes nothing.")
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        self.validate_input(CustomFieldArchiveInput, require_body=False)
        services.custom_field_archive(organisation=request.organisation, actor=request.actor, custom_field_id=pk)
        return self.respond_object(pk)
