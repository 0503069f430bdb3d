"""Recommendation sets through the API: the quickstart's section 5 verbatim, every
rule with its `param` pointing into the array, display order, atomic PATCH,
DELETE as deactivation, and isolation between organisations and sandbox."""
from __future__ import annotations

import json

import pytest
from django.conf import settings

from organisations.models import AuditEntry
from recommendations.models import Allocation, RecommendationSet
from tests.conftest import client_for, make_key
from tests.recommendations.conftest import SYSTEM, link
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/recommendation-sets"


def create(client, body):
    return client.post(URL, body, format="json")


def raw_post(client, path, body: str):
    """As curl sends it: the exact bytes, Content-Type: application/json."""
    return client.generic("POST", path, body.encode(), content_type="application/json")


# --- the quickstart, section 5 ---------------------------------------------------------------

QUICKSTART_FIXED = """{
    "name": "Climate distribution - March 2026",
    "amount_mode": "FIXED",
    "allocations": [
      { "recipient_org_account_link_id": "cm3lnk...", "amount_cents": 25000 }
    ]
  }"""


def test_quickstart_section_5_fixed_verbatim(org, read_client, write_client, links):
    # Step 1: find the link ids.
    listed = read_client.get("/api/v1/recipient-accounts")
    assert listed.status_code == 200
    body = listed.json()
    assert set(body) == {"data", "has_more"} and body["has_more"] is False
    first = body["data"][-1]
    assert {"id", "label", "recipient_org_name", "is_active"} <= set(first)
    # Step 2: POST the quickstart's body with that id.
    response = raw_post(write_client, URL, QUICKSTART_FIXED.replace("cm3lnk...", first["id"]))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["name"] == "Climate distribution - March 2026"
    assert created["amount_mode"] == "FIXED"
    assert created["allocations"] == [{
        "id": created["allocations"][0]["id"], "recipient_org_account_link_id": first["id"],
        "recipient_org_name": first["recipient_org_name"], "amount_cents": 25000, "position": 0,
    }]
    assert created["total_cents"] == 25000 and created["currency"] == "AUD"
    assert created["is_active"] is True
    assert created["giving_form_url"] == f"{settings.SITE_URL}/give/{created['id']}"
    assert created["object"] == "recommendation_set" and created["description"] is None
    assert read_client.get(f"{URL}/{created['id']}").json() == created


def test_quickstart_section_5_open_variant(org, write_client, links):
    body = json.loads(QUICKSTART_FIXED.replace("cm3lnk...", links[0].id))
    body["amount_mode"] = "OPEN"
    body["allocations"][0]["amount_cents"] = 0
    body["allocations"].append({"recipient_org_account_link_id": links[1].id, "amount_cents": 0})
    response = raw_post(write_client, URL, json.dumps(body))
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["amount_mode"] == "OPEN" and created["total_cents"] == 0
    assert [a["amount_cents"] for a in created["allocations"]] == [0, 0]


def test_amount_mode_defaults_to_fixed(write_client, links):
    created = create(write_client, {"name": "Default", "allocations": [
        {"recipient_org_account_link_id": links[0].id, "amount_cents": 1000}]}).json()
    assert created["amount_mode"] == "FIXED"


def test_read_key_cannot_create(read_client, links):
    assert_error(create(read_client, {"name": "x", "allocations": [
        {"recipient_org_account_link_id": links[0].id, "amount_cents": 1}]}), 403, "forbidden")


# --- the rules -------------------------------------------------------------------------------------

def alloc(link_id, cents):
    return {"recipient_org_account_link_id": link_id, "amount_cents": cents}


