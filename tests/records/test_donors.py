"""Donors through the HTTP stack: field rules, uniqueness, filters, PATCH,
DELETE, a donor's donations and the computed totals."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection

from donations.models import Donor
from tests.conftest import client_for, make_key
from tests.records.helpers import ids, patch, post, record
from tests.support.api import assert_error, make_donor

URL = "/api/v1/donors"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

DONOR_KEYS = {
    "id", "object", "donor_type", "first_name", "last_name", "organisation_name", "email", "phone",
    "address_line1", "address_line2", "suburb", "state", "postcode", "country", "notes", "external_id",
    "metadata", "donations_total_cents", "donations_count", "created_at", "updated_at",
}


# --- create: what is accepted --------------------------------------------------

ACCEPTED = [
    pytest.param({"email": "only@example.com"}, {"email": "only@example.com", "first_name": None, "country": "AU"}, id="only-email"),
    pytest.param({"first_name": "Jo", "organisation_name": "Acme Pty Ltd"},
                 {"first_name": "Jo", "organisation_name": "Acme Pty Ltd", "email": None}, id="name-and-organisation"),
    pytest.param({"organisation_name": "Smith Family Trust", "donor_type": "TRUST"},
                 {"donor_type": "TRUST", "organisation_name": "Smith Family Trust"}, id="trust"),
    pytest.param({"phone": "+61 400 000 000"}, {"phone": "+61 400 000 000", "donor_type": "INDIVIDUAL"}, id="only-phone"),
    *[pytest.param({"email": f"{t.lower()}@example.com", "donor_type": t}, {"donor_type": t}, id=f"type-{t}")
      for t in ("INDIVIDUAL", "ORGANISATION", "TRUST", "UNKNOWN")],
    pytest.param({"email": "c@example.com"}, {"country": "AU"}, id="country-default-AU"),
    pytest.param({"email": "c@example.com", "country": None}, {"country": "AU"}, id="country-null-is-AU"),
    pytest.param({"email": "c@example.com", "country": "nz"}, {"country": "NZ"}, id="country-upper-cased"),
    pytest.param({"email": "c@example.com", "country": "GB"}, {"country": "GB"}, id="country-GB"),
    pytest.param({"email": "  Spaced@Example.com  ", "first_name": "  Al "},
                 {"email": "Spaced@Example.com", "first_name": "Al"}, id="strings-trimmed"),
    pytest.param({"email": "m@example.com", "metadata": {"crm": "123"}}, {"metadata": {"crm": "123"}}, id="metadata"),
    pytest.param({"email": "m@example.com", "metadata": None}, {"metadata": {}}, id="metadata-null-is-empty"),
    pytest.param({"email": "m@example.com", "metadata": {f"k{i}": "v" for i in range(50)}},
                 {"metadata": {f"k{i}": "v" for i in range(50)}}, id="metadata-50-keys"),
    pytest.param({"email": "m@example.com", "metadata": {"k" * 40: "v" * 500}},
                 {"metadata": {"k" * 40: "v" * 500}}, id="metadata-key-40-value-500"),
    pytest.param({"email": "full@example.com", "first_name": "Ann", "last_name": "Lee", "address_line1": "1 George St",
                  "address_line2": "Level 2", "suburb": "Sydney", "state": "NSW", "postcode": "2000",
                  "notes": "Met at fair", "external_id": "nb-42"},
                 {"suburb": "Sydney", "state": "NSW", "postcode": "2000", "external_id": "nb-42", "notes": "Met at fair"},
                 id="full-record"),
]


@pytest.mark.parametrize("body, expected", ACCEPTED)
def test_create_accepts(write_client, org, body, expected):
    response = post(write_client, URL, body)
    assert response.status_code == 201, response.content
    donor = response.json()
    assert DONOR_KEYS <= set(donor) and "search_text" not in donor and "organisation_id" not in donor
    assert donor["object"] == "donor"
    assert donor["donations_total_cents"] == 0 and donor["donations_count"] == 0
    assert TIMESTAMP.match(donor["created_at"]) and TIMESTAMP.match(donor["updated_at"])
    for key, value in expected.items():
        assert donor[key] == value, key
    stored = Donor.objects.get(pk=donor["id"])
    assert stored.organisation_id == org.id
    # what GET returns is what POST returned
    assert write_client.get(f"{URL}/{donor['id']}").json() == donor


# --- create: what is refused ---------------------------------------------------

REFUSED = [
    pytest.param({"notes": "no identity"}, "validation_failed", "email", id="no-identity"),
    pytest.param({"email": "   "}, "validation_failed", "email", id="blank-email-no-identity"),
    pytest.param({"email": "not-an-email"}, "validation_failed", "email", id="email-without-at"),
    pytest.param({"email": "a b@example.com"}, "validation_failed", "email", id="email-with-space"),
    pytest.param({"email": 12}, "invalid_request", "email", id="email-wrong-type"),
    pytest.param({"email": "x@example.com", "donor_type": "ALIEN"}, "validation_failed", "donor_type", id="donor-type-unknown"),
    pytest.param({"email": "x@example.com", "donor_type": "individual"}, "validation_failed", "donor_type", id="donor-type-case"),
    pytest.param({"email": "x@example.com", "donor_type": 1}, "invalid_request", "donor_type", id="donor-type-wrong-type"),
    pytest.param({"email": "x@example.com", "country": "AUS"}, "validation_failed", "country", id="country-3-letters"),
    pytest.param({"email": "x@example.com", "country": "A1"}, "validation_failed", "country", id="country-digit"),
    pytest.param({"email": "x@example.com", "country": "ZZ"}, "validation_failed", "country", id="country-not-iso"),
    pytest.param({"email": "x@example.com", "first_name": "x" * 101}, "validation_failed", "first_name", id="first-name-too-long"),
    pytest.param({"email": "x@example.com", "postcode": "1" * 13}, "validation_failed", "postcode", id="postcode-too-long"),
    pytest.param({"email": "x@example.com", "metadata": {f"k{i}": "v" for i in range(51)}}, "validation_failed", "metadata", id="metadata-51-keys"),
    pytest.param({"email": "x@example.com", "metadata": {"k" * 41: "v"}}, "validation_failed", "metadata", id="metadata-key-41"),
    pytest.param({"email": "x@example.com", "metadata": {"": "v"}}, "validation_failed", "metadata", id="metadata-empty-key"),
    pytest.param({"email": "x@example.com", "metadata": {"k": "v" * 501}}, "validation_failed", "metadata", id="metadata-value-501"),
    pytest.param({"email": "x@example.com", "metadata": {"k": 5}}, "invalid_request", "metadata", id="metadata-number-value"),
    pytest.param({"email": "x@example.com", "metadata": {"k": {"n": "v"}}}, "invalid_request", "metadata", id="metadata-nested"),
    pytest.param({"email": "x@example.com", "metadata": {"k": None}}, "invalid_request", "metadata", id="metadata-null-value"),
    pytest.param({"email": "x@example.com", "metadata": ["a"]}, "invalid_request", "metadata", id="metadata-list"),
    pytest.param({"email": "x@example.com", "metadata": "a=b"}, "invalid_request", "metadata", id="metadata-string"),
    pytest.param({"email": "x@example.com", "favourite_colour": "red"}, "invalid_request", "favourite_colour", id="unknown-field"),
    pytest.param({"email": "x@example.com", "donations_total_cents": 100}, "invalid_request", "donations_total_cents", id="computed-field"),
    pytest.param({"email": "x@example.com", "id": "c" * 24}, "invalid_request", "id", id="id-not-writable"),
]


@pytest.mark.parametrize("body, code, param", REFUSED)
def test_create_refuses(write_client, org, body, code, param):
    assert_error(post(write_client, URL, body), 400, code, param)
    assert not Donor.objects.for_organisation(org).exists()


def test_create_empty_body_is_invalid_request(write_client):
    assert_error(post(write_client, URL, {}), 400, "invalid_request")


def test_create_needs_write_key(read_client):
    assert_error(post(read_client, URL, {"email": "r@example.com"}), 403, "forbidden")


# --- email uniqueness ------------------------------------------------------------

@pytest.mark.parametrize("second", ["alice@example.com", "ALICE@Example.COM", "  alice@example.com "])
def test_email_unique_per_org_case_insensitive(write_client, org, second):
    first = post(write_client, URL, {"email": "Alice@example.com"}).json()
    error = assert_error(post(write_client, URL, {"email": second, "first_name": "Again"}), 409, "conflict")
    assert first["id"] in error["message"]
    assert Donor.objects.for_organisation(org).count() == 1


def test_same_email_in_another_org_is_fine(write_client, other_write_client, sandbox_write_client):
    a = post(write_client, URL, {"email": "shared@example.com"})
    b = post(other_write_client, URL, {"email": "shared@example.com"})
    c = post(sandbox_write_client, URL, {"email": "SHARED@example.com"})
    assert (a.status_code, b.status_code, c.status_code) == (201, 201, 201)
    assert len({a.json()["id"], b.json()["id"], c.json()["id"]}) == 3


def test_patch_to_a_taken_email_is_conflict(write_client, org):
    alice = make_donor(org, email="alice@example.com")
    bob = make_donor(org, email="bob@example.com")
    error = assert_error(patch(write_client, f"{URL}/{bob.id}", {"email": "ALICE@example.com"}), 409, "conflict")
    assert alice.id in error["message"]
    # a donor may keep (or re-case) its own email
    response = patch(write_client, f"{URL}/{alice.id}", {"email": "Alice@Example.com"})
    assert response.status_code == 200 and response.json()["email"] == "Alice@Example.com"


# --- list filters -----------------------------------------------------------------

@pytest.fixture
def population(org, other_org):
    donors = {
        "alice": make_donor(org, first_name="Alice", last_name="Smith", email="Alice.Smith@example.com", external_id="nb-1"),
        "bob": make_donor(org, first_name="Bob", last_name="Jones", email="bob@workplace.org", donor_type="INDIVIDUAL"),
        "acme": make_donor(org, first_name=None, last_name=None, organisation_name="Acme Widgets Pty Ltd",
                           email="accounts@acme.example", donor_type="ORGANISATION", external_id="nb-2"),
        "trust": make_donor(org, first_name=None, last_name=None, organisation_name="Smithson Family Trust", donor_type="TRUST"),
        "anon": make_donor(org, first_name=None, last_name=None, email="x@example.net", donor_type="UNKNOWN"),
    }
    # another organisation's lookalike never shows
    make_donor(other_org, first_name="Alice", last_name="Smith", email="alice.smith@example.com", external_id="nb-1")
    stamps = {
        "alice": dt.datetime(2026, 1, 1, 9, tzinfo=dt.timezone.utc),
        "bob": dt.datetime(2026, 1, 15, 23, 59, tzinfo=dt.timezone.utc),
        "acme": dt.datetime(2026, 2, 1, 0, 0, tzinfo=dt.timezone.utc),
        "trust": dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone.utc),
        "anon": dt.datetime(2026, 4, 1, 12, tzinfo=dt.timezone.utc),
    }
    for name, stamp in stamps.items():
        Donor.objects.filter(pk=donors[name].id).update(created_at=stamp, updated_at=stamp + dt.timedelta(days=60))
    return donors


FILTERS = [
    ("email=alice.smith@example.com", {"alice"}),
    ("email=ALICE.SMITH@EXAMPLE.COM", {"alice"}),
    ("email=alice", set()),  # exact, not substring
    ("external_id=nb-1", {"alice"}),
    ("external_id=nb-2", {"acme"}),
    ("external_id=NB-1", set()),
    ("donor_type=INDIVIDUAL", {"alice", "bob"}),
    ("donor_type=ORGANISATION", {"acme"}),
    ("donor_type=TRUST", {"trust"}),
    ("donor_type=UNKNOWN", {"anon"}),
    ("q=smith", {"alice", "trust"}),
    ("q=SMITH", {"alice", "trust"}),
    ("q=alice smith", {"alice"}),
    ("q=widgets", {"acme"}),
    ("q=workplace.org", {"bob"}),
    ("q=accounts@acme", {"acme"}),
    ("q=jones", {"bob"}),
    ("q=nobody", set()),
    ("q=smith&donor_type=TRUST", {"trust"}),
    ("created_at[gte]=2026-01-15", {"bob", "acme", "trust", "anon"}),
    ("created_at[gt]=2026-01-15", {"acme", "trust", "anon"}),
    ("created_at[lte]=2026-01-15", {"alice", "bob"}),
    ("created_at[lt]=2026-01-15", {"alice"}),
    ("created_at[gte]=2026-01-15&created_at[lt]=2026-03-01", {"bob", "acme"}),
    ("created_at[gte]=2026-02-01T00:00:00Z", {"acme", "trust", "anon"}),
    ("created_at[gt]=2026-02-01T00:00:00Z", {"trust", "anon"}),
    ("created_at[lt]=2026-01-01T09:00:01Z", {"alice"}),
    ("updated_at[gte]=2026-03-16", {"bob", "acme", "trust", "anon"}),
    ("updated_at[lt]=2026-03-16", {"alice"}),
    ("updated_at[gt]=2026-04-30&updated_at[lte]=2026-05-31", {"anon"}),
    ("updated_at[gte]=2026-04-30&updated_at[lte]=2026-05-31", {"trust", "anon"}),
]


@pytest.mark.parametrize("query, expected", FILTERS, ids=[f[0] for f in FILTERS])
def test_list_filters(read_client, population, query, expected):
    got = ids(read_client.get(f"{URL}?{query}&limit=100"))
    assert set(got) == {population[name].id for name in expected}
    assert len(got) == len(set(got))


@pytest.mark.parametrize("query, code, param", [
    ("donor_type=ALIEN", "validation_failed", "donor_type"),
    ("created_at[gte]=yesterday", "validation_failed", "created_at[gte]"),
    ("updated_at[lt]=2026-13-01", "validation_failed", "updated_at[lt]"),
    ("created_at[between]=2026-01-01", "invalid_request", "created_at[between]"),
    ("name=alice", "invalid_request", "name"),
    ("amount_cents[gte]=1", "invalid_request", "amount_cents[gte]"),
    ("expand[]=donations", "invalid_request", "expand[]"),
])
def test_list_filter_errors(read_client, query, code, param):
    assert_error(read_client.get(f"{URL}?{query}"), 400, code, param)


def test_list_newest_first_and_pages(read_client, population):
    order = ["anon", "trust", "acme", "bob", "alice"]
    first = read_client.get(f"{URL}?limit=2").json()
    assert [d["id"] for d in first["data"]] == [population[n].id for n in order[:2]] and first["has_more"]
    rest = read_client.get(f"{URL}?limit=10&starting_after={first['data'][-1]['id']}").json()
    assert [d["id"] for d in rest["data"]] == [population[n].id for n in order[2:]] and not rest["has_more"]


def test_search_uses_the_trigram_index(org, population):
    """`q`'s predicate must be one the GIN trigram index answers (so it stays fast on
    200k donors, where the planner ANDs it with the organisation's index)."""
    from donations.api.filters import DonorFilterSet

    queryset = DonorFilterSet({"q": "smith"}, queryset=Donor.objects.all()).qs.values("id")
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "donor_search_trgm" in plan, plan


