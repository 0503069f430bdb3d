from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from donations import services
from donations.api.filters import CampaignFilterSet, DonationFilterSet, DonorFilterSet
from donations.api.serializers import (
    CAMPAIGN_SOURCES_FIELDS, DONATION_CREATE_BODY, CampaignArchiveInput, CampaignCreateInput, CampaignSerializer,
    CampaignSourcesSerializer, CampaignUpdateInput, DonationCreateInput,
    DonationRefundInput,
    DonationSerializer, DonationUpdateInput, DonationVoidInput, DonorCreateInput, DonorMergeInput, DonorSerializer,
    DonorUpdateInput,
)
from donations.models import Campaign, Donation, Donor
from donations.representations import (
    CAMPAIGN_FIELDS, DONATION_FIELDS, DONOR_FIELDS, render_campaign, render_donation, render_donor,
)
from donations.selectors import RECEIPT_FIELDS, campaign_rollups, campaign_sources, donation_row_json, with_receipt
from together.api.docs import LIST_PARAMETERS, expand_parameter
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet

DonorList = list_envelope("DonorList", DonorSerializer)
DonationList = list_envelope("DonationList", DonationSerializer)
CampaignList = list_envelope("CampaignList", CampaignSerializer)
DONATION_EXPAND = expand_parameter("donor", "campaign")
# GET /campaigns/{id}/sources lists this many source codes and links (the rest summed in `*_others`).
CAMPAIGN_SOURCES_LIMIT = 500


class DonorDonationFilterSet(DonationFilterSet):
    """GET /donors/{id}/donations: the path names the donor, so `donor_id` is no
    filter there (a contradictory one used to answer `[]`): sending it is 400
    `invalid_request`, an unknown parameter."""

    donor_id = None


class CampaignDonationFilterSet(DonationFilterSet):
    """GET /campaigns/{id}/donations: likewise without `campaign_id`."""

    campaign_id = None


def render_donation_rows(view: OrganisationViewSet, rows: list[dict]) -> list[dict]:
    """Donations, with `expand[]` objects fetched in one query per relation."""
    expand = view.expand() if view.expandable else set()
    organisation = view.request.organisation
    out = [render_donation(r) for r in rows]
    if "donor" in expand and rows:
        ids = {r["donor_id"] for r in rows}
        donors = {d["id"]: render_donor(d) for d in Donor.objects.for_organisation(organisation).filter(pk__in=ids).values(*DONOR_FIELDS)}
        for item in out:
            item["donor"] = donors.get(item["donor_id"])
    if "campaign" in expand and rows:
        ids = {r["campaign_id"] for r in rows if r["campaign_id"]}
        campaign_rows = list(Campaign.objects.for_organisation(organisation).filter(pk__in=ids).values(*CAMPAIGN_FIELDS))
        rollups = campaign_rollups(organisation=organisation, campaign_ids=[c["id"] for c in campaign_rows])
        campaigns = {c["id"]: render_campaign(c, rollups.get(c["id"]), currency=organisation.currency) for c in campaign_rows}
        for item in out:
            item["campaign"] = campaigns.get(item["campaign_id"]) if item["campaign_id"] else None
    return out


def donations_of(view: OrganisationViewSet, **filters) -> Response:
    queryset = with_receipt(Donation.objects.for_organisation(view.request.organisation).filter(**filters))
    queryset = view.filter_queryset(queryset)
    page = view.pagination.paginate(queryset, view.request.query_params, values=(*DONATION_FIELDS, *RECEIPT_FIELDS))
    return Response({"data": render_donation_rows(view, page.rows), "has_more": page.has_more})