RULES = [
    # (name, mode, allocations(links) -> list, status code, param, reason)
    ("empty", "FIXED", lambda L: [], "validation_failed", "allocations", None),
    ("fixed zero", "FIXED", lambda L: [alloc(L[0], 100), alloc(L[1], 100), alloc(L[2], 0)], "validation_failed", "allocations[2].amount_cents", "amount_required"),
    ("suggested zero", "SUGGESTED", lambda L: [alloc(L[0], 100), alloc(L[1], 0)], "validation_failed", "allocations[1].amount_cents", "amount_required"),
    ("open non-zero", "OPEN", lambda L: [alloc(L[0], 0), alloc(L[1], 0), alloc(L[2], 500)], "validation_failed", "allocations[2].amount_cents", "open_amount_not_zero"),
    ("negative", "FIXED", lambda L: [alloc(L[0], -5)], "validation_failed", "allocations[0].amount_cents", None),
    ("too large", "FIXED", lambda L: [alloc(L[0], 10**12)], "validation_failed", "allocations[0].amount_cents", None),
    ("string amount", "FIXED", lambda L: [alloc(L[0], "100")], "invalid_request", "allocations[0].amount_cents", None),
    ("float amount", "FIXED", lambda L: [alloc(L[0], 100.5)], "invalid_request", "allocations[0].amount_cents", None),
    ("missing amount", "OPEN", lambda L: [{"recipient_org_account_link_id": L[0]}], "invalid_request", "allocations[0].amount_cents", None),
    ("missing link", "FIXED", lambda L: [alloc(L[0], 1), {"amount_cents": 5}], "invalid_request", "allocations[1].recipient_org_account_link_id", None),
    ("unknown link", "FIXED", lambda L: [alloc(L[0], 1), alloc("cm3lnkdoesnotexist0000000", 5)], "validation_failed", "allocations[1].recipient_org_account_link_id", None),
    ("duplicate recipient", "FIXED", lambda L: [alloc(L[0], 1), alloc(L[1], 1), alloc(L[0], 1)], "validation_failed", "allocations[2].recipient_org_account_link_id", "duplicate_recipient"),
    ("not an object", "FIXED", lambda L: ["x"], "invalid_request", "allocations[0]", None),
    ("unknown key", "FIXED", lambda L: [{**alloc(L[0], 1), "amount": 1}], "invalid_request", "allocations[0].amount", None),
    ("not a list", "FIXED", lambda L: {"0": alloc(L[0], 1)}, "invalid_request", "allocations", None),
    ("too many", "FIXED", lambda L: [alloc(L[0], 1)] * 51, "validation_failed", "allocations", None),
]


@pytest.mark.parametrize("name, mode, make, code, param, reason", RULES, ids=[r[0] for r in RULES])
def test_allocation_rules(write_client, links, name, mode, make, code, param, reason):
    ids = [x.id for x in links]
    error = assert_error(create(write_client, {"name": "Set", "amount_mode": mode, "allocations": make(ids)}), 400, code, param=param)
    if reason:
        assert error["reason"] == reason
    assert not RecommendationSet.objects.exists()


@pytest.mark.parametrize("body, code, param", [
    ({"allocations": []}, "invalid_request", "name"),
    ({"name": "x"}, "invalid_request", "allocations"),
    ({"name": "  ", "allocations": []}, "validation_failed", "name"),
    ({"name": "x", "amount_mode": "PERCENT", "allocations": []}, "validation_failed", "amount_mode"),
    ({"name": "x", "amount_mode": "fixed", "allocations": []}, "validation_failed", "amount_mode"),
    ({"name": "x", "allocations": [], "colour": "red"}, "invalid_request", "colour"),
])
def test_set_fields(write_client, body, code, param):
    assert_error(create(write_client, body), 400, code, param=param)


def test_another_organisations_link_is_unknown(write_client, other_org, recipients, links):
    foreign = link(other_org, recipients[0])
    assert_error(create(write_client, {"name": "x", "allocations": [alloc(links[1].id, 5), alloc(foreign.id, 5)]}),
                 400, "validation_failed", param="allocations[1].recipient_org_account_link_id")


def test_an_inactive_link_is_refused(write_client, links):
    write_client.patch(f"/api/v1/recipient-accounts/{links[1].id}", {"is_active": False}, format="json")
    error = assert_error(create(write_client, {"name": "x", "allocations": [alloc(links[0].id, 5), alloc(links[1].id, 5)]}),
                         400, "validation_failed", param="allocations[1].recipient_org_account_link_id")
    assert error["reason"] == "link_inactive"


# --- order ------------------------------------------------------------------------------------------

def test_request_order_is_the_display_order_on_every_read(read_client, write_client, links):
    order = [links[2], links[0], links[1]]
    created = create(write_client, {"name": "Ordered", "amount_mode": "SUGGESTED",
                                    "allocations": [alloc(x.id, 1000 * (i + 1)) for i, x in enumerate(order)]}).json()
    expected = [(x.id, 1000 * (i + 1), i) for i, x in enumerate(order)]
    def seen(body):
        return [(a["recipient_org_account_link_id"], a["amount_cents"], a["position"]) for a in body["allocations"]]
    assert seen(created) == expected
    assert seen(read_client.get(f"{URL}/{created['id']}").json()) == expected
    assert seen(read_client.get(URL).json()["data"][0]) == expected
    assert created["total_cents"] == 6000


