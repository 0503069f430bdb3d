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
