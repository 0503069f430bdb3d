"""compliance.rules, the one place of the compliance arithmetic: the periods, the
rule in force on boundary dates (in a deterministic order), the threshold test,
what counts (a CONFIRMED gift counts what was kept after partial refunds;
PENDING, FAILED, REFUNDED and VOIDED count nothing), and the room under a cap;
then every reader of those answers (cap refusals, donor totals, the donor's
position, campaign rollups, the home page's totals, the reports) agreeing on a
partially refunded gift. The disclosure return: tests/reports/test_disclosure_return.py."""
from __future__ import annotations


import pytest

from compliance import rules
from compliance.models import ComplianceSettings, PeriodKind, RegimeRule
from compliance.selectors import donor_compliance
from compliance.services import CapExceeded
from donations import services
from donations.models import Donation, Donor, Status
from donations.selectors import campaign_rollups, gifts_by_month
from reports import writers
from reports.services import report_spec
from tests.compliance.helpers import NSW_CAP, NSW_THRESHOLD, SYSTEM, D, code, gift, obligations, partly_refund
from tests.support.api import make_donor
from tests.reports.conftest import parse_csv

pytestmark = pytest.mark.django_db


# --- periods ----------------------------------------------------------------------------------

@pytest.mark.parametrize("day, expected", [
    (D(2026, 6, 30), (D(2025, 7, 1), D(2026, 6, 30))),
    (D(2026, 7, 1), (D(2026, 7, 1), D(2027, 6, 30))),
    (D(2026, 1, 1), (D(2025, 7, 1), D(2026, 6, 30))),
    (D(2026, 12, 31), (D(2026, 7, 1), D(2027, 6, 30))),
    (D(2024, 2, 29), (D(2023, 7, 1), D(2024, 6, 30))),
    (D(1900, 1, 1), (D(1899, 7, 1), D(1900, 6, 30))),
])
def test_financial_year_boundaries(day, expected):
    assert rules.financial_year_of(day) == expected
    assert rules.financial_year_starting(expected[0].year) == expected


def test_calendar_year():
    assert rules.calendar_year_of(D(2027, 6, 30)) == (D(2027, 1, 1), D(2027, 12, 31))


def _rule(**fields) -> RegimeRule:
    values = dict(jurisdiction="QLD", name="test rule", effective_from=D(2024, 7, 1), period_kind=PeriodKind.FINANCIAL_YEAR,
                  threshold_cents=100_000)
    return RegimeRule.objects.create(**(values | fields))


def test_rule_period_is_clipped_to_the_rule():
    truncated = _rule(effective_from=D(2026, 7, 1), effective_to=D(2026, 12, 31))
    assert rules.rule_period(truncated, D(2026, 9, 1)) == (D(2026, 7, 1), D(2026, 12, 31))
    late_start = _rule(effective_from=D(2027, 3, 1), period_kind=PeriodKind.CALENDAR_YEAR)
    assert rules.rule_period(late_start, D(2027, 3, 1)) == (D(2027, 3, 1), D(2027, 12, 31))
    assert rules.rule_period(late_start, D(2028, 2, 1)) == (D(2028, 1, 1), D(2028, 12, 31))
    explicit = _rule(period_kind=PeriodKind.EXPLICIT_RANGE, period_start=D(2024, 1, 1), period_end=D(2027, 12, 31),
                     threshold_cents=None, cap_cents=1)
    assert rules.rule_period(explicit, D(2025, 5, 5)) == (D(2024, 7, 1), D(2027, 12, 31))


# --- which rule, on the boundary dates of the loaded regimes ---------------------------------

@pytest.mark.parametrize("jurisdiction, day, names", [
    ("FEDERAL", D(2026, 6, 30), ["Federal FY 2025-26"]),
    ("FEDERAL", D(2026, 7, 1), ["Federal FY 2026-27 (truncated at the reform)"]),
    ("FEDERAL", D(2026, 12, 31), ["Federal FY 2026-27 (truncated at the reform)"]),
    ("FEDERAL", D(2027, 1, 1), ["Federal calendar-year regime (reform)"]),
    ("NSW", D(2023, 6, 30), ["NSW FY 2022-23 (party cap $7,000)"]),
    ("NSW", D(2023, 7, 1), []),  # no figure for FY 2023-24: nothing is enforced
    ("NSW", D(2024, 7, 1), ["NSW from FY 2024-25 (party cap $7,900)"]),
    ("VIC", D(2026, 11, 28), ["Victoria cap, 2022-2026 election period", "Victoria disclosure (FY, within 21 days)"]),
    ("VIC", D(2026, 11, 29), ["Victoria disclosure (FY, within 21 days)", "Victoria cap, 2026-2030 election period"]),
    ("QLD", D(2026, 1, 1), []),
])
def test_rules_in_force_on_boundary_dates(jurisdiction, day, names):
    assert [r.name for r in rules.rules_in_force(jurisdiction, day)] == names


