"""Recurring plans on the API: input serializers check shape and types,
payments.recurring checks the rules; the output serializer documents what
payments/representations.py renders."""
from __future__ import annotations

from rest_framework import serializers

from donations.api.serializers import REVENUE_CODE, SOURCE_HELP, SourceFieldsInput
from engage.models import MAXIMUM_CHARGE_CENTS
from engage.models import Frequency
from payments.models import PLAN_RETRY_DAYS, PauseReason, PlanPaymentMethod, PlanStatus
from payments.recurring import CARD_MINIMUM_CENTS, MAX_PAYMENTS_LIMIT
from together.api.fields import IdField, PatternCharField, StrictCharField, StrictChoiceField, StrictDateField, StrictIntegerField

AMOUNT_HELP = (f"The amount of each gift in cents: at least {CARD_MINIMUM_CENTS} for a CARD plan (Stripe's smallest charge), "
               "1 for a MANUAL one.")


class RecurringPlanCreateInput(SourceFieldsInput):
    """The source fields (`source_code`, `referrer`, `utm_*`) are optional; every gift of the plan carries them."""

    donor_id = IdField(help_text="A donor of this organisation.")
    amount_cents = StrictIntegerField(min_value=1, max_value=MAXIMUM_CHARGE_CENTS, help_text=AMOUNT_HELP)
    frequency = StrictChoiceField(choices=Frequency.choices, help_text="How often the donor gives.")
    payment_method = StrictChoiceField(
        choices=PlanPaymentMethod.choices,
        help_text="CARD: charged off-session through Stripe on the donor's saved card (`stripe_customer_id`, "
                  "`stripe_payment_method_id`; Stripe connected). MANUAL: a bank standing order; each period an expected "
                  "PENDING donation is made for staff to confirm or mark missed.")
    start_date = StrictDateField(help_text="The first period's date; the schedule is anchored to it (31 Jan → 28/29 Feb → 31 Mar). "
                                           "Today or later for CARD; MANUAL may start up to a year ago (its first expected "
                                           "gift is then the first period date from today).")
    end_date = StrictDateField(required=False, allow_null=True, help_text="No period after this date is billed.")
    max_payments = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_PAYMENTS_LIMIT,
                                      help_text="The plan ends after this many payments.")
    campaign_id = IdField(required=False, allow_null=True, help_text="An ACTIVE campaign of this organisation.")
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text="Stamped on every gift; a new code joins the library.", **REVENUE_CODE)
    stripe_customer_id = StrictCharField(required=False, allow_null=True, max_length=255,
                                         help_text="CARD: the donor's Stripe customer (`cus_…`).")
    stripe_payment_method_id = StrictCharField(required=False, allow_null=True, max_length=255,
                                               help_text="CARD: a card saved to that customer (`pm_…`).")


class RecurringPlanUpdateInput(serializers.Serializer):
    amount_cents = StrictIntegerField(required=False, min_value=1, max_value=MAXIMUM_CHARGE_CENTS,
                                      help_text="From the next charge on.")
    frequency = StrictChoiceField(choices=Frequency.choices, required=False,
                                  help_text="Re-anchors the schedule at the next bill date.")
    next_bill_date = StrictDateField(required=False, help_text="Today or later; re-anchors the schedule. A failing "
                                                               "period's retries stop and a PAST_DUE plan is ACTIVE again.")
    end_date = StrictDateField(required=False, allow_null=True, help_text="Today or later; null: no end date.")
    max_payments = StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_PAYMENTS_LIMIT,
                                      help_text="At least the payments already made; null: no limit.")
    campaign_id = IdField(required=False, allow_null=True, help_text="An ACTIVE campaign of this organisation, or null.")
    revenue_code = PatternCharField(required=False, allow_null=True, allow_blank=True, max_length=100,
                                    help_text="Stamped on the gifts from now on; a new code joins the library.", **REVENUE_CODE)


class RecurringPlanPauseInput(serializers.Serializer):
    reason = StrictCharField(required=False, allow_null=True, max_length=40,
                             help_text="STAFF (default), DONOR, or a code of yours in capitals (A-Z, 0-9, _). "
                                       "CAP_REACHED is the billing engine's.")
    detail = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=2000, help_text="A note for staff.")


class RecurringPlanResumeInput(serializers.Serializer):
    """No fields: an empty body (or none). Anything sent is an unknown field."""


