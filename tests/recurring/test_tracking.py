"""Source tracking on recurring plans (issue 19): a plan started from a public form
with `?source=…&utm_source=…` keeps those on the plan and every gift it produces
carries them, as a one-off card gift does: the sign-up's first gift, each later
off-session charge (its Payment's tracking), and a MANUAL plan's expected gifts. A
plan made through the API takes them too, by the gift's rules, and shows them."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from donations.models import Donation
from payments import billing
from payments.models import Payment, RecurringPlan
from payments.recurring import add_months
from tests.recurring.helpers import SYSTEM, at, card_plan, connect, make_donor, manual_plan
from tests.recurring.test_signup import DONOR_FIELDS, recurring_form
from tests.support import stripe as fake_stripe
from tests.support.api import assert_error
from tests.support.tenant_guard import guard_requests
from together.exceptions import ValidationFailed

pytestmark = pytest.mark.usefixtures("localstripe")
TRACKING = {"source_code": "MAIL-7", "referrer": "jane.volunteer", "utm_source": "newsletter", "utm_medium": "email",
            "utm_campaign": "monthly-push"}
NONE = dict.fromkeys(TRACKING)


def tracking_of(obj) -> dict:
    return {name: getattr(obj, name) for name in TRACKING}


@pytest.fixture
def _public(settings):
    settings.PUBLIC_POST_RATE_LIMIT = "0"
    settings.RATE_LIMIT_ENABLED = False
    with guard_requests():
        yield


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_public")
def test_a_plan_signed_up_through_a_tracked_link_carries_it_onto_every_charge(org):
    client = Client()
    form = recurring_form(org)
    query = "source=MAIL-7&ref=jane.volunteer&utm_source=newsletter&utm_medium=email&utm_campaign=monthly-push"
    page = client.get(f"/donate/{form.slug}?{query}").content.decode()
    assert 'name="utm_campaign" value="monthly-push"' in page  # the page keeps them for its intent
    response = client.post(f"/donate/{form.slug}/intent", {"attempt_key": f"form:{'t' * 32}", "amount": "5000",
                                                          "frequency": "MONTHLY", **DONOR_FIELDS, **TRACKING})
    assert response.status_code == 200, response.content
    fake_stripe.pay_intent(response.json()["client_secret"])
    client.get(response.json()["return_url"])
    plan = RecurringPlan.objects.get(organisation=org)
    assert tracking_of(plan) == TRACKING and plan.tracking == TRACKING
    first = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert tracking_of(first) == TRACKING

    next_date = add_months(timezone.localdate(), 1)
    assert billing.billing_run(now=at(next_date)) == {"charged": 1}
    second = Donation.objects.get(organisation=org, recurring_plan_id=plan.id, recurring_period=next_date)
    assert second.status == "CONFIRMED" and tracking_of(second) == TRACKING
    charge = Payment.objects.get(organisation=org, kind="RECURRING", plan=plan)
    assert charge.tracking == TRACKING


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_public")
def test_a_plan_signed_up_without_tracking_has_none(org):
    client = Client()
    form = recurring_form(org)
    response = client.post(f"/donate/{form.slug}/intent", {"attempt_key": f"form:{'u' * 32}", "amount": "2500",
                                                          "frequency": "WEEKLY", **DONOR_FIELDS})
    fake_stripe.pay_intent(response.json()["client_secret"])
    client.get(response.json()["return_url"])
    plan = RecurringPlan.objects.get(organisation=org)
    assert tracking_of(plan) == NONE and plan.tracking == {}
    assert billing.billing_run(now=at(timezone.localdate() + dt.timedelta(days=7))) == {"charged": 1}
    assert all(tracking_of(g) == NONE for g in Donation.objects.filter(organisation=org, recurring_plan_id=plan.id))


@pytest.mark.django_db
def test_a_card_plan_made_by_staff_carries_its_source_fields(org):
    connect(org)
    start = dt.date(2027, 3, 10)
    plan = card_plan(org, make_donor(org, email="card@example.com"), start=start, source_code=" PHONE-1 ",
                     utm_source="", utm_medium="phone")
    assert tracking_of(plan) == NONE | {"source_code": "PHONE-1", "utm_medium": "phone"}  # trimmed, blank as none
    assert billing.billing_run(now=at(start)) == {"charged": 1}
    gift = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert tracking_of(gift) == NONE | {"source_code": "PHONE-1", "utm_medium": "phone"}


@pytest.mark.django_db
def test_a_manual_plans_expected_gifts_carry_its_source_fields_and_bad_values_are_refused(org):
    donor = make_donor(org, email="standing@example.com")
    plan = manual_plan(org, donor, start=dt.date(2027, 1, 31), source_code="LETTER-1", utm_campaign="standing-orders")
    assert billing.billing_run(now=at(dt.date(2027, 1, 31))) == {"expected": 1}
    expected = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert expected.status == "PENDING"
    assert tracking_of(expected) == NONE | {"source_code": "LETTER-1", "utm_campaign": "standing-orders"}
    with pytest.raises(ValidationFailed) as refused:
        manual_plan(org, donor, start=dt.date(2027, 1, 31), source_code="no spaces allowed")
    assert refused.value.param == "source_code"
    with pytest.raises(ValidationFailed) as refused:
        manual_plan(org, donor, start=dt.date(2027, 1, 31), referrer="x" * 201)
    assert refused.value.param == "referrer"
    assert RecurringPlan.objects.filter(organisation=org).count() == 1


@pytest.mark.django_db
def test_the_api_takes_and_shows_a_plans_source_fields(write_client, read_client, org):
    donor = make_donor(org, email="api@example.com")
    body = {"donor_id": donor.id, "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
            "start_date": timezone.localdate().isoformat()}
    created = write_client.post("/api/v1/recurring-plans", body | TRACKING, format="json")
    assert created.status_code == 201, created.content
    assert {k: created.json()[k] for k in TRACKING} == TRACKING
    got = read_client.get(f"/api/v1/recurring-plans/{created.json()['id']}").json()
    assert {k: got[k] for k in TRACKING} == TRACKING
    plain = write_client.post("/api/v1/recurring-plans", body, format="json").json()
    assert {k: plain[k] for k in TRACKING} == NONE
    assert_error(write_client.post("/api/v1/recurring-plans", body | {"source_code": "bad code"}, format="json"),
                 400, "validation_failed", param="source_code")
    assert_error(write_client.post("/api/v1/recurring-plans", body | {"utm_source": 7}, format="json"),
                 400, "invalid_request", param="utm_source")


@pytest.mark.django_db
def test_the_plan_page_shows_its_source_and_a_plan_without_one_shows_no_row(org):
    from organisations.models import Role
    from tests.dashboard.conftest import client_as, make_user

    donor = make_donor(org, email="shown@example.com")
    tracked = manual_plan(org, donor, start=dt.date(2027, 1, 31), **TRACKING)
    plain = manual_plan(org, donor, start=dt.date(2027, 2, 28))
    client = client_as(make_user(org, Role.VIEWER), organisation=org)
    page = client.get(f"/recurring/{tracked.id}").content.decode()
    row = page[page.index('<tr class="source-row">'):]
    row = row[:row.index("</tr>")]
    assert '<a href="/donations/?source_code=MAIL-7">MAIL-7</a>' in row
    assert "referred by jane.volunteer" in row and "utm newsletter / email / monthly-push" in row
    assert 'class="source-row"' not in client.get(f"/recurring/{plain.id}").content.decode()
