"""Each report's rows and totals against sums computed here from the generated
ledger; the date range, other organisations and the sandbox never leak in;
formula neutralisation; XLSX opens with openpyxl and matches the CSV."""
from __future__ import annotations

import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import openpyxl
import pytest

from compliance.models import ComplianceBreach, DisclosureObligation, RegimeRule
from compliance.services import obligation_lodge
from reports import writers
from reports.exporters import REGISTRY
from reports.services import report_spec
from reports.sql import FORMULA_TRIGGERS
from tests.reports.conftest import FED_THRESHOLD_FY26, FY_END, FY_START, HOSTILE, SYSTEM, D, parse_csv

pytestmark = pytest.mark.django_db

RANGE = {"from": FY_START.isoformat(), "to": FY_END.isoformat()}


def export_csv(organisation, name, data=None, restrict=None):
    spec = report_spec(organisation=organisation, name=name, data=dict(RANGE if data is None else data), restrict=restrict)
    return parse_csv(b"".join(writers.csv_chunks(spec)))


def export_xlsx(organisation, name, data=None):
    spec = report_spec(organisation=organisation, name=name, data=dict(RANGE if data is None else data))
    out = io.BytesIO()
    rows = writers.xlsx_write(spec, out)
    out.seek(0)
    return rows, openpyxl.load_workbook(out, read_only=True)


def dollars(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def leaks(books, rows, *fields):
    """Rows naming anything of the other organisation or the sandbox."""
    foreign = {g.id for g in books.gifts if g.organisation_id != books.org.id} | {
        g.donor_id for g in books.gifts if g.organisation_id != books.org.id}
    return [r for r in rows if any(r.get(f) in foreign for f in fields) or "Leak" in " ".join(r.values())]


# --- donations ------------------------------------------------------------------------------

def test_donations_rows_and_totals(books):
    header, rows = export_csv(books.org, "donations")
    assert header == REGISTRY["donations"].column_names
    expected = {g.id: g for g in books.in_range()}
    assert {r["donation_id"] for r in rows} == set(expected)
    assert len(rows) == len(expected)
    for row in rows:
        gift = expected[row["donation_id"]]
        assert row["status"] == gift.status
        assert int(row["amount_cents"]) == gift.amount_cents
        assert row["amount_dollars"] == dollars(gift.amount_cents)
        assert row["donation_date"] == gift.donation_date.isoformat()
        assert row["donation_type"] == gift.donation_type
        assert row["payment_method"] == (gift.payment_method or "")
        assert row["jurisdiction"] == gift.jurisdiction
        assert row["campaign_id"] == (gift.campaign_id or "")
        if gift.campaign_id:
            name = books.campaigns[gift.campaign_id].name
            assert row["campaign_name"] in (name, "'" + name)
        donor = books.donors[gift.donor_id] if gift.donor_id in books.donors else None
        if donor is not None:
            assert row["donor_address_line1"] == donor.address_line1
            assert row["donor_postcode"] == donor.postcode
        if gift.donation_type == "IN_KIND":
            assert int(row["in_kind_fair_value_cents"]) == gift.amount_cents
            assert row["in_kind_valuation_method"].lstrip("'") == gift.in_kind_valuation_method
        else:
            assert row["in_kind_fair_value_cents"] == ""
        assert row["created_at"].endswith("Z") and "T" in row["created_at"]
    total = sum(g.amount_cents for g in expected.values())
    assert sum(int(r["amount_cents"]) for r in rows) == total
    assert sum(Decimal(r["amount_dollars"]) for r in rows) == Decimal(total) / 100
    confirmed = sum(g.amount_cents for g in expected.values() if g.status == "CONFIRMED")
    assert sum(int(r["amount_cents"]) for r in rows if r["status"] == "CONFIRMED") == confirmed
    assert not leaks(books, rows, "donation_id", "donor_id")
    # Sorted by gift date.
    assert [r["donation_date"] for r in rows] == sorted(r["donation_date"] for r in rows)


def test_donations_filters_of_the_list_endpoint(books):
    _, rows = export_csv(books.org, "donations", {**RANGE, "status": "CONFIRMED", "payment_method": "CHEQUE"})
    expected = {g.id for g in books.in_range() if g.status == "CONFIRMED" and g.payment_method == "CHEQUE"}
    assert {r["donation_id"] for r in rows} == expected and expected
    _, rows = export_csv(books.org, "donations", {**RANGE, "revenue_code": "act-1", "amount_cents[gte]": "5000"})
    expected = {g.id for g in books.in_range() if g.revenue_code == "ACT-1" and g.amount_cents >= 5000}
    assert {r["donation_id"] for r in rows} == expected and expected


@pytest.mark.parametrize("start, end", [(D(2025, 8, 1), D(2025, 8, 1)), (D(2025, 5, 20), D(2025, 12, 31)), (D(2026, 6, 1), D(2026, 9, 1))])
def test_nothing_outside_the_range(books, start, end):
    _, rows = export_csv(books.org, "donations", {"from": start.isoformat(), "to": end.isoformat()})
    assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range(start=start, end=end)}
    assert all(start.isoformat() <= r["donation_date"] <= end.isoformat() for r in rows)


