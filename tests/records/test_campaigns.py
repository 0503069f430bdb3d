"""Campaigns through the HTTP stack: create, retrieve, PATCH, archive, a
campaign's donations, and rollups over confirmed gifts."""
from __future__ import annotations

import datetime as dt

import pytest

from donations import services
from donations.models import Campaign
from tests.records.helpers import SYSTEM, count_queries, ids, make_campaign, patch, post, record
from tests.support.api import assert_error, make_donor

URL = "/api/v1/campaigns"
CAMPAIGN_KEYS = {
    "id", "object", "name", "description", "goal_cents", "currency", "starts_at", "ends_at", "status", "external_id",
    "raised_cents", "donations_count", "donors_count", "created_at", "updated_at",
}


def test_create_and_retrieve(write_client, org):
    body = {"name": "  EOFY appeal ", "description": "June push", "goal_cents": 5_000_000, "starts_at": "2026-05-01",
            "ends_at": "2026-06-30", "external_id": "nb-camp-1"}
    response = post(write_client, URL, body)
    assert response.status_code == 201, response.content
    campaign = response.json()
    assert CAMPAIGN_KEYS <= set(campaign)
    assert campaign["object"] == "campaign" and campaign["status"] == "ACTIVE" and campaign["name"] == "EOFY appeal"
    assert (campaign["goal_cents"], campaign["starts_at"], campaign["ends_at"]) == (5_000_000, "2026-05-01", "2026-06-30")
    assert (campaign["raised_cents"], campaign["donations_count"], campaign["donors_count"]) == (0, 0, 0)
    assert campaign["currency"] == "AUD"
    assert write_client.get(f"{URL}/{campaign['id']}").json() == campaign
    assert Campaign.objects.get(pk=campaign["id"]).organisation_id == org.id
    minimal = post(write_client, URL, {"name": "Minimal"}).json()
    assert (minimal["goal_cents"], minimal["starts_at"], minimal["description"]) == (None, None, None)


@pytest.mark.parametrize("body, code, param", [
    ({"description": "no name"}, "invalid_request", "name"),
    ({"name": None}, "invalid_request", "name"),
    ({"name": 3}, "invalid_request", "name"),
    ({"name": ""}, "validation_failed", "name"),
    ({"name": "   "}, "validation_failed", "name"),
    ({"name": "x" * 201}, "validation_failed", "name"),
    ({"name": "A", "goal_cents": 0}, "validation_failed", "goal_cents"),
    ({"name": "A", "goal_cents": -1}, "validation_failed", "goal_cents"),
    ({"name": "A", "goal_cents": "100"}, "invalid_request", "goal_cents"),
    ({"name": "A", "goal_cents": 1.5}, "invalid_request", "goal_cents"),
    ({"name": "A", "starts_at": "2026-06-01", "ends_at": "2026-05-31"}, "validation_failed", "ends_at"),
    ({"name": "A", "starts_at": "June"}, "validation_failed", "starts_at"),
    ({"name": "A", "status": "ARCHIVED"}, "invalid_request", "status"),
    ({"name": "A", "raised_cents": 5}, "invalid_request", "raised_cents"),
])
def test_create_refuses(write_client, org, body, code, param):
    assert_error(post(write_client, URL, body), 400, code, param)
    assert not Campaign.objects.filter(organisation=org).exists()


def test_patch(write_client, org):
    campaign = make_campaign(org, name="Old", starts_at=dt.date(2026, 5, 1))
    response = patch(write_client, f"{URL}/{campaign.id}", {"name": "New", "goal_cents": 100, "ends_at": "2026-05-01"})
    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["goal_cents"], response.json()["ends_at"]) == ("New", 100, "2026-05-01")
    assert response.json()["starts_at"] == "2026-05-01"
    assert patch(write_client, f"{URL}/{campaign.id}", {"goal_cents": None}).json()["goal_cents"] is None


@pytest.mark.parametrize("body, code, param", [
    ({}, "invalid_request", None),
    ({"ends_at": "2026-04-30"}, "validation_failed", "ends_at"),
    ({"name": ""}, "validation_failed", "name"),
    ({"name": None}, "invalid_request", "name"),
    ({"status": "ACTIVE"}, "invalid_request", "status"),
    ({"goal_cents": 0}, "validation_failed", "goal_cents"),
])
def test_patch_refuses(write_client, org, body, code, param):
    campaign = make_campaign(org, name="Keep", starts_at=dt.date(2026, 5, 1))
    error = assert_error(patch(write_client, f"{URL}/{campaign.id}", body), 400, code)
    if param:
        assert error["param"] == param
    campaign.refresh_from_db()
    assert (campaign.name, campaign.ends_at, campaign.goal_cents) == ("Keep", None, None)


def test_archive(write_client, org):
    campaign = make_campaign(org)
    donor = make_donor(org)
    record(org, donor, campaign_id=campaign.id, amount_cents=700)
    response = write_client.post(f"{URL}/{campaign.id}/archive")  # no body needed
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ARCHIVED" and response.json()["raised_cents"] == 700
    again = post(write_client, f"{URL}/{campaign.id}/archive", {})
    assert again.status_code == 200 and again.json()["status"] == "ARCHIVED"
    assert ids(write_client.get(f"{URL}?status=ARCHIVED")) == [campaign.id]
    assert ids(write_client.get(f"{URL}?status=ACTIVE")) == []
    # archived campaigns take no new gifts
    error = assert_error(post(write_client, "/api/v1/donations", {
        "donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 100, "donation_date": "2026-03-01",
        "campaign_id": campaign.id}), 400, "validation_failed", "campaign_id")
    assert campaign.id in error["message"]


