"""The cap is refused at every entry path that exists, with the room left, and
nothing is stored: API POST, API PATCH (amount, date, donor, revenue code), the
admin add form, and the services that imports and payment sources call."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from compliance.models import ComplianceBreach, RevenueCode
from donations import services
from donations.models import Donation, Donor
from tests.compliance.helpers import D, FED_CAP, NSW_CAP, SYSTEM, aggregates, assert_cap_refusal, code, gift, gift_body, stored_counts
from tests.support.api import make_donor
from together.exceptions import ValidationFailed

URL = "/api/v1/donations"


# --- POST -------------------------------------------------------------------------------------

POST_CASES = [
    # already given (dated 2027), new gift, accepted?, remaining reported when refused
    (0, FED_CAP, True, None),
    (0, FED_CAP + 1, False, FED_CAP),
    (4_990_000, 10_000, True, None),
    (4_990_000, 10_001, False, 10_000),
    (FED_CAP, 1, False, 0),
    (FED_CAP - 1, 1, True, None),
]


@pytest.mark.parametrize("kind", ["MONETARY", "IN_KIND"])
@pytest.mark.parametrize("given, amount, accepted, remaining", POST_CASES)
def test_post(org, write_client, given, amount, accepted, remaining, kind):
    donor = make_donor(org)
    if given:
        gift(org, donor, given, D(2027, 1, 15))
    before = stored_counts(org)
    response = write_client.post(URL, gift_body(donor, amount, "2027-08-01", kind, revenue_code="BRAND-NEW-CODE"), format="json")
    if accepted:
        assert response.status_code == 201, response.content
        assert stored_counts(org)[0] == before[0] + 1
    else:
        assert_cap_refusal(response, remaining)
        assert stored_counts(org) == before  # no donation, no audit entry, no code in the library
        assert not RevenueCode.objects.filter(organisation=org).exists()
    donor.refresh_from_db()
    assert donor.donations_total_cents == given + (amount if accepted else 0)


def test_post_refusal_is_not_stored_under_an_idempotency_key(org, write_client):
    donor = make_donor(org)
    gift(org, donor, FED_CAP, D(2027, 1, 15))
    first = write_client.post(URL, gift_body(donor, 500, "2027-02-01"), format="json", HTTP_IDEMPOTENCY_KEY="cap-1")
    assert_cap_refusal(first, 0)
    donation = Donation.objects.get(donor=donor)
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=donation.id, reason="entered in error")
    again = write_client.post(URL, gift_body(donor, 500, "2027-02-01"), format="json", HTTP_IDEMPOTENCY_KEY="cap-1")
    assert again.status_code == 201, again.content  # the refusal was not replayed: room exists now


def _donor_totals(org) -> dict:
    return dict((d, (t, n)) for d, t, n in Donor.objects.filter(organisation=org).values_list("id", "donations_total_cents", "donations_count"))


# --- PATCH ------------------------------------------------------------------------------------

def _setup_amount(org):
    donor = make_donor(org)
    gift(org, donor, 2_500_000, D(2027, 2, 1))
    target = gift(org, donor, 2_500_000, D(2027, 3, 1))
    return target, {"amount_cents": 2_500_001}, 2_500_000


def _setup_date(org):
    donor = make_donor(org)
    gift(org, donor, FED_CAP, D(2027, 3, 1))
    target = gift(org, donor, 100, D(2026, 12, 31))  # FY regime: no cap
    return target, {"donation_date": "2027-01-01"}, 0


def _setup_donor(org):
    full = make_donor(org)
    gift(org, full, FED_CAP - 50, D(2027, 3, 1))
    other = make_donor(org)
    target = gift(org, other, 100, D(2027, 4, 1))
    return target, {"donor_id": full.id}, 50


def _setup_code(org):
    code(org, "STATE-NSW", "NSW")
    code(org, "FED-1", "FEDERAL")
    donor = make_donor(org)
    gift(org, donor, NSW_CAP, D(2026, 3, 1), revenue_code="STATE-NSW")
    target = gift(org, donor, 100, D(2026, 4, 1), revenue_code="FED-1")
    return target, {"revenue_code": "state-nsw"}, 0  # matched case-insensitively


def _setup_code_removed(org):
    # A gift moved to a code-less (default jurisdiction FEDERAL) state by clearing its code.
    code(org, "UNREG", "UNREGULATED")
    donor = make_donor(org)
    gift(org, donor, FED_CAP, D(2027, 3, 1))
    target = gift(org, donor, 9_000_000, D(2027, 4, 1), revenue_code="UNREG")
    return target, {"revenue_code": None}, 0


PATCH_CASES = {
    "amount_cents": _setup_amount,
    "donation_date": _setup_date,
    "donor_id": _setup_donor,
    "revenue_code": _setup_code,
    "revenue_code cleared": _setup_code_removed,
}


@pytest.mark.parametrize("case", PATCH_CASES)
def test_patch_refused(org, write_client, case):
    target, body, remaining = PATCH_CASES[case](org)
    shown = write_client.get(f"{URL}/{target.id}").json()
    donors_before = _donor_totals(org)
    aggregates_before = {d: aggregates(d) for d in Donor.objects.filter(organisation=org)}
    before = stored_counts(org)
    assert_cap_refusal(write_client.patch(f"{URL}/{target.id}", body, format="json"), remaining)
    assert stored_counts(org) == before
    assert write_client.get(f"{URL}/{target.id}").json() == shown
    assert _donor_totals(org) == donors_before
    assert aggregates_before == {d: aggregates(d) for d in Donor.objects.filter(organisation=org)}


PATCH_ACCEPTED = [
    # change, within the room
    ("amount_cents", {"amount_cents": 2_500_000}),
    ("amount_cents", {"amount_cents": 1}),
    ("donation_date", {"donation_date": "2028-01-01"}),  # a new calendar year
    ("notes", {"notes": "thank-you letter sent"}),
]


@pytest.mark.parametrize("label, body", PATCH_ACCEPTED)
def test_patch_within_the_room_is_accepted(org, write_client, label, body):
    donor = make_donor(org)
    gift(org, donor, 2_500_000, D(2027, 2, 1))
    target = gift(org, donor, 2_500_000, D(2027, 3, 1))
    response = write_client.patch(f"{URL}/{target.id}", body, format="json")
    assert response.status_code == 200, response.content


def test_patch_that_adds_nothing_is_accepted_for_a_donor_already_over_by_a_remap(org, write_client, eager_celery,
                                                                                  django_capture_on_commit_callbacks):
    """A donor pushed over the cap by a remap (a breach) can still have a gift's notes
    edited or its amount lowered: refusing those would only block the fix."""
    code(org, "LATE", "UNREGULATED")
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 2, 1))
    target = gift(org, donor, 3_000_000, D(2027, 3, 1), revenue_code="LATE")
    rc = RevenueCode.objects.get(organisation=org, code="LATE")
    with django_capture_on_commit_callbacks(execute=True):
        assert write_client.patch(f"/api/v1/revenue-codes/{rc.id}", {"jurisdiction": "FEDERAL"}, format="json").status_code == 200
    assert ComplianceBreach.objects.filter(donor=donor).count() == 1
    assert write_client.patch(f"{URL}/{target.id}", {"notes": "breach under review"}, format="json").status_code == 200
    assert write_client.patch(f"{URL}/{target.id}", {"amount_cents": 2_000_000}, format="json").status_code == 200
    assert_cap_refusal(write_client.patch(f"{URL}/{target.id}", {"amount_cents": 2_000_001}, format="json"), 1_000_000)
    assert_cap_refusal(write_client.post(URL, gift_body(donor, 1, "2027-05-01"), format="json"), 0)


# --- the admin ---------------------------------------------------------------------------------

@pytest.fixture
def superuser_client(db):
    user = get_user_model().objects.create_superuser(username="root-comp", email="root-comp@example.org", password="x")
    client = Client()
    client.force_login(user)
    return client


def _admin_form(org, donor, amount, day="2027-06-01", **extra):
    return {
        "organisation": org.id, "donor": donor.id, "campaign": "", "donation_type": "MONETARY", "amount_cents": str(amount),
        "donation_date": day, "payment_method": "", "reference": "", "in_kind_category": "", "in_kind_description": "",
        "in_kind_valuation_method": "", "revenue_code": "", "notes": "", "external_id": "", **extra,
    }


@pytest.mark.parametrize("given, amount, remaining", [(FED_CAP, 1, 0), (4_000_000, 1_000_001, 1_000_000)])
def test_admin_add_form_refuses_and_stores_nothing(org, superuser_client, given, amount, remaining):
    donor = make_donor(org)
    gift(org, donor, given, D(2027, 1, 15))
    before = stored_counts(org)
    response = superuser_client.post("/admin/donations/donation/add/", _admin_form(org, donor, amount))
    assert response.status_code == 200  # the form again, with the error beside the amount
    errors = response.context["adminform"].form.errors
    assert "amount_cents" in errors, errors
    message = errors["amount_cents"][0]
    assert "cap" in message and f"${remaining / 100:,.2f} remains" in message, message
    assert message.encode() in response.content or "cap" in response.content.decode()
    assert stored_counts(org) == before


def test_admin_add_form_accepts_within_the_room(org, superuser_client):
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 1, 15))
    response = superuser_client.post("/admin/donations/donation/add/", _admin_form(org, donor, 1_000_000))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    donor.refresh_from_db()
    assert donor.donations_total_cents == FED_CAP


def test_admin_change_form_refuses_a_raise(org, superuser_client):
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 1, 15))
    target = gift(org, donor, 1_000_000, D(2027, 2, 1))
    form = _admin_form(org, donor, 1_000_001, "2027-02-01")
    del form["organisation"], form["donation_type"]
    before = stored_counts(org)
    response = superuser_client.post(f"/admin/donations/donation/{target.id}/change/", form)
    assert response.status_code == 200
    assert "amount_cents" in response.context["adminform"].form.errors
    assert stored_counts(org) == before
    target.refresh_from_db()
    assert target.amount_cents == 1_000_000


# --- services directly (imports, payment sources) ----------------------------------------------

@pytest.mark.parametrize("source", ["NATIONBUILDER", "RAISELY", "STRIPE", "CHECKOUT_LINK", "GATEWAY"])
def test_services_refuse_whatever_the_source(org, source):
    donor = make_donor(org)
    gift(org, donor, FED_CAP - 10, D(2027, 1, 15))
    before = stored_counts(org)
    with pytest.raises(ValidationFailed) as refused:
        gift(org, donor, 11, D(2027, 9, 9), source=source, revenue_code="IMPORTED-1")
    assert refused.value.param == "amount_cents"
    assert refused.value.extra == {"reason": "donor_cap_exceeded", "remaining_cents": 10}
    assert "$0.10 remains" in refused.value.message
    assert stored_counts(org) == before
    gift(org, donor, 10, D(2027, 9, 9), source=source)
    (total, *_), = aggregates(donor).values()
    assert total == FED_CAP


def test_services_update_refuses(org):
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 1, 15))
    target = gift(org, donor, 1, D(2027, 1, 16))
    with pytest.raises(ValidationFailed) as refused:
        services.donation_update(organisation=org, actor=SYSTEM, donation_id=target.id, amount_cents=1_000_001)
    assert refused.value.extra == {"reason": "donor_cap_exceeded", "remaining_cents": 1_000_000}


# --- deposit batches (bulk entry) ----------------------------------------------------------------

def test_batch_post_refuses_the_whole_batch_when_a_row_passes_the_cap(org):
    donor, other = make_donor(org), make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 1, 15))
    rows = [
        {"donor_id": other.id, "amount_cents": 100_000, "donation_date": D(2027, 2, 1)},
        {"donor_id": donor.id, "amount_cents": 600_000, "donation_date": D(2027, 2, 1)},
        {"donor_id": donor.id, "amount_cents": 400_001, "donation_date": D(2027, 2, 2)},  # 1 cent past the cap with row 2
    ]
    batch = services.batch_save_draft(organisation=org, actor=SYSTEM, reference="DEP-1", deposit_date=D(2027, 2, 3),
                                      control_count=3, control_total_cents=1_100_001, rows=rows)
    before = stored_counts(org)
    with pytest.raises(ValidationFailed) as refused:
        services.batch_post(organisation=org, actor=SYSTEM, batch_id=batch.id)
    assert refused.value.param == "rows[2].amount_cents"
    assert refused.value.extra == {"reason": "donor_cap_exceeded", "remaining_cents": 400_000}
    assert refused.value.message.startswith("Row 3:") and "$4,000.00 remains" in refused.value.message
    assert stored_counts(org) == before  # all or nothing: row 1 and row 2 are not stored either
    batch.refresh_from_db()
    assert batch.status == "DRAFT"