def test_rules_are_taken_oldest_first_then_by_id():
    """Overlapping rules come in one order everywhere: the disclosure rule is the first with a threshold."""
    newer = _rule(name="newer", effective_from=D(2025, 7, 1), threshold_cents=300_000)
    older_b = _rule(name="older b", threshold_cents=200_000)
    older_a = _rule(name="older a", threshold_cents=None, cap_cents=50_000)
    day = D(2026, 1, 1)
    assert rules.rules_in_force("QLD", day) == [older_b, older_a, newer]
    assert rules.threshold_rule_in_force("QLD", day) == older_b
    assert rules.rules_by_jurisdiction()["QLD"] == [older_b, older_a, newer]
    assert rules.threshold_rule_in_force("QLD", D(2024, 6, 30)) is None


@pytest.mark.parametrize("comparator, total, passes", [
    ("MORE_THAN", 100_000, False), ("MORE_THAN", 100_001, True),
    ("AT_OR_ABOVE", 99_999, False), ("AT_OR_ABOVE", 100_000, True),
])
def test_threshold(comparator, total, passes):
    assert rules.passes_threshold(_rule(threshold_comparator=comparator), total) is passes


def test_a_rule_without_a_threshold_never_passes_it():
    assert rules.passes_threshold(_rule(threshold_cents=None, cap_cents=10), 10**12) is False


def test_alert_levels_and_remaining(org):
    settings_row = ComplianceSettings(organisation=org)  # 60 / 90 / 98 %
    assert [rules.alert_level(t, 1000, settings_row) for t in (599, 600, 900, 980, 2000)] == ["NONE", "AMBER", "RED", "CRITICAL", "CRITICAL"]
    assert rules.alert_level(10, None, settings_row) == "NONE"
    assert (rules.remaining_cents(1000, 400), rules.remaining_cents(1000, 1200)) == (600, 0)


# --- what counts --------------------------------------------------------------------------------

@pytest.mark.parametrize("status, refunded, counted", [
    (Status.CONFIRMED, 0, 10_000), (Status.CONFIRMED, 2_500, 7_500), (Status.PENDING, 0, 0),
    (Status.FAILED, 0, 0), (Status.REFUNDED, 10_000, 0), (Status.VOIDED, 0, 0),
])
def test_what_a_gift_counts(org, status, refunded, counted):
    donor = make_donor(org)
    donation = gift(org, donor, 10_000, D(2025, 8, 1))
    Donation.objects.filter(pk=donation.pk).update(status=status, refunded_cents=refunded)
    donation.refresh_from_db()
    assert rules.counted_cents(donation) == counted
    in_sql = Donation.objects.filter(rules.COUNTED, pk=donation.pk).aggregate(total=rules.counted_sum())["total"] or 0
    assert in_sql == counted


@pytest.fixture
def nsw(org):
    code(org, "NSW-1", "NSW")
    return org


def test_cap_room_counts_what_was_kept(nsw):
    org, donor, day = nsw, make_donor(nsw), D(2025, 8, 1)
    first = gift(org, donor, NSW_CAP, day, revenue_code="NSW-1")
    assert rules.cap_room(donor_id=donor.id, jurisdiction="NSW", day=day)["remaining"] == 0
    with pytest.raises(CapExceeded):
        gift(org, donor, 1, day, revenue_code="NSW-1")
    partly_refund(org, first, 90_000)
    room = rules.cap_room(donor_id=donor.id, jurisdiction="NSW", day=day)
    assert (room["cap"], room["total"], room["remaining"], room["period"]) == (NSW_CAP, 700_000, 90_000, (D(2025, 7, 1), D(2026, 6, 30)))
    gift(org, donor, 90_000, D(2026, 6, 30), revenue_code="NSW-1")
    with pytest.raises(CapExceeded) as refused:
        gift(org, donor, 1, day, revenue_code="NSW-1")
    assert refused.value.extra["remaining_cents"] == 0
    # A donor not in the books yet has the whole cap.
    new = rules.cap_room(donor_id=None, jurisdiction="NSW", day=day)
    assert (new["total"], new["remaining"], new["rule"]) == (0, NSW_CAP, room["rule"])


def test_an_edit_of_a_partly_refunded_gift_is_judged_on_what_it_keeps(nsw):
    """Over the cap after a remap, an edit that adds nothing is let through; one that adds is refused."""
    org, donor, day = nsw, make_donor(nsw), D(2025, 8, 1)
    first = gift(org, donor, NSW_CAP, day, revenue_code="NSW-1")
    partly_refund(org, first, 100_000)
    gift(org, donor, 100_000, day, revenue_code="NSW-1")
    services.donation_update(organisation=org, actor=SYSTEM, donation_id=first.id, notes="a note")
    with pytest.raises(CapExceeded):
        services.donation_update(organisation=org, actor=SYSTEM, donation_id=first.id, amount_cents=NSW_CAP + 1)


