"""A commit creates each batch's new donors together (donors_create_many), in row order,
before its gifts, with the outcomes row-by-row creation gives: a row whose donor is
refused is INVALID naming the field, and a later row of the same donor, which row by
row would have met no donor, tries its own."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.custom_fields import custom_field_create
from donations.models import Donation, Donor
from imports import services
from tests.imports.helpers import ACTOR, commit, upload
from webhooks.models import Event

pytestmark = pytest.mark.django_db

HEADER = "First name,Surname,Email,Address,Postcode,Tier,Amount,Date\r\n"
MAPPING = {"First name": "first_name", "Surname": "last_name", "Email": "email", "Address": "address_line1",
           "Postcode": "postcode", "Tier": "donor_custom:tier", "Amount": "amount", "Date": "donation_date"}


@pytest.fixture
def tier(org):
    custom_field_create(organisation=org, actor=ACTOR, applies_to="DONOR", key="tier", label="Tier", field_type="TEXT",
                        required=True)


def test_a_refused_donor_makes_its_row_invalid_and_a_later_row_of_that_donor_tries_its_own(org, tier):
    job = upload(org, HEADER + (
        "Ann,Lee,ann@example.org,1 High St,2000,,10,01/03/2025\r\n"       # 2: the required tier is missing: refused
        "Ann,Lee,ann@example.org,1 High St,2000,Gold,20,02/03/2025\r\n"   # 3: row by row, no Ann yet: created here
        "Ann,Lee,,1 High St,2000,,30,03/03/2025\r\n"                      # 4: matches 3's Ann by name and address
        "Bob,Ray,bob@example.org,2 Low Rd,3000,Silver,40,04/03/2025\r\n"  # 5: created
        "Bob,Ray,BOB@example.org,,,,50,05/03/2025\r\n"                    # 6: matches 5's Bob by email
    ), mapping=MAPPING)
    done = commit(org, job)
    rows = {r.position: r for r in done.rows.all()}
    assert (rows[2].outcome, rows[2].donor_outcome, rows[2].field, rows[2].reason) == (
        "INVALID", "", "custom_fields.tier", "Tier is required.")
    assert not rows[2].donor_created and not rows[2].donation_id
    ann = Donor.objects.get(organisation=org, email="ann@example.org")
    bob = Donor.objects.get(organisation=org, email="bob@example.org")
    assert (ann.custom_fields, bob.custom_fields) == ({"tier": "Gold"}, {"tier": "Silver"})
    got = {p: (r.outcome, r.donor_outcome, r.match_by, r.donor_id, r.donor_created) for p, r in rows.items() if p != 2}
    assert got == {
        3: ("CREATE_GIFT", "CREATE_DONOR", "", ann.id, True),
        4: ("CREATE_GIFT", "MATCH_DONOR", "name_address", ann.id, False),
        5: ("CREATE_GIFT", "CREATE_DONOR", "", bob.id, True),
        6: ("CREATE_GIFT", "MATCH_DONOR", "email", bob.id, False),
    }
    assert Donor.objects.filter(organisation=org).count() == 2
    assert sorted(Donation.objects.filter(organisation=org).values_list("donor_id", "amount_cents")) == sorted(
        [(ann.id, 2000), (ann.id, 3000), (bob.id, 4000), (bob.id, 5000)])
    assert Event.objects.filter(organisation=org, type="donor.created").count() == 2  # the refused attempts left none


def test_refused_donors_no_later_row_names_keep_the_rest_of_the_batch(org, tier):
    job = upload(org, HEADER + (
        "Ann,Lee,ann@example.org,1 High St,2000,Gold,10,01/03/2025\r\n"
        "Cat,Sim,cat@example.org,3 Mid Rd,4000,,20,02/03/2025\r\n"       # refused, and nobody else is Cat
        "Dan,Ho,dan@example.org,4 Top Rd,5000,Bronze,30,03/03/2025\r\n"
        "Ann,Lee,ann@example.org,,,,40,04/03/2025\r\n"
    ), mapping=MAPPING)
    done = commit(org, job)
    outcomes = {r.position: (r.outcome, r.donor_outcome, r.field) for r in done.rows.all()}
    assert outcomes == {2: ("CREATE_GIFT", "CREATE_DONOR", ""), 3: ("INVALID", "", "custom_fields.tier"),
                        4: ("CREATE_GIFT", "CREATE_DONOR", ""), 5: ("CREATE_GIFT", "MATCH_DONOR", "")}
    assert sorted(Donor.objects.filter(organisation=org).values_list("first_name", flat=True)) == ["Ann", "Dan"]


def test_a_batch_of_new_donors_costs_the_same_statements_whatever_its_size(org):
    def statements(donors: int, tag: str) -> int:
        body = "Email,Amount,Date\r\n" + "".join(f"{tag}{n}@example.org,{n + 1},0{1 + n % 9}/03/2025\r\n" for n in range(donors))
        job = upload(org, body)
        services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
        with CaptureQueriesContext(connection) as queries:
            services.import_commit_run(import_id=job.id)
        job.refresh_from_db()
        assert job.status == "COMPLETED" and job.result_counts.get("donor:CREATE_DONOR") == donors
        return len(queries)

    statements(1, "warm")  # definitions and settings cached from here on
    assert statements(3, "few") == statements(120, "many")
