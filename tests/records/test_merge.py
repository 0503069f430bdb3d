"""Donor merge through the HTTP stack, and the duplicate-candidates selector."""
from __future__ import annotations

import pytest

from donations import services
from donations.models import Donation, Donor, DonorMerge
from donations.selectors import donor_duplicate_candidates
from organisations.models import AuditEntry
from tests.records.helpers import post, record
from tests.support.api import assert_error, make_donor


def merge(client, survivor_id, body):
    return post(client, f"/api/v1/donors/{survivor_id}/merge", body)


def test_merge_moves_everything_and_deletes_the_duplicate(write_client, org, write_key):
    survivor = make_donor(org, first_name="Ann", last_name="Lee", email="ann@example.com", phone=None,
                          metadata={"keep": "survivor", "shared": "survivor"})
    duplicate = make_donor(org, first_name="Annie", last_name=None, email="ann.lee@work.example", phone="0400 000 000",
                           postcode="2000", metadata={"shared": "duplicate", "extra": "dup"})
    own = record(org, survivor, amount_cents=1_000)
    moved = [record(org, duplicate, amount_cents=2_000), record(org, duplicate, amount_cents=3_000)]
    voided = record(org, duplicate, amount_cents=9_000)
    post(write_client, f"/api/v1/donations/{voided.id}/void", {"reason": "typo"})

    response = merge(write_client, survivor.id, {"duplicate_id": duplicate.id})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == survivor.id
    # totals follow (the voided gift moves but does not count)
    assert (body["donations_total_cents"], body["donations_count"]) == (6_000, 3)
    # the survivor's own values win; its blanks are filled from the duplicate
    assert (body["first_name"], body["last_name"], body["email"]) == ("Ann", "Lee", "ann@example.com")
    assert (body["phone"], body["postcode"]) == ("0400 000 000", "2000")
    assert body["metadata"] == {"keep": "survivor", "shared": "survivor", "extra": "dup"}
    # every donation points at the survivor, none is lost
    assert set(Donation.objects.filter(donor_id=survivor.id).values_list("id", flat=True)) == {own.id, voided.id, *(g.id for g in moved)}
    assert_error(write_client.get(f"/api/v1/donors/{duplicate.id}"), 404, "not_found")
    assert not Donor.objects.filter(pk=duplicate.id).exists()
    listed = write_client.get(f"/api/v1/donors/{survivor.id}/donations?limit=100").json()["data"]
    assert len(listed) == 4
    # the audit trail: a DonorMerge with the duplicate's last state, and an audit entry by the API key
    record_ = DonorMerge.objects.get(survivor_id=survivor.id)
    assert record_.organisation_id == org.id and record_.duplicate_id_value == duplicate.id
    assert record_.duplicate_snapshot["email"] == "ann.lee@work.example"
    assert set(record_.moved_donation_ids) == {voided.id, *(g.id for g in moved)}
    entry = AuditEntry.objects.get(organisation=org, action="donor.merged")
    assert entry.object_id == survivor.id and entry.actor_type == "API_KEY"
    assert entry.request_id == response["x-request-id"]
    assert entry.before["duplicate"]["id"] == duplicate.id and entry.before["survivor"]["donations_count"] == 1
    assert entry.after["donations_count"] == 3 and set(entry.after["merged_donation_ids"]) == set(record_.moved_donation_ids)


def test_merge_takes_the_duplicates_email_when_the_survivor_has_none(write_client, org):
    survivor = make_donor(org, first_name="Bo", email=None)
    duplicate = make_donor(org, first_name="Bo", email="Bo@example.com")
    body = merge(write_client, survivor.id, {"duplicate_id": duplicate.id}).json()
    assert body["email"] == "Bo@example.com"
    # and the email is free again for nobody else: the survivor now holds it
    assert_error(post(write_client, "/api/v1/donors", {"email": "bo@example.com"}), 409, "conflict")


def test_chained_merges_keep_every_merge_record(write_client, org):
    a, b, c = (make_donor(org, email=f"{n}@example.com") for n in "abc")
    record(org, c, amount_cents=100)
    assert merge(write_client, b.id, {"duplicate_id": c.id}).status_code == 200
    assert merge(write_client, a.id, {"duplicate_id": b.id}).status_code == 200
    # the record of C folding into B is not lost when B itself is folded into A
    assert sorted(DonorMerge.objects.filter(organisation=org).values_list("duplicate_id_value", flat=True)) == sorted([b.id, c.id])
    assert set(DonorMerge.objects.filter(organisation=org).values_list("survivor_id", flat=True)) == {a.id}
    a.refresh_from_db()
    assert (a.donations_total_cents, a.donations_count) == (100, 1)


