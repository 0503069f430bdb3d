"""/api/v1/forms and /api/v1/checkout-links: statuses, the envelope, headers, READ
against WRITE keys, pagination and filters, and what each refusal names."""
from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.utils import timezone

from engage.models import CheckoutLink, DonationForm
from tests.conftest import client_for, make_key
from tests.engage.test_services import ACTOR, connect, make_form
from tests.support.api import assert_error, header, make_donor
from webhooks.models import Event

pytestmark = pytest.mark.django_db

FORM = {"name": "Spring appeal", "slug": "api-spring", "title": "Help the riverbank", "suggested_amounts_cents": [2500, 5000, 10000]}


def post(client, path, body=None):
    return client.post(path, body, format="json") if body is not None else client.post(path)


def patch(client, path, body):
    return client.patch(path, body, format="json")


@pytest.fixture
def connected(org):
    return connect(org)


@pytest.fixture
def donor(org):
    return make_donor(org, first_name="Jane", last_name="Smith", email="jane@example.org")


# --- forms ------------------------------------------------------------------------------------------

def test_form_create_retrieve_and_the_object(write_client, read_client, org):
    response = post(write_client, "/api/v1/forms", FORM)
    assert response.status_code == 201, response.content
    assert header(response, "x-request-id").startswith("req_") and header(response, "RateLimit-Limit")
    body = response.json()
    assert body["object"] == "form" and body["status"] == "DRAFT" and body["currency"] == "AUD"
    assert body["url"] == f"{settings.SITE_URL}/donate/api-spring"
    assert body["minimum_cents"] is None and body["effective_minimum_cents"] == 100
    assert (body["allow_custom"], body["allow_recurring"], body["recurring_frequencies"]) == (True, True, ["MONTHLY"])
    assert (body["phone_visibility"], body["address_visibility"]) == ("OPTIONAL", "OPTIONAL")
    assert body["created_at"].endswith("Z") and len(body["id"]) == 24
    got = read_client.get(f"/api/v1/forms/{body['id']}")
    assert got.status_code == 200 and got.json() == body
    assert Event.objects.filter(organisation=org, type="form.created", data__id=body["id"]).exists()


def test_read_key_cannot_write(read_client, org):
    form = make_form(org)
    assert_error(post(read_client, "/api/v1/forms", FORM), 403, "forbidden")
    assert_error(patch(read_client, f"/api/v1/forms/{form.id}", {"title": "x"}), 403, "forbidden")
    assert_error(post(read_client, f"/api/v1/forms/{form.id}/archive"), 403, "forbidden")
    assert_error(post(read_client, "/api/v1/checkout-links", {"donor_id": "x", "amount_cents": 100}), 403, "forbidden")
    assert_error(client_for(None).get("/api/v1/forms"), 401, "unauthorized")


@pytest.mark.parametrize("body,status,code,param", [
    ({**FORM, "slug": "Bad Slug"}, 400, "validation_failed", "slug"),
    ({**FORM, "suggested_amounts_cents": [2550]}, 400, "validation_failed", "suggested_amounts_cents"),
    ({**FORM, "suggested_amounts_cents": "25,50"}, 400, "invalid_request", "suggested_amounts_cents"),
    ({**FORM, "allow_custom": "yes"}, 400, "invalid_request", "allow_custom"),
    ({**FORM, "status": "ARCHIVED"}, 400, "validation_failed", "status"),
    ({**FORM, "status": "ACTIVE"}, 400, "validation_failed", "stripe_account"),
    ({**FORM, "default_amount_cents": 7500}, 400, "validation_failed", "default_amount_cents"),
    ({**FORM, "recurring_frequencies": ["DAILY"]}, 400, "validation_failed", "recurring_frequencies.0"),
    ({**FORM, "phone_visibility": "SOMETIMES"}, 400, "validation_failed", "phone_visibility"),
    ({**FORM, "colour": "red"}, 400, "invalid_request", "colour"),
    ({k: v for k, v in FORM.items() if k != "title"}, 400, "invalid_request", "title"),
])
def test_form_create_refusals(write_client, body, status, code, param):
    error = assert_error(post(write_client, "/api/v1/forms", body), status, code)
    assert error.get("param", "").startswith(param.split(".")[0]), error
    assert not DonationForm.objects.exists()


