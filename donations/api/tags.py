"""Tags on donors (issue 19): GET/POST /api/v1/tags, GET/PATCH/DELETE
/api/v1/tags/{id}, POST /api/v1/donors/{id}/tags and DELETE
/api/v1/donors/{id}/tags/{name}. Thin: the rules are in donations.crm."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response

from donations import crm
from donations.api.serializers import DonorSerializer
from donations.models import TAG_NAME_MAX, Donor, Tag
from donations.representations import DONOR_FIELDS, render_donor
from donations.selectors import tag_donor_counts
from together.api.docs import LIST_PARAMETERS
from together.api.fields import PatternCharField, StrictCharField
from together.api.filters import BaseFilterSet
from together.api.renderers import iso_timestamp
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet

TAG_FIELDS = ("id", "name", "created_at", "updated_at")
TAG_NAME_HELP = (f"At most {TAG_NAME_MAX} characters as sent, stored trimmed with runs of spaces collapsed to one; not only spaces; no slash, backslash, comma or control character; "
                 "unique in the organisation ignoring case.")


# crm.tag_name_clean, as a pattern over the name as sent: Python's whitespace (str.split)
# collapses, so the whitespace controls pass; any other control character, a slash, a
# backslash or a comma is refused; at least one character is not whitespace. The API
# takes at most TAG_NAME_MAX characters as sent (spaces included), so the collapsed
# name always fits.
_WHITESPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
_FORBIDDEN = "\\x00-\\x08\\x0e-\\x1b\\x7f/\\\\,"
TAG_NAME_PATTERN = f"[^{_FORBIDDEN}]*[^{_FORBIDDEN}{_WHITESPACE}][^{_FORBIDDEN}]*"


def tag_name_field(**kwargs) -> PatternCharField:
    return PatternCharField(pattern=TAG_NAME_PATTERN, max_length=TAG_NAME_MAX, trim_whitespace=False,
                            pattern_message="A tag name needs a character other than a space, and cannot hold a slash, "
                                            "a backslash, a comma or control characters.", **kwargs)


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": TAG_NAME_MAX, "pattern": f"^(?:{TAG_NAME_PATTERN})$"})
class TagNameItem(StrictCharField):
    """A name in a list: crm.tag_name_clean checks it (400 `validation_failed`, `param: tags[i]`)."""


def render_tag(row: dict, donors_count: int = 0) -> dict:
    return {"id": row["id"], "object": "tag", "name": row["name"], "donors_count": donors_count,
            "created_at": iso_timestamp(row["created_at"]), "updated_at": iso_timestamp(row["updated_at"])}


class TagSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField(help_text="Always `tag`.")
    name = serializers.CharField()
    donors_count = serializers.IntegerField(help_text="How many donors carry the tag.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class TagInput(serializers.Serializer):
    name = tag_name_field(help_text=TAG_NAME_HELP)


class DonorTagsInput(serializers.Serializer):
    tags = serializers.ListField(
        child=TagNameItem(max_length=TAG_NAME_MAX, trim_whitespace=False), min_length=1, max_length=crm.MAX_TAGS_PER_CALL,
        help_text="Tag names (case-insensitive). A name the organisation has no tag for creates that tag.")


class TagFilterSet(BaseFilterSet):
    from django_filters import CharFilter

    name = CharFilter(field_name="name", lookup_expr="iexact", help_text="Exact name, case-insensitive.")

    class Meta:
        model = Tag
        fields: list[str] = []


TagList = list_envelope("TagList", TagSerializer)


@extend_schema_view(
    list=extend_schema(summary="List tags", parameters=LIST_PARAMETERS, responses={200: TagList}),
    retrieve=extend_schema(summary="Retrieve a tag", responses={200: TagSerializer}),
)
class TagViewSet(OrganisationViewSet):
    schema_tags = ["tags"]
    fields = TAG_FIELDS
    filtersets = {"list": TagFilterSet}

    def get_base_queryset(self):
        return Tag.objects

    def render_rows(self, rows):
        ids = [r["id"] for r in rows]
        counts = tag_donor_counts(organisation=self.request.organisation, tag_ids=ids)
        return [render_tag(r, counts.get(r["id"], 0)) for r in rows]

    @extend_schema(summary="Create a tag", request=TagInput, responses={201: TagSerializer},
                   description="A name already used in the organisation (ignoring case) is 409 `conflict` with `existing_id`.")
    def create(self, request):
        data = self.validate_input(TagInput)
        tag = crm.tag_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(tag.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Rename a tag", request=TagInput, responses={200: TagSerializer},
                   description="Every donor carrying the tag carries the new name. A name another tag has is 409 `conflict`.")
    def partial_update(self, request, pk=None):
        data = self.validate_input(TagInput, partial=True)
        if "name" in data:
            crm.tag_rename(organisation=request.organisation, actor=request.actor, tag_id=pk, name=data["name"])
        return self.respond_object(pk)

    @extend_schema(summary="Delete a tag", responses={204: None}, description="Every donor loses the tag.")
    def destroy(self, request, pk=None):
        crm.tag_delete(organisation=request.organisation, actor=request.actor, tag_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DonorTagViewSet(OrganisationViewSet):
    """A donor's tags: the answer is the donor, with its `tags`."""

    schema_tags = ["donors"]
    fields = DONOR_FIELDS

    def get_base_queryset(self):
        return Donor.objects

    def render(self, row):
        return render_donor(row)

    @extend_schema(
        summary="Tag a donor", request=DonorTagsInput, responses={200: DonorSerializer},
        description="Adds the named tags to the donor (names are matched ignoring case; a tag the donor already has is "
                    "left as it is). A name the organisation has no tag for creates the tag (a WRITE key may create "
                    "tags). Emits `donor.tagged` naming the tags added, if any. A bad name is 400 `validation_failed` "
                    "with `param: tags[i]`.")
    def add(self, request, pk=None):
        data = self.validate_input(DonorTagsInput)
        crm.donor_tags_add(organisation=request.organisation, actor=request.actor, donor_id=pk, names=data["tags"])
        return self.respond_object(pk)

    @extend_schema(
        summary="Untag a donor", request=None, responses={200: DonorSerializer},
        parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH, description="The tag's name (case-insensitive), URL-encoded.")],
        description="Removes the tag from the donor and emits `donor.untagged`; removing a tag the donor does not carry "
                    "changes nothing (200). A name the organisation has no tag for is 404 `not_found`.")
    def remove(self, request, pk=None, name=None):
        crm.donor_tags_remove(organisation=request.organisation, actor=request.actor, donor_id=pk, names=[name])
        return self.respond_object(pk)