def test_rollups_count_confirmed_gifts_only(read_client, org):
    campaign, other = make_campaign(org, name="Main"), make_campaign(org, name="Other")
    alice, bob, carol, dave = (make_donor(org, email=f"{n}@example.com") for n in ("alice", "bob", "carol", "dave"))
    record(org, alice, campaign_id=campaign.id, amount_cents=1_000)
    record(org, alice, campaign_id=campaign.id, amount_cents=2_000)
    record(org, bob, campaign_id=campaign.id, donation_type="IN_KIND", amount_cents=4_000)
    record(org, carol, campaign_id=campaign.id, amount_cents=50_000, status="PENDING", source="STRIPE")
    refunded = record(org, dave, campaign_id=campaign.id, amount_cents=8_000)
    services.donation_refund(organisation=org, actor=SYSTEM, donation_id=refunded.id, refund_date=dt.date(2026, 3, 2), reason="r")
    voided = record(org, carol, campaign_id=campaign.id, amount_cents=16_000)
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=voided.id, reason="wrong campaign")
    record(org, alice, campaign_id=other.id, amount_cents=32_000)
    record(org, alice, amount_cents=64_000)  # no campaign

    main = read_client.get(f"{URL}/{campaign.id}").json()
    assert (main["raised_cents"], main["donations_count"], main["donors_count"]) == (7_000, 3, 2)
    listed = {c["id"]: c for c in read_client.get(f"{URL}?limit=100").json()["data"]}
    assert listed[campaign.id] == main
    assert (listed[other.id]["raised_cents"], listed[other.id]["donations_count"], listed[other.id]["donors_count"]) == (32_000, 1, 1)
    # every gift shows in the campaign's donations, whatever its status
    assert len(ids(read_client.get(f"{URL}/{campaign.id}/donations?limit=100"))) == 6
    assert len(ids(read_client.get(f"{URL}/{campaign.id}/donations?status=CONFIRMED"))) == 3


def test_campaign_donations(read_client, org, other_org):
    campaign, other = make_campaign(org), make_campaign(org, name="Other")
    donor = make_donor(org)
    mine = [record(org, donor, campaign_id=campaign.id, amount_cents=100 * (i + 1)) for i in range(3)]
    record(org, donor, campaign_id=other.id)
    record(org, donor)
    assert ids(read_client.get(f"{URL}/{campaign.id}/donations")) == [g.id for g in reversed(mine)]
    assert ids(read_client.get(f"{URL}/{campaign.id}/donations?amount_cents[lte]=200")) == [mine[1].id, mine[0].id]
    page = read_client.get(f"{URL}/{campaign.id}/donations?limit=2").json()
    assert page["has_more"] is True
    assert ids(read_client.get(f"{URL}/{campaign.id}/donations?limit=2&starting_after={page['data'][-1]['id']}")) == [mine[0].id]
    assert_error(read_client.get(f"{URL}/{campaign.id}/donations?starting_after={other.id}"), 400, "validation_failed", "starting_after")
    assert_error(read_client.get(f"{URL}/{make_campaign(other_org).id}/donations"), 404, "not_found")


@pytest.mark.parametrize("query, expected", [
    ("status=ACTIVE", {"a"}),
    ("status=ARCHIVED", {"b"}),
    ("external_id=ext-b", {"b"}),
    ("created_at[gte]=2026-02-01", {"b"}),
    ("created_at[lt]=2026-02-01", {"a"}),
    ("updated_at[lte]=2026-01-31", {"a"}),
])
def test_list_filters(read_client, org, query, expected):
    a = make_campaign(org, name="A", external_id="ext-a")
    b = make_campaign(org, name="B", external_id="ext-b")
    services.campaign_archive(organisation=org, actor=SYSTEM, campaign_id=b.id)
    Campaign.objects.filter(pk=a.id).update(created_at=dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc), updated_at=dt.datetime(2026, 1, 6, tzinfo=dt.timezone.utc))
    Campaign.objects.filter(pk=b.id).update(created_at=dt.datetime(2026, 2, 5, tzinfo=dt.timezone.utc), updated_at=dt.datetime(2026, 2, 6, tzinfo=dt.timezone.utc))
    assert set(ids(read_client.get(f"{URL}?{query}"))) == {{"a": a, "b": b}[n].id for n in expected}
    assert_error(read_client.get(f"{URL}?status=DONE"), 400, "validation_failed", "status")
    assert_error(read_client.get(f"{URL}?name=A"), 400, "invalid_request", "name")


def _campaigns_with_gifts(organisation, n: int) -> None:
    donors = [make_donor(organisation, email=f"rollup{i}@example.com") for i in range(3)]
    for i in range(n):
        campaign = make_campaign(organisation, name=f"C{i}")
        record(organisation, donors[i % 3], campaign_id=campaign.id, amount_cents=100 + i)


def test_rollups_take_no_query_per_campaign(isolated_key_generation, read_client, org, other_org, django_assert_max_num_queries):
    from tests.conftest import client_for, make_key

    other_client = client_for(make_key(other_org, "READ"))
    _campaigns_with_gifts(org, 2)
    _campaigns_with_gifts(other_org, 30)
    read_client.get(URL), other_client.get(URL)  # warm: first use of a key writes last_used_at
    few = count_queries(lambda: read_client.get(f"{URL}?limit=100"))
    many = count_queries(lambda: other_client.get(f"{URL}?limit=100"))
    assert len(other_client.get(f"{URL}?limit=100").json()["data"]) == 30
    assert few == many
    with django_assert_max_num_queries(few):
        body = other_client.get(f"{URL}?limit=100").json()
    assert sum(c["raised_cents"] for c in body["data"]) == sum(100 + i for i in range(30))
    assert all(c["donations_count"] == 1 and c["donors_count"] == 1 for c in body["data"])