def test_slug_taken_anywhere_is_409(write_client, other_org):
    make_form(other_org, slug="api-spring")
    error = assert_error(post(write_client, "/api/v1/forms", FORM), 409, "conflict", param="slug")
    assert "existing_id" not in error


def test_patch_status_and_archive(write_client, connected):
    form = make_form(connected, slug="api-patch")
    assert patch(write_client, f"/api/v1/forms/{form.id}", {"status": "ACTIVE"}).json()["status"] == "ACTIVE"
    assert_error(patch(write_client, f"/api/v1/forms/{form.id}", {"slug": "api-patch-2"}), 400, "validation_failed", param="slug")
    paused = patch(write_client, f"/api/v1/forms/{form.id}", {"status": "PAUSED", "title": "Paused for now"}).json()
    assert (paused["status"], paused["title"]) == ("PAUSED", "Paused for now")
    archived = post(write_client, f"/api/v1/forms/{form.id}/archive")
    assert archived.status_code == 200 and archived.json()["status"] == "ARCHIVED" and archived.json()["archived_at"]
    assert post(write_client, f"/api/v1/forms/{form.id}/archive").json()["archived_at"] == archived.json()["archived_at"]
    error = assert_error(patch(write_client, f"/api/v1/forms/{form.id}", {"status": "ACTIVE"}), 400, "validation_failed")
    assert error["reason"] == "form_archived"
    assert_error(post(write_client, f"/api/v1/forms/{form.id}/archive", {"now": True}), 400, "invalid_request", param="now")
    assert_error(patch(write_client, f"/api/v1/forms/{form.id}", {}), 400, "invalid_request")


def test_form_list_pagination_and_filters(read_client, org, other_org, connected):
    forms = [make_form(org, slug=f"list-{n}") for n in range(5)]
    make_form(other_org, slug="not-mine")
    page = read_client.get("/api/v1/forms?limit=2").json()
    assert [f["id"] for f in page["data"]] == [forms[4].id, forms[3].id] and page["has_more"] is True
    rest = read_client.get(f"/api/v1/forms?limit=10&starting_after={forms[3].id}").json()
    assert [f["id"] for f in rest["data"]] == [f.id for f in reversed(forms[:3])] and rest["has_more"] is False
    from engage.services import form_update

    form_update(organisation=org, actor=ACTOR, form_id=forms[1].id, status="ACTIVE")
    active = read_client.get("/api/v1/forms?status=ACTIVE").json()["data"]
    assert [f["id"] for f in active] == [forms[1].id]
    assert [f["id"] for f in read_client.get("/api/v1/forms?slug=list-2").json()["data"]] == [forms[2].id]
    assert_error(read_client.get("/api/v1/forms?status=LIVE"), 400, "validation_failed", param="status")
    assert_error(read_client.get("/api/v1/forms?colour=red"), 400, "invalid_request", param="colour")


def test_another_organisations_form_is_404(read_client, write_client, other_org):
    form = make_form(other_org, slug="theirs")
    assert_error(read_client.get(f"/api/v1/forms/{form.id}"), 404, "not_found")
    assert_error(patch(write_client, f"/api/v1/forms/{form.id}", {"title": "Mine"}), 404, "not_found")
    assert_error(post(write_client, f"/api/v1/forms/{form.id}/archive"), 404, "not_found")


# --- checkout links ----------------------------------------------------------------------------------

def test_link_create_and_object(write_client, connected, donor):
    response = post(write_client, "/api/v1/checkout-links", {
        "donor_id": donor.id, "amount_cents": 25000, "description": "$250 donation from Jane Smith",
        "consent_text": "I am an Australian citizen.", "revenue_code": "LINKS", "expires_at": "2099-01-01T00:00:00Z"})
    assert response.status_code == 400  # more than 365 days away
    assert response.json()["error"]["param"] == "expires_at"
    expires = (timezone.now() + dt.timedelta(days=7)).isoformat()
    response = post(write_client, "/api/v1/checkout-links", {
        "donor_id": donor.id, "amount_cents": 25000, "description": "$250 donation from Jane Smith",
        "consent_text": "I am an Australian citizen.", "revenue_code": "LINKS", "expires_at": expires})
    assert response.status_code == 201, response.content
    body = response.json()
    link = CheckoutLink.objects.get()
    assert body["object"] == "checkout_link" and body["code"] == link.code and body["url"] == f"{settings.SITE_URL}/c/{link.code}"
    assert (body["status"], body["payment_methods"], body["currency"], body["donation_id"]) == ("ACTIVE", ["CARD"], "AUD", None)
    assert body["expires_at"].endswith("Z") and body["consent_text"] == "I am an Australian citizen."


