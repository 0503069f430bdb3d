"""Revenue codes: the library (new codes join unreviewed, matched case-insensitively),
remapping a code recomputes every affected total in the background and reports what
changed, and the default jurisdiction applies to code-less gifts."""
from __future__ import annotations

import pytest

from compliance import services as compliance
from compliance.models import ComplianceBreach, DisclosureObligation, Recompute, RevenueCode
from donations.models import Donation
from tests.compliance.helpers import D, FED_CAP, NSW_CAP, SYSTEM, aggregates, assert_cap_refusal, code, gift, gift_body, obligations
from tests.support.api import assert_error, make_donor

CODES = "/api/v1/revenue-codes"
FY26 = (D(2025, 7, 1), D(2026, 6, 30))
CY27 = (D(2027, 1, 1), D(2027, 12, 31))


def _patch_code(client, code_id, body, capture):
    with capture(execute=True) as callbacks:
        response = client.patch(f"{CODES}/{code_id}", body, format="json")
    assert response.status_code == 200, response.content
    return response.json(), callbacks


# --- remapping --------------------------------------------------------------------------------

REMAPS = [
    # label, from, to, the donor's gifts [(amount, date, coded?)], expected after: obligations open, cancelled, breaches, aggregates
    dict(label="unregulated → federal crosses the threshold", frm="UNREGULATED", to="FEDERAL",
         gifts=[(300_000, D(2027, 2, 1), True), (300_000, D(2027, 3, 1), True)],
         created=1, cancelled=0, breaches=0, after={("FEDERAL", *CY27): 600_000}),
    dict(label="federal → unregulated makes the obligation moot", frm="FEDERAL", to="UNREGULATED",
         gifts=[(600_000, D(2027, 2, 1), True)], before_obligations=1,
         created=0, cancelled=1, breaches=0, after={}),
    dict(label="remap pushes a donor past the federal cap", frm="UNREGULATED", to="FEDERAL",
         gifts=[(4_000_000, D(2027, 2, 1), False), (2_000_000, D(2027, 3, 1), True)], before_obligations=1,
         created=0, cancelled=0, breaches=1, after={("FEDERAL", *CY27): 6_000_000}),
    dict(label="remap to NSW crosses the NSW threshold and cap", frm="UNREGULATED", to="NSW",
         gifts=[(800_000, D(2026, 3, 1), True)],
         created=1, cancelled=0, breaches=1, after={("NSW", *FY26): 800_000}),
    dict(label="federal → NSW moves the total between jurisdictions", frm="FEDERAL", to="NSW",
         gifts=[(1_800_000, D(2026, 3, 1), True), (50_000, D(2026, 4, 1), False)], before_obligations=1,
         created=1, cancelled=1, breaches=1, after={("NSW", *FY26): 1_800_000, ("FEDERAL", *FY26): 50_000}),
]


@pytest.mark.parametrize("case", REMAPS, ids=[c["label"] for c in REMAPS])
def test_remap_recomputes_in_the_background(org, write_client, read_client, eager_celery, django_capture_on_commit_callbacks, case):
    rc = code(org, "EVENT-2027", case["frm"])
    donor = make_donor(org)
    bystander = make_donor(org)  # a gift with another code: untouched
    code(org, "OTHER", "FEDERAL")
    gift(org, bystander, 600_000, D(2027, 2, 1), revenue_code="OTHER")
    for amount, day, coded in case["gifts"]:
        gift(org, donor, amount, day, revenue_code="event-2027" if coded else None)
    assert len(obligations(donor, "OPEN")) == case.get("before_obligations", 0)
    bystander_before = (aggregates(bystander), [o.status for o in obligations(bystander)])

    body, callbacks = _patch_code(write_client, rc.id, {"jurisdiction": case["to"]}, django_capture_on_commit_callbacks)
    assert len(callbacks) == 1  # the recompute is enqueued on commit
    assert body["jurisdiction"] == case["to"] and body["reviewed"] is True

    coded = [a for a, _, c in case["gifts"] if c]
    shown = read_client.get(f"{CODES}/{rc.id}").json()["last_recompute"]
    assert shown["status"] == "COMPLETED" and shown["completed_at"]
    assert (shown["from_jurisdiction"], shown["to_jurisdiction"]) == (case["frm"], case["to"])
    assert (shown["donations_affected"], shown["donors_affected"]) == (len(coded), 1)
    assert (shown["obligations_created"], shown["obligations_cancelled"], shown["breaches_created"]) == (
        case["created"], case["cancelled"], case["breaches"])

    assert {k: v[0] for k, v in aggregates(donor).items()} == case["after"]
    assert set(Donation.objects.filter(donor=donor, revenue_code__iexact="EVENT-2027").values_list("jurisdiction", flat=True)) == {case["to"]}
    assert len(obligations(donor, "CANCELLED")) == case["cancelled"]
    open_now = obligations(donor, "OPEN")
    assert len(open_now) == len([k for k, total in case["after"].items() if total > {"FEDERAL": 500_000 if k[1].year >= 2027 else 1_730_000, "NSW": 99_999}[k[0]]])
    breaches = read_client.get(f"/api/v1/compliance-breaches?donor_id={donor.id}").json()["data"]
    assert len(breaches) == case["breaches"]
    for breach in breaches:
        assert breach["aggregate_cents"] - breach["cap_cents"] == breach["excess_cents"] > 0
        assert breach["jurisdiction"] == case["to"] and breach["currency"] == "AUD"
        assert "after the fact" in breach["reason"]
    assert (aggregates(bystander), [o.status for o in obligations(bystander)]) == bystander_before

    # Running the task again changes nothing.
    again = compliance.recompute_run(recompute_id=shown["id"])
    assert again.obligations_created == case["created"]
    assert ComplianceBreach.objects.filter(donor=donor).count() == case["breaches"]


