from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from recommendations import services
from recommendations.api.filters import IntroductionFilterSet, RecipientAccountFilterSet, RecommendationSetFilterSet
from recommendations.api.serializers import (
    IntroductionCreateInput, IntroductionSerializer, RecipientAccountCreateInput, RecipientAccountSerializer,
    RecipientAccountUpdateInput, RecommendationSetCreateInput, RecommendationSetSerializer, RecommendationSetUpdateInput,
)
from recommendations.models import Introduction, RecipientOrgAccountLink, RecommendationSet
from recommendations.representations import INTRODUCTION_FIELDS, LINK_FIELDS, SET_FIELDS, render_introduction, render_link
from recommendations.selectors import render_set_rows
from together.api.docs import LIST_PARAMETERS
from together.api.schema import error, list_envelope
from together.api.views import OrganisationViewSet



def envelope(name: str, item_serializer):
    """`{data: [...], has_more}` documented as one object: a list action's
    response would otherwise be wrapped in an array by drf-spectacular."""
    serializer = list_envelope(name, item_serializer)
    extend_schema_serializer(many=False)(type(serializer))
    return serializer


RecipientAccountList = envelope("RecipientAccountList", RecipientAccountSerializer)
IntroductionList = envelope("IntroductionList", IntroductionSerializer)
RecommendationSetList = envelope("RecommendationSetList", RecommendationSetSerializer)


