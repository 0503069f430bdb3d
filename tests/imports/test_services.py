from __future__ import annotations

import datetime as dt

import pytest

from compliance.services import revenue_code_create
from donations.models import Donation, Donor
from imports.mapping import suggest
from imports.models import ImportMapping
from tests.imports.helpers import ACTOR, MESSY_CSV, commit, outcomes, upload
from tests.support.api import make_donor, seed_donation

pytestmark = pytest.mark.django_db


def test_suggestions_from_header_names():
    got = suggest(["Given name", "Surname", "Email address", "Gift amount", "Date", "External ID", "Postcode", "Amount ($)",
                   "Notes"])
    assert got["Given name"] == "first_name"
    assert got["Surname"] == "last_name"
    assert got["Email address"] == "email"
    assert got["Gift amount"] == "amount"
    assert got["Date"] == "donation_date"
    assert got["External ID"] == "gift_external_id"
    assert got["Postcode"] == "postcode"
    assert got["Amount ($)"] == ""  # amount already taken by "Gift amount"
    assert suggest(["First name", "External ID"])["External ID"] == "donor_external_id"  # a file of donors


def test_mapping_is_remembered_per_header_set(org):
    job = upload(org, "Name given,Email\nAnn,ann@example.org\n", mapping={"Name given": "first_name", "Email": "email"})
    from imports import services

    services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    assert ImportMapping.objects.filter(organisation=org).count() == 1
    again = upload(org, "EMAIL,name GIVEN\nbob@example.org,Bob\n")
    assert again.mapping_source == "remembered"
    assert again.mapping == {"EMAIL": "email", "name GIVEN": "first_name"}


@pytest.fixture
def messy(org):
    revenue_code_create(organisation=org, actor=ACTOR, code="NSW-FUND", jurisdiction="NSW")
    bob = make_donor(org, first_name="Bob", last_name="Known", email="bob@example.org", postcode="2010")
    seed_donation(org, bob, amount_cents=100, donation_date=dt.date(2025, 1, 1), external_id="G-OLD")
    make_donor(org, first_name="Fay", last_name="Street", email="fay@example.org", address_line1="12 Low Rd", postcode="3000")
    return upload(org, MESSY_CSV)


def test_dry_run_outcomes_of_a_messy_file_and_nothing_stored(org, messy):
    assert messy.status == "READY", messy.error
    assert messy.delimiter == ";"
    got = outcomes(messy)
    assert got[2] == ("CREATE_GIFT", "CREATE_DONOR", "")
    assert got[3] == ("CREATE_GIFT", "MATCH_DONOR", "email")
    assert 4 not in got  # the blank line
    assert got[5] == ("CREATE_GIFT", "MATCH_DONOR", "email")
    assert got[6] == ("DUPLICATE", "MATCH_DONOR", "email")
    assert got[7] == ("CREATE_GIFT", "CREATE_DONOR", "")
    assert got[8][0] == "REFUSED_CAP"  # $7,000 + $1,000 > NSW's $7,900 in FY 2024-25
    assert messy.rows.get(position=8).room_left_cents == 90_000
    assert got[9][0] == "INVALID" and messy.rows.get(position=9).field == "amount"
    assert got[10][0] == "INVALID" and messy.rows.get(position=10).field == "donation_date"
    fay = messy.rows.get(position=11)
    assert (fay.outcome, fay.donor_outcome, fay.match_by, fay.confidence) == ("CREATE_GIFT", "MATCH_DONOR", "name_address", 0.95)
    assert got[12][0] == "DUPLICATE"  # same donor, date, amount, reference as line 3 (no new gift external ID match needed)
    assert messy.plan_counts["CREATE_GIFT"] == 5
    assert Donor.objects.filter(organisation=org).count() == 2
    assert Donation.objects.filter(organisation=org).count() == 1


def test_commit_equals_the_dry_run_and_a_second_run_creates_nothing(org, messy):
    planned = outcomes(messy)
    done = commit(org, messy)
    assert done.status == "COMPLETED"
    assert outcomes(done) == planned
    gifts = Donation.objects.filter(organisation=org)
    assert gifts.count() == 1 + 5
    assert Donor.objects.filter(organisation=org).count() == 4
    serial = gifts.get(external_id="G-9")
    assert serial.donation_date == dt.date(2025, 3, 4)  # Excel serial 45720 (45658 is 2025-01-01)
    assert gifts.get(external_id="G-1").amount_cents == 123450
    refused = done.rows.get(position=8)
    assert refused.outcome == "REFUSED_CAP" and refused.room_left_cents == 90_000
    # The same file again: everything matches, nothing new.
    again = upload(org, MESSY_CSV)
    assert {o for o, _d, _m in outcomes(again).values()} <= {"DUPLICATE", "INVALID", "REFUSED_CAP"}
    commit(org, again)
    assert Donation.objects.filter(organisation=org).count() == 6
    assert Donor.objects.filter(organisation=org).count() == 4


def test_result_file_has_input_rows_outcomes_and_ids(org, messy):
    from imports.services import import_result_chunks

    done = commit(org, messy)
    text = b"".join(import_result_chunks(job=done)).decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0].startswith("External ID,First name")
    assert lines[0].endswith("donor_id,donation_id")
    assert len(lines) == 1 + 10  # ten data rows (the blank line is skipped)
    assert "'=SUM(A1:A3)" in text  # neutralised
    gift = Donation.objects.get(organisation=org, external_id="G-1")
    assert any(line.startswith("G-1,") and gift.id in line and "CREATE_GIFT" in line for line in lines)


def test_caps_see_the_files_gifts_in_date_order_not_file_order(org):
    revenue_code_create(organisation=org, actor=ACTOR, code="NSW-FUND", jurisdiction="NSW")
    body = ("Email,Amount,Date,Fund\n"
            "max@example.org,$5000,20/05/2025,NSW-FUND\n"   # later gift, first in the file
            "max@example.org,$5000,10/05/2025,NSW-FUND\n")  # earlier gift: counted first
    job = upload(org, body)
    got = {r.position: r for r in job.rows.all()}
    assert got[3].outcome == "CREATE_GIFT"
    assert got[2].outcome == "REFUSED_CAP" and got[2].room_left_cents == 790_000 - 500_000
    done = commit(org, job)
    assert {r.position: r.outcome for r in done.rows.all()} == {2: "REFUSED_CAP", 3: "CREATE_GIFT"}
    assert done.rows.get(position=2).room_left_cents == 290_000
    gift = Donation.objects.get(organisation=org)
    assert gift.donation_date == dt.date(2025, 5, 10)


def test_remap_replans_and_a_mapping_without_donor_columns_waits(org):
    from imports import services

    job = upload(org, "Col A,Col B,Col C\nann@example.org,12.50,1/2/2025\n")
    assert job.status == "READY" and job.error  # nothing recognised: staff must map
    with pytest.raises(Exception):
        services.import_commit(organisation=org, actor=ACTOR, import_id=job.id)
    services.import_remap(organisation=org, actor=ACTOR, import_id=job.id,
                          mapping={"Col A": "email", "Col B": "amount", "Col C": "donation_date"})
    services.import_plan_run(import_id=job.id)
    job.refresh_from_db()
    assert job.status == "READY" and not job.error and job.plan_counts["CREATE_GIFT"] == 1