# --- PATCH ------------------------------------------------------------------------------------------

@pytest.fixture
def a_set(write_client, links):
    return create(write_client, {"name": "Original", "amount_mode": "FIXED",
                                 "allocations": [alloc(links[0].id, 1000), alloc(links[1].id, 2000)]}).json()


def test_patch_replaces_allocations_in_the_new_order(read_client, write_client, links, a_set):
    body = write_client.patch(f"{URL}/{a_set['id']}", {"allocations": [alloc(links[2].id, 300), alloc(links[0].id, 100)]},
                              format="json")
    assert body.status_code == 200, body.content
    assert [(a["recipient_org_account_link_id"], a["amount_cents"], a["position"]) for a in body.json()["allocations"]] == [
        (links[2].id, 300, 0), (links[0].id, 100, 1)]
    assert Allocation.objects.filter(recommendation_set_id=a_set["id"]).count() == 2
    assert body.json()["name"] == "Original" and body.json()["total_cents"] == 400


def test_a_refused_patch_changes_nothing(read_client, write_client, links, a_set):
    before = read_client.get(f"{URL}/{a_set['id']}").json()
    bad = {"name": "Renamed", "allocations": [alloc(links[2].id, 300), alloc(links[0].id, 100), alloc(links[1].id, 0)]}
    assert_error(write_client.patch(f"{URL}/{a_set['id']}", bad, format="json"), 400, "validation_failed",
                 param="allocations[2].amount_cents")
    assert read_client.get(f"{URL}/{a_set['id']}").json() == before
    assert AuditEntry.objects.filter(action="recommendation_set.updated").count() == 0


def test_patch_name_keeps_allocation_ids_and_a_same_list_keeps_them_too(read_client, write_client, links, a_set):
    ids = [a["id"] for a in a_set["allocations"]]
    renamed = write_client.patch(f"{URL}/{a_set['id']}", {"name": "Renamed", "description": "Spring"}, format="json").json()
    assert renamed["name"] == "Renamed" and renamed["description"] == "Spring"
    assert [a["id"] for a in renamed["allocations"]] == ids
    same = [alloc(a["recipient_org_account_link_id"], a["amount_cents"]) for a in a_set["allocations"]]
    assert [a["id"] for a in write_client.patch(f"{URL}/{a_set['id']}", {"allocations": same}, format="json").json()["allocations"]] == ids


def test_mode_change_must_suit_the_amounts(write_client, links, a_set):
    error = assert_error(write_client.patch(f"{URL}/{a_set['id']}", {"amount_mode": "OPEN"}, format="json"), 400,
                         "validation_failed", param="amount_mode")
    assert error["reason"] == "open_amount_not_zero"
    ok = write_client.patch(f"{URL}/{a_set['id']}", {"amount_mode": "OPEN", "allocations": [alloc(links[0].id, 0)]}, format="json")
    assert ok.status_code == 200 and ok.json()["amount_mode"] == "OPEN"
    assert write_client.patch(f"{URL}/{a_set['id']}", {"amount_mode": "SUGGESTED"}, format="json").status_code == 400
    assert write_client.patch(f"{URL}/{a_set['id']}", {"amount_mode": "SUGGESTED", "allocations": [alloc(links[0].id, 700)]},
                              format="json").json()["total_cents"] == 700


def test_patch_empty_body_and_empty_allocations(write_client, a_set):
    assert_error(write_client.patch(f"{URL}/{a_set['id']}", {}, format="json"), 400, "invalid_request")
    assert_error(write_client.patch(f"{URL}/{a_set['id']}", {"allocations": []}, format="json"), 400, "validation_failed",
                 param="allocations")


# --- DELETE ----------------------------------------------------------------------------------------

def test_delete_deactivates_it_stays_retrievable_and_leaves_lists(org, read_client, write_client, a_set):
    response = write_client.delete(f"{URL}/{a_set['id']}")
    assert response.status_code == 204 and response.content == b""
    assert read_client.get(URL).json()["data"] == []
    kept = read_client.get(f"{URL}/{a_set['id']}").json()
    assert kept["is_active"] is False and len(kept["allocations"]) == 2
    assert_error(write_client.patch(f"{URL}/{a_set['id']}", {"name": "x"}, format="json"), 409, "conflict")
    assert write_client.delete(f"{URL}/{a_set['id']}").status_code == 204  # again: no change
    assert AuditEntry.objects.for_organisation(org).filter(action="recommendation_set.deleted").count() == 1
    assert_error(read_client.delete(f"{URL}/{a_set['id']}"), 403, "forbidden")