def test_sandbox_and_other_organisation_get_only_their_own(books):
    for organisation in (books.sandbox, books.other_org):
        _, rows = export_csv(organisation, "donations")
        assert {r["donation_id"] for r in rows} == {g.id for g in books.in_range(organisation)}
        assert len(rows) == 2


def test_default_range_is_the_current_financial_year(books, monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "localdate", lambda *a, **k: D(2026, 3, 15))
    spec = report_spec(organisation=books.org, name="donations", data={})
    assert (spec.date_from, spec.date_to) == (FY_START, FY_END)
    assert spec.file_name("csv") == f"{books.org.slug}_donations_2025-07-01_2026-06-30.csv"
    spec = report_spec(organisation=books.org, name="donations", data={"from": "2025-09-01"})
    assert (spec.date_from, spec.date_to) == (D(2025, 9, 1), FY_END)


# --- in-kind register ----------------------------------------------------------------------

def test_in_kind_register(books):
    header, rows = export_csv(books.org, "in-kind-register")
    assert header == REGISTRY["in-kind-register"].column_names
    expected = {g.id: g for g in books.in_range() if g.donation_type == "IN_KIND"}
    assert {r["donation_id"] for r in rows} == set(expected) and len(expected) >= 5
    for row in rows:
        gift = expected[row["donation_id"]]
        assert int(row["fair_value_cents"]) == gift.amount_cents
        assert row["fair_value_dollars"] == dollars(gift.amount_cents)
        assert row["in_kind_category"] == gift.in_kind_category
        assert row["in_kind_category_label"] in ("Donated goods", "Donated services")
        assert row["in_kind_valuation_method"].lstrip("'") == gift.in_kind_valuation_method
        assert row["donor_id"] == gift.donor_id
    assert sum(int(r["fair_value_cents"]) for r in rows) == sum(g.amount_cents for g in expected.values())


# --- campaign summary ------------------------------------------------------------------------

def test_campaign_summary_per_campaign_per_month(books):
    header, rows = export_csv(books.org, "campaign-summary")
    assert header == REGISTRY["campaign-summary"].column_names
    expected = defaultdict(lambda: {"gifts": 0, "donors": set(), "raised": 0, "monetary": 0, "in_kind": 0})
    for g in books.in_range():
        if g.status != "CONFIRMED":
            continue
        line = expected[(g.campaign_id or "", g.donation_date.strftime("%Y-%m"))]
        line["gifts"] += 1
        line["donors"].add(g.donor_id)
        line["raised"] += g.amount_cents
        line["monetary" if g.donation_type == "MONETARY" else "in_kind"] += g.amount_cents
    got = {(r["campaign_id"], r["month"]): r for r in rows}
    assert set(got) == set(expected)
    for key, line in expected.items():
        row = got[key]
        assert int(row["gifts_count"]) == line["gifts"]
        assert int(row["donors_count"]) == len(line["donors"])
        assert int(row["raised_cents"]) == line["raised"]
        assert row["raised_dollars"] == dollars(line["raised"])
        assert int(row["monetary_cents"]) + int(row["in_kind_cents"]) == line["raised"]
        assert int(row["in_kind_cents"]) == line["in_kind"]
        assert row["month_start"] == key[1] + "-01"
        if not key[0]:
            assert row["campaign_name"] == "(no campaign)"
    assert sum(int(r["raised_cents"]) for r in rows) == sum(g.amount_cents for g in books.in_range() if g.status == "CONFIRMED")


