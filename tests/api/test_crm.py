"""Issue 19, CRM depth through the API: tags, source tracking, the employer link."""
from __future__ import annotations

import pytest

from donations import crm, services
from donations.models import Donor, DonorTag, Tag
from organisations.models import AuditEntry
from tests.support.api import assert_error, make_donor
from together.actors import Actor
from webhooks.models import Event

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("crm test")


def gift(donor_id, **extra):
    return {"donor_id": donor_id, "donation_type": "MONETARY", "amount_cents": 2500, "donation_date": "2026-01-10",
            "payment_method": "CASH", **extra}


# --- tags --------------------------------------------------------------------------

def test_tag_crud_and_cursor(write_client, read_client, org):
    created = write_client.post("/api/v1/tags", {"name": "  Major   donor "}, format="json")
    assert created.status_code == 201, created.content
    tag = created.json()
    assert tag["object"] == "tag" and tag["name"] == "Major donor" and tag["donors_count"] == 0
    assert_error(write_client.post("/api/v1/tags", {"name": "MAJOR DONOR"}, format="json"), 409, "conflict", "name")
    assert_error(write_client.post("/api/v1/tags", {"name": "a/b"}, format="json"), 400, "validation_failed", "name")
    assert_error(write_client.post("/api/v1/tags", {"name": "x" * 51}, format="json"), 400, "validation_failed", "name")
    assert_error(write_client.post("/api/v1/tags", {"name": ""}, format="json"), 400, "validation_failed", "name")
    assert_error(read_client.post("/api/v1/tags", {"name": "Nope"}, format="json"), 403, "forbidden")
    for name in ("Volunteer", "Board", "Alumni"):
        assert write_client.post("/api/v1/tags", {"name": name}, format="json").status_code == 201
    first = read_client.get("/api/v1/tags?limit=2").json()
    assert len(first["data"]) == 2 and first["has_more"]
    rest = read_client.get(f"/api/v1/tags?limit=2&starting_after={first['data'][-1]['id']}").json()
    assert len(rest["data"]) == 2 and not rest["has_more"]
    names = [t["name"] for t in first["data"] + rest["data"]]
    assert sorted(names) == ["Alumni", "Board", "Major donor", "Volunteer"]
    assert [t["name"] for t in read_client.get("/api/v1/tags?name=board").json()["data"]] == ["Board"]
    assert read_client.get(f"/api/v1/tags/{tag['id']}").json()["name"] == "Major donor"


