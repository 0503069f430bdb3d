"""Custom fields in the finance exports (issue 19): the donations report gains
`cf_<key>` per gift field and `donor_cf_<key>` per donor field (CSV and XLSX), the
in-kind register its gift fields; `cf_<key>` filters the report as it filters the list,
and the dashboard's list CSV keeps the filter."""
from __future__ import annotations

import datetime as dt
import io

import openpyxl
import pytest
from django.urls import reverse

from donations import services
from donations.custom_fields import custom_field_archive, custom_field_create
from organisations.models import Role
from tests.conftest import client_for, make_key
from tests.dashboard.conftest import client_as, make_user
from tests.reports.conftest import parse_csv
from together.actors import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")
DAY = dt.date(2026, 3, 1)
RANGE = "from=2025-07-01&to=2026-06-30"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def world(org):
    region = custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONATION", key="region", label="Region",
                                 field_type="CHOICE", choices=["North", "South"])
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONATION", key="pledge", label="Pledge", field_type="NUMBER")
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONATION", key="note", label="Note", field_type="TEXT")
    custom_field_create(organisation=org, actor=SYSTEM, applies_to="DONOR", key="volunteer", label="Volunteer",
                        field_type="BOOLEAN")
    donor = services.donor_create(organisation=org, actor=SYSTEM, email="v@example.org", custom_fields={"volunteer": True})
    other = services.donor_create(organisation=org, actor=SYSTEM, email="o@example.org")
    gift = dict(donation_type="MONETARY", amount_cents=5000, donation_date=DAY, payment_method="CHEQUE")
    north = services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id,
                                     custom_fields={"region": "North", "pledge": "-12.5", "note": "=SUM(A1)"}, **gift)
    south = services.donation_record(organisation=org, actor=SYSTEM, donor_id=other.id, custom_fields={"region": "South"}, **gift)
    custom_field_archive(organisation=org, actor=SYSTEM, custom_field_id=region.id)  # archived: its column stays
    return {"org": org, "north": north, "south": south}


def test_donations_csv_has_a_column_per_field(world):
    response = client_for(make_key(world["org"], "READ")).get(f"/api/v1/reports/donations?{RANGE}")
    assert response.status_code == 200
    header, rows = parse_csv(body(response))
    assert header[-4:] == ["cf_region", "cf_pledge", "cf_note", "donor_cf_volunteer"]
    by_id = {r["donation_id"]: r for r in rows}
    north, south = by_id[world["north"].id], by_id[world["south"].id]
    assert (north["cf_region"], north["cf_pledge"], north["cf_note"], north["donor_cf_volunteer"]) == (
        "North", "-12.5", "'=SUM(A1)", "true")  # text neutralised against formulas; numbers untouched
    assert (south["cf_region"], south["cf_pledge"], south["cf_note"], south["donor_cf_volunteer"]) == ("South", "", "", "")


def test_the_report_filters_on_a_custom_field_and_names_a_bad_one(world):
    client = client_for(make_key(world["org"], "READ"))
    _, rows = parse_csv(body(client.get(f"/api/v1/reports/donations?{RANGE}&cf_region=south")))
    assert [r["donation_id"] for r in rows] == [world["south"].id]
    response = client.get(f"/api/v1/reports/donations?{RANGE}&cf_pledge=many")
    assert response.status_code == 400 and response.json()["error"]["param"] == "cf_pledge"


def test_xlsx_and_in_kind_register_headers(world):
    client = client_for(make_key(world["org"], "READ"))
    response = client.get(f"/api/v1/reports/donations?format=xlsx&{RANGE}")
    sheet = openpyxl.load_workbook(io.BytesIO(body(response))).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[-4:] == ["cf_region", "cf_pledge", "cf_note", "donor_cf_volunteer"]
    header, _ = parse_csv(body(client.get(f"/api/v1/reports/in-kind-register?{RANGE}")))
    assert header[-3:] == ["cf_region", "cf_pledge", "cf_note"]


def test_another_organisation_gets_no_such_columns(world, other_org):
    header, rows = parse_csv(body(client_for(make_key(other_org, "READ")).get(f"/api/v1/reports/donations?{RANGE}")))
    assert not [h for h in header if h.startswith(("cf_", "donor_cf_"))] and rows == []


def test_dashboard_list_csv_keeps_the_custom_filter(world):
    client = client_as(make_user(world["org"], Role.VIEWER))
    response = client.get(reverse("donations-export") + "?cf_region=North")
    assert response.status_code == 200
    header, rows = parse_csv(body(response))
    assert "cf_region" in header and [r["donation_id"] for r in rows] == [world["north"].id]


def test_donors_report_and_list_csv_have_the_donor_fields(world):
    client = client_for(make_key(world["org"], "READ"))
    header, rows = parse_csv(body(client.get(f"/api/v1/reports/donors?{RANGE}&cf_volunteer=yes")))
    assert header[-1] == "donor_cf_volunteer"
    assert [(r["donor_email"], r["donor_cf_volunteer"]) for r in rows] == [("v@example.org", "true")]
    dashboard = client_as(make_user(world["org"], Role.VIEWER))
    header, rows = parse_csv(body(dashboard.get(reverse("donors-export") + "?cf_volunteer=true")))
    assert header[-1] == "donor_cf_volunteer" and [r["donor_email"] for r in rows] == ["v@example.org"]
