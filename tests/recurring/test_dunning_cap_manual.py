"""What happens when a charge cannot be made: dunning to CANCELED, a card that needs
the donor, a cap without room (and the automatic resume), and MANUAL plans'
expected gifts. Days pass by giving each billing run its `now`."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from donations import services as donations
from donations.models import Donation
from organisations.models import AuditEntry, Role
from organisations.services import membership_set, user_get_or_create
from payments import billing, recurring
from payments.models import Payment, PaymentStatus
from tests.payments.helpers import NSW_CAP, nsw_code
from tests.recurring.helpers import SYSTEM, at, card_plan, connect, make_donor, manual_plan, plan_intents, saved_card, swap_card
from tests.support.stripe import THREE_D_SECURE_CARD, TEST_CARD
from together.exceptions import ValidationFailed
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("localstripe")
# Saved to a customer without trouble, declined when charged (Stripe's test card, as localstripe knows it).
DECLINED_CARD = "4000000000000341"


def admin(org, email="admin@example.org"):
    membership_set(organisation=org, user=user_get_or_create(email=email, password="x"), role=Role.ADMIN)


def events(org, plan, type):
    return list(Event.objects.filter(organisation=org, type=type, data__id=plan.id).order_by("occurred_at", "id"))


@pytest.mark.django_db
def test_a_declined_card_is_retried_on_days_1_3_5_7_then_past_due_then_canceled(org, django_capture_on_commit_callbacks):
    connect(org)
    admin(org)
    plan = card_plan(org, make_donor(org, email="declined@example.com"), start=dt.date(2027, 3, 10), number=DECLINED_CARD)
    steps = []
    for day, expected in [(10, "failed"), (11, "failed"), (13, "failed"), (15, "failed"), (17, "canceled")]:
        with django_capture_on_commit_callbacks(execute=True):
            # The day before a retry nothing happens.
            if day > 10:
                assert billing.billing_run(now=at(dt.date(2027, 3, day - 1))) in ({}, {"failed": 1}) or day == 11
            assert billing.billing_run(now=at(dt.date(2027, 3, day))) == {expected: 1}
        plan.refresh_from_db()
        steps.append((day, plan.status, plan.failure_count, plan.retry_at))
    assert steps == [
        (10, "ACTIVE", 1, dt.date(2027, 3, 11)),
        (11, "ACTIVE", 2, dt.date(2027, 3, 13)),
        (13, "ACTIVE", 3, dt.date(2027, 3, 15)),
        (15, "PAST_DUE", 4, dt.date(2027, 3, 17)),
        (17, "CANCELED", 5, None),
    ]
    assert plan.canceled_at and "last retry" in plan.cancel_reason and plan.next_bill_date is None and plan.due_on is None
    assert plan.last_failure_code == "card_declined" and "declined" in plan.last_failure_message
    # One PaymentIntent for the period, tried five times; nothing was recorded as money.
    intents = plan_intents(plan)
    assert len(intents) == 1 and intents[0]["status"] == "requires_payment_method"
    payment = Payment.objects.get(plan=plan)
    assert payment.status == PaymentStatus.FAILED and payment.payment_intent_id == intents[0]["id"]
    gifts = Donation.objects.filter(organisation=org, recurring_plan_id=plan.id)
    assert gifts.count() == 5 and set(gifts.values_list("status", flat=True)) == {"FAILED"}
    # Each step is an event, an alert (audit entry) and an email to the ADMINs.
    updated = events(org, plan, "recurring_plan.updated")
    assert [e.data["failure_count"] for e in updated] == [1, 2, 3, 4]
    assert [e.data["status"] for e in updated] == ["ACTIVE", "ACTIVE", "ACTIVE", "PAST_DUE"]
    assert len(events(org, plan, "recurring_plan.canceled")) == 1
    alerts = AuditEntry.objects.filter(organisation=org, action="recurring_plan.alert", object_id=plan.id).order_by("created_at")
    assert [a.after["kind"] for a in alerts] == ["payment_failed"] * 3 + ["past_due", "canceled"]
    assert len(mail.outbox) == 5 and all(m.to == ["admin@example.org"] for m in mail.outbox)
    assert "past due" in mail.outbox[3].subject and "cancelled" in mail.outbox[4].subject
    # Nothing more happens.
    assert billing.billing_run(now=at(dt.date(2027, 4, 10))) == {}


@pytest.mark.django_db
def test_a_retry_that_succeeds_pays_the_period_and_the_plan_goes_on(org):
    connect(org)
    plan = card_plan(org, make_donor(org, email="recovers@example.com"), start=dt.date(2027, 3, 10), number=DECLINED_CARD)
    assert billing.billing_run(now=at(dt.date(2027, 3, 10))) == {"failed": 1}
    swap_card(plan, TEST_CARD)  # the donor's bank lets it through now
    assert billing.billing_run(now=at(dt.date(2027, 3, 11))) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.failure_count, plan.retry_at, plan.payments_made, plan.next_bill_date) == (
        "ACTIVE", 0, None, 1, dt.date(2027, 4, 10))
    gift = Donation.objects.get(organisation=org, recurring_plan_id=plan.id, status="CONFIRMED")
    assert gift.recurring_period == dt.date(2027, 3, 10) and gift.donation_date == dt.date(2027, 3, 11)
    assert len(plan_intents(plan)) == 1  # the same intent, confirmed again


@pytest.mark.django_db
def test_a_card_that_needs_the_donor_to_authenticate_is_past_due_at_once(org, django_capture_on_commit_callbacks):
    connect(org)
    admin(org)
    plan = card_plan(org, make_donor(org, email="secure@example.com"), start=dt.date(2027, 3, 10), number=THREE_D_SECURE_CARD)
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.billing_run(now=at(dt.date(2027, 3, 10))) == {"failed": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.last_failure_code, plan.retry_at) == ("PAST_DUE", "authentication_required", dt.date(2027, 3, 17))
    assert "authenticate" in plan.last_failure_message
    assert "authentication" in mail.outbox[0].subject
    assert events(org, plan, "recurring_plan.updated")[-1].data["status"] == "PAST_DUE"
    assert not Donation.objects.filter(organisation=org, recurring_plan_id=plan.id, status="CONFIRMED").exists()
    # No retry before its day; the donor saves a new card: it is charged at the next run.
    assert billing.billing_run(now=at(dt.date(2027, 3, 11))) == {}
    customer, _ = plan.stripe_customer_id, None
    sc_customer, method = saved_card(org, TEST_CARD)
    from payments.recurring import plan_payment_method_update
    from tests.recurring.helpers import stripe_for

    stripe_for(org).v1.payment_methods.detach(method)
    stripe_for(org).v1.payment_methods.attach(method, params={"customer": customer})
    plan_payment_method_update(organisation=org, actor=SYSTEM, plan_id=plan.id, stripe_payment_method_id=method,
                               now=at(dt.date(2027, 3, 11)))
    assert billing.billing_run(now=at(dt.date(2027, 3, 11), 12)) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.payments_made, plan.next_bill_date) == ("ACTIVE", 1, dt.date(2027, 4, 10))
    assert len(plan_intents(plan)) == 1


@pytest.mark.django_db
def test_a_charge_the_cap_has_no_room_for_is_not_made_and_the_plan_resumes_in_the_next_financial_year(
        org, django_capture_on_commit_callbacks):
    connect(org)
    admin(org)
    code = nsw_code(org)  # NSW: $7,900 per donor per financial year
    donor = make_donor(org, email="capped@example.com")
    donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                              amount_cents=NSW_CAP - 80_000, donation_date=dt.date(2027, 8, 1), revenue_code=code)
    plan = card_plan(org, donor, amount_cents=50_000, start=dt.date(2028, 5, 15), revenue_code=code)
    assert billing.billing_run(now=at(dt.date(2028, 5, 15))) == {"charged": 1}  # $300 left after it
    with django_capture_on_commit_callbacks(execute=True):
        assert billing.billing_run(now=at(dt.date(2028, 6, 15))) == {"capped": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.pause_reason, plan.next_bill_date) == ("PAUSED", "CAP_REACHED", dt.date(2028, 7, 15))
    assert "$300.00 remains" in plan.pause_detail
    alert = AuditEntry.objects.get(organisation=org, action="recurring_plan.alert", object_id=plan.id)
    assert (alert.after["kind"], alert.after["remaining_cents"]) == ("cap_reached", 30_000)
    assert "cap" in mail.outbox[-1].subject and "$300.00 remains" in mail.outbox[-1].body
    assert events(org, plan, "recurring_plan.paused")[-1].data["pause_reason"] == "CAP_REACHED"
    # Never attempted: one intent only (May's), no partial charge, no over-cap gift.
    assert len(plan_intents(plan)) == 1
    assert Donation.objects.filter(organisation=org, recurring_plan_id=plan.id).count() == 1
    # People paused plans wait; this one is looked at on its next date: 15 July, a new financial year.
    assert billing.billing_run(now=at(dt.date(2028, 7, 14))) == {}
    assert billing.billing_run(now=at(dt.date(2028, 7, 15))) == {"charged": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.pause_reason, plan.payments_made, plan.next_bill_date) == (
        "ACTIVE", None, 2, dt.date(2028, 8, 15))
    assert len(events(org, plan, "recurring_plan.resumed")) == 1
    assert sorted(Donation.objects.filter(organisation=org, recurring_plan_id=plan.id).values_list("recurring_period", flat=True)) == [
        dt.date(2028, 5, 15), dt.date(2028, 7, 15)]


@pytest.mark.django_db
def test_a_capped_plan_waits_period_by_period_until_there_is_room(org):
    connect(org)
    code = nsw_code(org)
    donor = make_donor(org, email="full@example.com")
    donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                              amount_cents=NSW_CAP, donation_date=dt.date(2027, 7, 2), revenue_code=code)
    plan = card_plan(org, donor, amount_cents=10_000, start=dt.date(2028, 4, 1), revenue_code=code)
    assert billing.billing_run(now=at(dt.date(2028, 4, 1))) == {"capped": 1}
    assert billing.billing_run(now=at(dt.date(2028, 5, 1))) == {"held": 1}
    assert billing.billing_run(now=at(dt.date(2028, 6, 1))) == {"held": 1}
    assert billing.billing_run(now=at(dt.date(2028, 7, 1))) == {"charged": 1}
    assert plan_intents(plan)[0]["amount"] == 10_000 and len(plan_intents(plan)) == 1


@pytest.mark.django_db
def test_a_manual_plan_expects_a_pending_gift_each_period_for_staff_to_confirm_or_miss(org):
    donor = make_donor(org, email="standing@example.com")
    plan = manual_plan(org, donor, amount_cents=4000, start=dt.date(2027, 1, 31), max_payments=3)
    assert billing.billing_run(now=at(dt.date(2027, 1, 31))) == {"expected": 1}
    assert billing.billing_run(now=at(dt.date(2027, 1, 31), 18)) == {}  # once per period
    first = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert (first.status, first.source, first.amount_cents, first.recurring_period, first.payment_method) == (
        "PENDING", "MANUAL", 4000, dt.date(2027, 1, 31), "BANK_TRANSFER")
    donor.refresh_from_db()
    assert donor.donations_total_cents == 0  # expected money counts for nothing
    confirmed = recurring.plan_expected_gift_confirm(organisation=org, actor=SYSTEM, donation_id=first.id,
                                                     donation_date=dt.date(2027, 2, 2), reference="EFT 0202")
    assert (confirmed.status, confirmed.donation_date, confirmed.reference) == ("CONFIRMED", dt.date(2027, 2, 2), "EFT 0202")
    donor.refresh_from_db()
    assert donor.donations_total_cents == 4000
    plan.refresh_from_db()
    assert (plan.payments_made, plan.next_bill_date) == (1, dt.date(2027, 2, 28))
    with pytest.raises(ValidationFailed):  # confirmed once
        recurring.plan_expected_gift_confirm(organisation=org, actor=SYSTEM, donation_id=first.id)
    assert billing.billing_run(now=at(dt.date(2027, 2, 28))) == {"expected": 1}
    second = Donation.objects.get(organisation=org, recurring_plan_id=plan.id, recurring_period=dt.date(2027, 2, 28))
    missed = recurring.plan_expected_gift_miss(organisation=org, actor=SYSTEM, donation_id=second.id, reason="Bounced")
    assert missed.status == "FAILED" and "Bounced" in missed.notes
    donor.refresh_from_db()
    assert donor.donations_total_cents == 4000
    assert AuditEntry.objects.filter(organisation=org, action="recurring_plan.alert", after__kind="manual_missed").exists()
    # The third and last expected gift ends the plan.
    assert billing.billing_run(now=at(dt.date(2027, 3, 31))) == {"expected": 1}
    plan.refresh_from_db()
    assert (plan.status, plan.next_bill_date) == ("ENDED", None)
    assert billing.billing_run(now=at(dt.date(2027, 4, 30))) == {}
    assert Donation.objects.filter(organisation=org, recurring_plan_id=plan.id).count() == 3
    # Another organisation's staff cannot touch them.
    from tests.conftest import make_org
    from together.exceptions import NotFound

    third = Donation.objects.get(organisation=org, recurring_plan_id=plan.id, recurring_period=dt.date(2027, 3, 31))
    with pytest.raises(NotFound):
        recurring.plan_expected_gift_confirm(organisation=make_org("Stranger"), actor=SYSTEM, donation_id=third.id)


@pytest.mark.django_db
def test_a_plans_gift_names_its_plan_and_period_in_the_api(org, read_client):
    """GET /api/v1/donations/{id} of a plan's gift carries recurring_plan_id and recurring_period."""
    donor = make_donor(org, email="period@example.com")
    plan = manual_plan(org, donor, amount_cents=2500, start=dt.date(2027, 3, 31), max_payments=2)
    billing.billing_run(now=at(dt.date(2027, 3, 31)))
    gift = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    body = read_client.get(f"/api/v1/donations/{gift.id}").json()
    assert (body["recurring_plan_id"], body["recurring_period"]) == (plan.id, "2027-03-31")
    other = donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                      amount_cents=1000, donation_date=dt.date(2027, 4, 1), payment_method="CASH")
    body = read_client.get(f"/api/v1/donations/{other.id}").json()
    assert (body["recurring_plan_id"], body["recurring_period"]) == (None, None)