# --- PATCH ------------------------------------------------------------------------

def test_patch_changes_only_what_is_sent(write_client, org):
    donor = make_donor(org, first_name="Ann", last_name="Lee", email="ann@example.com", postcode="2000", metadata={"a": "1"})
    before = write_client.get(f"{URL}/{donor.id}").json()
    response = patch(write_client, f"{URL}/{donor.id}", {"last_name": "Leigh", "country": "nz", "metadata": {"b": "2"}})
    assert response.status_code == 200, response.content
    after = response.json()
    assert after["last_name"] == "Leigh" and after["country"] == "NZ" and after["metadata"] == {"b": "2"}
    assert {k: v for k, v in after.items() if k not in ("last_name", "country", "metadata", "updated_at")} == \
           {k: v for k, v in before.items() if k not in ("last_name", "country", "metadata", "updated_at")}
    assert after["updated_at"] > before["updated_at"]


@pytest.mark.parametrize("body, code, param", [
    ({}, "invalid_request", None),
    ({"donor_type": "ROBOT"}, "validation_failed", "donor_type"),
    ({"email": "bad"}, "validation_failed", "email"),
    ({"country": "ZZ"}, "validation_failed", "country"),
    ({"metadata": {"k": 1}}, "invalid_request", "metadata"),
    ({"first_name": None, "last_name": None, "email": None}, "validation_failed", "email"),
    ({"donations_count": 3}, "invalid_request", "donations_count"),
    ({"organisation_id": "c" * 24}, "invalid_request", "organisation_id"),
])
def test_patch_refuses(write_client, org, body, code, param):
    donor = make_donor(org, first_name="Ann", last_name=None, email="ann@example.com")
    error = assert_error(patch(write_client, f"{URL}/{donor.id}", body), 400, code)
    if param:
        assert error["param"] == param
    donor.refresh_from_db()
    assert (donor.first_name, donor.email, donor.country) == ("Ann", "ann@example.com", "AU")


