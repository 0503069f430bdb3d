from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action

from payments import recurring
from payments.api.filters import RecurringPlanFilterSet
from payments.api.serializers import (
    RecurringPlanCancelInput, RecurringPlanCreateInput, RecurringPlanPauseInput, RecurringPlanResumeInput,
    RecurringPlanSerializer, RecurringPlanUpdateInput,
)
from payments.models import RecurringPlan
from payments.representations import PLAN_FIELDS, render_plan
from together.api.docs import LIST_PARAMETERS
from together.api.schema import list_envelope
from together.api.views import OrganisationViewSet

RecurringPlanList = list_envelope("RecurringPlanList", RecurringPlanSerializer)


@extend_schema_view(
    list=extend_schema(summary="List recurring plans", parameters=LIST_PARAMETERS, responses={200: RecurringPlanList},
                       description="Newest first. Filter by `status`, `frequency`, `payment_method`, `donor_id`, "
                                   "`campaign_id` and the next bill date (`next_bill_date[gte]`, `[lte]`, …)."),
    retrieve=extend_schema(summary="Retrieve a recurring plan", responses={200: RecurringPlanSerializer}),
)
class RecurringPlanViewSet(OrganisationViewSet):
    """Recurring plans: a donor's regular gift, charged off-session (CARD) or expected
    from a bank standing order (MANUAL), once per period."""

    schema_tags = ["recurring-plans"]
    fields = PLAN_FIELDS
    filtersets = {"list": RecurringPlanFilterSet}

    def get_base_queryset(self):
        return RecurringPlan.objects

    def object_label(self) -> str:
        return "Recurring plan"

    def render(self, row):
        return render_plan(row)

    @extend_schema(summary="Create a recurring plan", request=RecurringPlanCreateInput, responses={201: RecurringPlanSerializer},
                   description="A MANUAL plan (a bank standing order staff confirm), or a CARD plan on a card already saved "
                               "to the donor's Stripe customer (a donor signing up on a donation form makes one by itself). "
                               "The plan is ACTIVE; its first period is `start_date`. Each charge checks the donor's cap "
                               "first and is never partial. Rules on several fields or on today's date are 400 "
                               "`validation_failed` with a `reason`: a CARD plan under the card minimum of 50 cents "
                               "(`below_card_minimum`, `param: amount_cents`), a CARD plan starting before today "
                               "(`card_plan_start_past`), a plan starting more than a year ago (`start_too_early`), "
                               "`end_date` before `start_date` (`end_before_start`), a CARD plan without its Stripe "
                               "customer and saved card (`card_details_missing`, `payment_method_unknown`, "
                               "`payment_method_not_customers`), a MANUAL plan with one (`manual_plan_card`).")
    def create(self, request):
        data = self.validate_input(RecurringPlanCreateInput)
        plan = recurring.plan_create(organisation=request.organisation, actor=request.actor, **data)
        return self.respond_object(plan.id, status.HTTP_201_CREATED)

    @extend_schema(summary="Update a recurring plan", request=RecurringPlanUpdateInput, responses={200: RecurringPlanSerializer},
                   description="Send only the fields to change. A CANCELED or ENDED plan cannot change (400 "
                               "`validation_failed`, `param: status`). An `amount_cents` under a CARD plan's 50-cent minimum "
                               "(`below_card_minimum`), an `end_date` before today or the start "
                               "(`end_before_start`), `max_payments` below the payments already made "
                               "(`payments_already_made`) and a `next_bill_date` before today (`date_in_past`) are 400 "
                               "`validation_failed` with that `reason`.")
    def partial_update(self, request, pk=None):
        data = self.validate_input(RecurringPlanUpdateInput, partial=True)
        recurring.plan_update(organisation=request.organisation, actor=request.actor, plan_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Pause a recurring plan", request=RecurringPlanPauseInput, responses={200: RecurringPlanSerializer},
                   description="Nothing is billed until it is resumed; a failing charge's retries stop. An ACTIVE or "
                               "PAST_DUE plan may be paused (otherwise 400 `validation_failed`, `param: status`).")
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        data = self.validate_input(RecurringPlanPauseInput, require_body=False)
        recurring.plan_pause(organisation=request.organisation, actor=request.actor, plan_id=pk, **data)
        return self.respond_object(pk)

    @extend_schema(summary="Resume a recurring plan", request=None, responses={200: RecurringPlanSerializer},
                   description="A PAUSED plan is ACTIVE again and billed from its first period date on or after today "
                               "(periods that fell while paused are not charged). No body needed.")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        self.validate_input(RecurringPlanResumeInput, require_body=False)
        recurring.plan_resume(organisation=request.organisation, actor=request.actor, plan_id=pk)
        return self.respond_object(pk)

    @extend_schema(summary="Cancel a recurring plan", request=RecurringPlanCancelInput, responses={200: RecurringPlanSerializer},
                   description="Final: nothing more is billed; gifts already made stay. A CANCELED or ENDED plan cannot be "
                               "cancelled (400 `validation_failed`, `param: status`).")
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        data = self.validate_input(RecurringPlanCancelInput, require_body=False)
        recurring.plan_cancel(organisation=request.organisation, actor=request.actor, plan_id=pk, **data)
        return self.respond_object(pk)
