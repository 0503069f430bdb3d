"""Donations through the HTTP stack: quickstart step 4, field rules, filters,
PATCH, void, refund and expand."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from donations import services
from donations.models import Donation, Donor
from tests.records.helpers import SYSTEM, ids, make_campaign, patch, post, record
from tests.support.api import assert_error, make_donor

URL = "/api/v1/donations"
QUICKSTART_DONOR = "cm3abcde0001abc123xyz456"

DONATION_KEYS = {
    "id", "object", "donor_id", "campaign_id", "donation_type", "amount_cents", "currency", "donation_date", "source",
    "status", "payment_method", "reference", "in_kind_category", "in_kind_description", "in_kind_valuation_method",
    "revenue_code", "notes", "external_id", "metadata", "void_reason", "voided_at", "refund_date", "refund_reason",
    "refunded_at", "created_at", "updated_at",
}


# --- quickstart step 4 ----------------------------------------------------------------

QUICKSTART_BODY = """{
    "donor_id": "cm3abcde0001abc123xyz456",
    "donation_type": "IN_KIND",
    "amount_cents": 420000,
    "donation_date": "2027-03-15",
    "in_kind_category": "SERVICES",
    "in_kind_description": "Pro bono legal advice on candidate eligibility"
  }"""


@pytest.fixture
def quickstart_donor(org):
    donor = make_donor(org, first_name="Quick", last_name="Start", email="quick@example.com")
    Donor.objects.filter(pk=donor.id).update(id=QUICKSTART_DONOR)
    return Donor.objects.get(pk=QUICKSTART_DONOR)


def test_quickstart_step_4_verbatim(org, write_client, quickstart_donor):
    # curl -d '<body>' -H "Content-Type: application/json" -H "Authorization: Bearer pc_your_write_key"
    response = write_client.generic("POST", URL, QUICKSTART_BODY, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert DONATION_KEYS <= set(body)  # other issues may add fields (compliance: jurisdiction)
    assert body["object"] == "donation"
    assert body["source"] == "MANUAL" and body["status"] == "CONFIRMED"
    assert body["donor_id"] == QUICKSTART_DONOR and body["donation_type"] == "IN_KIND"
    assert body["amount_cents"] == 420000 and body["donation_date"] == "2027-03-15"
    assert body["in_kind_category"] == "SERVICES"
    assert body["in_kind_description"] == "Pro bono legal advice on candidate eligibility"
    assert body["currency"] == "AUD" and body["payment_method"] is None and body["campaign_id"] is None
    assert Donation.objects.get(pk=body["id"]).organisation_id == org.id
    assert write_client.get(f"{URL}/{body['id']}").json() == body
    quickstart_donor.refresh_from_db()
    assert (quickstart_donor.donations_total_cents, quickstart_donor.donations_count) == (420000, 1)


def test_quickstart_step_4_with_idempotency_key(write_client, quickstart_donor):
    headers = {"HTTP_IDEMPOTENCY_KEY": "6f1c1a52-2a4b-4d8e-9d0c-3f3b5a0f9e11"}
    first = write_client.generic("POST", URL, QUICKSTART_BODY, content_type="application/json", **headers)
    again = write_client.generic("POST", URL, QUICKSTART_BODY, content_type="application/json", **headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert json.loads(again.content) == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Donation.objects.filter(donor_id=QUICKSTART_DONOR).count() == 1


def test_quickstart_step_4_needs_write_and_json(org, read_client, write_client, quickstart_donor):
    assert_error(read_client.generic("POST", URL, QUICKSTART_BODY, content_type="application/json"), 403, "forbidden")
    assert_error(write_client.generic("POST", URL, QUICKSTART_BODY, content_type="text/plain"), 400, "invalid_request", "Content-Type")
    assert not Donation.objects.exists()


# --- create: field rules ---------------------------------------------------------------

@pytest.fixture
def donor(org):
    return make_donor(org, email="giver@example.com")


def monetary(donor, **extra):
    return {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 5000, "donation_date": "2026-03-01", **extra}


def in_kind(donor, **extra):
    return {"donor_id": donor.id, "donation_type": "IN_KIND", "amount_cents": 5000, "donation_date": "2026-03-01",
            "in_kind_category": "GOODS", "in_kind_description": "Printing of flyers", **extra}


ACCEPTED = [
    pytest.param(monetary, {}, {"payment_method": None, "in_kind_category": None}, id="monetary-minimal"),
    *[pytest.param(monetary, {"payment_method": m}, {"payment_method": m}, id=f"method-{m}")
      for m in ("CASH", "CHEQUE", "BANK_TRANSFER", "CARD", "OTHER")],
    *[pytest.param(in_kind, {"in_kind_category": c}, {"in_kind_category": c, "payment_method": None}, id=f"category-{c}")
      for c in ("GOODS", "SERVICES", "DISCOUNT", "EXCESSIVE_PAYMENT", "OTHER")],
    pytest.param(in_kind, {"in_kind_valuation_method": "Market rate quote"}, {"in_kind_valuation_method": "Market rate quote"}, id="valuation-method"),
    pytest.param(monetary, {"payment_method": "CHEQUE", "reference": "000123"}, {"reference": "000123"}, id="cheque-number"),
    pytest.param(monetary, {"amount_cents": 1}, {"amount_cents": 1}, id="one-cent"),
    pytest.param(monetary, {"amount_cents": 10**13}, {"amount_cents": 10**13}, id="largest-amount"),
    pytest.param(monetary, {"revenue_code": "FED/2026:cash+ab@c_d-1.0"}, {"revenue_code": "FED/2026:cash+ab@c_d-1.0"}, id="revenue-code-charset"),
    pytest.param(monetary, {"revenue_code": "R" * 100}, {"revenue_code": "R" * 100}, id="revenue-code-100"),
    pytest.param(monetary, {"revenue_code": ""}, {"revenue_code": None}, id="revenue-code-empty"),
    pytest.param(monetary, {"revenue_code": None}, {"revenue_code": None}, id="revenue-code-null"),
    pytest.param(monetary, {"notes": "Thanks", "external_id": "nb-9", "metadata": {"batch": "7"}},
                 {"notes": "Thanks", "external_id": "nb-9", "metadata": {"batch": "7"}}, id="notes-external-metadata"),
    pytest.param(monetary, {"metadata": {f"k{i}": "v" * 500 for i in range(50)}},
                 {"metadata": {f"k{i}": "v" * 500 for i in range(50)}}, id="metadata-at-bounds"),
    pytest.param(monetary, {"campaign_id": None}, {"campaign_id": None}, id="campaign-null"),
]


@pytest.mark.parametrize("shape, extra, expected", ACCEPTED)
def test_create_accepts(write_client, org, donor, shape, extra, expected):
    response = post(write_client, URL, shape(donor, **extra))
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["source"], body["status"], body["currency"]) == ("MANUAL", "CONFIRMED", "AUD")
    for key, value in expected.items():
        assert body[key] == value, key


def test_create_with_a_campaign(write_client, org, donor):
    campaign = make_campaign(org)
    body = post(write_client, URL, monetary(donor, campaign_id=campaign.id)).json()
    assert body["campaign_id"] == campaign.id


def test_currency_is_the_organisations(write_client, org, donor):
    org.currency = "NZD"
    org.save(update_fields=["currency"])
    body = post(write_client, URL, monetary(donor)).json()
    assert body["currency"] == "NZD"


REFUSED = [
    # always-required fields missing or of the wrong JSON type: invalid_request
    *[pytest.param(monetary, {"drop": f}, "invalid_request", f, id=f"missing-{f}")
      for f in ("donor_id", "donation_type", "amount_cents", "donation_date")],
    pytest.param(monetary, {"donor_id": None}, "invalid_request", "donor_id", id="donor-id-null"),
    pytest.param(monetary, {"donor_id": 7}, "invalid_request", "donor_id", id="donor-id-number"),
    pytest.param(monetary, {"amount_cents": "12"}, "invalid_request", "amount_cents", id="amount-string"),
    pytest.param(monetary, {"amount_cents": 12.5}, "invalid_request", "amount_cents", id="amount-fraction"),
    pytest.param(monetary, {"amount_cents": True}, "invalid_request", "amount_cents", id="amount-bool"),
    pytest.param(monetary, {"amount_cents": None}, "invalid_request", "amount_cents", id="amount-null"),
    pytest.param(monetary, {"donation_date": 20260301}, "invalid_request", "donation_date", id="date-number"),
    pytest.param(monetary, {"donation_type": ["MONETARY"]}, "invalid_request", "donation_type", id="type-list"),
    # well-formed but not allowed: validation_failed
    pytest.param(monetary, {"amount_cents": 0}, "validation_failed", "amount_cents", id="amount-zero"),
    pytest.param(monetary, {"amount_cents": -500}, "validation_failed", "amount_cents", id="amount-negative"),
    pytest.param(monetary, {"amount_cents": 10**13 + 1}, "validation_failed", "amount_cents", id="amount-too-large"),
    pytest.param(monetary, {"donation_type": "CRYPTO"}, "validation_failed", "donation_type", id="type-unknown"),
    pytest.param(monetary, {"donation_type": "monetary"}, "validation_failed", "donation_type", id="type-lower-case"),
    pytest.param(monetary, {"donation_date": "15/03/2027"}, "validation_failed", "donation_date", id="date-format"),
    pytest.param(monetary, {"donation_date": "2027-02-30"}, "validation_failed", "donation_date", id="date-impossible"),
    pytest.param(monetary, {"payment_method": "BITCOIN"}, "validation_failed", "payment_method", id="method-unknown"),
    pytest.param(monetary, {"in_kind_category": "GOODS"}, "validation_failed", "in_kind_category", id="monetary-with-category"),
    pytest.param(monetary, {"in_kind_description": "Chairs"}, "validation_failed", "in_kind_description", id="monetary-with-description"),
    pytest.param(monetary, {"in_kind_valuation_method": "Quote"}, "validation_failed", "in_kind_valuation_method", id="monetary-with-valuation"),
    pytest.param(in_kind, {"drop": "in_kind_category"}, "validation_failed", "in_kind_category", id="in-kind-no-category"),
    pytest.param(in_kind, {"in_kind_category": None}, "validation_failed", "in_kind_category", id="in-kind-null-category"),
    pytest.param(in_kind, {"drop": "in_kind_description"}, "validation_failed", "in_kind_description", id="in-kind-no-description"),
    pytest.param(in_kind, {"in_kind_description": "   "}, "validation_failed", "in_kind_description", id="in-kind-blank-description"),
    pytest.param(in_kind, {"in_kind_category": "FOOD"}, "validation_failed", "in_kind_category", id="in-kind-unknown-category"),
    pytest.param(in_kind, {"payment_method": "CASH"}, "validation_failed", "payment_method", id="in-kind-with-method"),
    pytest.param(monetary, {"revenue_code": "has space"}, "validation_failed", "revenue_code", id="revenue-code-space"),
    pytest.param(monetary, {"revenue_code": "caf\u00e9"}, "validation_failed", "revenue_code", id="revenue-code-accent"),
    pytest.param(monetary, {"revenue_code": "a;b"}, "validation_failed", "revenue_code", id="revenue-code-semicolon"),
    pytest.param(monetary, {"revenue_code": "R" * 101}, "validation_failed", "revenue_code", id="revenue-code-101"),
    pytest.param(monetary, {"revenue_code": 42}, "invalid_request", "revenue_code", id="revenue-code-number"),
    pytest.param(monetary, {"reference": "x" * 101}, "validation_failed", "reference", id="reference-too-long"),
    pytest.param(monetary, {"metadata": {"k": 1}}, "invalid_request", "metadata", id="metadata-number"),
    pytest.param(monetary, {"metadata": {f"k{i}": "v" for i in range(51)}}, "validation_failed", "metadata", id="metadata-51-keys"),
    pytest.param(monetary, {"metadata": {"k" * 41: "v"}}, "validation_failed", "metadata", id="metadata-key-41"),
    pytest.param(monetary, {"metadata": {"k": "v" * 501}}, "validation_failed", "metadata", id="metadata-value-501"),
    # the server sets these; sending them is an unknown field
    *[pytest.param(monetary, {f: v}, "invalid_request", f, id=f"server-field-{f}")
      for f, v in (("source", "MANUAL"), ("status", "CONFIRMED"), ("currency", "AUD"), ("organisation_id", "c" * 24), ("id", "c" * 24))],
    pytest.param(monetary, {"cheque_number": "12"}, "invalid_request", "cheque_number", id="unknown-field"),
]


@pytest.mark.parametrize("shape, extra, code, param", REFUSED)
def test_create_refuses(write_client, org, donor, shape, extra, code, param):
    body = shape(donor)
    if "drop" in extra:
        body.pop(extra["drop"])
    else:
        body.update(extra)
    assert_error(post(write_client, URL, body), 400, code, param)
    assert not Donation.objects.exists()
    donor.refresh_from_db()
    assert donor.donations_total_cents == 0


@pytest.mark.parametrize("whose", ["unknown", "malformed", "other-org", "sandbox-twin"])
def test_donor_not_ours_is_validation_failed_with_one_message(write_client, org, other_org, whose):
    target = {
        "unknown": "c" + "9" * 23,
        "malformed": "not-an-id",
        "other-org": lambda: make_donor(other_org, email="o@example.com").id,
        "sandbox-twin": lambda: make_donor(org.sandbox, email="s@example.com").id,
    }[whose]
    target = target() if callable(target) else target
    reference_id = "c" + "8" * 23
    reference = assert_error(post(write_client, URL, {**monetary(Donor(id=reference_id))}), 400, "validation_failed", "donor_id")
    error = assert_error(post(write_client, URL, {**monetary(Donor(id=target))}), 400, "validation_failed", "donor_id")
    assert error["message"].replace(target, "<id>") == reference["message"].replace(reference_id, "<id>")
    assert set(error) == set(reference)
    assert not Donation.objects.exists()


@pytest.mark.parametrize("whose", ["unknown", "other-org", "archived"])
def test_campaign_not_usable_is_validation_failed(write_client, org, other_org, donor, whose):
    if whose == "archived":
        campaign = make_campaign(org)
        services.campaign_archive(organisation=org, actor=SYSTEM, campaign_id=campaign.id)
        campaign_id = campaign.id
    elif whose == "other-org":
        campaign_id = make_campaign(other_org).id
    else:
        campaign_id = "c" + "7" * 23
    assert_error(post(write_client, URL, monetary(donor, campaign_id=campaign_id)), 400, "validation_failed", "campaign_id")
    assert not Donation.objects.exists()


# --- list filters -------------------------------------------------------------------------

@pytest.fixture
def ledger(org, other_org):
    a = make_donor(org, email="a@example.com")
    b = make_donor(org, email="b@example.com")
    spring = make_campaign(org, name="Spring")
    autumn = make_campaign(org, name="Autumn")
    g = {
        "cash": record(org, a, amount_cents=1_000, payment_method="CASH", donation_date=dt.date(2026, 1, 10),
                       campaign_id=spring.id, revenue_code="FED-GEN"),
        "cheque": record(org, a, amount_cents=25_000, payment_method="CHEQUE", reference="000123",
                         donation_date=dt.date(2026, 2, 1), revenue_code="fed-gen"),
        "goods": record(org, b, donation_type="IN_KIND", amount_cents=7_500, donation_date=dt.date(2026, 2, 15),
                        campaign_id=spring.id),
        "stripe": record(org, b, amount_cents=5_000, payment_method="CARD", source="STRIPE",
                         donation_date=dt.date(2026, 3, 1), campaign_id=autumn.id, revenue_code="NSW:2026"),
        "pending": record(org, b, amount_cents=999, payment_method="CARD", source="CHECKOUT_LINK", status="PENDING",
                          donation_date=dt.date(2026, 3, 31)),
        "bank": record(org, a, amount_cents=100_000, payment_method="BANK_TRANSFER", donation_date=dt.date(2026, 4, 1),
                       campaign_id=autumn.id),
    }
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=g["bank"].id, reason="wrong donor")
    services.donation_refund(organisation=org, actor=SYSTEM, donation_id=g["cheque"].id, refund_date=dt.date(2026, 2, 2), reason="bounced")
    # another organisation's lookalikes never show
    o = make_donor(other_org, email="a@example.com")
    record(other_org, o, amount_cents=1_000, payment_method="CASH", donation_date=dt.date(2026, 1, 10), revenue_code="FED-GEN")
    stamps = {name: dt.datetime(2026, 5, i + 1, 12, tzinfo=dt.timezone.utc) for i, name in enumerate(g)}
    for name, stamp in stamps.items():
        Donation.objects.filter(pk=g[name].id).update(created_at=stamp, updated_at=stamp + dt.timedelta(days=30))
    return {"gifts": g, "a": a, "b": b, "spring": spring, "autumn": autumn}


ALL = {"cash", "cheque", "goods", "stripe", "pending", "bank"}
FILTERS = [
    ("", ALL),
    ("donor_id={a}", {"cash", "cheque", "bank"}),
    ("donor_id={b}", {"goods", "stripe", "pending"}),
    ("donor_id=" + "c" * 24, set()),
    ("campaign_id={spring}", {"cash", "goods"}),
    ("campaign_id={autumn}", {"stripe", "bank"}),
    ("donation_type=MONETARY", ALL - {"goods"}),
    ("donation_type=IN_KIND", {"goods"}),
    ("status=CONFIRMED", {"cash", "goods", "stripe"}),
    ("status=PENDING", {"pending"}),
    ("status=REFUNDED", {"cheque"}),
    ("status=VOIDED", {"bank"}),
    ("status=FAILED", set()),
    ("source=MANUAL", {"cash", "cheque", "goods", "bank"}),
    ("source=STRIPE", {"stripe"}),
    ("source=CHECKOUT_LINK", {"pending"}),
    ("payment_method=CASH", {"cash"}),
    ("payment_method=CHEQUE", {"cheque"}),
    ("payment_method=CARD", {"stripe", "pending"}),
    ("payment_method=BANK_TRANSFER", {"bank"}),
    ("revenue_code=FED-GEN", {"cash", "cheque"}),
    ("revenue_code=fed-gen", {"cash", "cheque"}),
    ("revenue_code=NSW:2026", {"stripe"}),
    ("amount_cents=7500", {"goods"}),
    ("amount_cents[gte]=5000", {"cheque", "goods", "stripe", "bank"}),
    ("amount_cents[gt]=5000", {"cheque", "goods", "bank"}),
    ("amount_cents[lte]=5000", {"cash", "stripe", "pending"}),
    ("amount_cents[lt]=5000", {"cash", "pending"}),
    ("amount_cents[gte]=1000&amount_cents[lt]=25000", {"cash", "goods", "stripe"}),
    ("donation_date=2026-02-15", {"goods"}),
    ("donation_date[gte]=2026-02-15", {"goods", "stripe", "pending", "bank"}),
    ("donation_date[gt]=2026-02-15", {"stripe", "pending", "bank"}),
    ("donation_date[lte]=2026-02-15", {"cash", "cheque", "goods"}),
    ("donation_date[lt]=2026-02-15", {"cash", "cheque"}),
    ("donation_date[gte]=2026-02-01&donation_date[lte]=2026-03-31", {"cheque", "goods", "stripe", "pending"}),
    ("created_at[gte]=2026-05-03", {"goods", "stripe", "pending", "bank"}),
    ("created_at[gt]=2026-05-03", {"stripe", "pending", "bank"}),
    ("created_at[lte]=2026-05-03", {"cash", "cheque", "goods"}),
    ("created_at[lt]=2026-05-03", {"cash", "cheque"}),
    ("created_at[gte]=2026-05-03T12:00:00Z", {"goods", "stripe", "pending", "bank"}),
    ("created_at[gt]=2026-05-03T12:00:00Z", {"stripe", "pending", "bank"}),
    ("updated_at[gte]=2026-06-04", {"pending", "bank"}),
    ("updated_at[lt]=2026-06-01", {"cash"}),
    ("updated_at[lte]=2026-06-01", {"cash", "cheque"}),
    ("status=CONFIRMED&donation_type=MONETARY&source=MANUAL", {"cash"}),
    ("donor_id={a}&status=CONFIRMED", {"cash"}),
]


@pytest.mark.parametrize("query, expected", FILTERS, ids=[f[0] or "none" for f in FILTERS])
def test_list_filters(read_client, ledger, query, expected):
    query = query.format(a=ledger["a"].id, b=ledger["b"].id, spring=ledger["spring"].id, autumn=ledger["autumn"].id)
    got = ids(read_client.get(f"{URL}?limit=100&{query}"))
    assert set(got) == {ledger["gifts"][name].id for name in expected}
    assert len(got) == len(set(got))


@pytest.mark.parametrize("query, code, param", [
    ("status=LOST", "validation_failed", "status"),
    ("status=confirmed", "validation_failed", "status"),
    ("source=PAYPAL", "validation_failed", "source"),
    ("donation_type=CASH", "validation_failed", "donation_type"),
    ("payment_method=BITCOIN", "validation_failed", "payment_method"),
    ("amount_cents[gte]=abc", "validation_failed", "amount_cents[gte]"),
    ("amount_cents[lt]=1.5", "validation_failed", "amount_cents[lt]"),
    ("amount_cents=ten", "validation_failed", "amount_cents"),
    ("donation_date[gte]=2026-02-30", "validation_failed", "donation_date[gte]"),
    ("donation_date=yesterday", "validation_failed", "donation_date"),
    ("created_at[lte]=soon", "validation_failed", "created_at[lte]"),
    ("amount_cents[ne]=5", "invalid_request", "amount_cents[ne]"),
    ("amount[gte]=5", "invalid_request", "amount[gte]"),
    ("q=smith", "invalid_request", "q"),
    ("expand[]=organisation", "validation_failed", "expand[]"),
])
def test_list_filter_errors(read_client, query, code, param):
    assert_error(read_client.get(f"{URL}?{query}"), 400, code, param)


# --- PATCH ----------------------------------------------------------------------------------

def test_patch_a_manual_gift(write_client, org, donor):
    campaign = make_campaign(org)
    gift = record(org, donor, amount_cents=1_000, payment_method="CASH")
    before = write_client.get(f"{URL}/{gift.id}").json()
    changes = {"amount_cents": 2_500, "donation_date": "2026-03-04", "payment_method": "CHEQUE", "reference": "000777",
               "revenue_code": "FED:x", "campaign_id": campaign.id, "notes": "Corrected", "external_id": "e-1",
               "metadata": {"batch": "9"}}
    response = patch(write_client, f"{URL}/{gift.id}", changes)
    assert response.status_code == 200, response.content
    after = response.json()
    for key, value in changes.items():
        assert after[key] == value, key
    unchanged = set(DONATION_KEYS) - set(changes) - {"updated_at"}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after["updated_at"] > before["updated_at"]
    # and back out of the campaign
    assert patch(write_client, f"{URL}/{gift.id}", {"campaign_id": None}).json()["campaign_id"] is None


def test_patch_keeps_a_gift_in_its_now_archived_campaign(write_client, org, donor):
    campaign = make_campaign(org)
    gift = record(org, donor, campaign_id=campaign.id)
    services.campaign_archive(organisation=org, actor=SYSTEM, campaign_id=campaign.id)
    response = patch(write_client, f"{URL}/{gift.id}", {"notes": "still here", "campaign_id": campaign.id})
    assert response.status_code == 200 and response.json()["campaign_id"] == campaign.id
    other = record(org, donor)
    assert_error(patch(write_client, f"{URL}/{other.id}", {"campaign_id": campaign.id}), 400, "validation_failed", "campaign_id")


@pytest.mark.parametrize("kind, body, code, param", [
    ("monetary", {}, "invalid_request", None),
    ("monetary", {"source": "STRIPE"}, "invalid_request", "source"),
    ("monetary", {"donation_type": "IN_KIND"}, "invalid_request", "donation_type"),
    ("monetary", {"status": "CONFIRMED"}, "invalid_request", "status"),
    ("monetary", {"currency": "USD"}, "invalid_request", "currency"),
    ("monetary", {"organisation_id": "c" * 24}, "invalid_request", "organisation_id"),
    ("monetary", {"colour": "red"}, "invalid_request", "colour"),
    ("monetary", {"amount_cents": "100"}, "invalid_request", "amount_cents"),
    ("monetary", {"amount_cents": 0}, "validation_failed", "amount_cents"),
    ("monetary", {"amount_cents": None}, "invalid_request", "amount_cents"),
    ("monetary", {"donation_date": None}, "invalid_request", "donation_date"),
    ("monetary", {"donor_id": None}, "invalid_request", "donor_id"),
    ("monetary", {"donor_id": "c" + "6" * 23}, "validation_failed", "donor_id"),
    ("monetary", {"campaign_id": "c" + "6" * 23}, "validation_failed", "campaign_id"),
    ("monetary", {"in_kind_category": "GOODS"}, "validation_failed", "in_kind_category"),
    ("monetary", {"in_kind_description": "Chairs"}, "validation_failed", "in_kind_description"),
    ("monetary", {"revenue_code": "no spaces"}, "validation_failed", "revenue_code"),
    ("monetary", {"payment_method": "GOLD"}, "validation_failed", "payment_method"),
    ("in_kind", {"payment_method": "CASH"}, "validation_failed", "payment_method"),
    ("in_kind", {"in_kind_description": "  "}, "validation_failed", "in_kind_description"),
    ("in_kind", {"in_kind_category": None}, "invalid_request", "in_kind_category"),
    ("stripe", {"notes": "hello"}, "validation_failed", "source"),
    ("voided", {"notes": "hello"}, "validation_failed", "status"),
    ("refunded", {"notes": "hello"}, "validation_failed", "status"),
])
def test_patch_refuses(write_client, org, donor, kind, body, code, param):
    gift = {
        "monetary": lambda: record(org, donor),
        "in_kind": lambda: record(org, donor, donation_type="IN_KIND"),
        "stripe": lambda: record(org, donor, source="STRIPE", payment_method="CARD"),
        "voided": lambda: services.donation_void(organisation=org, actor=SYSTEM, donation_id=record(org, donor).id, reason="x"),
        "refunded": lambda: services.donation_refund(organisation=org, actor=SYSTEM, donation_id=record(org, donor).id,
                                                     refund_date=dt.date(2026, 3, 2), reason="x"),
    }[kind]()
    before = Donation.objects.filter(pk=gift.id).values().get()
    error = assert_error(patch(write_client, f"{URL}/{gift.id}", body), 400, code)
    if param:
        assert error.get("param") == param, error
    assert Donation.objects.filter(pk=gift.id).values().get() == before


# --- void ------------------------------------------------------------------------------------

def test_void_keeps_the_record_and_drops_it_from_totals(write_client, org, donor):
    campaign = make_campaign(org)
    keep = record(org, donor, amount_cents=1_000, campaign_id=campaign.id)
    gift = record(org, donor, amount_cents=4_000, campaign_id=campaign.id)
    response = post(write_client, f"{URL}/{gift.id}/void", {"reason": "Entered twice"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "VOIDED" and body["void_reason"] == "Entered twice" and body["voided_at"]
    assert body["amount_cents"] == 4_000  # kept as entered, for audit
    assert write_client.get(f"{URL}/{gift.id}").json() == body
    assert gift.id in ids(write_client.get(f"{URL}?status=VOIDED"))
    donor_body = write_client.get(f"/api/v1/donors/{donor.id}").json()
    assert (donor_body["donations_total_cents"], donor_body["donations_count"]) == (1_000, 1)
    campaign_body = write_client.get(f"/api/v1/campaigns/{campaign.id}").json()
    assert (campaign_body["raised_cents"], campaign_body["donations_count"]) == (1_000, 1)
    assert Donation.objects.filter(pk=keep.id, status="CONFIRMED").exists()


@pytest.mark.parametrize("state, body, status, code, param", [
    ("confirmed", {}, 400, "invalid_request", None),
    ("confirmed", {"reason": None}, 400, "invalid_request", "reason"),
    ("confirmed", {"reason": 5}, 400, "invalid_request", "reason"),
    ("confirmed", {"reason": ""}, 400, "validation_failed", "reason"),
    ("confirmed", {"reason": "   "}, 400, "validation_failed", "reason"),
    ("confirmed", {"reason": "x", "status": "VOIDED"}, 400, "invalid_request", "status"),
    ("voided", {"reason": "again"}, 400, "validation_failed", "status"),
    ("refunded", {"reason": "too late"}, 400, "validation_failed", "status"),
])
def test_void_refuses(write_client, org, donor, state, body, status, code, param):
    gift = record(org, donor)
    if state == "voided":
        services.donation_void(organisation=org, actor=SYSTEM, donation_id=gift.id, reason="first")
    if state == "refunded":
        services.donation_refund(organisation=org, actor=SYSTEM, donation_id=gift.id, refund_date=dt.date(2026, 3, 1), reason="r")
    before = Donation.objects.filter(pk=gift.id).values().get()
    error = assert_error(post(write_client, f"{URL}/{gift.id}/void", body), status, code)
    if param:
        assert error.get("param") == param, error
    assert Donation.objects.filter(pk=gift.id).values().get() == before


# --- refund -----------------------------------------------------------------------------------

def test_refund_a_manual_monetary_gift(write_client, org, donor):
    gift = record(org, donor, amount_cents=3_000, payment_method="BANK_TRANSFER", donation_date=dt.date(2026, 3, 1))
    response = post(write_client, f"{URL}/{gift.id}/refund", {"refund_date": "2026-03-01", "reason": "Donor asked"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["refund_date"], body["refund_reason"]) == ("REFUNDED", "2026-03-01", "Donor asked")
    assert body["refunded_at"] and body["amount_cents"] == 3_000
    donor.refresh_from_db()
    assert (donor.donations_total_cents, donor.donations_count) == (0, 0)
    assert gift.id in ids(write_client.get(f"{URL}?status=REFUNDED"))


@pytest.mark.parametrize("kind, body, code, param", [
    ("manual", {"reason": "r"}, "invalid_request", "refund_date"),
    ("manual", {"refund_date": "2026-03-05"}, "invalid_request", "reason"),
    ("manual", {"refund_date": "2026-03-05", "reason": " "}, "validation_failed", "reason"),
    ("manual", {"refund_date": "2026-02-28", "reason": "r"}, "validation_failed", "refund_date"),
    ("manual", {"refund_date": "05/03/2026", "reason": "r"}, "validation_failed", "refund_date"),
    ("manual", {"refund_date": "2026-03-05", "reason": "r", "amount_cents": 100}, "validation_failed", "amount_cents"),
    ("in_kind", {"refund_date": "2026-03-05", "reason": "r"}, "validation_failed", "donation_type"),
    ("stripe", {"refund_date": "2026-03-05", "reason": "r"}, "validation_failed", "source"),
    ("pending", {"refund_date": "2026-03-05", "reason": "r"}, "validation_failed", None),
    ("voided", {"refund_date": "2026-03-05", "reason": "r"}, "validation_failed", "status"),
    ("refunded", {"refund_date": "2026-03-05", "reason": "r"}, "validation_failed", "status"),
])
def test_refund_refuses(write_client, org, donor, kind, body, code, param):
    gift = {
        "manual": lambda: record(org, donor),
        "in_kind": lambda: record(org, donor, donation_type="IN_KIND"),
        "stripe": lambda: record(org, donor, source="STRIPE", payment_method="CARD"),
        "pending": lambda: record(org, donor, status="PENDING"),
        "voided": lambda: services.donation_void(organisation=org, actor=SYSTEM, donation_id=record(org, donor).id, reason="x"),
        "refunded": lambda: services.donation_refund(organisation=org, actor=SYSTEM, donation_id=record(org, donor).id,
                                                     refund_date=dt.date(2026, 3, 2), reason="x"),
    }[kind]()
    before = Donation.objects.filter(pk=gift.id).values().get()
    error = assert_error(post(write_client, f"{URL}/{gift.id}/refund", body), 400, code)
    if param:
        assert error.get("param") == param, error
    assert Donation.objects.filter(pk=gift.id).values().get() == before


def test_there_is_no_hard_delete(write_client, org, donor):
    gift = record(org, donor)
    response = write_client.delete(f"{URL}/{gift.id}")
    assert_error(response, 405, "method_not_allowed")
    assert "DELETE" not in response["Allow"]
    assert Donation.objects.filter(pk=gift.id).exists()


# --- expand --------------------------------------------------------------------------------------

def test_expand_embeds_donor_and_campaign(read_client, org, donor):
    campaign = make_campaign(org, goal_cents=100_000)
    with_campaign = record(org, donor, amount_cents=2_000, campaign_id=campaign.id)
    without = record(org, donor, amount_cents=1_000)
    plain = read_client.get(f"{URL}?limit=100").json()["data"]
    assert all("donor" not in item and "campaign" not in item for item in plain)

    body = read_client.get(f"{URL}?limit=100&expand[]=donor&expand[]=campaign").json()["data"]
    by_id = {item["id"]: item for item in body}
    donor_json = read_client.get(f"/api/v1/donors/{donor.id}").json()
    campaign_json = read_client.get(f"/api/v1/campaigns/{campaign.id}").json()
    assert by_id[with_campaign.id]["donor"] == donor_json and by_id[without.id]["donor"] == donor_json
    assert by_id[with_campaign.id]["campaign"] == campaign_json
    assert campaign_json["raised_cents"] == 2_000
    assert by_id[without.id]["campaign"] is None
    # the rest of the object is unchanged by expansion
    assert {k: v for k, v in by_id[without.id].items() if k not in ("donor", "campaign")} == \
           next(i for i in plain if i["id"] == without.id)

    only_donor = read_client.get(f"{URL}/{with_campaign.id}?expand[]=donor").json()
    assert only_donor["donor"] == donor_json and "campaign" not in only_donor
    only_campaign = read_client.get(f"{URL}/{with_campaign.id}?expand[]=campaign").json()
    assert only_campaign["campaign"] == campaign_json and "donor" not in only_campaign
    # expand on the campaign's donations too
    nested = read_client.get(f"/api/v1/campaigns/{campaign.id}/donations?expand[]=donor").json()["data"]
    assert [item["donor"]["id"] for item in nested] == [donor.id]


@pytest.mark.parametrize("path", ["", "/{id}", "/{id}?limit=1"])
def test_unknown_expand_is_validation_failed(read_client, org, donor, path):
    gift = record(org, donor)
    if path == "/{id}?limit=1":
        assert_error(read_client.get(f"{URL}/{gift.id}?limit=1"), 400, "invalid_request", "limit")
        return
    url = f"{URL}{path.format(id=gift.id)}"
    sep = "&" if "?" in url else "?"
    assert_error(read_client.get(f"{url}{sep}expand[]=donors"), 400, "validation_failed", "expand[]")
    assert_error(read_client.get(f"{url}{sep}expand[]=donor&expand[]=organisation"), 400, "validation_failed", "expand[]")
    assert_error(read_client.get(f"{url}{sep}expand=donor"), 400, "invalid_request", "expand")