# --- DELETE -------------------------------------------------------------------------

def test_delete_without_donations(write_client, org):
    donor = make_donor(org)
    response = write_client.delete(f"{URL}/{donor.id}")
    assert response.status_code == 204 and response.content == b""
    assert_error(write_client.get(f"{URL}/{donor.id}"), 404, "not_found")
    assert_error(write_client.delete(f"{URL}/{donor.id}"), 404, "not_found")


@pytest.mark.parametrize("then", ["keep", "void", "refund"])
def test_delete_refused_while_donations_exist(write_client, org, then):
    donor = make_donor(org)
    gift = record(org, donor)
    if then == "void":
        post(write_client, f"/api/v1/donations/{gift.id}/void", {"reason": "typo"})
    if then == "refund":
        post(write_client, f"/api/v1/donations/{gift.id}/refund", {"refund_date": "2026-03-02", "reason": "asked"})
    error = assert_error(write_client.delete(f"{URL}/{donor.id}"), 409, "conflict")
    assert donor.id in error["message"]
    assert Donor.objects.filter(pk=donor.id).exists()


# --- a donor's donations and totals -------------------------------------------------

def test_donor_donations_lists_only_that_donor(read_client, org):
    donor, other = make_donor(org, email="d1@example.com"), make_donor(org, email="d2@example.com")
    mine = [record(org, donor, amount_cents=100 * (i + 1)) for i in range(3)]
    record(org, other)
    response = read_client.get(f"{URL}/{donor.id}/donations?limit=100")
    assert ids(response) == [g.id for g in reversed(mine)]
    assert all(item["object"] == "donation" and item["donor_id"] == donor.id for item in response.json()["data"])
    # filters and expand apply there too
    assert ids(read_client.get(f"{URL}/{donor.id}/donations?amount_cents[gte]=200")) == [mine[2].id, mine[1].id]
    expanded = read_client.get(f"{URL}/{donor.id}/donations?expand[]=donor&limit=1").json()["data"][0]
    assert expanded["donor"]["id"] == donor.id
    assert_error(read_client.get(f"{URL}/{donor.id}/donations?expand[]=organisation"), 400, "validation_failed", "expand[]")
    assert_error(read_client.get(f"{URL}/{'c' * 24}/donations"), 404, "not_found")