@extend_schema_view(
    list=extend_schema(summary="List recipient accounts", parameters=LIST_PARAMETERS, responses={200: RecipientAccountList},
                       description="Recipient organisations this organisation may direct funds to, newest first. Filter with `is_active=true|false`."),
    retrieve=extend_schema(summary="Retrieve a recipient account", responses={200: RecipientAccountSerializer}),
)
class RecipientAccountViewSet(OrganisationViewSet):
    schema_tags = ["recipient-accounts"]
    fields = LINK_FIELDS
    filtersets = {"list": RecipientAccountFilterSet}

    def get_base_queryset(self):
        return RecipientOrgAccountLink.objects

    def render(self, row):
        return render_link(row)

    @extend_schema(
        summary="Link a recipient by passphrase", request=RecipientAccountCreateInput,
        responses={201: RecipientAccountSerializer,
                   409: error("conflict: this organisation already links to that recipient; the message and `existing_id` name the link."),
                   429: error("rate_limited: 10 wrong passphrases in the last hour for this organisation; see Retry-After."),
                   503: error("service_unavailable: the attempt counter is unavailable; retry shortly.")},
        description=(
            "Exchanges the recipient organisation's distribution passphrase (it generates one on /settings/engage/distribution) "
            "for a recipient account owned by this organisation. A wrong, rotated or revoked passphrase is 400 `validation_failed` "
            "with `param: passphrase` (`reason: passphrase_invalid`), and so is a live passphrase used with a sandbox key or the "
            "reverse: sandbox organisations link only to sandbox organisations. Each such failure counts toward a limit of 10 an hour "
            "per organisation, after which the call is 429 `rate_limited` with Retry-After. Your own passphrase is 400 "
            "(`reason: self_link`); a recipient you already link to is 409 `conflict` naming the existing link."
        ),
    )
    def create(self, request):
        data = self.validate_input(RecipientAccountCreateInput)
        link = services.recipient_link_exchange(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(link.id, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Update a recipient account", request=RecipientAccountUpdateInput, responses={200: RecipientAccountSerializer},
        description="Rename it (`label`) or turn it off and on (`is_active`). Turning on a link the recipient deactivated is 400 "
                    "`validation_failed` with `param: is_active` (`reason: deactivated_by_recipient`).",
    )
    def partial_update(self, request, pk=None):
        data = self.validate_input(RecipientAccountUpdateInput, partial=True)
        services.recipient_link_update(organisation=request.organisation, actor=request.actor, link_id=pk, **data)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List introductions", parameters=LIST_PARAMETERS, responses={200: IntroductionList}),
    retrieve=extend_schema(summary="Retrieve an introduction", responses={200: IntroductionSerializer}),
)
class IntroductionViewSet(OrganisationViewSet):
    schema_tags = ["introductions"]
    fields = INTRODUCTION_FIELDS
    filtersets = {"list": IntroductionFilterSet}

    def get_base_queryset(self):
        return Introduction.objects

    def render(self, row):
        return render_introduction(row)

    @extend_schema(
        summary="Introduce a prospective recipient", request=IntroductionCreateInput, responses={201: IntroductionSerializer},
        description=(
            "Emails `invitee_email` a one-time link to a public invite page. States: `pending` (created, email sent) → `viewed` "
            "(the invitee opened the page) → `accepted` (signed in or up and chose one of their organisations) → `linked` (a "
            "recipient account owned by you exists, with this introduction's id; terminal). An open introduction becomes "
            "`expired` 14 days after creation (swept hourly): send a new one to retry. `revoked` by you from any open state. "
            "A sandbox introduction binds one of the invitee's sandbox organisations. Every organisation may send introductions "
            "(there is no billing yet)."
        ),
    )
    def create(self, request):
        data = self.validate_input(IntroductionCreateInput)
        created = services.introduction_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(created.introduction.id, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke an introduction", request=None, responses={200: IntroductionSerializer},
        description="Cancels a `pending`, `viewed` or `accepted` introduction; its invite link stops working. An introduction "
                    "already `linked`, `expired` or `revoked` is 409 `conflict`. No body needed.",
    )
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        services.introduction_revoke(organisation=request.organisation, actor=request.actor, introduction_id=pk)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List recommendation sets", parameters=LIST_PARAMETERS, responses={200: RecommendationSetList},
                       description="Active sets, newest first; deleted sets are left out."),
    retrieve=extend_schema(summary="Retrieve a recommendation set", responses={200: RecommendationSetSerializer},
                           description="Deleted sets stay retrievable, with `is_active: false`, for the gifts that used them."),
)
class RecommendationSetViewSet(OrganisationViewSet):
    schema_tags = ["recommendation-sets"]
    fields = SET_FIELDS
    filtersets = {"list": RecommendationSetFilterSet}

    def get_base_queryset(self):
        return RecommendationSet.objects

    def render_rows(self, rows):
        return render_set_rows(organisation=self.request.organisation, rows=rows)

    def get_list_queryset(self):
        return self.get_queryset().filter(is_active=True)

    @extend_schema(
        summary="Create a recommendation set", request=RecommendationSetCreateInput, responses={201: RecommendationSetSerializer},
        description=(
            "Splits one donation across recipient accounts. `amount_mode`: FIXED (default; amounts locked on the giving form), "
            "SUGGESTED (pre-filled, the donor may edit) or OPEN (send `amount_cents: 0` on every allocation; the donor enters each "
            "amount). At least one allocation, at most 50; each names an active recipient account of this organisation, each "
            "recipient at most once; FIXED and SUGGESTED need `amount_cents` > 0. The array order is the donor-facing order, kept "
            "on every read (`position`, 0-based). A broken rule is 400 `validation_failed` with `param` pointing into the array, "
            "e.g. `allocations[2].amount_cents`. The response carries the public `giving_form_url`."
        ),
    )
    def create(self, request):
        data = self.validate_input(RecommendationSetCreateInput)
        recommendation_set = services.recommendation_set_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(recommendation_set.id, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Update a recommendation set", request=RecommendationSetUpdateInput, responses={200: RecommendationSetSerializer},
        description="`allocations`, when sent, replaces the whole list atomically (new allocation ids; the same rules as on "
                    "create). Changing `amount_mode` alone must suit the current amounts (else 400, `param: amount_mode`). A "
                    "deleted set is read-only: 409 `conflict`.",
    )
    def partial_update(self, request, pk=None):
        data = self.validate_input(RecommendationSetUpdateInput, partial=True)
        services.recommendation_set_update(organisation=request.organisation, actor=request.actor, set_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(
        summary="Delete a recommendation set", request=None,
        responses={204: OpenApiResponse(description="Deactivated.")},
        description="Deactivates the set: it leaves the list, its giving form closes, and it stays retrievable with "
                    "`is_active: false` for the gifts that used it. Deleting it again changes nothing.",
    )
    def destroy(self, request, pk=None):
        services.recommendation_set_delete(organisation=request.organisation, actor=request.actor, set_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
