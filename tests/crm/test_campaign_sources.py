"""A campaign's per-source breakdown (issue 19): donations.selectors.campaign_sources
and GET /api/v1/campaigns/{id}/sources. What counts is the campaign total's (voided,
refunded and pending gifts out, a partly refunded card gift for what was kept), so the
breakdown's totals equal campaign_rollups' and its groups add up to them."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations import services
from donations.selectors import campaign_rollups, campaign_sources
from tests.conftest import client_for, make_key
from tests.support.api import assert_error, make_donor, seed_campaign
from together.actors import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
DAY = dt.date(2026, 3, 1)


def gift(org, donor, cents, campaign, **fields):
    fields.setdefault("payment_method", "CASH")
    return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                    amount_cents=cents, donation_date=DAY, campaign_id=campaign.id if campaign else None,
                                    **fields)


NEWSLETTER = {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}
FACEBOOK = {"utm_source": "facebook", "utm_medium": "social"}


@pytest.fixture
def world(org, other_org):
    campaign = seed_campaign(org, name="Spring appeal")
    other_campaign = seed_campaign(org, name="Other appeal")
    a, b, c = (make_donor(org, email=f"{n}@example.org") for n in "abc")
    gift(org, a, 10_000, campaign, source_code="MAIL-1", **NEWSLETTER)
    gift(org, a, 5_000, campaign, source_code="MAIL-1", **NEWSLETTER)
    gift(org, b, 20_000, campaign, source_code="WEB", **FACEBOOK)
    gift(org, c, 3_000, campaign)
    # A card gift partly refunded counts what was kept (6,000 of 8,000).
    card = gift(org, c, 8_000, campaign, source_code="WEB", source="STRIPE", payment_method="CARD", **FACEBOOK)
    services.donation_refund_sync(organisation=org, actor=ACTOR, donation_id=card.id, refunded_cents=2_000, reason="part")
    # Out of every total: a voided gift, a gift refunded in full, a gift to another campaign, another organisation's.
    voided = gift(org, b, 7_000, campaign, source_code="MAIL-1", **NEWSLETTER)
    services.donation_void(organisation=org, actor=ACTOR, donation_id=voided.id, reason="entered twice")
    refunded = gift(org, c, 4_000, campaign, source_code="WEB")
    services.donation_refund(organisation=org, actor=ACTOR, donation_id=refunded.id, refund_date=DAY, reason="returned")
    gift(org, a, 90_000, other_campaign, source_code="MAIL-1", **NEWSLETTER)
    elsewhere = seed_campaign(other_org, name="Theirs")
    gift(other_org, make_donor(other_org, email="z@example.org"), 50_000, elsewhere, source_code="MAIL-1")
    return {"campaign": campaign, "donors": (a, b, c)}


def test_groups_by_source_code_and_by_link_counting_what_the_campaign_total_counts(org, world):
    campaign = world["campaign"]
    with CaptureQueriesContext(connection) as queries:
        found = campaign_sources(organisation=org, campaign_id=campaign.id)
    reads = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "SET LOCAL"))]
    assert len(reads) == 2, reads  # the groups (one pass over the gifts), the campaign's distinct donors
    assert "GROUPING SETS" in reads[0] and "donations_campaigndonor" in reads[1]
    rollup = campaign_rollups(organisation=org, campaign_ids=[campaign.id])[campaign.id]
    assert (found["raised_cents"], found["donations_count"], found["donors_count"]) == (44_000, 5, 3)
    assert (found["raised_cents"], found["donations_count"], found["donors_count"]) == (
        rollup["raised_cents"], rollup["donations_count"], rollup["donors_count"])
    assert found["source_codes"] == [
        {"source_code": "WEB", "donations_count": 2, "donors_count": 2, "raised_cents": 26_000, "share_percent": 59.1},
        {"source_code": "MAIL-1", "donations_count": 2, "donors_count": 1, "raised_cents": 15_000, "share_percent": 34.1},
        {"source_code": None, "donations_count": 1, "donors_count": 1, "raised_cents": 3_000, "share_percent": 6.8},
    ]
    assert found["utm"] == [
        {"utm_source": "facebook", "utm_medium": "social", "utm_campaign": None, "donations_count": 2, "donors_count": 2,
         "raised_cents": 26_000, "share_percent": 59.1},
        {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring", "donations_count": 2,
         "donors_count": 1, "raised_cents": 15_000, "share_percent": 34.1},
        {"utm_source": None, "utm_medium": None, "utm_campaign": None, "donations_count": 1, "donors_count": 1,
         "raised_cents": 3_000, "share_percent": 6.8},
    ]
    assert found["source_codes_others"] is None and found["utm_others"] is None
    for part in ("source_codes", "utm"):
        assert sum(r["raised_cents"] for r in found[part]) == found["raised_cents"]
        assert sum(r["donations_count"] for r in found[part]) == found["donations_count"]


def test_past_the_limit_the_rest_is_summed(org, world):
    found = campaign_sources(organisation=org, campaign_id=world["campaign"].id, limit=1)
    assert [r["source_code"] for r in found["source_codes"]] == ["WEB"]
    assert found["source_codes_others"] == {"groups": 2, "donations_count": 3, "raised_cents": 18_000, "share_percent": 40.9}
    assert found["utm_others"]["groups"] == 2 and found["utm_others"]["raised_cents"] == 18_000


def test_a_campaign_without_counted_gifts_is_empty(org):
    campaign = seed_campaign(org)
    found = campaign_sources(organisation=org, campaign_id=campaign.id)
    assert found | {"campaign_id": None} == {"campaign_id": None, "donations_count": 0, "donors_count": 0, "raised_cents": 0,
                                            "source_codes": [], "source_codes_others": None, "utm": [], "utm_others": None}


def test_another_organisations_campaign_reads_as_nothing(org, other_org, world):
    found = campaign_sources(organisation=other_org, campaign_id=world["campaign"].id)
    assert found["donations_count"] == 0 and found["source_codes"] == []


def test_api_answers_the_breakdown_and_404s_a_foreign_campaign(org, other_org, world):
    campaign = world["campaign"]
    response = client_for(make_key(org)).get(f"/api/v1/campaigns/{campaign.id}/sources")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["object"] == "campaign_sources" and body["campaign_id"] == campaign.id and body["currency"] == org.currency
    assert body["raised_cents"] == 44_000 and body["donors_count"] == 3
    assert body["source_codes"][0] == {"source_code": "WEB", "donations_count": 2, "donors_count": 2, "raised_cents": 26_000,
                                       "share_percent": 59.1}
    assert body["utm"][2]["utm_source"] is None and body["utm_others"] is None
    assert_error(client_for(make_key(other_org)).get(f"/api/v1/campaigns/{campaign.id}/sources"), 404, "not_found")
    assert_error(client_for(make_key(org)).get(f"/api/v1/campaigns/{campaign.id}/sources?limit=5"), 400, "invalid_request",
                 param="limit")
    assert_error(client_for(None).get(f"/api/v1/campaigns/{campaign.id}/sources"), 401, "unauthorized")


def test_the_campaign_summary_report_has_a_line_per_source_code_and_link_that_add_up_to_the_breakdown(org, world):
    from tests.reports.test_crm_columns import export_csv

    campaign = world["campaign"]
    header, rows = export_csv(org, "campaign-summary")
    assert header[6:10] == ["source_code", "utm_source", "utm_medium", "utm_campaign"]
    mine = [r for r in rows if r["campaign_id"] == campaign.id]
    found = campaign_sources(organisation=org, campaign_id=campaign.id)
    by_code: dict = {}
    by_link: dict = {}
    for r in mine:
        code, link = r["source_code"] or None, tuple(r[k] or None for k in ("utm_source", "utm_medium", "utm_campaign"))
        by_code[code] = by_code.get(code, 0) + int(r["raised_cents"])
        by_link[link] = by_link.get(link, 0) + int(r["raised_cents"])
    assert by_code == {g["source_code"]: g["raised_cents"] for g in found["source_codes"]}
    assert by_link == {(g["utm_source"], g["utm_medium"], g["utm_campaign"]): g["raised_cents"] for g in found["utm"]}
