from __future__ import annotations

import datetime as dt

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from compliance import services
from compliance.api.filters import ComplianceBreachFilterSet, DisclosureObligationFilterSet, ElectionPeriodFilterSet, RevenueCodeFilterSet
from compliance.api.serializers import (
    ComplianceBreachSerializer, ComplianceSettingsSerializer, ComplianceSettingsUpdateInput, DisclosureObligationSerializer,
    DonorComplianceSerializer, ElectionPeriodCreateInput, ElectionPeriodSerializer, ObligationLodgeInput, RevenueCodeCreateInput,
    RevenueCodeSerializer, RevenueCodeUpdateInput,
)
from compliance.models import ComplianceBreach, ComplianceSettings, DisclosureObligation, ElectionPeriod, Recompute, RevenueCode
from compliance.representations import (
    BREACH_FIELDS, ELECTION_FIELDS, OBLIGATION_FIELDS, RECOMPUTE_FIELDS, REVENUE_CODE_FIELDS, SETTINGS_FIELDS, render_breach,
    render_election, render_obligation, render_recompute, render_revenue_code, render_settings,
)
from compliance.selectors import donor_compliance
from donations.models import Donor
from together.api.docs import LIST_PARAMETERS
from together.api.schema import list_envelope
from together.api.views import ApiView, OrganisationViewSet
from together.exceptions import NotFound, ValidationFailed

COMPLIANCE_TAGS = ["compliance"]


@extend_schema_view(
    list=extend_schema(summary="List revenue codes", parameters=LIST_PARAMETERS, responses={200: list_envelope("RevenueCodeList", RevenueCodeSerializer)}),
    retrieve=extend_schema(summary="Retrieve a revenue code", responses={200: RevenueCodeSerializer}),
)
class RevenueCodeViewSet(OrganisationViewSet):
    """The organisation's revenue-code library: each code maps to a jurisdiction."""

    schema_tags = COMPLIANCE_TAGS
    fields = REVENUE_CODE_FIELDS
    filtersets = {"list": RevenueCodeFilterSet}

    def get_base_queryset(self):
        return RevenueCode.objects

    def render_rows(self, rows):
        ids = [r["id"] for r in rows]
        latest = {}
        for rc in Recompute.objects.for_organisation(self.request.organisation).filter(revenue_code_id__in=ids).order_by("created_at").values(*RECOMPUTE_FIELDS, "revenue_code_id"):
            latest[rc["revenue_code_id"]] = render_recompute(rc)
        return [render_revenue_code(r, latest.get(r["id"])) for r in rows]

    @extend_schema(summary="Add a revenue code", request=RevenueCodeCreateInput, responses={201: RevenueCodeSerializer},
                   description="Codes are matched case-insensitively; an existing code is 409 `conflict` naming it. Without `jurisdiction`, the code takes the organisation's default and stays unreviewed.")
    def create(self, request):
        data = self.validate_input(RevenueCodeCreateInput)
        row = services.revenue_code_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(row.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Map or describe a revenue code", request=RevenueCodeUpdateInput, responses={200: RevenueCodeSerializer},
                   description="Saving a new jurisdiction applies at once to new gifts; every existing gift with the code is recomputed in the background (see `last_recompute` for progress and what changed: obligations opened or cancelled, breaches raised).")
    def partial_update(self, request, pk=None):
        data = self.validate_input(RevenueCodeUpdateInput, partial=True)
        services.revenue_code_update(organisation=request.organisation, actor=request.actor, revenue_code_id=pk,
                                     jurisdiction=data.get("jurisdiction"), description=data.get("description", ...))
        return self.respond_object(pk)

    @extend_schema(summary="Archive a revenue code", request=None, responses={200: RevenueCodeSerializer},
                   description="Archived codes leave autofill. Gifts with the code keep counting under its mapping, and a new gift carrying it is still accepted and counted: dropping it would under-count.")
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        services.revenue_code_archive(organisation=request.organisation, actor=request.actor, revenue_code_id=pk)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List disclosure obligations", parameters=LIST_PARAMETERS,
                       responses={200: list_envelope("DisclosureObligationList", DisclosureObligationSerializer)}),
    retrieve=extend_schema(summary="Retrieve a disclosure obligation", responses={200: DisclosureObligationSerializer}),
)
class DisclosureObligationViewSet(OrganisationViewSet):
    schema_tags = COMPLIANCE_TAGS
    fields = OBLIGATION_FIELDS
    filtersets = {"list": DisclosureObligationFilterSet}

    def get_base_queryset(self):
        return DisclosureObligation.objects

    def render(self, row):
        return render_obligation(row)

    @extend_schema(summary="Mark an obligation lodged", request=ObligationLodgeInput, responses={200: DisclosureObligationSerializer},
                   description="Records that the disclosure was lodged with the regulator: status LODGED, with your lodgement "
                               "`reference` and `lodged_date` (not in the future). Only an OPEN obligation can be lodged; any other "
                               "is 400 `validation_failed` with `param: status`. Fires `disclosure_obligation.updated`.")
    @action(detail=True, methods=["post"])
    def lodge(self, request, pk=None):
        data = self.validate_input(ObligationLodgeInput)
        services.obligation_lodge(organisation=request.organisation, actor=request.actor, obligation_id=pk, **data)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List compliance breaches", parameters=LIST_PARAMETERS,
                       responses={200: list_envelope("ComplianceBreachList", ComplianceBreachSerializer)}),
    retrieve=extend_schema(summary="Retrieve a compliance breach", responses={200: ComplianceBreachSerializer}),
)
class ComplianceBreachViewSet(OrganisationViewSet):
    schema_tags = COMPLIANCE_TAGS
    fields = BREACH_FIELDS
    filtersets = {"list": ComplianceBreachFilterSet}

    def get_base_queryset(self):
        return ComplianceBreach.objects

    def render(self, row):
        return render_breach(row)


