"""Alert levels at the organisation's percentages (60/90/98 by default), re-levelled
at once when they change, and GET /api/v1/donors/{id}/compliance."""
from __future__ import annotations

import pytest
from django.utils import timezone

from compliance.models import DonorAggregate
from organisations.models import AuditEntry
from tests.compliance.helpers import D, FED_CAP, NSW_CAP, VIC_CAP, aggregates, code, gift
from tests.support.api import assert_error, make_donor

LEVELS = [
    # jurisdiction, date, total, level
    ("FEDERAL", D(2027, 5, 1), 1, "NONE"),
    ("FEDERAL", D(2027, 5, 1), 2_999_999, "NONE"),
    ("FEDERAL", D(2027, 5, 1), 3_000_000, "AMBER"),     # 60 %
    ("FEDERAL", D(2027, 5, 1), 4_499_999, "AMBER"),
    ("FEDERAL", D(2027, 5, 1), 4_500_000, "RED"),       # 90 %
    ("FEDERAL", D(2027, 5, 1), 4_899_999, "RED"),
    ("FEDERAL", D(2027, 5, 1), 4_900_000, "CRITICAL"),  # 98 %
    ("FEDERAL", D(2027, 5, 1), FED_CAP, "CRITICAL"),
    ("FEDERAL", D(2026, 5, 1), 9_000_000, "NONE"),      # FY regime: no cap, no alert
    ("NSW", D(2026, 5, 1), 473_999, "NONE"),
    ("NSW", D(2026, 5, 1), 474_000, "AMBER"),
    ("NSW", D(2026, 5, 1), 711_000, "RED"),
    ("NSW", D(2026, 5, 1), 774_200, "CRITICAL"),
    ("VIC", D(2026, 5, 1), 280_199, "NONE"),            # the VIC cap runs per election period
    ("VIC", D(2026, 5, 1), 280_200, "AMBER"),
    ("VIC", D(2026, 5, 1), VIC_CAP, "CRITICAL"),
    ("SA", D(2026, 5, 1), 450_000, "RED"),
]


@pytest.mark.parametrize("jurisdiction, day, total, level", LEVELS)
def test_alert_levels(org, read_client, jurisdiction, day, total, level):
    code(org, "K", jurisdiction)
    donor = make_donor(org)
    half = total // 2
    if half:
        gift(org, donor, half, day, revenue_code="K")
    gift(org, donor, total - half, day, "IN_KIND", revenue_code="K")
    capped = DonorAggregate.objects.filter(donor=donor, rule__cap_cents__isnull=False)
    assert [a.alert_level for a in capped] == ([level] if capped else [])
    if not capped:
        assert level == "NONE"
    entry = next(e for e in read_client.get(f"/api/v1/donors/{donor.id}/compliance?period={day}").json()["data"]
                 if e["jurisdiction"] == jurisdiction)
    assert entry["alert_level"] == level


def test_changing_the_percentages_relevels_existing_aggregates_at_once(org, write_client, read_client):
    levels = {}
    for total in (2_500_000, 3_000_000, 4_000_000, 4_500_000, 4_800_000):
        donor = make_donor(org)
        gift(org, donor, total, D(2027, 3, 1))
        levels[donor.id] = total
    def stored():
        return {a.donor_id: a.alert_level for a in DonorAggregate.objects.filter(organisation=org)}
    assert sorted(stored().values()) == ["AMBER", "AMBER", "NONE", "RED", "RED"]
    response = write_client.patch("/api/v1/compliance-settings",
                                  {"alert_amber_percent": 50, "alert_red_percent": 80, "alert_critical_percent": 95}, format="json")
    assert response.status_code == 200, response.content
    assert {k: response.json()[k] for k in ("alert_amber_percent", "alert_red_percent", "alert_critical_percent")} == {
        "alert_amber_percent": 50, "alert_red_percent": 80, "alert_critical_percent": 95}
    expected = {2_500_000: "AMBER", 3_000_000: "AMBER", 4_000_000: "RED", 4_500_000: "RED", 4_800_000: "CRITICAL"}
    assert stored() == {d: expected[t] for d, t in levels.items()}
    for donor_id, total in levels.items():
        entry = next(e for e in read_client.get(f"/api/v1/donors/{donor_id}/compliance?period=2027-03-01").json()["data"]
                     if e["jurisdiction"] == "FEDERAL")
        assert entry["alert_level"] == expected[total]
    changed = AuditEntry.objects.filter(organisation=org, action="donor_cap_alert.changed", after__previous_alert_level__isnull=False)
    assert changed.filter(after__alert_level="CRITICAL", after__previous_alert_level="RED").count() == 1
    # The next gift is levelled with the new percentages too.
    donor = make_donor(org)
    gift(org, donor, 2_600_000, D(2027, 3, 1))
    assert DonorAggregate.objects.get(donor=donor).alert_level == "AMBER"