def test_remapped_code_applies_to_new_gifts_at_once(org, write_client, django_capture_on_commit_callbacks):
    rc = code(org, "HALL", "UNREGULATED")
    donor = make_donor(org)
    gift(org, donor, FED_CAP, D(2027, 2, 1))
    assert write_client.post("/api/v1/donations", gift_body(donor, 100, "2027-03-01", revenue_code="HALL"), format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=False):  # no worker ran yet
        assert write_client.patch(f"{CODES}/{rc.id}", {"jurisdiction": "FEDERAL"}, format="json").status_code == 200
    assert Recompute.objects.get(revenue_code=rc).status == "PENDING"
    assert_cap_refusal(write_client.post("/api/v1/donations", gift_body(donor, 100, "2027-03-01", revenue_code="hall"), format="json"), 0)


def test_remap_to_the_same_jurisdiction_or_a_description_starts_nothing(org, write_client, django_capture_on_commit_callbacks):
    rc = code(org, "SAME", "FEDERAL")
    with django_capture_on_commit_callbacks() as callbacks:
        body = write_client.patch(f"{CODES}/{rc.id}", {"jurisdiction": "FEDERAL", "description": "door takings"}, format="json").json()
    assert callbacks == [] and body["last_recompute"] is None and body["description"] == "door takings"


@pytest.mark.parametrize("body, param", [({"jurisdiction": "MARS"}, "jurisdiction"), ({"jurisdiction": "federal"}, "jurisdiction")])
def test_remap_refuses_unknown_jurisdictions(org, write_client, body, param):
    rc = code(org, "X1", "FEDERAL")
    assert_error(write_client.patch(f"{CODES}/{rc.id}", body, format="json"), 400, "validation_failed", param)


# --- the default jurisdiction -------------------------------------------------------------------

def test_default_jurisdiction_change_recomputes_code_less_gifts(org, write_client, read_client, eager_celery,
                                                              django_capture_on_commit_callbacks):
    assert read_client.get("/api/v1/compliance-settings").json()["default_jurisdiction"] == "FEDERAL"
    plain = make_donor(org)
    gift(org, plain, 600_000, D(2027, 2, 1))
    coded = make_donor(org)
    code(org, "FED-EXPLICIT", "FEDERAL")
    gift(org, coded, 600_000, D(2027, 2, 1), revenue_code="FED-EXPLICIT")
    assert len(obligations(plain, "OPEN")) == len(obligations(coded, "OPEN")) == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = write_client.patch("/api/v1/compliance-settings", {"default_jurisdiction": "UNREGULATED"}, format="json")
    assert response.status_code == 200 and response.json()["default_jurisdiction"] == "UNREGULATED"
    recompute = Recompute.objects.get(organisation=org, revenue_code__isnull=True)
    assert (recompute.status, recompute.donations_affected, recompute.donors_affected, recompute.obligations_cancelled) == ("COMPLETED", 1, 1, 1)
    assert aggregates(plain) == {} and [o.status for o in obligations(plain)] == ["CANCELLED"]
    assert len(obligations(coded, "OPEN")) == 1  # a code's mapping is not the default's business

    # New code-less gifts take the new default at once; so do new codes.
    assert write_client.post("/api/v1/donations", gift_body(plain, 9_000_000, "2027-03-01"), format="json").status_code == 201
    write_client.post("/api/v1/donations", gift_body(plain, 100, "2027-03-01", revenue_code="Brand-New"), format="json")
    assert RevenueCode.objects.get(organisation=org, code_lower="brand-new").jurisdiction == "UNREGULATED"

    with django_capture_on_commit_callbacks(execute=True):
        write_client.patch("/api/v1/compliance-settings", {"default_jurisdiction": "FEDERAL"}, format="json")
    # Back to FEDERAL: $96,000 of code-less gifts in 2027 is over the cap → a breach, never silently accepted.
    breach = ComplianceBreach.objects.get(donor=plain)
    assert (breach.aggregate_cents, breach.excess_cents) == (9_600_000, 4_600_000)
    assert RevenueCode.objects.get(organisation=org, code_lower="brand-new").jurisdiction == "UNREGULATED"  # codes keep their mapping