@extend_schema_view(
    list=extend_schema(summary="List election periods", parameters=LIST_PARAMETERS,
                       responses={200: list_envelope("ElectionPeriodList", ElectionPeriodSerializer)}),
    retrieve=extend_schema(summary="Retrieve an election period", responses={200: ElectionPeriodSerializer}),
)
class ElectionPeriodViewSet(OrganisationViewSet):
    schema_tags = COMPLIANCE_TAGS
    fields = ELECTION_FIELDS
    filtersets = {"list": ElectionPeriodFilterSet}

    def get_base_queryset(self):
        return ElectionPeriod.objects

    def render(self, row):
        return render_election(row)

    @extend_schema(summary="Record an election period", request=ElectionPeriodCreateInput, responses={201: ElectionPeriodSerializer},
                   description="From the writ to one week after polling day. Gifts from 1 January 2027 inside it fall due within 7 days, or 24 hours from the Saturday before polling day; the strictest overlapping period wins.")
    def create(self, request):
        data = self.validate_input(ElectionPeriodCreateInput)
        election = services.election_period_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(election.id, status.HTTP_201_CREATED)


class ComplianceSettingsView(ApiView):
    schema_tags = COMPLIANCE_TAGS
    validate_input = OrganisationViewSet.validate_input  # ApiView has no input helper of its own

    def _respond(self, request):
        services.compliance_settings_get(organisation=request.organisation)
        row = ComplianceSettings.objects.filter(organisation=request.organisation).values(*SETTINGS_FIELDS).get()
        return Response(render_settings(row))

    @extend_schema(operation_id="compliance_settings_retrieve", summary="Compliance settings", responses={200: ComplianceSettingsSerializer},
                   description="The organisation's compliance settings: the default jurisdiction of gifts without a revenue code, "
                               "the entity type and the cap alert percentages (AMBER, RED, CRITICAL). Created with the defaults on first read.")
    def get(self, request):
        return self._respond(request)

    @extend_schema(operation_id="compliance_settings_update", summary="Update compliance settings", request=ComplianceSettingsUpdateInput,
                   responses={200: ComplianceSettingsSerializer},
                   description="`default_jurisdiction` applies to gifts without a revenue code (FEDERAL unless changed; set UNREGULATED for the reference's behaviour); changing it recomputes them in the background. Alert percentages apply to existing aggregates at once.")
    def patch(self, request):
        data = self.validate_input(ComplianceSettingsUpdateInput, partial=True)
        services.compliance_settings_update(organisation=request.organisation, actor=request.actor, **data)
        return self._respond(request)


class DonorComplianceView(ApiView):
    schema_tags = ["donors"]
    extra_query_params = ("period",)

    @extend_schema(
        operation_id="donor_compliance",
        summary="A donor's compliance position",
        description="Per jurisdiction, for the period containing `period` (a date, default today): the total counted (CONFIRMED monetary and in-kind gifts at fair value), the threshold and whether it is passed, the cap and the room left, and the alert level.",
        parameters=[OpenApiParameter("period", OpenApiTypes.DATE, required=False, description="A date inside the period to report; default today.")],
        responses={200: DonorComplianceSerializer},
    )
    def get(self, request, pk):
        donor = Donor.objects.for_organisation(request.organisation).filter(pk=pk).first()
        if donor is None:
            raise NotFound("Donor not found.")
        raw = request.query_params.get("period")
        if raw:
            try:
                as_of = dt.date.fromisoformat(raw)
            except ValueError:
                raise ValidationFailed("period must be a date, YYYY-MM-DD.", param="period") from None
        else:
            as_of = timezone.localdate()
        return Response({
            "object": "donor_compliance", "donor_id": donor.id, "as_of": as_of.isoformat(), "currency": request.organisation.currency,
            "data": donor_compliance(organisation=request.organisation, donor=donor, as_of=as_of),
        })