def test_percentages_and_default_jurisdiction_in_one_patch_still_relevel(org, write_client, django_capture_on_commit_callbacks):
    code(org, "FED", "FEDERAL")
    donor = make_donor(org)
    gift(org, donor, 4_000_000, D(2027, 3, 1), revenue_code="FED")  # coded: the default change does not touch it
    assert DonorAggregate.objects.get(donor=donor).alert_level == "AMBER"
    with django_capture_on_commit_callbacks():
        response = write_client.patch("/api/v1/compliance-settings",
                                      {"default_jurisdiction": "NSW", "alert_red_percent": 75}, format="json")
    assert response.status_code == 200, response.content
    assert DonorAggregate.objects.get(donor=donor).alert_level == "RED"


SETTINGS_REFUSALS = [
    ({"alert_amber_percent": 90}, "validation_failed", "alert_amber_percent"),      # amber must stay under red
    ({"alert_red_percent": 98}, "validation_failed", "alert_red_percent"),
    ({"alert_critical_percent": 101}, "validation_failed", "alert_critical_percent"),
    ({"alert_amber_percent": 0}, "validation_failed", "alert_amber_percent"),
    ({"alert_amber_percent": "60"}, "invalid_request", "alert_amber_percent"),
    ({"default_jurisdiction": "MARS"}, "validation_failed", "default_jurisdiction"),
    ({"entity_type": "PARTY"}, "validation_failed", "entity_type"),
]


@pytest.mark.parametrize("body, code_, param", SETTINGS_REFUSALS)
def test_settings_refusals(org, write_client, read_client, body, code_, param):
    before = read_client.get("/api/v1/compliance-settings").json()
    assert_error(write_client.patch("/api/v1/compliance-settings", body, format="json"), 400, code_, param)
    assert read_client.get("/api/v1/compliance-settings").json() == before


def test_entity_type_defaults_to_other(org, write_client, read_client):
    assert read_client.get("/api/v1/compliance-settings").json()["entity_type"] == "OTHER"
    assert write_client.patch("/api/v1/compliance-settings", {"entity_type": "ASSOCIATED_ENTITY"}, format="json").json()["entity_type"] == "ASSOCIATED_ENTITY"


# --- the donor's position ---------------------------------------------------------------------

ENTRY_KEYS = {
    "jurisdiction", "regime", "period_kind", "period_start", "period_end", "total_cents", "threshold_cents",
    "threshold_comparator", "above_threshold", "cap_cents", "cap_period_start", "cap_period_end", "cap_total_cents",
    "cap_remaining_cents", "alert_level",
}