@pytest.mark.parametrize("case", ["itself", "unknown", "other-org", "sandbox-twin", "malformed"])
def test_merge_refuses_a_bad_duplicate(write_client, org, other_org, case):
    survivor = make_donor(org, email="s@example.com")
    record(org, survivor)
    duplicate_id = {
        "itself": survivor.id,
        "unknown": "c" + "0" * 23,
        "other-org": make_donor(other_org, email="o@example.com").id,
        "sandbox-twin": make_donor(org.sandbox, email="t@example.com").id,
        "malformed": "../../etc",
    }[case]
    assert_error(merge(write_client, survivor.id, {"duplicate_id": duplicate_id}), 400, "validation_failed", "duplicate_id")
    survivor.refresh_from_db()
    assert survivor.donations_count == 1
    assert not DonorMerge.objects.exists() and not AuditEntry.objects.filter(action="donor.merged").exists()
    if case in ("other-org", "sandbox-twin"):
        assert Donor.objects.filter(pk=duplicate_id).exists()


def test_unknown_and_foreign_duplicates_get_the_same_message(write_client, org, other_org):
    survivor = make_donor(org, email="s@example.com")
    foreign = make_donor(other_org, email="f@example.com")
    unknown_id = "c" + "1" * 23
    a = assert_error(merge(write_client, survivor.id, {"duplicate_id": foreign.id}), 400, "validation_failed", "duplicate_id")
    b = assert_error(merge(write_client, survivor.id, {"duplicate_id": unknown_id}), 400, "validation_failed", "duplicate_id")
    assert a["message"].replace(foreign.id, "<id>") == b["message"].replace(unknown_id, "<id>")


@pytest.mark.parametrize("body, code", [
    ({}, "invalid_request"),
    ({"duplicate_id": None}, "invalid_request"),
    ({"duplicate_id": 42}, "invalid_request"),
    ({"duplicate_id": "c" * 24, "keep": "survivor"}, "invalid_request"),
])
def test_merge_body_shape(write_client, org, body, code):
    survivor = make_donor(org, email="s@example.com")
    error = assert_error(merge(write_client, survivor.id, body), 400, code)
    if body:
        assert error["param"] in ("duplicate_id", "keep")


@pytest.mark.parametrize("case", ["unknown", "other-org", "sandbox-twin"])
def test_merge_into_a_survivor_not_ours_is_404(write_client, org, other_org, case):
    duplicate = make_donor(org, email="d@example.com")
    survivor_id = {
        "unknown": "c" + "2" * 23,
        "other-org": make_donor(other_org, email="o@example.com").id,
        "sandbox-twin": make_donor(org.sandbox, email="t@example.com").id,
    }[case]
    assert_error(merge(write_client, survivor_id, {"duplicate_id": duplicate.id}), 404, "not_found")
    assert Donor.objects.filter(pk=duplicate.id).exists()


def test_merge_is_one_transaction(write_client, org, monkeypatch):
    """A failure after the donations moved (here, in a merge hook) leaves nothing half-done."""
    survivor = make_donor(org, email="s@example.com")
    duplicate = make_donor(org, email="d@example.com")
    gifts = [record(org, duplicate, amount_cents=500) for _ in range(2)]
    seen = {}

    def failing_hook(*, organisation, survivor, duplicate):
        seen["moved"] = Donation.objects.filter(donor_id=survivor.id).count()
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "MERGE_HOOKS", [*services.MERGE_HOOKS, failing_hook])
    assert_error(merge(write_client, survivor.id, {"duplicate_id": duplicate.id}), 500, "internal_error")
    assert seen["moved"] == 2  # the hook ran after the move...
    # ...and everything rolled back
    assert set(Donation.objects.filter(donor_id=duplicate.id).values_list("id", flat=True)) == {g.id for g in gifts}
    duplicate.refresh_from_db(), survivor.refresh_from_db()
    assert (duplicate.donations_count, survivor.donations_count) == (2, 0)
    assert not DonorMerge.objects.exists() and not AuditEntry.objects.filter(action="donor.merged").exists()


# --- likely duplicates -------------------------------------------------------------

def pairs(organisation) -> dict[frozenset, str]:
    return {frozenset(p["donor_ids"]): p["reason"] for p in donor_duplicate_candidates(organisation=organisation)}


