"""Which rule judges a gift (by donation date, across the 1 January 2027
cut-over), each comparator, in-kind counted like cash, and which statuses count."""
from __future__ import annotations

import pytest

from compliance.models import ObligationStatus
from donations import services
from tests.compliance.helpers import (
    D, FED_CAP, FED_THRESHOLD, NSW_CAP, SYSTEM, aggregates, assert_cap_refusal, code, gift, gift_body, obligations,
)
from tests.support.api import make_donor
from together.exceptions import ValidationFailed

# --- the regime is picked by donation date ------------------------------------------------

REGIME_BY_DATE = [
    # donation_date, rule, period_start, period_end, threshold, cap
    (D(2025, 7, 1), "Federal FY 2025-26", D(2025, 7, 1), D(2026, 6, 30), 1_730_000, None),
    (D(2026, 6, 30), "Federal FY 2025-26", D(2025, 7, 1), D(2026, 6, 30), 1_730_000, None),
    (D(2026, 7, 1), "Federal FY 2026-27", D(2026, 7, 1), D(2026, 12, 31), 1_790_000, None),
    (D(2026, 12, 31), "Federal FY 2026-27", D(2026, 7, 1), D(2026, 12, 31), 1_790_000, None),  # truncated FY
    (D(2027, 1, 1), "Federal calendar-year", D(2027, 1, 1), D(2027, 12, 31), 500_000, 5_000_000),
    (D(2027, 6, 30), "Federal calendar-year", D(2027, 1, 1), D(2027, 12, 31), 500_000, 5_000_000),
    (D(2028, 2, 29), "Federal calendar-year", D(2028, 1, 1), D(2028, 12, 31), 500_000, 5_000_000),
]


@pytest.mark.parametrize("day, rule_name, start, end, threshold, cap", REGIME_BY_DATE)
def test_regime_is_picked_by_donation_date(org, read_client, day, rule_name, start, end, threshold, cap):
    donor = make_donor(org)
    gift(org, donor, 100_00, day)
    assert aggregates(donor) == {("FEDERAL", start, end): (100_00, 100_00, 0, 1, "NONE")}
    body = read_client.get(f"/api/v1/donors/{donor.id}/compliance?period={day.isoformat()}").json()
    federal = next(e for e in body["data"] if e["jurisdiction"] == "FEDERAL")
    assert rule_name in federal["regime"]
    assert (federal["period_start"], federal["period_end"]) == (start.isoformat(), end.isoformat())
    assert (federal["threshold_cents"], federal["cap_cents"], federal["total_cents"]) == (threshold, cap, 100_00)
    assert federal["threshold_comparator"] == "MORE_THAN"


def test_one_ledger_two_regimes_the_cap_starts_on_1_january_2027(org, write_client):
    """$60,000 dated 31 Dec 2026 is under the FY regime (no cap); the same dated 1 Jan 2027 is refused."""
    donor = make_donor(org)
    assert write_client.post("/api/v1/donations", gift_body(donor, 6_000_000, "2026-12-31"), format="json").status_code == 201
    assert_cap_refusal(write_client.post("/api/v1/donations", gift_body(donor, 6_000_000, "2027-01-01"), format="json"), FED_CAP)
    assert write_client.post("/api/v1/donations", gift_body(donor, FED_CAP, "2027-01-01"), format="json").status_code == 201
    assert_cap_refusal(write_client.post("/api/v1/donations", gift_body(donor, 1, "2027-12-31"), format="json"), 0)
    # A new calendar year is a new period.
    assert write_client.post("/api/v1/donations", gift_body(donor, FED_CAP, "2028-01-01"), format="json").status_code == 201
    assert aggregates(donor) == {
        ("FEDERAL", D(2026, 7, 1), D(2026, 12, 31)): (6_000_000, 6_000_000, 0, 1, "NONE"),
        ("FEDERAL", D(2027, 1, 1), D(2027, 12, 31)): (FED_CAP, FED_CAP, 0, 1, "CRITICAL"),
        ("FEDERAL", D(2028, 1, 1), D(2028, 12, 31)): (FED_CAP, FED_CAP, 0, 1, "CRITICAL"),
    }


def test_commencement_setting_moves_the_cut_over(org, settings):
    """The reform's date is one setting: reloading the rules with 1 July 2026 moves the truncation and the cap."""
    from compliance.models import RegimeRule
    from compliance.regimes import load_default_rules

    load_default_rules(RegimeRule, D(2026, 7, 1), replace=True)
    donor = make_donor(org)
    gift(org, donor, 100_00, D(2026, 7, 1))
    assert list(aggregates(donor)) == [("FEDERAL", D(2026, 7, 1), D(2026, 12, 31))]  # calendar 2026, clipped at commencement
    with pytest.raises(ValidationFailed) as refused:
        gift(org, donor, FED_CAP, D(2026, 8, 1))
    assert refused.value.extra == {"reason": "donor_cap_exceeded", "remaining_cents": FED_CAP - 100_00}


# --- comparators ------------------------------------------------------------------------------

