"""Cross-organisation and sandbox isolation on every Records endpoint: another
organisation's id is a 404 (or, in a body field, 400 validation_failed naming
it), indistinguishable from an unknown id, and nothing changes."""
from __future__ import annotations

import datetime as dt

import pytest

from donations.models import Campaign, Donation, Donor
from tests.conftest import client_for, make_key
from tests.records.helpers import make_campaign, record
from tests.support.api import assert_error, make_donor

UNKNOWN = "c" + "3" * 23

# (method, path, body)
ROUTES = [
    ("GET", "/api/v1/donors/{donor}", None),
    ("PATCH", "/api/v1/donors/{donor}", {"first_name": "Hacked"}),
    ("DELETE", "/api/v1/donors/{bare_donor}", None),
    ("GET", "/api/v1/donors/{donor}/donations", None),
    ("POST", "/api/v1/donors/{donor}/merge", {"duplicate_id": "{own_donor}"}),
    ("GET", "/api/v1/donations/{donation}", None),
    ("PATCH", "/api/v1/donations/{donation}", {"notes": "Hacked"}),
    ("POST", "/api/v1/donations/{donation}/void", {"reason": "Hacked"}),
    ("POST", "/api/v1/donations/{donation}/refund", {"refund_date": "2026-03-02", "reason": "Hacked"}),
    ("GET", "/api/v1/campaigns/{campaign}", None),
    ("PATCH", "/api/v1/campaigns/{campaign}", {"name": "Hacked"}),
    ("POST", "/api/v1/campaigns/{campaign}/archive", None),
    ("GET", "/api/v1/campaigns/{campaign}/donations", None),
]


@pytest.fixture
def victim(org):
    donor = make_donor(org, first_name="Victim", email="victim@example.com")
    campaign = make_campaign(org, name="Victim campaign")
    donation = record(org, donor, campaign_id=campaign.id, amount_cents=1_000, donation_date=dt.date(2026, 3, 1))
    bare = make_donor(org, first_name="Bare", email="bare@example.com")
    return {"donor": donor.id, "campaign": campaign.id, "donation": donation.id, "bare_donor": bare.id}


def snapshot(org):
    return (
        sorted(Donor.objects.filter(organisation=org).values_list("id", "first_name", "updated_at")),
        sorted(Donation.objects.filter(organisation=org).values_list("id", "status", "notes", "updated_at")),
        sorted(Campaign.objects.filter(organisation=org).values_list("id", "name", "status", "updated_at")),
    )


def _call(client, method, path, body):
    return client.generic(method, path, __import__("json").dumps(body) if body is not None else "",
                          content_type="application/json" if body is not None else None)


@pytest.mark.parametrize("attacker", ["other-org", "sandbox-twin", "live-from-sandbox"])
def test_foreign_ids_are_404_and_change_nothing(org, other_org, victim, attacker, subtests):
    if attacker == "live-from-sandbox":
        # the victim lives in the sandbox; the live organisation's key tries it
        target_org = org.sandbox
        victim = {
            "donor": make_donor(target_org, email="sv@example.com").id,
            "campaign": make_campaign(target_org).id,
            "bare_donor": make_donor(target_org, email="sb@example.com").id,
        }
        victim["donation"] = record(target_org, Donor.objects.get(pk=victim["donor"]), campaign_id=victim["campaign"]).id
        client, own_org = client_for(make_key(org, "WRITE")), org
    else:
        target_org = org
        own_org = other_org if attacker == "other-org" else org.sandbox
        client = client_for(make_key(own_org, "WRITE"))
    own_donor = make_donor(own_org, email="attacker@example.com")
    before = snapshot(target_org)
    for method, template, body in ROUTES:
        with subtests.test(route=f"{method} {template}"):
            fill = {**victim, "own_donor": own_donor.id}
            path = template.format(**fill)
            payload = {k: (v.format(**fill) if isinstance(v, str) else v) for k, v in body.items()} if body else body
            foreign = _call(client, method, path, payload)
            error = assert_error(foreign, 404, "not_found")
            # indistinguishable from an id that exists nowhere
            unknown = _call(client, method, template.format(**{k: UNKNOWN for k in fill} | {"own_donor": own_donor.id}), payload)
            assert_error(unknown, 404, "not_found")
            assert error["message"] == unknown.json()["error"]["message"]
            assert "param" not in error
    assert snapshot(target_org) == before
    # and lists never show the victim's records
    for path in ("/api/v1/donors?limit=100", "/api/v1/donations?limit=100", "/api/v1/campaigns?limit=100"):
        listed = {item["id"] for item in client.get(path).json()["data"]}
        assert not listed & set(victim.values()), path


@pytest.mark.parametrize("field", ["donor_id", "campaign_id"])
def test_foreign_ids_in_bodies_are_validation_failed(org, other_org, write_client, field):
    own_donor = make_donor(org, email="own@example.com")
    gift = record(org, own_donor)
    foreign = {"donor_id": make_donor(other_org, email="f@example.com").id, "campaign_id": make_campaign(other_org).id}[field]
    create = {"donor_id": own_donor.id, "donation_type": "MONETARY", "amount_cents": 100, "donation_date": "2026-03-01", field: foreign}
    for response in (
        write_client.post("/api/v1/donations", create, format="json"),
        write_client.patch(f"/api/v1/donations/{gift.id}", {field: foreign}, format="json"),
    ):
        error = assert_error(response, 400, "validation_failed", field)
        other = dict(create)
        other[field] = UNKNOWN
        unknown = assert_error(write_client.post("/api/v1/donations", other, format="json"), 400, "validation_failed", field)
        assert error["message"].replace(foreign, "<id>") == unknown["message"].replace(UNKNOWN, "<id>")
    gift.refresh_from_db()
    assert gift.donor_id == own_donor.id and gift.campaign_id is None


@pytest.mark.parametrize("query", ["donor_id={donor}", "campaign_id={campaign}", "starting_after={donation}", "ending_before={donation}"])
def test_foreign_ids_in_query_parameters(org, other_org, victim, query):
    client = client_for(make_key(other_org, "READ"))
    response = client.get("/api/v1/donations?" + query.format(**victim))
    if query.startswith(("starting_after", "ending_before")):
        assert_error(response, 400, "validation_failed", query.split("=")[0])
    else:
        assert response.status_code == 200 and response.json()["data"] == []


def test_sandbox_twin_has_its_own_records(org, sandbox_write_client, write_client):
    live = write_client.post("/api/v1/donors", {"email": "same@example.com"}, format="json").json()
    twin = sandbox_write_client.post("/api/v1/donors", {"email": "same@example.com"}, format="json").json()
    assert live["id"] != twin["id"]
    assert [d["id"] for d in write_client.get("/api/v1/donors").json()["data"]] == [live["id"]]
    assert [d["id"] for d in sandbox_write_client.get("/api/v1/donors").json()["data"]] == [twin["id"]]
    gift = sandbox_write_client.post("/api/v1/donations", {"donor_id": twin["id"], "donation_type": "MONETARY",
                                                           "amount_cents": 500, "donation_date": "2026-03-01"}, format="json")
    assert gift.status_code == 201 and Donation.objects.get(pk=gift.json()["id"]).organisation_id == org.sandbox.id
    assert write_client.get("/api/v1/donations").json()["data"] == []
    assert write_client.get(f"/api/v1/donors/{live['id']}").json()["donations_count"] == 0
