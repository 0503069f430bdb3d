"""Disclosure obligations: one per donor, jurisdiction and period, due by the
regime's rule (21st of the next month; 7 days / 24 hours in election periods,
strictest wins; annual return under the FY regime; VIC 21 days; ACT 7 days), and
lodged through the API."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from compliance import services as compliance
from donations import services
from tests.compliance.helpers import D, SYSTEM, code, gift, obligations
from tests.support.api import assert_error, make_donor

FEDERAL_GENERAL = ("FEDERAL_GENERAL", "2027 federal general", D(2027, 4, 1), D(2027, 5, 15), "FEDERAL")   # polling on a Saturday
BYELECTION = ("FEDERAL_BYELECTION", "Bradfield by-election", D(2027, 4, 20), D(2027, 4, 24), "FEDERAL")
NSW_STATE = ("STATE_GENERAL", "2027 NSW state", D(2027, 3, 1), D(2027, 3, 27), "NSW")
FED_2026 = ("FEDERAL_GENERAL", "2026 federal (pre-reform)", D(2026, 8, 20), D(2026, 9, 19), "FEDERAL")

DUE_DATES = [
    # jurisdiction, crossing gift date, elections, due date, basis
    ("FEDERAL", D(2027, 1, 1), [], D(2027, 2, 21), "NEXT_MONTH_DAY"),
    ("FEDERAL", D(2027, 1, 31), [], D(2027, 2, 21), "NEXT_MONTH_DAY"),
    ("FEDERAL", D(2027, 3, 15), [], D(2027, 4, 21), "NEXT_MONTH_DAY"),
    ("FEDERAL", D(2027, 12, 1), [], D(2028, 1, 21), "NEXT_MONTH_DAY"),      # December → 21 January
    ("FEDERAL", D(2027, 12, 31), [], D(2028, 1, 21), "NEXT_MONTH_DAY"),
    ("FEDERAL", D(2027, 3, 31), [FEDERAL_GENERAL], D(2027, 4, 21), "NEXT_MONTH_DAY"),          # the day before the writ
    ("FEDERAL", D(2027, 4, 1), [FEDERAL_GENERAL], D(2027, 4, 8), "ELECTION_PERIOD_7_DAYS"),    # writ day
    ("FEDERAL", D(2027, 5, 7), [FEDERAL_GENERAL], D(2027, 5, 14), "ELECTION_PERIOD_7_DAYS"),   # Friday before the final week
    ("FEDERAL", D(2027, 5, 8), [FEDERAL_GENERAL], D(2027, 5, 9), "ELECTION_FINAL_WEEK_24_HOURS"),   # the Saturday before polling
    ("FEDERAL", D(2027, 5, 15), [FEDERAL_GENERAL], D(2027, 5, 16), "ELECTION_FINAL_WEEK_24_HOURS"),  # polling day
    ("FEDERAL", D(2027, 5, 22), [FEDERAL_GENERAL], D(2027, 5, 23), "ELECTION_FINAL_WEEK_24_HOURS"),  # 7 days after polling
    ("FEDERAL", D(2027, 5, 23), [FEDERAL_GENERAL], D(2027, 6, 21), "NEXT_MONTH_DAY"),          # the period is over
    # overlapping periods: the strictest wins
    ("FEDERAL", D(2027, 4, 20), [FEDERAL_GENERAL, BYELECTION], D(2027, 4, 21), "ELECTION_FINAL_WEEK_24_HOURS"),
    ("FEDERAL", D(2027, 5, 1), [BYELECTION, FEDERAL_GENERAL], D(2027, 5, 2), "ELECTION_FINAL_WEEK_24_HOURS"),
    ("FEDERAL", D(2027, 5, 2), [FEDERAL_GENERAL, BYELECTION], D(2027, 5, 9), "ELECTION_PERIOD_7_DAYS"),
    ("FEDERAL", D(2027, 3, 10), [NSW_STATE], D(2027, 4, 21), "NEXT_MONTH_DAY"),                # a state election is not a federal one
    # before 1 January 2027: the FY regime's annual return, whatever elections exist
    ("FEDERAL", D(2026, 3, 1), [], D(2026, 10, 31), "ANNUAL_RETURN"),
    ("FEDERAL", D(2026, 9, 1), [FED_2026], D(2027, 10, 31), "ANNUAL_RETURN"),
    ("FEDERAL", D(2026, 12, 31), [], D(2027, 10, 31), "ANNUAL_RETURN"),
    ("NSW", D(2026, 3, 1), [], D(2026, 10, 31), "ANNUAL_RETURN"),
    ("VIC", D(2026, 3, 1), [], D(2026, 3, 22), "WITHIN_21_DAYS"),
    ("VIC", D(2027, 6, 30), [], D(2027, 7, 21), "WITHIN_21_DAYS"),
    ("ACT", D(2026, 3, 1), [], D(2026, 3, 8), "WITHIN_7_DAYS"),
    ("ACT", D(2026, 12, 28), [], D(2027, 1, 4), "WITHIN_7_DAYS"),
]


@pytest.mark.parametrize("jurisdiction, day, elections, due, basis", DUE_DATES)
def test_due_dates(org, read_client, jurisdiction, day, elections, due, basis):
    for election_type, name, writ, polling, where in elections:
        compliance.election_period_create(organisation=org, actor=SYSTEM, election_type=election_type, name=name,
                                          writ_date=writ, polling_date=polling, jurisdiction=where)
    code(org, "C", jurisdiction)
    donor = make_donor(org)
    gift(org, donor, 2_000_000 if jurisdiction == "FEDERAL" else 200_000, day, revenue_code="C")
    obligation, = obligations(donor)
    assert (obligation.jurisdiction, obligation.status, obligation.crossed_on) == (jurisdiction, "OPEN", day)
    assert (obligation.due_date, obligation.deadline_basis) == (due, basis)
    shown = read_client.get(f"/api/v1/disclosure-obligations/{obligation.id}").json()
    assert (shown["due_date"], shown["deadline_basis"], shown["object"]) == (due.isoformat(), basis, "disclosure_obligation")


def test_due_date_follows_the_gift_that_crossed(org):
    donor = make_donor(org)
    gift(org, donor, 300_000, D(2027, 2, 10))
    assert obligations(donor) == []
    crossing = gift(org, donor, 200_001, D(2027, 3, 5))
    gift(org, donor, 100_000, D(2027, 6, 5))
    obligation, = obligations(donor)
    assert (obligation.crossing_donation_id, obligation.crossed_on, obligation.due_date) == (crossing.id, D(2027, 3, 5), D(2027, 4, 21))
    assert obligation.aggregate_cents == 600_001  # kept current with later gifts


def test_one_obligation_per_donor_jurisdiction_and_period(org):
    code(org, "NSW", "NSW")
    donor = make_donor(org)
    for day in (D(2027, 2, 1), D(2027, 3, 1), D(2027, 11, 1)):
        gift(org, donor, 600_000, day)
    gift(org, donor, 600_000, D(2028, 1, 1))
    gift(org, donor, 100_000, D(2027, 2, 1), revenue_code="nsw")
    keys = sorted((o.jurisdiction, o.period_start) for o in obligations(donor))
    assert keys == [("FEDERAL", D(2027, 1, 1)), ("FEDERAL", D(2028, 1, 1)), ("NSW", D(2026, 7, 1))]


# --- lodging -----------------------------------------------------------------------------------

@pytest.fixture
def open_obligation(org):
    donor = make_donor(org)
    gift(org, donor, 600_000, D(2026, 3, 1), revenue_code=None)
    gift(org, donor, 1_200_000, D(2026, 4, 1))
    obligation, = obligations(donor)
    return obligation


def test_lodge(org, write_client, read_client, open_obligation):
    today = timezone.localdate()
    response = write_client.post(f"/api/v1/disclosure-obligations/{open_obligation.id}/lodge",
                                 {"reference": "AEC-2026-0042", "lodged_date": today.isoformat()}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["lodged_reference"], body["lodged_date"]) == ("LODGED", "AEC-2026-0042", today.isoformat())
    listed = read_client.get("/api/v1/disclosure-obligations?status=LODGED").json()["data"]
    assert [o["id"] for o in listed] == [open_obligation.id]
    assert read_client.get("/api/v1/disclosure-obligations?status=OPEN").json()["data"] == []
    # A lodged obligation is history: a later refund does not cancel it.
    first = open_obligation.crossing_donation_id
    services.donation_refund(organisation=org, actor=SYSTEM, donation_id=first, refund_date=D(2026, 5, 1), reason="returned")
    assert read_client.get(f"/api/v1/disclosure-obligations/{open_obligation.id}").json()["status"] == "LODGED"


LODGE_REFUSALS = [
    # label, body, status, code, param
    ("no reference", {"lodged_date": "2026-01-05"}, 400, "invalid_request", "reference"),
    ("blank reference", {"reference": "   ", "lodged_date": "2026-01-05"}, 400, None, "reference"),
    ("no date", {"reference": "AEC-1"}, 400, "invalid_request", "lodged_date"),
    ("bad date", {"reference": "AEC-1", "lodged_date": "05/01/2026"}, 400, None, "lodged_date"),
    ("future date", {"reference": "AEC-1", "lodged_date": (dt.date.today() + dt.timedelta(days=3)).isoformat()}, 400, "validation_failed", "lodged_date"),
    ("unknown field", {"reference": "AEC-1", "lodged_date": "2026-01-05", "status": "LODGED"}, 400, "invalid_request", "status"),
]


@pytest.mark.parametrize("label, body, status, code_, param", LODGE_REFUSALS, ids=[r[0] for r in LODGE_REFUSALS])
def test_lodge_refusals(org, write_client, open_obligation, label, body, status, code_, param):
    response = write_client.post(f"/api/v1/disclosure-obligations/{open_obligation.id}/lodge", body, format="json")
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["param"] == param and error["code"] in ({code_} if code_ else {"invalid_request", "validation_failed"})
    open_obligation.refresh_from_db()
    assert open_obligation.status == "OPEN"


def test_lodge_twice_or_cancelled_is_refused(org, write_client, read_client, open_obligation):
    url = f"/api/v1/disclosure-obligations/{open_obligation.id}/lodge"
    body = {"reference": "AEC-1", "lodged_date": "2026-07-01"}
    assert write_client.post(url, body, format="json").status_code == 200
    error = assert_error(write_client.post(url, {"reference": "AEC-2", "lodged_date": "2026-07-02"}, format="json"), 400, "validation_failed", "status")
    assert "LODGED" in error["message"]
    assert read_client.get(f"/api/v1/disclosure-obligations/{open_obligation.id}").json()["lodged_reference"] == "AEC-1"

    donor = make_donor(org)
    only = gift(org, donor, 600_000, D(2027, 2, 1))
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=only.id, reason="entered in error")
    cancelled, = obligations(donor)
    assert cancelled.status == "CANCELLED"
    assert_error(write_client.post(f"/api/v1/disclosure-obligations/{cancelled.id}/lodge", body, format="json"), 400, "validation_failed", "status")


def test_lodge_needs_a_write_key(read_client, open_obligation):
    response = read_client.post(f"/api/v1/disclosure-obligations/{open_obligation.id}/lodge",
                                {"reference": "AEC-1", "lodged_date": "2026-07-01"}, format="json")
    assert_error(response, 403, "forbidden")
