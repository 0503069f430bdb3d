"""/api/v1/recurring-plans: the object, READ against WRITE keys, the envelope, the
lifecycle actions and their refusals, filters and cursors, another organisation's
plan a 404."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from payments.recurring import plan_create, plan_pause
from tests.recurring.helpers import SYSTEM, connect, saved_card
from tests.support.api import assert_error, header, make_donor
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def post(client, path, body=None):
    return client.post(path, body, format="json") if body is not None else client.post(path)


def patch(client, path, body):
    return client.patch(path, body, format="json")


def today() -> dt.date:
    return timezone.localdate()


@pytest.fixture
def donor(org):
    return make_donor(org, first_name="Jane", last_name="Smith", email="jane@example.org")


def manual(org, donor, **fields):
    fields = {"amount_cents": 5000, "frequency": "MONTHLY", "start_date": today(), **fields}
    return plan_create(organisation=org, actor=SYSTEM, donor_id=donor.id, payment_method="MANUAL", **fields)


def test_create_a_manual_plan_retrieve_it_and_its_event(write_client, read_client, org, donor):
    response = post(write_client, "/api/v1/recurring-plans", {
        "donor_id": donor.id, "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
        "start_date": today().isoformat(), "max_payments": 12, "revenue_code": "MONTHLY-2027"})
    assert response.status_code == 201, response.content
    assert header(response, "x-request-id").startswith("req_") and header(response, "RateLimit-Limit")
    body = response.json()
    assert (body["object"], body["status"], body["payment_method"], body["frequency"]) == ("recurring_plan", "ACTIVE", "MANUAL", "MONTHLY")
    assert (body["next_bill_date"], body["start_date"], body["payments_made"], body["max_payments"]) == (
        today().isoformat(), today().isoformat(), 0, 12)
    assert body["currency"] == "AUD" and body["revenue_code"] == "MONTHLY-2027" and body["pause_reason"] is None
    assert body["created_at"].endswith("Z") and len(body["id"]) == 24
    got = read_client.get(f"/api/v1/recurring-plans/{body['id']}")
    assert got.status_code == 200 and got.json() == body
    event = Event.objects.get(organisation=org, type="recurring_plan.created")
    assert event.data == body


@pytest.mark.usefixtures("localstripe")
def test_create_a_card_plan_on_a_saved_card_and_refusals(write_client, org, other_org, donor):
    body = {"donor_id": donor.id, "amount_cents": 2500, "frequency": "WEEKLY", "payment_method": "CARD",
            "start_date": today().isoformat()}
    # Stripe not connected, no card, a card not the customer's, a past start.
    assert_error(post(write_client, "/api/v1/recurring-plans", body), 400, "validation_failed", param="stripe_customer_id")
    connect(org)
    customer, method = saved_card(org, email="jane@example.org")
    _, strangers = saved_card(org)
    assert_error(post(write_client, "/api/v1/recurring-plans", {**body, "stripe_customer_id": customer,
                                                               "stripe_payment_method_id": strangers}),
                 400, "validation_failed", param="stripe_payment_method_id")
    assert_error(post(write_client, "/api/v1/recurring-plans", {
        **body, "stripe_customer_id": customer, "stripe_payment_method_id": method,
        "start_date": (today() - dt.timedelta(days=1)).isoformat()}), 400, "validation_failed", param="start_date")
    assert_error(post(write_client, "/api/v1/recurring-plans", {**body, "stripe_customer_id": customer,
                                                               "stripe_payment_method_id": method, "amount_cents": 49}),
                 400, "validation_failed", param="amount_cents")
    created = post(write_client, "/api/v1/recurring-plans", {**body, "stripe_customer_id": customer,
                                                             "stripe_payment_method_id": method})
    assert created.status_code == 201, created.content
    assert (created.json()["stripe_customer_id"], created.json()["stripe_payment_method_id"]) == (customer, method)


@pytest.mark.parametrize(("change", "code", "param"), [
    ({"frequency": "DAILY"}, "validation_failed", "frequency"),
    ({"payment_method": "CHEQUE"}, "validation_failed", "payment_method"),
    ({"amount_cents": 0}, "validation_failed", "amount_cents"),
    ({"amount_cents": "50"}, "invalid_request", "amount_cents"),  # a wrong type is malformed
    ({"start_date": "31/01/2027"}, "validation_failed", "start_date"),
    ({"end_date": "2000-01-01"}, "validation_failed", "end_date"),
    ({"donor_id": "cm3nobody0000000000000000"}, "validation_failed", "donor_id"),
    ({"colour": "red"}, "invalid_request", "colour"),
])
def test_create_refusals(write_client, org, donor, change, code, param):
    body = {"donor_id": donor.id, "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
            "start_date": today().isoformat(), **change}
    assert_error(post(write_client, "/api/v1/recurring-plans", body), 400, code, param=param)


def test_a_read_key_reads_but_cannot_write(read_client, org, donor):
    plan = manual(org, donor)
    assert read_client.get("/api/v1/recurring-plans").status_code == 200
    assert_error(post(read_client, "/api/v1/recurring-plans", {"donor_id": donor.id}), 403, "forbidden")
    assert_error(patch(read_client, f"/api/v1/recurring-plans/{plan.id}", {"amount_cents": 1}), 403, "forbidden")
    for action in ("pause", "resume", "cancel"):
        assert_error(post(read_client, f"/api/v1/recurring-plans/{plan.id}/{action}"), 403, "forbidden")


def test_patch_pause_resume_cancel_and_their_refusals(write_client, org, donor):
    plan = manual(org, donor)
    url = f"/api/v1/recurring-plans/{plan.id}"
    changed = patch(write_client, url, {"amount_cents": 7500, "next_bill_date": (today() + dt.timedelta(days=3)).isoformat()})
    assert changed.status_code == 200, changed.content
    assert changed.json()["amount_cents"] == 7500 and changed.json()["next_bill_date"] == (today() + dt.timedelta(days=3)).isoformat()
    assert_error(patch(write_client, url, {"next_bill_date": "2000-01-01"}), 400, "validation_failed", param="next_bill_date")
    assert_error(patch(write_client, url, {"status": "PAUSED"}), 400, "invalid_request", param="status")
    assert_error(post(write_client, f"{url}/resume"), 400, "validation_failed", param="status")
    paused = post(write_client, f"{url}/pause", {"reason": "DONOR", "detail": "Travelling"})
    assert (paused.json()["status"], paused.json()["pause_reason"], paused.json()["pause_detail"]) == ("PAUSED", "DONOR", "Travelling")
    assert_error(post(write_client, f"{url}/pause"), 400, "validation_failed", param="status")
    assert_error(post(write_client, f"{url}/pause", {"reason": "CAP_REACHED"}), 400, "validation_failed", param="reason")
    resumed = post(write_client, f"{url}/resume")
    assert resumed.json()["status"] == "ACTIVE" and resumed.json()["pause_reason"] is None
    assert_error(post(write_client, f"{url}/resume", {"now": True}), 400, "invalid_request", param="now")
    canceled = post(write_client, f"{url}/cancel", {"reason": "Donor asked"})
    assert (canceled.json()["status"], canceled.json()["cancel_reason"], canceled.json()["next_bill_date"]) == (
        "CANCELED", "Donor asked", None)
    for action in ("pause", "resume", "cancel"):
        assert_error(post(write_client, f"{url}/{action}"), 400, "validation_failed", param="status")
    assert_error(patch(write_client, url, {"amount_cents": 100}), 400, "validation_failed", param="status")
    types = list(Event.objects.filter(organisation=org, data__id=plan.id).order_by("occurred_at", "id").values_list("type", flat=True))
    assert types == ["recurring_plan.created", "recurring_plan.updated", "recurring_plan.paused", "recurring_plan.resumed",
                     "recurring_plan.canceled"]


def test_list_filters_and_cursors(isolated_key_generation, read_client, org, other_org, donor, django_assert_max_num_queries):
    other_donor = make_donor(org, email="other@example.org")
    plans = [manual(org, donor, start_date=today() + dt.timedelta(days=n), frequency="WEEKLY" if n % 2 else "MONTHLY")
             for n in range(5)]
    plans.append(manual(org, other_donor, start_date=today() + dt.timedelta(days=9)))
    plan_pause(organisation=org, actor=SYSTEM, plan_id=plans[0].id)
    manual(other_org, make_donor(other_org, email="theirs@example.org"))
    with django_assert_max_num_queries(12):
        page = read_client.get("/api/v1/recurring-plans?limit=2").json()
    assert [p["id"] for p in page["data"]] == [plans[5].id, plans[4].id] and page["has_more"] is True
    rest = read_client.get(f"/api/v1/recurring-plans?limit=10&starting_after={plans[4].id}").json()
    assert [p["id"] for p in rest["data"]] == [p.id for p in reversed(plans[:4])] and rest["has_more"] is False

    def ids(query):
        response = read_client.get(f"/api/v1/recurring-plans?{query}")
        assert response.status_code == 200, response.content
        return {p["id"] for p in response.json()["data"]}

    assert ids("status=PAUSED") == {plans[0].id}
    assert ids("frequency=WEEKLY") == {plans[1].id, plans[3].id}
    assert ids(f"donor_id={other_donor.id}") == {plans[5].id}
    window = f"next_bill_date[gte]={(today() + dt.timedelta(days=1)).isoformat()}&next_bill_date[lte]={(today() + dt.timedelta(days=3)).isoformat()}"
    assert ids(window) == {plans[1].id, plans[2].id, plans[3].id}
    assert_error(read_client.get("/api/v1/recurring-plans?status=LIVE"), 400, "validation_failed", param="status")
    assert_error(read_client.get("/api/v1/recurring-plans?next_bill_date[gte]=soon"), 400, "validation_failed",
                 param="next_bill_date[gte]")
    assert_error(read_client.get("/api/v1/recurring-plans?colour=red"), 400, "invalid_request", param="colour")


def test_another_organisations_plan_is_404(read_client, write_client, other_org):
    theirs = manual(other_org, make_donor(other_org, email="theirs@example.org"))
    url = f"/api/v1/recurring-plans/{theirs.id}"
    assert_error(read_client.get(url), 404, "not_found")
    assert_error(patch(write_client, url, {"amount_cents": 100}), 404, "not_found")
    for action in ("pause", "resume", "cancel"):
        assert_error(post(write_client, f"{url}/{action}"), 404, "not_found")
    theirs.refresh_from_db()
    assert (theirs.status, theirs.amount_cents) == ("ACTIVE", 5000)
    # Nor can a plan be made for another organisation's donor.
    assert_error(post(write_client, "/api/v1/recurring-plans", {
        "donor_id": theirs.donor_id, "amount_cents": 5000, "frequency": "MONTHLY", "payment_method": "MANUAL",
        "start_date": today().isoformat()}), 400, "validation_failed", param="donor_id")