COMPARATORS = [
    # jurisdiction, date, amounts, above_threshold
    ("FEDERAL", D(2027, 3, 1), [FED_THRESHOLD], False),            # more than $5,000: exactly does not cross
    ("FEDERAL", D(2027, 3, 1), [FED_THRESHOLD + 1], True),          # $5,000.01 does
    ("FEDERAL", D(2027, 3, 1), [250_000, 250_000], False),          # aggregated: exactly $5,000
    ("FEDERAL", D(2027, 3, 1), [250_000, 250_000, 1], True),
    ("FEDERAL", D(2026, 3, 1), [1_730_000], False),                 # FY 2025-26: more than $17,300
    ("FEDERAL", D(2026, 3, 1), [1_730_001], True),
    ("FEDERAL", D(2026, 9, 1), [1_790_000], False),                 # FY 2026-27: $17,900
    ("FEDERAL", D(2026, 9, 1), [1_790_001], True),
    ("NSW", D(2026, 3, 1), [99_999], False),                        # NSW: $1,000 or more
    ("NSW", D(2026, 3, 1), [100_000], True),
    ("NSW", D(2026, 3, 1), [50_000, 50_000], True),
    ("VIC", D(2026, 3, 1), [116_999], False),                       # VIC: $1,170 or more
    ("VIC", D(2026, 3, 1), [117_000], True),
    ("ACT", D(2026, 3, 1), [99_999], False),                        # ACT: reach $1,000
    ("ACT", D(2026, 3, 1), [100_000], True),
    ("SA", D(2026, 3, 1), [400_000], False),                        # SA: a cap, no threshold loaded
    ("UNREGULATED", D(2027, 3, 1), [4_000_000], False),
]


@pytest.mark.parametrize("kind", ["MONETARY", "IN_KIND"])
@pytest.mark.parametrize("jurisdiction, day, amounts, above", COMPARATORS)
def test_comparators(org, read_client, jurisdiction, day, amounts, above, kind):
    code(org, f"{jurisdiction}-code", jurisdiction)
    donor = make_donor(org)
    made = [gift(org, donor, amount, day, kind, revenue_code=f"{jurisdiction}-CODE") for amount in amounts]
    assert {d.jurisdiction for d in made} == {jurisdiction}
    live = obligations(donor, ObligationStatus.OPEN)
    assert len(live) == int(above)
    if above:
        assert live[0].jurisdiction == jurisdiction and live[0].aggregate_cents == sum(amounts)
        assert live[0].crossing_donation_id == made[-1].id and live[0].crossed_on == day
    body = read_client.get(f"/api/v1/donors/{donor.id}/compliance?period={day.isoformat()}").json()
    entry = next(e for e in body["data"] if e["jurisdiction"] == jurisdiction)
    assert entry["above_threshold"] is above
    if jurisdiction == "UNREGULATED":  # no rule, no period: nothing to total against
        assert (entry["regime"], entry["period_start"], entry["threshold_cents"], entry["cap_cents"]) == (None, None, None, None)
    else:
        assert entry["total_cents"] == sum(amounts)


# --- in-kind counts exactly like cash -----------------------------------------------------------

MIXES = [
    # earlier gifts (kind, amount), then a last gift (kind, amount), accepted?
    ([("IN_KIND", FED_CAP)], ("MONETARY", 1), False),
    ([("MONETARY", FED_CAP)], ("IN_KIND", 1), False),
    ([("MONETARY", FED_CAP - 2)], ("IN_KIND", 2), True),
    ([("IN_KIND", 2_000_000), ("MONETARY", 2_999_999)], ("IN_KIND", 2), False),
    ([("IN_KIND", 2_000_000), ("MONETARY", 2_999_999)], ("IN_KIND", 1), True),
]


@pytest.mark.parametrize("earlier, last, accepted", MIXES)
def test_in_kind_counts_toward_the_cap_like_cash(org, write_client, earlier, last, accepted):
    donor = make_donor(org)
    for kind, amount in earlier:
        gift(org, donor, amount, D(2027, 2, 1), kind)
    kind, amount = last
    response = write_client.post("/api/v1/donations", gift_body(donor, amount, "2027-11-30", kind), format="json")
    spent = sum(a for _, a in earlier)
    if accepted:
        assert response.status_code == 201, response.content
        spent += amount
    else:
        assert_cap_refusal(response, FED_CAP - spent)
    monetary = sum(a for k, a in earlier + ([last] if accepted else []) if k == "MONETARY")
    (total, mon, ink, _, _), = aggregates(donor).values()
    assert (total, mon, ink) == (spent, monetary, spent - monetary)


def test_in_kind_counts_toward_the_threshold_and_the_nsw_cap(org):
    code(org, "NSW-1", "NSW")
    donor = make_donor(org)
    gift(org, donor, NSW_CAP - 100, D(2026, 3, 1), "IN_KIND", revenue_code="nsw-1")
    assert len(obligations(donor, "OPEN")) == 1
    with pytest.raises(ValidationFailed) as refused:
        gift(org, donor, 101, D(2026, 5, 1), "IN_KIND", revenue_code="NSW-1")
    assert refused.value.param == "amount_cents" and refused.value.extra["remaining_cents"] == 100
    gift(org, donor, 100, D(2026, 5, 1), "MONETARY", revenue_code="NSW-1")
    with pytest.raises(ValidationFailed):
        gift(org, donor, 1, D(2026, 6, 30), "MONETARY", revenue_code="NSW-1")
    gift(org, donor, NSW_CAP, D(2026, 7, 1), "IN_KIND", revenue_code="NSW-1")  # next financial year