def test_rename_reaches_donors_and_delete_removes(write_client, org):
    donor = make_donor(org)
    tagged = write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["vip", "Board"]}, format="json")
    assert tagged.status_code == 200, tagged.content
    assert tagged.json()["tags"] == ["Board", "vip"]
    vip = Tag.objects.for_organisation(org).get(name="vip")
    renamed = write_client.patch(f"/api/v1/tags/{vip.id}", {"name": "VIP"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "VIP" and renamed.json()["donors_count"] == 1
    assert write_client.get(f"/api/v1/donors/{donor.id}").json()["tags"] == ["Board", "VIP"]
    board = Tag.objects.for_organisation(org).get(name="Board")
    assert_error(write_client.patch(f"/api/v1/tags/{vip.id}", {"name": "board"}, format="json"), 409, "conflict", "name")
    assert write_client.delete(f"/api/v1/tags/{board.id}").status_code == 204
    assert write_client.get(f"/api/v1/donors/{donor.id}").json()["tags"] == ["VIP"]
    assert_error(write_client.get(f"/api/v1/tags/{board.id}"), 404, "not_found")
    assert AuditEntry.objects.filter(organisation=org, action="tag.renamed", object_id=vip.id).exists()
    assert AuditEntry.objects.filter(organisation=org, action="tag.deleted", object_id=board.id).exists()


def test_donor_tags_add_remove_events(write_client, read_client, org):
    donor = make_donor(org)
    added = write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["Volunteer", "volunteer", "Zeta"]}, format="json")
    assert added.status_code == 200 and added.json()["tags"] == ["Volunteer", "Zeta"]
    # adding again changes nothing and emits nothing
    again = write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["VOLUNTEER"]}, format="json")
    assert again.json()["tags"] == ["Volunteer", "Zeta"]
    tagged = list(Event.objects.filter(organisation=org, type="donor.tagged"))
    assert len(tagged) == 1
    assert tagged[0].data["id"] == donor.id and tagged[0].data["tags_added"] == ["Volunteer", "Zeta"]
    assert tagged[0].data["tags"] == ["Volunteer", "Zeta"]
    removed = write_client.delete(f"/api/v1/donors/{donor.id}/tags/volunteer")
    assert removed.status_code == 200 and removed.json()["tags"] == ["Zeta"]
    untagged = Event.objects.get(organisation=org, type="donor.untagged")
    assert untagged.data["tags_removed"] == ["Volunteer"] and untagged.data["tags"] == ["Zeta"]
    assert AuditEntry.objects.filter(organisation=org, action="donor.untagged", object_id=donor.id).exists()
    # not carried: no change, no event; unknown in the organisation: 404
    assert write_client.delete(f"/api/v1/donors/{donor.id}/tags/Volunteer").status_code == 200
    assert Event.objects.filter(organisation=org, type="donor.untagged").count() == 1
    assert_error(write_client.delete(f"/api/v1/donors/{donor.id}/tags/Nothing"), 404, "not_found")
    # spaces in a name travel URL-encoded
    write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["Major donor"]}, format="json")
    assert write_client.delete(f"/api/v1/donors/{donor.id}/tags/Major%20donor").json()["tags"] == ["Zeta"]
    # errors in the envelope
    assert_error(write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": []}, format="json"), 400, "validation_failed", "tags")
    assert_error(write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["ok", "a,b"]}, format="json"),
                 400, "validation_failed", "tags[1]")
    assert_error(write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": "vip"}, format="json"), 400, "invalid_request", "tags")
    assert_error(write_client.post(f"/api/v1/donors/{donor.id}/tags", {"labels": ["x"]}, format="json"), 400, "invalid_request", "labels")
    assert_error(write_client.post("/api/v1/donors/dnr_nope/tags", {"tags": ["x"]}, format="json"), 404, "not_found")
    assert_error(read_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["x"]}, format="json"), 403, "forbidden")
    assert not Tag.objects.for_organisation(org).filter(name="x").exists()


def test_another_organisations_tags_are_invisible(write_client, other_write_client, org, other_org):
    donor = make_donor(org)
    tag = crm.tag_create(organisation=org, actor=ACTOR, name="Secret")
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=donor.id, names=["Secret"])
    assert_error(other_write_client.get(f"/api/v1/tags/{tag.id}"), 404, "not_found")
    assert_error(other_write_client.patch(f"/api/v1/tags/{tag.id}", {"name": "Mine"}, format="json"), 404, "not_found")
    assert_error(other_write_client.post(f"/api/v1/donors/{donor.id}/tags", {"tags": ["x"]}, format="json"), 404, "not_found")
    assert_error(other_write_client.delete(f"/api/v1/donors/{donor.id}/tags/Secret"), 404, "not_found")
    # the other organisation may have its own "Secret"; filtering never crosses over
    theirs = make_donor(other_org)
    other_write_client.post(f"/api/v1/donors/{theirs.id}/tags", {"tags": ["secret"]}, format="json")
    assert [d["id"] for d in other_write_client.get("/api/v1/donors?tag=Secret").json()["data"]] == [theirs.id]
    assert [d["id"] for d in write_client.get("/api/v1/donors?tag=secret").json()["data"]] == [donor.id]


def test_tag_filter_on_donors_and_donations(write_client, org):
    a, b = make_donor(org), make_donor(org)
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=a.id, names=["Board"])
    for donor in (a, b):
        assert write_client.post("/api/v1/donations", gift(donor.id), format="json").status_code == 201
    assert [d["id"] for d in write_client.get("/api/v1/donors?tag=board").json()["data"]] == [a.id]
    assert [d["donor_id"] for d in write_client.get("/api/v1/donations?tag=BOARD").json()["data"]] == [a.id]
    assert write_client.get("/api/v1/donations?tag=unknown").json()["data"] == []
    assert [d["donor_id"] for d in write_client.get(f"/api/v1/donors/{a.id}/donations?tag=Board").json()["data"]] == [a.id]


