from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action

from engage import services
from engage.api.filters import CheckoutLinkFilterSet, FormFilterSet
from engage.api.serializers import (
    CheckoutLinkCancelInput, CheckoutLinkCreateInput, CheckoutLinkSerializer, DonationFormSerializer, FormArchiveInput,
    FormCreateInput, FormUpdateInput,
)
from engage.models import CheckoutLink, DonationForm
from engage.representations import FORM_FIELDS, LINK_FIELDS, render_form, render_link
from together.api.docs import LIST_PARAMETERS
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet

FormList = list_envelope("DonationFormList", DonationFormSerializer)
CheckoutLinkList = list_envelope("CheckoutLinkList", CheckoutLinkSerializer)


# The rules tying a form's fields together (services._check_form), as the document states them.
FORM_RULES = ("The fields are checked together, on the form as it would be saved: 400 `validation_failed` with a "
              "`reason` for `maximum_cents` below the minimum (`maximum_below_minimum`), no suggested amount between "
              "the minimum and the maximum while `allow_custom` is off (`no_amount_available`), a `default_amount_cents` "
              "that is not one of those amounts (`default_not_offered`), `allow_recurring` without "
              "`recurring_frequencies` (`recurring_without_frequency`).")


@extend_schema_view(
    list=extend_schema(summary="List donation forms", parameters=LIST_PARAMETERS, responses={200: FormList}),
    retrieve=extend_schema(summary="Retrieve a donation form", responses={200: DonationFormSerializer}),
)
class FormViewSet(OrganisationViewSet):
    """Donation forms: the public pages /donate/{slug}."""

    schema_tags = ["forms"]
    fields = FORM_FIELDS
    filtersets = {"list": FormFilterSet}

    def get_base_queryset(self):
        return DonationForm.objects

    def object_label(self) -> str:
        return "Form"

    def render(self, row):
        return render_form(row, currency=self.request.organisation.currency)

    @extend_schema(summary="Create a donation form", request=FormCreateInput, responses={201: DonationFormSerializer},
                   description="A new form is DRAFT unless `status` says otherwise; ACTIVE (taking gifts) needs Stripe connected "
                               "(400 `validation_failed`, `param: stripe_account`). A slug already used anywhere in Together is "
                               "409 `conflict`. " + FORM_RULES)
    def create(self, request):
        data = self.validate_input(FormCreateInput)
        form = services.form_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(form.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Update a donation form", request=FormUpdateInput, responses={200: DonationFormSerializer},
                   description="Send only the fields to change. `status` moves between DRAFT, ACTIVE and PAUSED; an ARCHIVED "
                               "form cannot change (400 `validation_failed`, reason `form_archived`). The slug changes only "
                               "while DRAFT (reason `slug_permanent`). " + FORM_RULES)
    def partial_update(self, request, pk=None):
        data = self.validate_input(FormUpdateInput, partial=True)
        services.form_update(organisation=request.organisation, actor=request.actor, form_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Archive a donation form", request=None, responses={200: DonationFormSerializer},
                   description="Final: the page answers 404 from now on and the slug stays taken. Archiving an archived "
                               "form changes nothing. No body needed.")
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        self.validate_input(FormArchiveInput, require_body=False)
        services.form_archive(organisation=request.organisation, actor=request.actor, form_id=pk)
        return self.respond_object(pk)


@extend_schema_view(
    list=extend_schema(summary="List checkout links", parameters=LIST_PARAMETERS, responses={200: CheckoutLinkList}),
    retrieve=extend_schema(summary="Retrieve a checkout link", responses={200: CheckoutLinkSerializer}),
)
class CheckoutLinkViewSet(OrganisationViewSet):
    """Checkout links: one donor, one exact amount, one expiry, paid once at /c/{code}."""

    schema_tags = ["checkout-links"]
    fields = LINK_FIELDS
    filtersets = {"list": CheckoutLinkFilterSet}

    def get_base_queryset(self):
        return CheckoutLink.objects

    def object_label(self) -> str:
        return "Checkout link"

    def render(self, row):
        return render_link(row)

    @extend_schema(summary="Create a checkout link", request=CheckoutLinkCreateInput, responses={201: CheckoutLinkSerializer},
                   description="Needs Stripe connected (400 `validation_failed`, `param: stripe_account`) and a donor with an "
                               "email (`param: donor_id`, reason `donor_email_missing`). Send the donor `url`: the page shows "
                               "the amount and the donor's name, and takes one payment. `expires_at` is more than 5 "
                               "minutes and at most the allowed number of days from now (400 `validation_failed`, "
                               "`param: expires_at`, reason `expiry_too_soon` or `expiry_too_late`).")
    def create(self, request):
        data = self.validate_input(CheckoutLinkCreateInput)
        link = services.checkout_link_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(link.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Cancel a checkout link", request=None, responses={200: CheckoutLinkSerializer},
                   description="The page refuses payment from now on. A cancelled link stays cancelled (200, unchanged); "
                               "a COMPLETED or EXPIRED link cannot be cancelled (409 `conflict`). No body needed.")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        self.validate_input(CheckoutLinkCancelInput, require_body=False)
        services.checkout_link_cancel(organisation=request.organisation, actor=request.actor, link_id=pk)
        return self.respond_object(pk)