def test_totals_count_confirmed_gifts_only(write_client, org):
    donor = make_donor(org)
    url = f"{URL}/{donor.id}"

    def totals():
        body = write_client.get(url).json()
        return body["donations_total_cents"], body["donations_count"]

    gift = lambda body: post(write_client, "/api/v1/donations", {"donor_id": donor.id, "donation_date": "2026-03-01", **body})
    cash = gift({"donation_type": "MONETARY", "amount_cents": 10_000, "payment_method": "CASH"}).json()
    assert totals() == (10_000, 1)
    goods = gift({"donation_type": "IN_KIND", "amount_cents": 2_500, "in_kind_category": "GOODS",
                  "in_kind_description": "Chairs"}).json()
    cheque = gift({"donation_type": "MONETARY", "amount_cents": 700, "payment_method": "CHEQUE", "reference": "000123"}).json()
    assert totals() == (13_200, 3)
    record(org, donor, amount_cents=99_999, status="PENDING", source="STRIPE")
    record(org, donor, amount_cents=88_888, status="FAILED", source="STRIPE")
    assert totals() == (13_200, 3)
    assert post(write_client, f"/api/v1/donations/{cheque['id']}/refund", {"refund_date": "2026-03-05", "reason": "bounced"}).status_code == 200
    assert totals() == (12_500, 2)
    assert post(write_client, f"/api/v1/donations/{goods['id']}/void", {"reason": "entered twice"}).status_code == 200
    assert totals() == (10_000, 1)
    assert patch(write_client, f"/api/v1/donations/{cash['id']}", {"amount_cents": 12_000}).status_code == 200
    assert totals() == (12_000, 1)
    # and the list shows the same figures as retrieve
    listed = write_client.get(f"{URL}?limit=100").json()["data"]
    assert [(d["donations_total_cents"], d["donations_count"]) for d in listed if d["id"] == donor.id] == [(12_000, 1)]