@pytest.mark.parametrize("extra,code,param", [
    ({"amount_cents": 0}, "validation_failed", "amount_cents"),
    ({"amount_cents": "250"}, "invalid_request", "amount_cents"),
    ({"payment_methods": ["BECS"]}, "validation_failed", "payment_methods"),
    ({"consent_text": "x" * 301}, "validation_failed", "consent_text"),
    ({"expires_at": "tomorrow"}, "validation_failed", "expires_at"),
    ({"expires_at": 12}, "invalid_request", "expires_at"),
    ({"currency": "USD"}, "validation_failed", "currency"),
])
def test_link_create_refusals(write_client, connected, donor, extra, code, param):
    error = assert_error(post(write_client, "/api/v1/checkout-links", {"donor_id": donor.id, "amount_cents": 25000, **extra}), 400, code)
    assert error["param"].startswith(param), error
    assert not CheckoutLink.objects.exists()


def test_link_needs_connection_and_a_donor_email(write_client, org, other_org):
    donor = make_donor(org, first_name="No", last_name="Email", email=None)
    error = assert_error(post(write_client, "/api/v1/checkout-links", {"donor_id": donor.id, "amount_cents": 5000}), 400,
                         "validation_failed", param="stripe_account")
    assert error["reason"] == "stripe_not_connected"
    connect(org)
    error = assert_error(post(write_client, "/api/v1/checkout-links", {"donor_id": donor.id, "amount_cents": 5000}), 400,
                         "validation_failed", param="donor_id")
    assert error["reason"] == "donor_email_missing"
    foreign = make_donor(other_org, email="foreign@example.org")
    assert_error(post(write_client, "/api/v1/checkout-links", {"donor_id": foreign.id, "amount_cents": 5000}), 400,
                 "validation_failed", param="donor_id")


def test_link_cancel_and_expired_status(write_client, read_client, connected, donor):
    from engage.services import checkout_link_create

    active = checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=1000)
    lapsed = checkout_link_create(organisation=connected, actor=ACTOR, donor_id=donor.id, amount_cents=2000)
    CheckoutLink.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert read_client.get(f"/api/v1/checkout-links/{lapsed.id}").json()["status"] == "EXPIRED"  # before any sweep
    assert [x["id"] for x in read_client.get("/api/v1/checkout-links?status=EXPIRED").json()["data"]] == [lapsed.id]
    assert [x["id"] for x in read_client.get("/api/v1/checkout-links?status=ACTIVE").json()["data"]] == [active.id]
    assert_error(post(write_client, f"/api/v1/checkout-links/{lapsed.id}/cancel"), 409, "conflict", param="status")
    canceled = post(write_client, f"/api/v1/checkout-links/{active.id}/cancel")
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED" and canceled.json()["canceled_at"]
    assert post(write_client, f"/api/v1/checkout-links/{active.id}/cancel").status_code == 200  # again: unchanged
    assert [x["id"] for x in read_client.get(f"/api/v1/checkout-links?donor_id={donor.id}").json()["data"]] == [lapsed.id, active.id]


def test_another_organisations_link_is_404(other_org, write_client):
    connect(other_org)
    from engage.services import checkout_link_create

    theirs = checkout_link_create(organisation=other_org, actor=ACTOR, amount_cents=1000,
                                  donor_id=make_donor(other_org, email="t@example.org").id)
    other_client = client_for(make_key(other_org, "READ"))
    assert other_client.get(f"/api/v1/checkout-links/{theirs.id}").status_code == 200
    assert_error(write_client.get(f"/api/v1/checkout-links/{theirs.id}"), 404, "not_found")
    assert_error(post(write_client, f"/api/v1/checkout-links/{theirs.id}/cancel"), 404, "not_found")
    assert write_client.get("/api/v1/checkout-links").json() == {"data": [], "has_more": False}
