"""A billing run's threads (payments.billing.billing_run workers), and a donor merge that
carries the duplicate's plans to the survivor (payments.recurring.plans_follow_donor_merge)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from donations import services as donations
from donations.models import Donation, Donor
from organisations.models import AuditEntry
from payments import billing
from payments.models import Payment, PaymentStatus, RecurringPlan
from tests.payments.helpers import NSW_CAP, nsw_code
from tests.records.helpers import post
from tests.recurring.helpers import SYSTEM, at, card_plan, connect, make_donor, manual_plan, plan_intents
from webhooks.models import Event

pytestmark = pytest.mark.usefixtures("localstripe")
DAY = dt.date(2028, 3, 1)


@pytest.mark.django_db(transaction=True)
def test_a_pooled_run_bills_every_plan_once_and_checks_each_donors_cap_before_every_charge(org, monkeypatch):
    connect(org)
    code = nsw_code(org)
    # Six donors with two plans each; the last donor's cap has room for one of its two plans only.
    donors = [make_donor(org, email=f"pool{i}@example.com") for i in range(6)]
    capped = donors[-1]
    donations.donation_record(organisation=org, actor=SYSTEM, donor_id=capped.id, donation_type="MONETARY",
                              amount_cents=NSW_CAP - 15_000, donation_date=dt.date(2027, 8, 1), revenue_code=code)
    plans = [card_plan(org, donor, amount_cents=10_000, start=DAY, revenue_code=code) for donor in donors for _ in range(2)]
    threads_seen: set[str] = set()
    running: dict[str, str] = {}  # donor id -> the thread billing it now
    overlaps: list[str] = []
    plan_bill = billing.plan_bill

    def watched(*, plan_id, now=None):
        donor_id = RecurringPlan.objects.values_list("donor_id", flat=True).get(pk=plan_id)
        me = threading.current_thread().name
        threads_seen.add(me)
        if running.setdefault(donor_id, me) != me:
            overlaps.append(donor_id)
        try:
            return plan_bill(plan_id=plan_id, now=now)
        finally:
            running.pop(donor_id, None)

    monkeypatch.setattr(billing, "plan_bill", watched)
    counts = billing.billing_run(now=at(DAY), workers=4, batch_size=3)
    assert counts == {"charged": 11, "capped": 1}, counts
    assert len(threads_seen) > 1 and all(name.startswith("billing-") for name in threads_seen), threads_seen
    assert not overlaps  # a donor's plans never ran in two threads at once
    for plan in plans:
        plan.refresh_from_db()
        intents = plan_intents(plan)
        if plan.donor_id == capped.id and plan.status == "PAUSED":
            # Not attempted at all: no intent, no gift, no refund.
            assert plan.pause_reason == "CAP_REACHED" and not [i for i in intents if i["metadata"].get("plan_id") == plan.id]
            assert not Donation.objects.filter(recurring_plan_id=plan.id).exists()
            continue
        mine = [i for i in intents if i["metadata"].get("plan_id") == plan.id]
        assert len(mine) == 1 and mine[0]["status"] == "succeeded", (plan.id, mine)
        assert Donation.objects.filter(recurring_plan_id=plan.id, status="CONFIRMED").count() == 1
        assert (plan.payments_made, plan.next_bill_date) == (1, dt.date(2028, 4, 1))
    assert Payment.objects.filter(plan__in=plans, status=PaymentStatus.SUCCEEDED).count() == 11
    assert not Payment.objects.filter(plan__in=plans, status=PaymentStatus.REFUNDED_OVER_CAP).exists()
    # The engine's events carry the plan as the API shows it (from the locked row, no re-read).
    event = Event.objects.filter(organisation=org, type="recurring_plan.updated", data__id=plans[0].id).latest("created_at")
    assert (event.data["payments_made"], event.data["next_bill_date"]) == (1, "2028-04-01")
    # Nothing is due any more.
    assert billing.billing_run(now=at(DAY, 15), workers=4) == {}


@pytest.mark.django_db
def test_merging_a_donor_with_recurring_plans_moves_them_to_the_survivor(org, write_client):
    connect(org)
    survivor = make_donor(org, email="keep@example.com")
    duplicate = make_donor(org, email="dup@example.com")
    card = card_plan(org, duplicate, amount_cents=2_500, start=DAY)
    manual = manual_plan(org, duplicate, amount_cents=5_000, start=DAY)
    own = card_plan(org, survivor, amount_cents=1_000, start=DAY)
    assert billing.billing_run(now=at(DAY)) == {"charged": 2, "expected": 1}
    paid = Donation.objects.get(recurring_plan_id=card.id)

    response = post(write_client, f"/api/v1/donors/{survivor.id}/merge", {"duplicate_id": duplicate.id})
    assert response.status_code == 200, response.content
    assert not Donor.objects.filter(pk=duplicate.id).exists()
    assert set(RecurringPlan.objects.filter(donor_id=survivor.id).values_list("id", flat=True)) == {card.id, manual.id, own.id}
    paid.refresh_from_db()
    assert paid.donor_id == survivor.id
    # Each move is an event and an audit entry naming the new donor.
    for plan in (card, manual):
        event = Event.objects.filter(organisation=org, type="recurring_plan.updated", data__id=plan.id).latest("created_at")
        assert event.data["donor_id"] == survivor.id
        entry = AuditEntry.objects.filter(organisation=org, object_id=plan.id, action="recurring_plan.updated").latest("created_at")
        assert (entry.before["donor_id"], entry.after["donor_id"]) == (duplicate.id, survivor.id)
    # Through the API too, and billing goes on: the next period's gift is the survivor's.
    listed = write_client.get(f"/api/v1/recurring-plans/{card.id}").json()
    assert listed["donor_id"] == survivor.id
    assert billing.billing_run(now=at(dt.date(2028, 4, 1))) == {"charged": 2, "expected": 1}
    april = Donation.objects.get(recurring_plan_id=card.id, recurring_period=dt.date(2028, 4, 1))
    assert (april.donor_id, april.status) == (survivor.id, "CONFIRMED")
    assert len([i for i in plan_intents(card) if i["metadata"].get("plan_id") == card.id]) == 2
    survivor.refresh_from_db()
    assert survivor.donations_count == Donation.objects.filter(donor_id=survivor.id, status="CONFIRMED").count()
