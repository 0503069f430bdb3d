"""Custom fields through the API (issue 19): definitions at /api/v1/custom-fields,
values on donors and donations (create, update, list, retrieve), envelope errors
naming `custom_fields.<key>`, and the `cf_<key>` list filters."""
from __future__ import annotations

import pytest

from donations.models import Donation, Donor

pytestmark = pytest.mark.django_db


def define(client, **body):
    response = client.post("/api/v1/custom-fields", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def gift_fields(write_client):
    return {
        "region": define(write_client, applies_to="DONATION", key="region", label="Region", field_type="CHOICE",
                         choices=["North", "South"]),
        "pledge": define(write_client, applies_to="DONATION", key="pledge", label="Pledge", field_type="NUMBER"),
        "met_on": define(write_client, applies_to="DONATION", key="met_on", label="Met on", field_type="DATE"),
        "thanked": define(write_client, applies_to="DONATION", key="thanked", label="Thanked", field_type="BOOLEAN"),
        "note": define(write_client, applies_to="DONATION", key="note", label="Note", field_type="TEXT"),
    }


def new_donor(client, **extra):
    response = client.post("/api/v1/donors", {"email": f"d{Donor.objects.count()}@example.org", **extra}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def gift_body(donor_id, **extra):
    return {"donor_id": donor_id, "donation_type": "MONETARY", "amount_cents": 5000, "donation_date": "2026-03-01",
            "payment_method": "CHEQUE", **extra}


def test_definition_shape_list_and_patch(write_client, read_client):
    field = define(write_client, applies_to="DONOR", key="member_since", label="Member since", field_type="DATE",
                   required=False, help_text="When they joined")
    assert field["object"] == "custom_field" and field["key"] == "member_since" and field["archived"] is False
    assert field["choices"] == [] and field["position"] == 0
    listed = read_client.get("/api/v1/custom-fields").json()
    assert [f["id"] for f in listed["data"]] == [field["id"]] and listed["has_more"] is False
    patched = write_client.patch(f"/api/v1/custom-fields/{field['id']}", {"label": "Joined"}, format="json").json()
    assert patched["label"] == "Joined"
    archived = write_client.post(f"/api/v1/custom-fields/{field['id']}/archive").json()
    assert archived["archived"] is True and archived["archived_at"]


@pytest.mark.parametrize("body, param", [
    ({"applies_to": "DONOR", "key": "Bad Key", "label": "X", "field_type": "TEXT"}, "key"),
    ({"applies_to": "DONOR", "key": "tier", "label": "Tier", "field_type": "CHOICE"}, "choices"),
    ({"applies_to": "DONOR", "key": "tier", "label": "Tier", "field_type": "CHOICE", "choices": ["A", "a"]}, "choices"),
    ({"applies_to": "DONOR", "key": "tier", "label": "Tier", "field_type": "TEXT", "choices": ["A"]}, "choices"),
    ({"applies_to": "DONOR", "key": "tier", "label": "  ", "field_type": "TEXT"}, "label"),
])
def test_definition_errors_name_the_field(write_client, body, param):
    response = write_client.post("/api/v1/custom-fields", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_failed"
    assert response.json()["error"]["param"] == param


def test_duplicate_key_is_refused(write_client):
    define(write_client, applies_to="DONOR", key="tier", label="Tier", field_type="TEXT")
    response = write_client.post("/api/v1/custom-fields", {"applies_to": "DONOR", "key": "tier", "label": "Again",
                                                            "field_type": "TEXT"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "key"
    # The same key on the other kind of record is another field.
    define(write_client, applies_to="DONATION", key="tier", label="Tier", field_type="TEXT")


def test_gift_values_round_trip_in_list_and_retrieve(write_client, read_client, gift_fields):
    donor = new_donor(write_client)
    values = {"region": "north", "pledge": "1,250.50", "met_on": "2026-02-03", "thanked": True, "note": "  hi  "}
    created = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields=values), format="json")
    assert created.status_code == 201, created.json()
    stored = {"region": "North", "pledge": 1250.5, "met_on": "2026-02-03", "thanked": True, "note": "hi"}
    assert created.json()["custom_fields"] == stored
    gift_id = created.json()["id"]
    assert read_client.get(f"/api/v1/donations/{gift_id}").json()["custom_fields"] == stored
    listed = read_client.get("/api/v1/donations").json()["data"]
    assert [d["custom_fields"] for d in listed if d["id"] == gift_id] == [stored]
    # PATCH merges; null removes one value.
    patched = write_client.patch(f"/api/v1/donations/{gift_id}", {"custom_fields": {"pledge": 7, "note": None}}, format="json")
    assert patched.status_code == 200, patched.json()
    assert patched.json()["custom_fields"] == {"region": "North", "pledge": 7, "met_on": "2026-02-03", "thanked": True}
    assert Donation.objects.get(pk=gift_id).custom_fields["pledge"] == 7


@pytest.mark.parametrize("key, value", [
    ("region", "West"),          # not a choice
    ("region", 3),
    ("pledge", "twelve"),        # not a number
    ("pledge", True),
    ("pledge", "1e400"),
    ("pledge", "1234567890.1234567"),  # more than 15 significant digits
    ("met_on", "03/02/2026"),    # not ISO 8601
    ("met_on", "2026-02-30"),
    ("met_on", "1800-01-01"),
    ("thanked", "maybe"),
    ("thanked", 2),
    ("note", 12),
    ("note", "x" * 1001),
    ("unknown", "x"),            # no such field
])
def test_bad_values_answer_the_envelope_with_the_field(write_client, gift_fields, key, value):
    donor = new_donor(write_client)
    before = Donation.objects.count()
    response = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={key: value}), format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and error["param"] == f"custom_fields.{key}"
    assert Donation.objects.count() == before


def test_custom_fields_must_be_an_object(write_client, gift_fields):
    donor = new_donor(write_client)
    response = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields=["North"]), format="json")
    assert response.status_code == 400 and response.json()["error"]["param"] == "custom_fields"