def test_merge_carries_tags_and_delete_keeps_tags(org):
    survivor, duplicate = make_donor(org), make_donor(org)
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=survivor.id, names=["A"])
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=duplicate.id, names=["a", "B"])
    services.donor_merge(organisation=org, actor=ACTOR, survivor_id=survivor.id, duplicate_id=duplicate.id)
    survivor.refresh_from_db()
    assert survivor.tags == ["A", "B"]
    assert DonorTag.objects.filter(donor=survivor).count() == 2
    services.donor_delete(organisation=org, actor=ACTOR, donor_id=survivor.id)
    assert Tag.objects.for_organisation(org).count() == 2 and not DonorTag.objects.exists()


def test_bulk_tagging_a_filtered_list(org):
    donors = [make_donor(org) for _ in range(3)]
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=donors[0].id, names=["Old"])
    queryset = Donor.objects.for_organisation(org).filter(pk__in=[donors[0].id, donors[1].id])
    assert crm.donors_tag_bulk(organisation=org, actor=ACTOR, donors=queryset, names=["Spring appeal", "Old"]) == 2
    assert Donor.objects.get(pk=donors[0].id).tags == ["Old", "Spring appeal"]
    assert Donor.objects.get(pk=donors[1].id).tags == ["Old", "Spring appeal"]
    assert Donor.objects.get(pk=donors[2].id).tags == []
    assert crm.donors_tag_bulk(organisation=org, actor=ACTOR, donors=queryset, names=["Old"], remove=True) == 2
    assert Donor.objects.get(pk=donors[1].id).tags == ["Spring appeal"]
    assert Event.objects.filter(organisation=org, type="donor.untagged").count() == 2


# --- the employer link -------------------------------------------------------------------

def test_employer_link(write_client, read_client, org, other_org):
    company = write_client.post("/api/v1/donors", {"donor_type": "ORGANISATION", "organisation_name": "Acme"}, format="json").json()
    person = write_client.post("/api/v1/donors", {"first_name": "Ann", "employer_id": company["id"]}, format="json")
    assert person.status_code == 201, person.content
    person = person.json()
    assert person["employer_id"] == company["id"]
    assert read_client.get(f"/api/v1/donors?employer_id={company['id']}").json()["data"][0]["id"] == person["id"]
    another = make_donor(org, first_name="Bob")
    theirs = make_donor(other_org, donor_type="ORGANISATION", organisation_name="Foreign")
    for bad, reason in ((another.id, "employer_not_organisation"), (theirs.id, None), ("dnr_nothing", None)):
        error = assert_error(write_client.patch(f"/api/v1/donors/{person['id']}", {"employer_id": bad}, format="json"),
                             400, "validation_failed", "employer_id")
        if reason:
            assert error["reason"] == reason
    assert_error(write_client.patch(f"/api/v1/donors/{company['id']}", {"employer_id": company["id"]}, format="json"),
                 400, "validation_failed", "employer_id")
    # an organisation named as employer keeps its type
    assert_error(write_client.patch(f"/api/v1/donors/{company['id']}", {"donor_type": "INDIVIDUAL"}, format="json"),
                 400, "validation_failed", "donor_type")
    # an individual turning into an organisation drops its employer explicitly
    assert_error(write_client.patch(f"/api/v1/donors/{person['id']}", {"donor_type": "TRUST"}, format="json"),
                 400, "validation_failed", "employer_id")
    changed = write_client.patch(f"/api/v1/donors/{person['id']}", {"donor_type": "TRUST", "employer_id": None}, format="json")
    assert changed.status_code == 200 and changed.json()["employer_id"] is None
    write_client.patch(f"/api/v1/donors/{person['id']}", {"donor_type": "INDIVIDUAL", "employer_id": company["id"]}, format="json")
    # deleting the employer clears the link
    assert write_client.delete(f"/api/v1/donors/{company['id']}").status_code == 204
    assert read_client.get(f"/api/v1/donors/{person['id']}").json()["employer_id"] is None