def test_position_per_jurisdiction(org, read_client):
    code(org, "VIC-1", "VIC")
    code(org, "NSW-1", "NSW")
    donor = make_donor(org)
    gift(org, donor, 3_100_000, D(2027, 3, 1))
    gift(org, donor, 100, D(2027, 3, 1), status="PENDING")
    gift(org, donor, 200_000, D(2026, 11, 28), "IN_KIND", revenue_code="vic-1")  # last day of the 2022-2026 election period, FY 2026-27
    gift(org, donor, 150_000, D(2027, 3, 1), revenue_code="vic-1")                # 2026-2030 election period, FY 2026-27
    gift(org, donor, 99_999, D(2027, 3, 1), revenue_code="NSW-1")
    body = read_client.get(f"/api/v1/donors/{donor.id}/compliance?period=2027-03-01").json()
    assert (body["object"], body["donor_id"], body["as_of"], body["currency"]) == ("donor_compliance", donor.id, "2027-03-01", "AUD")
    by = {e["jurisdiction"]: e for e in body["data"]}
    assert list(by) == ["FEDERAL", "NSW", "VIC"]
    assert all(set(e) == ENTRY_KEYS for e in body["data"])
    assert {k: by["FEDERAL"][k] for k in ("period_kind", "period_start", "period_end", "total_cents", "threshold_cents", "above_threshold",
                                          "cap_cents", "cap_total_cents", "cap_remaining_cents", "alert_level")} == {
        "period_kind": "CALENDAR_YEAR", "period_start": "2027-01-01", "period_end": "2027-12-31", "total_cents": 3_100_000,
        "threshold_cents": 500_000, "above_threshold": True, "cap_cents": FED_CAP, "cap_total_cents": 3_100_000,
        "cap_remaining_cents": 1_900_000, "alert_level": "AMBER"}
    assert {k: by["NSW"][k] for k in ("period_kind", "period_start", "period_end", "total_cents", "threshold_comparator", "above_threshold",
                                      "cap_cents", "cap_remaining_cents", "alert_level")} == {
        "period_kind": "FINANCIAL_YEAR", "period_start": "2026-07-01", "period_end": "2027-06-30", "total_cents": 99_999,
        "threshold_comparator": "AT_OR_ABOVE", "above_threshold": False, "cap_cents": NSW_CAP, "cap_remaining_cents": NSW_CAP - 99_999,
        "alert_level": "NONE"}
    # Victoria: disclosure per FY, the cap per election period — two periods in one entry.
    assert {k: by["VIC"][k] for k in ("period_start", "period_end", "total_cents", "above_threshold", "cap_period_start",
                                      "cap_period_end", "cap_total_cents", "cap_remaining_cents", "alert_level")} == {
        "period_start": "2026-07-01", "period_end": "2027-06-30", "total_cents": 350_000, "above_threshold": True,
        "cap_period_start": "2026-11-29", "cap_period_end": "2030-11-30", "cap_total_cents": 150_000,
        "cap_remaining_cents": VIC_CAP - 150_000, "alert_level": "NONE"}
    # The same donor a year earlier: the FY regime, no cap.
    federal_2026 = next(e for e in read_client.get(f"/api/v1/donors/{donor.id}/compliance?period=2026-12-01").json()["data"]
                        if e["jurisdiction"] == "FEDERAL")
    assert (federal_2026["period_kind"], federal_2026["total_cents"], federal_2026["cap_cents"], federal_2026["cap_remaining_cents"]) == (
        "FINANCIAL_YEAR", 0, None, None)


def test_position_defaults_to_today(org, read_client):
    donor = make_donor(org)
    body = read_client.get(f"/api/v1/donors/{donor.id}/compliance").json()
    assert body["as_of"] == timezone.localdate().isoformat()
    assert [e["jurisdiction"] for e in body["data"]] == ["FEDERAL"]  # the default jurisdiction is always shown


@pytest.mark.parametrize("query, code_, param", [
    ("period=2027-13-01", "validation_failed", "period"),
    ("period=2027-02-30", "validation_failed", "period"),
    ("period=yesterday", "validation_failed", "period"),
    ("period=", "invalid_request", "period"),
    ("as_of=2027-01-01", "invalid_request", "as_of"),
])
def test_position_bad_period(org, read_client, query, code_, param):
    donor = make_donor(org)
    assert_error(read_client.get(f"/api/v1/donors/{donor.id}/compliance?{query}"), 400, code_, param)