def test_a_pending_gift_is_neither_counted_nor_checked(nsw):
    org, donor, day = nsw, make_donor(nsw), D(2025, 8, 1)
    gift(org, donor, NSW_CAP, day, revenue_code="NSW-1", status=Status.PENDING)
    assert rules.cap_room(donor_id=donor.id, jurisdiction="NSW", day=day)["remaining"] == NSW_CAP
    assert Donor.objects.get(pk=donor.id).donations_total_cents == 0


def test_threshold_and_obligation_follow_what_was_kept(nsw):
    org, donor = nsw, make_donor(nsw)
    donation = gift(org, donor, NSW_THRESHOLD, D(2025, 8, 1), revenue_code="NSW-1")
    assert [o.status for o in obligations(donor)] == ["OPEN"]
    partly_refund(org, donation, 1)
    assert [o.status for o in obligations(donor)] == ["CANCELLED"]
    position = {p["jurisdiction"]: p for p in donor_compliance(organisation=org, donor=donor, as_of=D(2025, 8, 1))}["NSW"]
    assert (position["total_cents"], position["above_threshold"]) == (NSW_THRESHOLD - 1, False)
    assert (position["cap_total_cents"], position["cap_remaining_cents"]) == (NSW_THRESHOLD - 1, NSW_CAP - NSW_THRESHOLD + 1)


def test_a_donors_compliance_reads_the_rules_once_for_every_jurisdiction(nsw):
    """The donor page and GET /donors/{id}/compliance: two jurisdictions (NSW and the default),
    each with its threshold and cap, from one read of the rules; the same figures as each
    jurisdiction's rules read on their own."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    org, donor, day = nsw, make_donor(nsw), D(2025, 8, 1)
    gift(org, donor, NSW_THRESHOLD, day, revenue_code="NSW-1")
    gift(org, donor, 5_000, day)
    with CaptureQueriesContext(connection) as ctx:
        positions = donor_compliance(organisation=org, donor=donor, as_of=day)
    assert len(positions) >= 2
    rule_reads = [q["sql"] for q in ctx.captured_queries if 'FROM "compliance_regimerule"' in q["sql"]]
    assert len(rule_reads) == 1, rule_reads
    for position in positions:
        j = position["jurisdiction"]
        threshold = rules.threshold_rule_in_force(j, day)
        room = rules.cap_room(donor_id=donor.id, jurisdiction=j, day=day)
        assert position["threshold_cents"] == (threshold.threshold_cents if threshold else None)
        assert position["cap_cents"] == (room["cap"] if room else None)
        assert position["cap_remaining_cents"] == (room["remaining"] if room else None)


def test_every_total_counts_what_was_kept(org):
    donor = make_donor(org)
    campaign = services.campaign_create(organisation=org, actor=SYSTEM, name="Rivers")
    kept = gift(org, donor, 10_000, D(2025, 8, 1), campaign_id=campaign.id)
    gift(org, donor, 5_000, D(2025, 9, 1), campaign_id=campaign.id)
    gift(org, donor, 7_000, D(2025, 9, 2), "IN_KIND", campaign_id=campaign.id)
    gift(org, donor, 9_000, D(2025, 9, 3), campaign_id=campaign.id, status=Status.PENDING)
    partly_refund(org, kept, 2_500)
    assert Donor.objects.get(pk=donor.id).donations_total_cents == 7_500 + 5_000 + 7_000
    rollup = campaign_rollups(organisation=org, campaign_ids=[campaign.id])[campaign.id]
    assert (rollup["raised_cents"], rollup["donations_count"]) == (19_500, 3)
    months = gifts_by_month(organisation=org, start=D(2025, 7, 1), end=D(2026, 6, 30))  # the home page's, from the rollup
    assert (sum(m["monetary_cents"] for m in months), sum(m["in_kind_cents"] for m in months), sum(m["gifts"] for m in months)) == (
        12_500, 7_000, 3)
    position = {p["jurisdiction"]: p for p in donor_compliance(organisation=org, donor=donor, as_of=D(2025, 9, 1))}["FEDERAL"]
    assert position["total_cents"] == 19_500
    _, rows = parse_csv(b"".join(writers.csv_chunks(report_spec(
        organisation=org, name="campaign-summary", data={"from": "2025-07-01", "to": "2026-06-30"}))))
    assert {r["month"]: (r["raised_cents"], r["monetary_cents"], r["in_kind_cents"]) for r in rows} == {
        "2025-08": ("7500", "7500", "0"), "2025-09": ("12000", "5000", "7000")}
