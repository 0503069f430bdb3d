"""The disclosure return: its donors are exactly those with a recorded (not
cancelled) disclosure obligation for the jurisdiction and period, its gifts count
what was kept after partial refunds, and every kind of row is built from the one
column list (each kind fills its own columns; the others are empty)."""
from __future__ import annotations

import pytest

from compliance import rules
from compliance.models import ComplianceBreach, DisclosureObligation
from compliance.services import obligation_lodge
from reports import writers
from reports.exporters import REGISTRY
from reports.services import report_spec
from tests.compliance.helpers import NSW_CAP, SYSTEM, D, code, gift, obligations, partly_refund
from tests.support.api import make_donor
from tests.reports.conftest import parse_csv

pytestmark = pytest.mark.django_db


def _return_rows(org, jurisdiction, period):
    spec = report_spec(organisation=org, name="disclosure-return", data={"jurisdiction": jurisdiction, "period": period})
    return parse_csv(b"".join(writers.csv_chunks(spec)))


def test_the_disclosure_return_donors_are_exactly_those_with_obligations(org, other_org):
    """Its donors are the recorded, not cancelled, obligations of the jurisdiction and
    period, whatever the gifts alone would say (an obligation recorded is one to lodge;
    one cancelled is not)."""
    code(org, "NSW-1", "NSW")
    day, period = D(2025, 8, 1), (D(2025, 7, 1), D(2026, 6, 30))
    over, lodged, refunded, under, cancelled_by_hand, recorded_by_hand, elsewhere = (make_donor(org) for _ in range(7))
    gift(org, over, 60_000, day, revenue_code="NSW-1")
    gift(org, over, 40_000, D(2026, 6, 30), revenue_code="NSW-1")
    gift(org, lodged, 150_000, day, revenue_code="NSW-1")
    obligation_lodge(organisation=org, actor=SYSTEM, obligation_id=obligations(lodged)[0].id, reference="NSWEC-1",
                     lodged_date=D(2025, 9, 1))
    partly_kept = gift(org, refunded, 120_000, day, revenue_code="NSW-1")
    partly_refund(org, partly_kept, 30_000)  # keeps $900: below $1,000, its obligation is cancelled
    gift(org, under, 99_999, day, revenue_code="NSW-1")
    gift(org, cancelled_by_hand, 200_000, day, revenue_code="NSW-1")
    DisclosureObligation.objects.filter(donor=cancelled_by_hand).update(status="CANCELLED")
    gift(org, recorded_by_hand, 5_000, day, revenue_code="NSW-1")
    nsw_rule = rules.threshold_rule_in_force("NSW", day)
    DisclosureObligation.objects.create(
        organisation=org, donor=recorded_by_hand, rule=nsw_rule, jurisdiction="NSW", period_start=period[0],
        period_end=period[1], threshold_cents=nsw_rule.threshold_cents, aggregate_cents=5_000, crossed_on=day,
        due_date=D(2026, 10, 31), deadline_basis="ANNUAL_RETURN")
    gift(org, elsewhere, 200_000, D(2024, 8, 1), revenue_code="NSW-1")  # the year before
    gift(org, elsewhere, 2_000_000, day)  # FEDERAL
    foreign = make_donor(other_org)
    code(other_org, "NSW-1", "NSW")
    gift(other_org, foreign, 200_000, day, revenue_code="NSW-1")

    live = DisclosureObligation.objects.filter(organisation=org, jurisdiction="NSW", period_start=period[0],
                                               period_end=period[1]).exclude(status="CANCELLED")
    header, rows = _return_rows(org, "NSW", "2025-26")
    gifts = [r for r in rows if r["record_type"] == "GIFT"]
    assert {r["donor_id"] for r in gifts} == set(live.values_list("donor_id", flat=True)) == {
        over.id, lodged.id, recorded_by_hand.id}
    assert {r["donor_id"]: r["obligation_status"] for r in gifts} == {over.id: "OPEN", lodged.id: "LODGED", recorded_by_hand.id: "OPEN"}
    by_donor = {d: [r for r in gifts if r["donor_id"] == d] for d in (over.id, lodged.id, recorded_by_hand.id)}
    assert [int(r["gift_amount_cents"]) for r in by_donor[over.id]] == [60_000, 40_000]
    assert {int(r["aggregate_cents"]) for r in by_donor[over.id]} == {100_000}
    assert by_donor[lodged.id][0]["obligation_lodged_reference"] == "NSWEC-1"


def test_the_disclosure_return_counts_what_was_kept(org):
    code(org, "NSW-1", "NSW")
    donor = make_donor(org)
    first = gift(org, donor, 300_000, D(2025, 8, 1), revenue_code="NSW-1")
    gift(org, donor, 50_000, D(2025, 9, 1), "IN_KIND", revenue_code="NSW-1")
    partly_refund(org, first, 100_000)
    _, rows = _return_rows(org, "NSW", "2025-26")
    assert [(int(r["gift_amount_cents"]), r["gift_amount_dollars"]) for r in rows] == [(200_000, "2000.00"), (50_000, "500.00")]
    row = rows[0]
    assert (row["aggregate_cents"], row["aggregate_monetary_cents"], row["aggregate_in_kind_cents"]) == ("250000", "200000", "50000")
    assert obligations(donor)[0].aggregate_cents == 250_000


def test_the_disclosure_return_rows_are_built_from_its_columns(org):
    """Every row kind fills exactly the columns named for it: the others are empty."""
    code(org, "NSW-1", "NSW")
    donor = make_donor(org, first_name="=cmd", address_line1="1 Long Street")
    gift(org, donor, 150_000, D(2025, 8, 1), revenue_code="NSW-1")
    nsw_rule = rules.threshold_rule_in_force("NSW", D(2025, 8, 1))
    ComplianceBreach.objects.create(organisation=org, donor=donor, rule=nsw_rule, jurisdiction="NSW", period_start=D(2025, 7, 1),
                                    period_end=D(2026, 6, 30), cap_cents=NSW_CAP, aggregate_cents=800_000, excess_cents=10_000,
                                    reason="cap exceeded by a remap")
    header, (gift_row, breach_row) = _return_rows(org, "NSW", "2025-26")
    assert header == REGISTRY["disclosure-return"].column_names
    common = {"record_type", "jurisdiction", "period_start", "period_end", "regime", "threshold_cents", "threshold_dollars",
              "donor_id", "donor_type", "donor_name", "donor_address_line1", "donor_country"}
    assert {k for k, v in gift_row.items() if v} == common | {
        "aggregate_cents", "aggregate_dollars", "aggregate_monetary_cents", "aggregate_monetary_dollars", "aggregate_in_kind_cents",
        "aggregate_in_kind_dollars", "gift_id", "gift_date", "gift_amount_cents", "gift_amount_dollars", "gift_type",
        "obligation_id", "obligation_status", "obligation_due_date"}
    assert {k for k, v in breach_row.items() if v} == common | {
        k for k in header if k.startswith("breach_")}
    assert gift_row["donor_name"].startswith("'=cmd")  # text neutralised as in every report
    assert (gift_row["threshold_dollars"], breach_row["breach_excess_dollars"]) == ("1000.00", "100.00")
    assert breach_row["breach_recorded_at"].endswith("Z")