def test_duplicate_candidates(org, other_org):
    d = {
        "john": make_donor(org, first_name="John", last_name="Smith", email="john.smith@example.com", postcode="2000"),
        "john_caps_nodots": make_donor(org, first_name="J", last_name="S", email="JohnSmith@Example.com"),
        "john_dots": make_donor(org, first_name=None, last_name=None, email="j.o.h.n.smith@example.com"),
        "john_other_domain": make_donor(org, first_name=None, last_name=None, email="johnsmith@example.org"),
        "jane": make_donor(org, first_name="Jane", last_name="Doe", email=None, postcode="3000"),
        "jane_again": make_donor(org, first_name="  JANE", last_name="doe ", email=None, postcode="3000"),
        "jane_elsewhere": make_donor(org, first_name="Jane", last_name="Doe", email=None, postcode="4000"),
        "jane_no_postcode": make_donor(org, first_name="Jane", last_name="Doe", email="jd@example.com", postcode=None),
        "acme": make_donor(org, first_name=None, last_name=None, organisation_name="Acme Pty Ltd", postcode="2600"),
        "acme_again": make_donor(org, first_name=None, last_name=None, organisation_name="acme pty ltd", postcode="2600"),
    }
    make_donor(other_org, first_name="John", last_name="Smith", email="johnsmith@example.com", postcode="2000")
    found = pairs(org)
    email_trio = [d["john"].id, d["john_caps_nodots"].id, d["john_dots"].id]
    expected = {
        frozenset((email_trio[0], email_trio[1])): "same email",
        frozenset((email_trio[0], email_trio[2])): "same email",
        frozenset((email_trio[1], email_trio[2])): "same email",
        frozenset((d["jane"].id, d["jane_again"].id)): "same name and postcode",
        frozenset((d["acme"].id, d["acme_again"].id)): "same name and postcode",
    }
    assert found == expected
    # the older donor comes first in each pair
    created = {donor.id: donor.created_at for donor in d.values()}
    for p in donor_duplicate_candidates(organisation=org):
        assert created[p["donor_ids"][0]] <= created[p["donor_ids"][1]]


def test_duplicate_candidates_disappear_after_merge(write_client, org):
    a = make_donor(org, email="pat.kim@example.com")
    b = make_donor(org, email="PatKim@example.com")
    assert pairs(org) == {frozenset((a.id, b.id)): "same email"}
    assert merge(write_client, a.id, {"duplicate_id": b.id}).status_code == 200
    assert pairs(org) == {}


def _brute_force_pairs(organisation) -> dict[frozenset, str]:
    """The rules applied to every donor, with no narrowing: the reference."""
    import re

    donors = list(Donor.objects.for_organisation(organisation).values("id", "email", "first_name", "last_name", "organisation_name", "postcode"))
    keys = {}
    for d in donors:
        ks = set()
        if d["email"]:
            local, _, domain = d["email"].lower().partition("@")
            ks.add(("email", local.replace(".", "") + "@" + domain))
        name = " ".join(p for p in (d["first_name"], d["last_name"]) if p) or d["organisation_name"]
        if name and d["postcode"]:
            ks.add(("name", re.sub(r"\s+", " ", name.strip().lower()), d["postcode"].strip()))
        keys[d["id"]] = ks
    out = {}
    for a in donors:
        for b in donors:
            if a["id"] < b["id"]:
                shared = keys[a["id"]] & keys[b["id"]]
                if shared:
                    out[frozenset((a["id"], b["id"]))] = "same email" if any(k[0] == "email" for k in shared) else "same name and postcode"
    return out


def test_duplicate_candidates_match_the_unnarrowed_rules(org):
    import random

    rng = random.Random(5)
    firsts, lasts = ["Ann", "ann", "Bo", "Cy", None], ["Lee", "LEE", "Ng", None]
    locals_, domains = ["ann.lee", "annlee", "AnnLee", "a.n.n.lee", "bo", "b.o", "cy"], ["example.com", "Example.com", "ex.ample.com"]
    for i in range(70):
        email = f"{rng.choice(locals_)}@{rng.choice(domains)}" if rng.random() < 0.6 else None
        if email and Donor.objects.filter(organisation=org, email__iexact=email).exists():
            email = None
        make_donor(org, first_name=rng.choice(firsts), last_name=rng.choice(lasts), email=email,
                   organisation_name=rng.choice(["Acme", "ACME", None]), postcode=rng.choice(["2000", "3000", None]),
                   phone="0400")
    expected = _brute_force_pairs(org)
    got = {frozenset(p["donor_ids"]): p["reason"] for p in donor_duplicate_candidates(organisation=org, limit=100_000)}
    assert set(got) == set(expected) and len(expected) > 20
    # where both rules hold, either reason is right; where one holds, it is named
    assert all(got[k] == expected[k] for k in got if expected[k] == "same name and postcode" and got[k] != "same email")