def test_audit_entries_carry_the_api_object(org, read_client, write_client, links, a_set):
    write_client.patch(f"{URL}/{a_set['id']}", {"name": "Renamed"}, format="json")
    write_client.delete(f"{URL}/{a_set['id']}")
    entries = list(AuditEntry.objects.for_organisation(org).filter(object_id=a_set["id"]).order_by("created_at", "id"))
    assert [e.action for e in entries] == ["recommendation_set.created", "recommendation_set.updated", "recommendation_set.deleted"]
    assert entries[0].after == a_set
    assert entries[1].after["name"] == "Renamed" and entries[1].before["name"] == "Original"
    assert entries[2].after == read_client.get(f"{URL}/{a_set['id']}").json()
    assert entries[0].actor_type == "API_KEY"


# --- lists and isolation ------------------------------------------------------------------------

def test_list_filter_paging_and_query_count(isolated_key_generation, read_client, write_client, links, django_assert_max_num_queries):
    for i in range(5):
        mode = "OPEN" if i % 2 else "FIXED"
        create(write_client, {"name": f"S{i}", "amount_mode": mode,
                              "allocations": [alloc(x.id, 0 if mode == "OPEN" else 100) for x in links]})
    with django_assert_max_num_queries(8):
        body = read_client.get(URL, {"limit": 4}).json()
    assert [s["name"] for s in body["data"]] == ["S4", "S3", "S2", "S1"] and body["has_more"] is True
    assert all(len(s["allocations"]) == 3 for s in body["data"])
    assert [s["name"] for s in read_client.get(URL, {"amount_mode": "OPEN"}).json()["data"]] == ["S3", "S1"]
    assert_error(read_client.get(URL, {"amount_mode": "NONE"}), 400, "validation_failed", param="amount_mode")
    assert_error(read_client.get(URL, {"is_active": "false"}), 400, "invalid_request", param="is_active")


def test_other_organisation_and_sandbox_see_404(org, sandbox, write_client, other_write_client, sandbox_client, a_set):
    for client in (other_write_client, sandbox_client):
        assert_error(client.get(f"{URL}/{a_set['id']}"), 404, "not_found")
        assert_error(client.patch(f"{URL}/{a_set['id']}", {"name": "x"}, format="json"), 404, "not_found")
        assert_error(client.delete(f"{URL}/{a_set['id']}"), 404, "not_found")
        assert client.get(URL).json()["data"] == []
    assert RecommendationSet.objects.get(pk=a_set["id"]).is_active


def test_sandbox_builds_sets_from_sandbox_links_only(org, sandbox, sandbox_client, links, recipients):
    sandbox_link = link(sandbox, recipients[0].sandbox)
    assert_error(create(sandbox_client, {"name": "x", "allocations": [alloc(links[0].id, 100)]}), 400, "validation_failed",
                 param="allocations[0].recipient_org_account_link_id")
    made = create(sandbox_client, {"name": "x", "allocations": [alloc(sandbox_link.id, 100)]})
    assert made.status_code == 201
    assert made.json()["allocations"][0]["recipient_org_name"] == recipients[0].sandbox.name


def test_deactivating_a_link_in_use_keeps_the_set_readable(read_client, write_client, links, a_set):
    write_client.patch(f"/api/v1/recipient-accounts/{links[0].id}", {"is_active": False}, format="json")
    assert len(read_client.get(f"{URL}/{a_set['id']}").json()["allocations"]) == 2


def test_idempotent_create(write_client, links):
    body = {"name": "Once", "allocations": [alloc(links[0].id, 100)]}
    first = write_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="set-1")
    again = write_client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="set-1")
    assert first.json() == again.json() and RecommendationSet.objects.count() == 1
    changed = write_client.post(URL, {**body, "name": "Twice"}, format="json", HTTP_IDEMPOTENCY_KEY="set-1")
    assert_error(changed, 409, "idempotency_conflict")


def test_service_directly(org, links):
    from recommendations import services

    made = services.recommendation_set_create(organisation=org, actor=SYSTEM, name="Direct",
                                              allocations=[alloc(links[0].id, 5)])
    assert made.amount_mode == "FIXED"
    assert client_for(make_key(org)).get(f"{URL}/{made.id}").json()["allocations"][0]["amount_cents"] == 5