def test_required_fields_bind_create_and_cannot_be_removed(write_client):
    define(write_client, applies_to="DONOR", key="branch", label="Branch", field_type="TEXT", required=True)
    missing = write_client.post("/api/v1/donors", {"email": "a@example.org"}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "custom_fields.branch"
    donor = new_donor(write_client, custom_fields={"branch": "Inner West"})
    assert donor["custom_fields"] == {"branch": "Inner West"}
    removed = write_client.patch(f"/api/v1/donors/{donor['id']}", {"custom_fields": {"branch": ""}}, format="json")
    assert removed.status_code == 400 and removed.json()["error"]["param"] == "custom_fields.branch"
    # Other edits of the donor leave the value alone.
    renamed = write_client.patch(f"/api/v1/donors/{donor['id']}", {"first_name": "Ann"}, format="json").json()
    assert renamed["custom_fields"] == {"branch": "Inner West"}


def test_archived_fields_take_no_new_values_but_keep_old_ones(write_client, gift_fields):
    donor = new_donor(write_client)
    gift = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={"region": "South"}), format="json").json()
    write_client.post(f"/api/v1/custom-fields/{gift_fields['region']['id']}/archive")
    again = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={"region": "North"}), format="json")
    assert again.status_code == 400 and again.json()["error"]["param"] == "custom_fields.region"
    assert write_client.get(f"/api/v1/donations/{gift['id']}").json()["custom_fields"] == {"region": "South"}


def test_key_and_type_are_fixed_once_used(write_client, gift_fields):
    donor = new_donor(write_client)
    field_id = gift_fields["pledge"]["id"]
    assert write_client.patch(f"/api/v1/custom-fields/{field_id}", {"key": "promise"}, format="json").status_code == 200
    write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={"promise": 5}), format="json")
    for change, param in (({"key": "pledge"}, "key"), ({"field_type": "TEXT"}, "field_type")):
        response = write_client.patch(f"/api/v1/custom-fields/{field_id}", change, format="json")
        assert response.status_code == 400 and response.json()["error"]["param"] == param


def test_filters_by_typed_value(write_client, read_client, gift_fields):
    donor = new_donor(write_client)
    north = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={"region": "North", "pledge": 10,
                                                                                        "thanked": True}), format="json").json()
    south = write_client.post("/api/v1/donations", gift_body(donor["id"], custom_fields={"region": "South", "pledge": 10.5}),
                              format="json").json()

    def ids(query):
        response = read_client.get(f"/api/v1/donations?{query}")
        assert response.status_code == 200, response.json()
        return {d["id"] for d in response.json()["data"]}

    assert ids("cf_region=north") == {north["id"]}
    assert ids("cf_pledge=10.0") == {north["id"]}
    assert ids("cf_pledge=10.5") == {south["id"]}
    assert ids("cf_thanked=yes") == {north["id"]}
    assert ids("cf_region=South&cf_pledge=10") == set()
    # On a donor's donations too.
    response = read_client.get(f"/api/v1/donors/{donor['id']}/donations?cf_region=South")
    assert [d["id"] for d in response.json()["data"]] == [south["id"]]
    for query, param in (("cf_region=West", "cf_region"), ("cf_nothing=1", "cf_nothing"), ("cf_pledge=abc", "cf_pledge")):
        response = read_client.get(f"/api/v1/donations?{query}")
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] == "validation_failed" and response.json()["error"]["param"] == param


def test_donor_filter_and_other_organisation(write_client, read_client, other_write_client):
    define(write_client, applies_to="DONOR", key="tier", label="Tier", field_type="CHOICE", choices=["Gold", "Silver"])
    gold = new_donor(write_client, custom_fields={"tier": "Gold"})
    new_donor(write_client, custom_fields={"tier": "Silver"})
    response = read_client.get("/api/v1/donors?cf_tier=gold")
    assert [d["id"] for d in response.json()["data"]] == [gold["id"]]
    # Another organisation knows no such field, and cannot see this one's definitions.
    assert other_write_client.get("/api/v1/donors?cf_tier=Gold").json()["error"]["param"] == "cf_tier"
    assert other_write_client.get("/api/v1/custom-fields").json()["data"] == []