class RecurringPlanCancelInput(serializers.Serializer):
    reason = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=200,
                             help_text="Why (kept as `cancel_reason`).")


class RecurringPlanSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The plan's id.")
    object = serializers.ChoiceField(choices=[("recurring_plan", "recurring_plan")], help_text="Always `recurring_plan`.")
    donor_id = serializers.CharField(help_text="The donor who gives.")
    campaign_id = serializers.CharField(allow_null=True, help_text="The campaign its gifts count toward.")
    form_id = serializers.CharField(allow_null=True, help_text="The donation form the donor signed up on, if any.")
    amount_cents = serializers.IntegerField(help_text="Each gift's amount, in cents.")
    currency = serializers.CharField(help_text="The organisation's currency.")
    frequency = serializers.ChoiceField(choices=Frequency.choices, help_text="How often the donor gives.")
    status = serializers.ChoiceField(
        choices=PlanStatus.choices,
        help_text="ACTIVE (billed on each period date), PAUSED (see `pause_reason`), PAST_DUE (a charge failed and only "
                  f"the last retry is left, or the card needs the donor to authenticate), CANCELED, ENDED (final).")
    payment_method = serializers.ChoiceField(
        choices=PlanPaymentMethod.choices,
        help_text="CARD: charged off-session through Stripe. MANUAL: a bank standing order; an expected PENDING donation "
                  "each period for staff to confirm or mark missed.")
    start_date = serializers.DateField(help_text="The first period's date.")
    next_bill_date = serializers.DateField(allow_null=True, help_text="The next period's date (null once cancelled or ended).")
    end_date = serializers.DateField(allow_null=True, help_text="No period after this date is billed.")
    max_payments = serializers.IntegerField(allow_null=True, help_text="The plan ends after this many payments.")
    payments_made = serializers.IntegerField(help_text="Periods paid (CARD) or confirmed (MANUAL).")
    pause_reason = serializers.CharField(
        allow_null=True, help_text=f"When PAUSED: {', '.join(PauseReason.values)} or a code of yours. CAP_REACHED: the "
                                   "donor's cap has no room for the next gift; the plan resumes by itself in the first "
                                   "period with room.")
    pause_detail = serializers.CharField(allow_null=True, help_text="Why, for people (for CAP_REACHED: the room left).")
    revenue_code = serializers.CharField(allow_null=True, help_text="Stamped on each gift.")
    stripe_customer_id = serializers.CharField(allow_null=True, help_text="CARD: the donor's Stripe customer.")
    stripe_payment_method_id = serializers.CharField(allow_null=True, help_text="CARD: the saved card charged.")
    failure_count = serializers.IntegerField(
        help_text=f"Failed charges of the period being billed; retried {', '.join(map(str, PLAN_RETRY_DAYS))} days after "
                  "the first, CANCELED when the last retry fails.")
    last_failure_at = serializers.DateTimeField(allow_null=True, help_text="When the last charge failed.")
    last_failure_message = serializers.CharField(allow_null=True, help_text="Why, as Stripe or the engine said it.")
    last_failure_code = serializers.CharField(allow_null=True, help_text="Stripe's code, e.g. card_declined, authentication_required.")
    retry_at = serializers.DateField(allow_null=True, help_text="The date of the next retry while a charge is failing.")
    cancel_reason = serializers.CharField(allow_null=True, help_text="Why it was cancelled (people's words, or the "
                                                                     "engine's after the last retry failed).")
    canceled_at = serializers.DateTimeField(allow_null=True, help_text="When it was cancelled.")
    ended_at = serializers.DateTimeField(allow_null=True, help_text="When it ended (its payments made, or its end date passed).")
    source_code = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["source_code"] + " Carried onto each gift of the plan.")
    referrer = serializers.CharField(allow_null=True, help_text=SOURCE_HELP["referrer"] + " Carried onto each gift of the plan.")
    utm_source = serializers.CharField(allow_null=True, help_text="The utm_source of the link the donor signed up through; carried onto each gift.")
    utm_medium = serializers.CharField(allow_null=True, help_text="The utm_medium of the link the donor signed up through; carried onto each gift.")
    utm_campaign = serializers.CharField(allow_null=True, help_text="The utm_campaign of the link the donor signed up through; carried onto each gift.")
    created_at = serializers.DateTimeField(help_text="When it was created.")
    updated_at = serializers.DateTimeField(help_text="When it last changed.")
