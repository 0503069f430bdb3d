"""The billing engine against localstripe and PostgreSQL: a due CARD plan is charged
once per period through the same recording path as any card gift."""
from __future__ import annotations

import datetime as dt

import pytest

from donations.models import Donation
from payments import billing
from payments.models import Payment, PaymentKind, PaymentStatus, RecurringPlan
from tests.recurring.helpers import at, card_plan, connect, make_donor, plan_intents
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("localstripe")


@pytest.mark.django_db
def test_a_due_card_plan_is_charged_once_recorded_and_moves_to_its_next_date(org):
    connect(org)
    donor = make_donor(org, email="monthly@example.com")
    plan = card_plan(org, donor, amount_cents=2500, start=dt.date(2027, 1, 31), revenue_code="MONTHLY-GIVING")
    assert (plan.status, plan.next_bill_date, plan.due_on) == ("ACTIVE", dt.date(2027, 1, 31), dt.date(2027, 1, 31))
    # Not due the day before.
    assert billing.billing_run(now=at(dt.date(2027, 1, 30))) == {}
    counts = billing.billing_run(now=at(dt.date(2027, 1, 31)))
    assert counts == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date, plan.status) == (1, dt.date(2027, 2, 28), "ACTIVE")
    gift = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert (gift.status, gift.source, gift.amount_cents, gift.recurring_period) == ("CONFIRMED", "STRIPE", 2500, dt.date(2027, 1, 31))
    assert gift.donor_id == donor.id and gift.donation_date == dt.date(2027, 1, 31) and gift.revenue_code == "MONTHLY-GIVING"
    assert gift.fee_cents and gift.stripe_charge_id
    payment = Payment.objects.get(plan=plan)
    assert (payment.kind, payment.status, payment.period, payment.attempt_key) == (
        PaymentKind.RECURRING, PaymentStatus.SUCCEEDED, dt.date(2027, 1, 31), f"plan:{plan.id}:2027-01-31")
    # Running again the same day charges nothing.
    assert billing.billing_run(now=at(dt.date(2027, 1, 31), 15)) == {}
    # 28 Feb, then 31 Mar (anchored to the 31st, not drifting to the 28th).
    assert billing.billing_run(now=at(dt.date(2027, 2, 28))) == {"charged": 1}
    plan.refresh_from_db()
    assert plan.next_bill_date == dt.date(2027, 3, 31)
    assert billing.billing_run(now=at(dt.date(2027, 3, 31))) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date) == (3, dt.date(2027, 4, 30))
    periods = sorted(Donation.objects.filter(organisation=org, recurring_plan_id=plan.id).values_list("recurring_period", flat=True))
    assert periods == [dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31)]
    intents = plan_intents(plan)
    assert len(intents) == 3 and all(i["status"] == "succeeded" and i["amount"] == 2500 for i in intents)
    assert Event.objects.filter(organisation=org, type="recurring_plan.updated", data__id=plan.id).count() >= 3
    assert Event.objects.filter(organisation=org, type="donation.created").count() == 3


@pytest.mark.django_db
def test_a_plan_with_a_number_of_payments_ends_after_the_last(org):
    connect(org)
    donor = make_donor(org, email="twice@example.com")
    plan = card_plan(org, donor, frequency="WEEKLY", start=dt.date(2027, 5, 3), max_payments=2)
    assert billing.billing_run(now=at(dt.date(2027, 5, 3))) == {"charged": 1}
    assert billing.billing_run(now=at(dt.date(2027, 5, 10))) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.next_bill_date, plan.due_on, plan.payments_made) == ("ENDED", None, None, 2)
    assert Event.objects.filter(organisation=org, type="recurring_plan.ended", data__id=plan.id).exists()
    assert billing.billing_run(now=at(dt.date(2027, 5, 17))) == {}
    assert len(plan_intents(plan)) == 2


# --- the organisation's day ---------------------------------------------------------------

@pytest.mark.django_db
def test_a_plan_is_due_on_its_date_in_the_organisations_time_zone(org):
    connect(org)
    plan = card_plan(org, make_donor(org, email="early@example.com"), start=dt.date(2027, 2, 1))
    # 31 Jan 12:59 UTC is 31 Jan 23:59 in Sydney (UTC+11): not due. 13:00 UTC is 1 Feb 00:00 there: due.
    assert billing.billing_run(now=dt.datetime(2027, 1, 31, 12, 59, tzinfo=dt.timezone.utc)) == {}
    assert billing.billing_run(now=dt.datetime(2027, 1, 31, 13, 0, tzinfo=dt.timezone.utc)) == {"charged": 1}
    assert Donation.objects.get(organisation=org, recurring_plan_id=plan.id).donation_date == dt.date(2027, 2, 1)


# --- sign-up on a donation form ------------------------------------------------------------

@pytest.mark.django_db
def test_a_recurring_form_gift_saves_the_card_starts_the_plan_and_is_its_first_period(org, django_capture_on_commit_callbacks):
    from django.utils import timezone

    from payments import services as payments
    from tests.payments.helpers import make_form, pay

    connect(org)
    form = make_form(org, allow_recurring=True, recurring_frequencies=["MONTHLY", "WEEKLY"])
    start = payments.payment_start(
        organisation=org, kind=PaymentKind.FORM, attempt_key="att_recurring_signup_1", frequency="WEEKLY",
        donor_details={"first_name": "Rae", "last_name": "Gular", "email": "rae@example.com"},
        parts=[payments.PartSpec(recipient_organisation=org, amount_cents=3000)], form=form)
    assert start.stripe_customer_id and start.stripe_customer_id.startswith("cus_")
    assert pay(start)["paymentIntent"]["status"] == "succeeded"
    payment = payments.payment_sync(payment_intent_id=start.payment_intent_id)
    plan = RecurringPlan.objects.get(organisation=org)
    today = timezone.localdate()
    assert (plan.status, plan.frequency, plan.amount_cents, plan.payment_method, plan.form_id) == (
        "ACTIVE", "WEEKLY", 3000, "CARD", form.id)
    assert (plan.start_date, plan.payments_made, plan.next_bill_date) == (today, 1, today + dt.timedelta(days=7))
    assert plan.stripe_customer_id == start.stripe_customer_id and plan.stripe_payment_method_id.startswith("pm_")
    assert (payment.plan_id, payment.period) == (plan.id, today)
    first = Donation.objects.get(organisation=org)
    assert (first.recurring_plan_id, first.recurring_period, first.donor_id) == (plan.id, today, plan.donor_id)
    assert Event.objects.filter(organisation=org, type="recurring_plan.created", data__id=plan.id).exists()
    # The saved card is charged off-session a week later, the donor away.
    assert billing.billing_run(now=at(today + dt.timedelta(days=7))) == {"charged": 1}
    assert Donation.objects.filter(organisation=org, recurring_plan_id=plan.id, status="CONFIRMED").count() == 2
    # A frequency the form does not offer, or on a form without recurring, is refused before any intent.
    from together.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        payments.payment_start(
            organisation=org, kind=PaymentKind.FORM, attempt_key="att_recurring_signup_2", frequency="ANNUALLY",
            donor_details={"email": "rae@example.com"},
            parts=[payments.PartSpec(recipient_organisation=org, amount_cents=3000)], form=form)
    assert refused.value.param == "frequency"