def test_moving_a_gift_to_another_donor_moves_the_totals(write_client, org):
    a, b = make_donor(org, email="a@example.com"), make_donor(org, email="b@example.com")
    gift = record(org, a, amount_cents=4_000)
    assert patch(write_client, f"/api/v1/donations/{gift.id}", {"donor_id": b.id}).status_code == 200
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.donations_total_cents, a.donations_count, b.donations_total_cents, b.donations_count) == (0, 0, 4_000, 1)


def test_read_key_reads_and_cannot_write(org, read_client):
    donor = make_donor(org, email="r@example.com")
    assert read_client.get(f"{URL}/{donor.id}").status_code == 200
    assert_error(patch(read_client, f"{URL}/{donor.id}", {"first_name": "X"}), 403, "forbidden")
    assert_error(read_client.delete(f"{URL}/{donor.id}"), 403, "forbidden")
    assert_error(post(read_client, f"{URL}/{donor.id}/merge", {"duplicate_id": donor.id}), 403, "forbidden")


def test_quickstart_step_3_verbatim(org):
    """`curl "…/api/v1/donors?limit=5" -H "Authorization: Bearer …"`, and the two filters it names."""
    client = client_for(make_key(org, "READ"))
    for i in range(7):
        make_donor(org, email=f"d{i}@example.com")
    make_donor(org, email="alice@example.com")
    body = client.get("/api/v1/donors?limit=5").json()
    assert set(body) == {"data", "has_more"} and len(body["data"]) == 5 and body["has_more"] is True
    nxt = client.get(f"/api/v1/donors?limit=5&starting_after={body['data'][-1]['id']}").json()
    assert len(nxt["data"]) == 3 and nxt["has_more"] is False
    assert [d["email"] for d in client.get("/api/v1/donors?email=alice@example.com").json()["data"]] == ["alice@example.com"]
    assert len(client.get("/api/v1/donors?created_at[gte]=2026-01-01").json()["data"]) == 8