@extend_schema_view(
    list=extend_schema(summary="List donors", parameters=LIST_PARAMETERS, responses={200: DonorList}),
    retrieve=extend_schema(summary="Retrieve a donor", responses={200: DonorSerializer}),
)
class DonorViewSet(OrganisationViewSet):
    schema_tags = ["donors"]
    fields = DONOR_FIELDS
    filtersets = {"list": DonorFilterSet, "donations": DonorDonationFilterSet}
    expandable_by_action = {"donations": ("donor", "campaign")}

    def get_base_queryset(self):
        return Donor.objects

    @property
    def expandable(self):
        return self.expandable_by_action.get(getattr(self, "action", None), ())

    def render(self, row):
        return render_donor(row)

    @extend_schema(summary="Create a donor", request=DonorCreateInput, responses={201: DonorSerializer},
                   description="Partial records are accepted (just an email, or a name and organisation). An email already used in this organisation (case-insensitive) is 409 `conflict` naming the existing donor.")
    def create(self, request):
        data = self.validate_input(DonorCreateInput)
        donor = services.donor_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(donor.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Update a donor", request=DonorUpdateInput, responses={200: DonorSerializer})
    def partial_update(self, request, pk=None):
        data = self.validate_input(DonorUpdateInput, partial=True)
        services.donor_update(organisation=request.organisation, actor=request.actor, donor_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Delete a donor", responses={204: None},
                   description="Refused with 409 `conflict` while the donor has donations: merge instead.")
    def destroy(self, request, pk=None):
        services.donor_delete(organisation=request.organisation, actor=request.actor, donor_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="List a donor's donations", parameters=[*LIST_PARAMETERS, DONATION_EXPAND], responses={200: DonationList})
    @action(detail=True, methods=["get"])
    def donations(self, request, pk=None):
        self.get_row(pk)
        return donations_of(self, donor_id=pk)

    @extend_schema(summary="Merge a duplicate into this donor", request=DonorMergeInput, responses={200: DonorSerializer},
                   description="Moves every donation (and everything else pointing at the duplicate) to this donor, keeps an audit record and deletes the duplicate, in one transaction.")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        data = self.validate_input(DonorMergeInput)
        services.donor_merge(organisation=request.organisation, actor=request.actor, survivor_id=pk, duplicate_id=data["duplicate_id"])
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List donations", parameters=[*LIST_PARAMETERS, DONATION_EXPAND], responses={200: DonationList}),
    retrieve=extend_schema(summary="Retrieve a donation", parameters=[DONATION_EXPAND], responses={200: DonationSerializer}),
)
class DonationViewSet(OrganisationViewSet):
    schema_tags = ["donations"]
    fields = (*DONATION_FIELDS, *RECEIPT_FIELDS)
    filtersets = {"list": DonationFilterSet}
    expandable = ("donor", "campaign")

    def get_base_queryset(self):
        return with_receipt(Donation.objects)

    def render_rows(self, rows):
        return render_donation_rows(self, rows)

    def list_row_json(self):
        return None if self.expand() else donation_row_json()

    @extend_schema(
        summary="Record a donation", request=DONATION_CREATE_BODY, responses={201: DonationSerializer},
        description="Records an offline monetary gift or an in-kind gift (WRITE key). The server sets `source: MANUAL` and `status: CONFIRMED`. For IN_KIND, `amount_cents` is the fair value and `in_kind_category` and `in_kind_description` are required (400 `validation_failed` otherwise). An unknown donor, or one of another organisation, is 400 `validation_failed` with `param: donor_id`.",
    )
    def create(self, request):
        data = self.validate_input(DonationCreateInput)
        donation = services.donation_record(organisation=request.organisation, actor=request.actor, **data)
        if self.expand():
            return self.respond_object(donation.id, status.HTTP_201_CREATED)
        # The gift as the service rendered it for its event: the row just written, not read again.
        return Response(donation.rendered, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Update a manual donation", request=DonationUpdateInput, responses={200: DonationSerializer},
                   description="MANUAL donations only; source, type and organisation never change. Money, date, donor and revenue code changes pass the compliance checks.")
    def partial_update(self, request, pk=None):
        data = self.validate_input(DonationUpdateInput, partial=True)
        services.donation_update(organisation=request.organisation, actor=request.actor, donation_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Void a donation", request=DonationVoidInput, responses={200: DonationSerializer},
                   description="For a record entered in error: status VOIDED with a reason, kept for audit, out of every total.")
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        data = self.validate_input(DonationVoidInput)
        services.donation_void(organisation=request.organisation, actor=request.actor, donation_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Refund a donation", request=DonationRefundInput, responses={200: DonationSerializer},
                   description="A MANUAL monetary gift whose money went back in full: status REFUNDED, out of totals. "
                               "A card gift (source STRIPE or CHECKOUT_LINK) is refunded through Stripe, in full or in "
                               "part (`amount_cents`, default: all that is left): `refunded_cents` grows and the gift "
                               "stays CONFIRMED, counting what was kept, until all of it is back (REFUNDED). Emits "
                               "`donation.refunded`. Stripe refusing the refund is 400 `validation_failed` (param "
                               "`stripe`); Stripe unreachable is 503 `service_unavailable`, with nothing changed. "
                               "Rules that depend on the stored gift are 400 `validation_failed` with a `reason`: "
                               "`amount_cents` more than is left to refund (`exceeds_refundable`, with "
                               "`refundable_cents`), a part refund of a MANUAL gift (`manual_refund_in_full`), a "
                               "`refund_date` before the gift's `donation_date` (`before_donation_date`).")
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        data = self.validate_input(DonationRefundInput)
        services.donation_refund(organisation=request.organisation, actor=request.actor, donation_id=pk, **data)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List campaigns", parameters=LIST_PARAMETERS, responses={200: CampaignList}),
    retrieve=extend_schema(summary="Retrieve a campaign", responses={200: CampaignSerializer}),
)
class CampaignViewSet(OrganisationViewSet):
    schema_tags = ["campaigns"]
    fields = CAMPAIGN_FIELDS
    filtersets = {"list": CampaignFilterSet, "donations": CampaignDonationFilterSet}
    expandable_by_action = {"donations": ("donor", "campaign")}

    def get_base_queryset(self):
        return Campaign.objects

    @property
    def expandable(self):
        return self.expandable_by_action.get(getattr(self, "action", None), ())

    def render_rows(self, rows):
        rollups = campaign_rollups(organisation=self.request.organisation, campaign_ids=[r["id"] for r in rows])
        currency = self.request.organisation.currency
        return [render_campaign(r, rollups.get(r["id"]), currency=currency) for r in rows]

    @extend_schema(summary="Create a campaign", request=CampaignCreateInput, responses={201: CampaignSerializer})
    def create(self, request):
        data = self.validate_input(CampaignCreateInput)
        campaign = services.campaign_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(campaign.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Update a campaign", request=CampaignUpdateInput, responses={200: CampaignSerializer})
    def partial_update(self, request, pk=None):
        data = self.validate_input(CampaignUpdateInput, partial=True)
        services.campaign_update(organisation=request.organisation, actor=request.actor, campaign_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Archive a campaign", request=None, responses={200: CampaignSerializer},
                   description="Archived campaigns take no new gifts. No body needed.")
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        self.validate_input(CampaignArchiveInput, require_body=False)
        services.campaign_archive(organisation=request.organisation, actor=request.actor, campaign_id=pk)
        return self.respond_object(pk)

    @extend_schema(summary="List a campaign's donations", parameters=[*LIST_PARAMETERS, DONATION_EXPAND], responses={200: DonationList})
    @action(detail=True, methods=["get"])
    def donations(self, request, pk=None):
        self.get_row(pk)
        return donations_of(self, campaign_id=pk)

    @extend_schema(summary="Where a campaign's gifts came from", responses={200: CampaignSourcesSerializer},
                   description="The campaign's counted gifts (CONFIRMED, each for what was kept after any partial refund: "
                               "the gifts its `raised_cents` counts) per `source_code` and per link (`utm_source`, "
                               "`utm_medium` and `utm_campaign` together), each with its gifts, distinct donors, money "
                               "raised and share of the total; null is the group of gifts without one. Most raised first, "
                               f"at most {CAMPAIGN_SOURCES_LIMIT} groups each; the rest are summed in `source_codes_others` "
                               "and `utm_others`.")
    @action(detail=True, methods=["get"])
    def sources(self, request, pk=None):
        self.get_row(pk)
        found = campaign_sources(organisation=request.organisation, campaign_id=pk, limit=CAMPAIGN_SOURCES_LIMIT)
        body = found | {"object": "campaign_sources", "currency": request.organisation.currency}
        return Response({name: body[name] for name in CAMPAIGN_SOURCES_FIELDS})