# --- the library ---------------------------------------------------------------------------------

def test_new_codes_join_the_library_unreviewed_matched_case_insensitively(org, write_client, read_client):
    donor = make_donor(org)
    for spelling in ("Spring-Appeal", "SPRING-APPEAL", "spring-appeal"):
        assert write_client.post("/api/v1/donations", gift_body(donor, 100, "2027-03-01", revenue_code=spelling), format="json").status_code == 201
    listed = read_client.get(f"{CODES}?code=SPRING-appeal").json()["data"]
    assert len(listed) == 1
    assert (listed[0]["code"], listed[0]["jurisdiction"], listed[0]["reviewed"], listed[0]["status"]) == ("Spring-Appeal", "FEDERAL", False, "ACTIVE")
    assert len(read_client.get(CODES).json()["data"]) == 1
    # Adding it by hand in another case is a conflict naming the existing code.
    error = assert_error(write_client.post(CODES, {"code": "spring-APPEAL", "jurisdiction": "NSW"}, format="json"), 409, "conflict", "code")
    assert listed[0]["id"] in error["message"]
    # Added by hand with a jurisdiction: reviewed; without: the default, unreviewed.
    made = write_client.post(CODES, {"code": "Door-Sales", "jurisdiction": "VIC"}, format="json").json()
    assert (made["jurisdiction"], made["reviewed"]) == ("VIC", True)
    made = write_client.post(CODES, {"code": "Raffle"}, format="json").json()
    assert (made["jurisdiction"], made["reviewed"]) == ("FEDERAL", False)
    # Mapping it marks it reviewed.
    assert write_client.patch(f"{CODES}/{listed[0]['id']}", {"jurisdiction": "FEDERAL"}, format="json").json()["reviewed"] is True


def test_archived_code_still_counts(org, write_client):
    rc = code(org, "OLD-CODE", "NSW")
    donor = make_donor(org)
    assert write_client.post(f"{CODES}/{rc.id}/archive", format="json").json()["status"] == "ARCHIVED"
    gift(org, donor, NSW_CAP, D(2026, 3, 1), revenue_code="old-code")
    assert_cap_refusal(write_client.post("/api/v1/donations", gift_body(donor, 1, "2026-03-02", revenue_code="OLD-CODE"), format="json"), 0)


def test_a_failed_recompute_says_so_and_can_be_run_again(org, write_client, read_client, monkeypatch, django_capture_on_commit_callbacks):
    rc = code(org, "FLAKY", "UNREGULATED")
    donor = make_donor(org)
    gift(org, donor, 600_000, D(2027, 2, 1), revenue_code="FLAKY")
    with django_capture_on_commit_callbacks():
        write_client.patch(f"{CODES}/{rc.id}", {"jurisdiction": "FEDERAL"}, format="json")
    recompute = Recompute.objects.get(revenue_code=rc)

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(compliance, "donor_compliance_recompute", broken)
    from compliance.tasks import compliance_recompute
    with pytest.raises(RuntimeError):
        compliance_recompute(recompute.id)
    assert read_client.get(f"{CODES}/{rc.id}").json()["last_recompute"]["status"] == "FAILED"
    monkeypatch.undo()
    assert compliance_recompute(recompute.id)["status"] == "COMPLETED"
    assert len(obligations(donor, "OPEN")) == 1