def test_campaign_summary_with_a_campaign_filter(books):
    campaign = next(iter(books.campaigns.values()))
    _, rows = export_csv(books.org, "campaign-summary", {**RANGE, "status": "ACTIVE"})
    assert "" not in {r["campaign_id"] for r in rows}
    assert {r["campaign_id"] for r in rows} <= set(books.campaigns)
    assert campaign.id in {r["campaign_id"] for r in rows}


# --- reconciliation ------------------------------------------------------------------------

def test_reconciliation_per_day_and_method_and_batches(books):
    header, rows = export_csv(books.org, "reconciliation")
    assert header == REGISTRY["reconciliation"].column_names
    expected = defaultdict(lambda: [0, 0])
    for g in books.in_range():
        if g.donation_type != "MONETARY" or g.status not in ("CONFIRMED", "REFUNDED") or g.batch_id:
            continue
        line = expected[(g.donation_date.isoformat(), g.payment_method)]
        line[0] += 1
        line[1] += g.amount_cents
    days = {(r["date"], r["payment_method"]): r for r in rows if r["line_type"] == "DAY_METHOD"}
    assert set(days) == set(expected)
    for key, (count, total) in expected.items():
        assert int(days[key]["gifts_count"]) == count
        assert int(days[key]["total_cents"]) == total
        assert days[key]["total_dollars"] == dollars(total)
        assert days[key]["batch_id"] == "" and days[key]["control_count"] == ""
    batch = books.batches[0]
    batch_rows = [r for r in rows if r["line_type"] == "BATCH"]
    assert len(batch_rows) == 1
    line = batch_rows[0]
    assert (line["batch_id"], line["date"], line["payment_method"], line["batch_reference"]) == (
        batch.id, "2025-10-15", "CHEQUE", "DEP-0042")
    assert (int(line["gifts_count"]), int(line["total_cents"])) == (2, 35_000)
    assert (int(line["control_count"]), int(line["control_total_cents"]), line["control_total_dollars"]) == (2, 35_000, "350.00")
    # Every received monetary gift is on exactly one line.
    received = sum(g.amount_cents for g in books.in_range() if g.donation_type == "MONETARY" and g.status in ("CONFIRMED", "REFUNDED"))
    assert sum(int(r["total_cents"]) for r in rows) == received
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)


def test_reconciliation_status_filter(books):
    _, rows = export_csv(books.org, "reconciliation", {**RANGE, "status": "VOIDED"})
    voided = [g for g in books.in_range() if g.status == "VOIDED" and g.donation_type == "MONETARY"]
    assert sum(int(r["gifts_count"]) for r in rows) == len(voided) > 0


# --- disclosure return --------------------------------------------------------------------------