# --- which statuses count -------------------------------------------------------------------

def test_refunds_and_voids_leave_the_totals_and_free_the_cap(org):
    donor = make_donor(org)
    a = gift(org, donor, 3_000_000, D(2027, 2, 1))
    b = gift(org, donor, 2_000_000, D(2027, 3, 1), "IN_KIND")
    with pytest.raises(ValidationFailed):
        gift(org, donor, 1, D(2027, 4, 1))
    services.donation_refund(organisation=org, actor=SYSTEM, donation_id=a.id, refund_date=D(2027, 4, 2), reason="returned")
    assert aggregates(donor)[("FEDERAL", D(2027, 1, 1), D(2027, 12, 31))][:4] == (2_000_000, 0, 2_000_000, 1)
    gift(org, donor, 3_000_000, D(2027, 5, 1))
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=b.id, reason="entered twice")
    assert aggregates(donor)[("FEDERAL", D(2027, 1, 1), D(2027, 12, 31))][:4] == (3_000_000, 3_000_000, 0, 1)
    gift(org, donor, 2_000_000, D(2027, 6, 1), "IN_KIND")
    with pytest.raises(ValidationFailed):
        gift(org, donor, 1, D(2027, 7, 1), "IN_KIND")


@pytest.mark.parametrize("status", ["PENDING", "FAILED"])
def test_pending_and_failed_gifts_do_not_count(org, read_client, status):
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 2, 1), status=status)
    assert aggregates(donor) == {} and obligations(donor) == []
    gift(org, donor, FED_CAP, D(2027, 3, 1))  # the whole cap is still free
    body = read_client.get(f"/api/v1/donors/{donor.id}/compliance?period=2027-03-01").json()
    federal = next(e for e in body["data"] if e["jurisdiction"] == "FEDERAL")
    assert (federal["total_cents"], federal["cap_remaining_cents"]) == (FED_CAP, 0)


# --- each cap over its own period -------------------------------------------------------------------

CAP_PERIODS = [
    # jurisdiction, first gift (date, amount), second gift (date, amount), second accepted?, remaining if refused
    ("VIC", (D(2026, 11, 28), 467_000), (D(2026, 11, 29), 467_000), True, None),      # a new election period starts
    ("VIC", (D(2026, 11, 29), 467_000), (D(2030, 11, 30), 1), False, 0),               # one cap for the four years
    ("VIC", (D(2026, 3, 1), 400_000), (D(2026, 9, 1), 67_001), False, 67_000),          # across financial years, same period
    ("NSW", (D(2026, 6, 30), 790_000), (D(2026, 7, 1), 790_000), True, None),
    ("NSW", (D(2025, 7, 1), 700_000), (D(2026, 6, 30), 90_001), False, 90_000),
    ("SA", (D(2026, 1, 1), 500_000), (D(2026, 7, 1), 500_000), True, None),
    ("SA", (D(2025, 7, 1), 499_999), (D(2026, 6, 30), 2), False, 1),
    ("FEDERAL", (D(2027, 12, 31), FED_CAP), (D(2028, 1, 1), FED_CAP), True, None),
    ("ACT", (D(2027, 1, 1), 9_000_000), (D(2027, 1, 2), 9_000_000), True, None),       # no cap loaded for the ACT
]


@pytest.mark.parametrize("jurisdiction, first, second, accepted, remaining", CAP_PERIODS)
def test_each_cap_runs_over_its_own_period(org, jurisdiction, first, second, accepted, remaining):
    code(org, "J", jurisdiction)
    donor = make_donor(org)
    gift(org, donor, first[1], first[0], revenue_code="J")
    if accepted:
        gift(org, donor, second[1], second[0], "IN_KIND", revenue_code="j")
    else:
        with pytest.raises(ValidationFailed) as refused:
            gift(org, donor, second[1], second[0], "IN_KIND", revenue_code="j")
        assert refused.value.extra == {"reason": "donor_cap_exceeded", "remaining_cents": remaining}
        assert jurisdiction in refused.value.message


def test_moving_a_gift_to_another_donor_moves_its_obligation(org, write_client):
    a, b = make_donor(org), make_donor(org)
    moved = gift(org, a, 600_000, D(2027, 2, 1))
    assert len(obligations(a, "OPEN")) == 1
    assert write_client.patch(f"/api/v1/donations/{moved.id}", {"donor_id": b.id}, format="json").status_code == 200
    assert [o.status for o in obligations(a)] == ["CANCELLED"] and len(obligations(b, "OPEN")) == 1
    assert aggregates(a) == {} and aggregates(b)[("FEDERAL", D(2027, 1, 1), D(2027, 12, 31))][0] == 600_000