def test_merge_moves_employees_and_never_links_to_itself(org):
    acme = services.donor_create(organisation=org, actor=ACTOR, donor_type="ORGANISATION", organisation_name="Acme")
    acme_dup = services.donor_create(organisation=org, actor=ACTOR, donor_type="ORGANISATION", organisation_name="Acme Pty")
    ann = services.donor_create(organisation=org, actor=ACTOR, first_name="Ann", employer_id=acme_dup.id)
    services.donor_merge(organisation=org, actor=ACTOR, survivor_id=acme.id, duplicate_id=acme_dup.id)
    ann.refresh_from_db()
    assert ann.employer_id == acme.id
    # a person merged with a duplicate naming an employer keeps that employer
    ann2 = services.donor_create(organisation=org, actor=ACTOR, first_name="Ann")
    services.donor_merge(organisation=org, actor=ACTOR, survivor_id=ann2.id, duplicate_id=ann.id)
    ann2.refresh_from_db()
    assert ann2.employer_id == acme.id
    # an organisation merged with one of its employees names no employer and keeps none of them pointing at itself
    bob = services.donor_create(organisation=org, actor=ACTOR, first_name="Bob", employer_id=acme.id)
    services.donor_merge(organisation=org, actor=ACTOR, survivor_id=acme.id, duplicate_id=bob.id)
    acme.refresh_from_db()
    assert acme.employer_id is None


# --- source tracking ------------------------------------------------------------------------

def test_source_fields_round_trip_and_filters(write_client, read_client, org):
    donor = make_donor(org)
    body = gift(donor.id, source_code="SPRING-26", referrer="  jane.smith ", utm_source="newsletter", utm_medium="email",
                utm_campaign="Spring 2026")
    created = write_client.post("/api/v1/donations", body, format="json")
    assert created.status_code == 201, created.content
    out = created.json()
    assert (out["source_code"], out["referrer"], out["utm_source"], out["utm_medium"], out["utm_campaign"]) == (
        "SPRING-26", "jane.smith", "newsletter", "email", "Spring 2026")
    plain = write_client.post("/api/v1/donations", gift(donor.id), format="json").json()
    assert plain["source_code"] is None and plain["utm_campaign"] is None
    listed = {d["id"]: d for d in read_client.get("/api/v1/donations").json()["data"]}
    assert listed[out["id"]]["utm_medium"] == "email"
    for query in ("source_code=spring-26", "referrer=JANE.SMITH", "utm_source=newsletter", "utm_medium=email",
                  "utm_campaign=spring%202026"):
        assert [d["id"] for d in read_client.get(f"/api/v1/donations?{query}").json()["data"]] == [out["id"]], query
    patched = write_client.patch(f"/api/v1/donations/{plain['id']}", {"source_code": "PHONE", "utm_source": ""}, format="json")
    assert patched.status_code == 200 and patched.json()["source_code"] == "PHONE" and patched.json()["utm_source"] is None
    event = Event.objects.filter(organisation=org, type="donation.created").order_by("created_at").first()
    assert event.data["source_code"] == "SPRING-26"


@pytest.mark.parametrize("field,value", [
    ("source_code", "has space"), ("source_code", "x" * 101), ("referrer", "r" * 201), ("utm_source", "u" * 101),
    ("utm_medium", "tab\there"), ("utm_campaign", "c" * 101),
])
def test_source_fields_refused_in_the_envelope(write_client, org, field, value):
    donor = make_donor(org)
    assert_error(write_client.post("/api/v1/donations", gift(donor.id, **{field: value}), format="json"),
                 400, "validation_failed", field)


def test_a_source_field_of_the_wrong_type_is_invalid_request(write_client, org):
    donor = make_donor(org)
    assert_error(write_client.post("/api/v1/donations", gift(donor.id, utm_campaign=7), format="json"), 400, "invalid_request", "utm_campaign")


def test_source_fields_from_a_query_string():
    query = {"utm_source": "fb\x00", "utm_medium": "social", "utm_campaign": "c" * 300, "ref": " friend ", "source": "bad code!"}
    assert crm.source_fields_from_query(query) == {
        "utm_source": "fb", "utm_medium": "social", "utm_campaign": "c" * 100, "referrer": "friend"}
    assert crm.source_fields_from_query({"source": "EOFY-25"}) == {"source_code": "EOFY-25"}