def test_disclosure_return(books):
    ada, grace = list(books.donors.values())[:2]
    obligation = DisclosureObligation.objects.get(donor=ada, jurisdiction="FEDERAL", status="OPEN", period_start=FY_START)
    obligation_lodge(organisation=books.org, actor=SYSTEM, obligation_id=obligation.id, reference="AEC-123", lodged_date=D(2026, 7, 20))
    rule = RegimeRule.objects.get(name="Federal FY 2025-26")
    breach = ComplianceBreach.objects.create(
        organisation=books.org, donor=grace, rule=rule, jurisdiction="FEDERAL", period_start=FY_START, period_end=FY_END,
        cap_cents=1_000_000, aggregate_cents=1_730_000, excess_cents=730_000, reason="cap exceeded by a remap")
    header, rows = export_csv(books.org, "disclosure-return", {"jurisdiction": "FEDERAL", "period": "2025-26"})
    assert header == REGISTRY["disclosure-return"].column_names
    totals = defaultdict(int)
    for g in books.in_range():
        if g.status == "CONFIRMED" and g.jurisdiction == "FEDERAL":
            totals[g.donor_id] += g.amount_cents
    over = {d for d, t in totals.items() if t > FED_THRESHOLD_FY26}
    assert ada.id in over and grace.id not in over  # exactly $17,300 is not "more than"
    gifts = [r for r in rows if r["record_type"] == "GIFT"]
    assert {r["donor_id"] for r in gifts} == over
    expected_gifts = {g.id for g in books.in_range() if g.donor_id in over and g.status == "CONFIRMED" and g.jurisdiction == "FEDERAL"}
    assert {r["gift_id"] for r in gifts} == expected_gifts
    for row in gifts:
        assert int(row["aggregate_cents"]) == totals[row["donor_id"]]
        assert int(row["aggregate_monetary_cents"]) + int(row["aggregate_in_kind_cents"]) == totals[row["donor_id"]]
        assert (row["period_start"], row["period_end"], row["threshold_cents"]) == ("2025-07-01", "2026-06-30", str(FED_THRESHOLD_FY26))
        assert row["gift_type"] in ("MONETARY", "IN_KIND")
    ada_rows = [r for r in gifts if r["donor_id"] == ada.id]
    assert {r["obligation_status"] for r in ada_rows} == {"LODGED"}
    assert ada_rows[0]["obligation_lodged_reference"] == "AEC-123"
    assert ada_rows[0]["donor_address_line1"] == "1 Long Street"
    assert {r["gift_type"] for r in ada_rows} == {"MONETARY", "IN_KIND"}
    assert sum(int(r["gift_amount_cents"]) for r in ada_rows) == totals[ada.id] == 1_730_001
    breaches = [r for r in rows if r["record_type"] == "BREACH"]
    assert [(r["breach_id"], r["donor_id"], r["breach_excess_cents"], r["breach_excess_dollars"]) for r in breaches] == [
        (breach.id, grace.id, "730000", "7300.00")]
    assert rows.index(breaches[0]) == len(rows) - 1  # listed after the gifts
    assert not leaks(books, rows, "gift_id", "donor_id")


def test_disclosure_return_act_is_at_or_above(books):
    _, rows = export_csv(books.org, "disclosure-return", {"jurisdiction": "ACT", "period": "2025-26"})
    totals = defaultdict(int)
    for g in books.in_range():
        if g.status == "CONFIRMED" and g.jurisdiction == "ACT":
            totals[g.donor_id] += g.amount_cents
    assert {r["donor_id"] for r in rows} == {d for d, t in totals.items() if t >= 100_000}


@pytest.mark.parametrize("data, param", [
    ({"jurisdiction": "MARS"}, "jurisdiction"),
    ({"jurisdiction": "FEDERAL", "period": "2025-27"}, "period"),
    ({"jurisdiction": "FEDERAL", "period": "2025"}, "period"),  # FY regime: a calendar year is the wrong shape
    ({"jurisdiction": "QLD", "period": "2025-26"}, "period"),  # no threshold known for Queensland
    ({"jurisdiction": "FEDERAL", "from": "2025-08-01", "to": "2026-08-01"}, "to"),
    ({"jurisdiction": "FEDERAL", "period": "2025-26", "status": "OPEN"}, "status"),
])
def test_disclosure_return_parameters(books, data, param):
    from together.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as caught:
        report_spec(organisation=books.org, name="disclosure-return", data=data)
    assert caught.value.param == param


def test_disclosure_return_period_forms(books):
    by_date = report_spec(organisation=books.org, name="disclosure-return", data={"jurisdiction": "FEDERAL", "period": "2026-03-01"})
    by_from = report_spec(organisation=books.org, name="disclosure-return", data={"jurisdiction": "FEDERAL", "from": "2025-07-01"})
    assert (by_date.date_from, by_date.date_to) == (by_from.date_from, by_from.date_to) == (FY_START, FY_END)
    truncated = report_spec(organisation=books.org, name="disclosure-return", data={"jurisdiction": "FEDERAL", "period": "2026-27"})
    assert (truncated.date_from, truncated.date_to) == (D(2026, 7, 1), D(2026, 12, 31))
    calendar = report_spec(organisation=books.org, name="disclosure-return", data={"jurisdiction": "FEDERAL", "period": "2027"})
    assert (calendar.date_from, calendar.date_to) == (D(2027, 1, 1), D(2027, 12, 31))
    assert by_date.file_name("csv") == f"{books.org.slug}_disclosure-return_FEDERAL_2025-07-01_2026-06-30.csv"


# --- formula neutralisation and XLSX ----------------------------------------------------------

def test_formula_cells_are_neutralised_and_numbers_are_not(books):
    from donations.models import Donation

    # The services strip leading whitespace; imports and older rows may not have: put such values in directly.
    Donation.objects.filter(pk=books.in_range()[0].id).update(notes=HOSTILE[4], void_reason=HOSTILE[5])
    _, rows = export_csv(books.org, "donations")
    cells = [v for r in rows for v in r.values() if v]
    for hostile in HOSTILE:
        assert hostile not in cells, hostile
    assert "'" + HOSTILE[0] in cells and "'" + HOSTILE[1] in cells and "'" + HOSTILE[2] in cells and "'" + HOSTILE[3] in cells
    assert "'" + HOSTILE[4] in cells and "'" + HOSTILE[5] in cells
    assert not [c for c in cells if c[:1] in FORMULA_TRIGGERS]
    # Numbers are never quoted.
    assert all(r["amount_cents"].isdigit() for r in rows)
    _, summary = export_csv(books.org, "campaign-summary")
    assert "'" + HOSTILE[2] in {r["campaign_name"] for r in summary}


def test_neutralisation_of_negative_looking_text_only():
    from reports.sql import neutralise_value

    assert neutralise_value("-12") == "'-12"
    assert neutralise_value(-12) == -12
    assert neutralise_value("safe") == "safe"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_xlsx_opens_and_matches_the_csv(books, name):
    data = {"jurisdiction": "FEDERAL", "period": "2025-26"} if name == "disclosure-return" else RANGE
    header, csv_rows = export_csv(books.org, name, data)
    count, workbook = export_xlsx(books.org, name, data)
    sheet = workbook.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == header
    assert count == len(values) - 1 == len(csv_rows)
    for row, csv_row in zip(values[1:], csv_rows):
        for column, value in zip(header, row):
            text = csv_row[column]
            if value is None:
                assert text == ""
            elif isinstance(value, dt.datetime):  # dates come back as datetimes from openpyxl
                assert value.date().isoformat() == text
            elif isinstance(value, (int, float)):
                assert Decimal(text) == Decimal(str(value)), (column, value, text)
            else:
                assert isinstance(value, str) and value == text, (column, value, text)
                assert value[:1] not in FORMULA_TRIGGERS


def test_xlsx_money_is_numeric(books):
    _, workbook = export_xlsx(books.org, "donations")
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    cents, dollars_col = header.index("amount_cents"), header.index("amount_dollars")
    for row in rows[1:]:
        assert isinstance(row[cents], int)
        assert isinstance(row[dollars_col], (int, float))
        assert round(row[dollars_col] * 100) == row[cents]


def test_csv_streams_in_chunks_of_about_256_kb(books):
    spec = report_spec(organisation=books.org, name="donations", data=RANGE)
    chunks = list(writers.csv_chunks(spec, chunk_bytes=1024))
    assert len(chunks) > 3
    assert all(len(c) >= 1024 for c in chunks[:-1])
    assert writers.CHUNK_BYTES == 256 * 1024

