"""Issue 19: the donations export carries the source fields and the donor's tags
and employer; the campaign summary breaks each campaign's month down by source code."""
from __future__ import annotations

import datetime as dt

import pytest

from donations import crm, services
from reports import writers
from reports.exporters import REGISTRY
from reports.services import report_spec
from tests.reports.conftest import parse_csv
from together.actors import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("crm report test")
RANGE = {"from": "2026-01-01", "to": "2026-12-31"}


def export_csv(organisation, name, data=None):
    spec = report_spec(organisation=organisation, name=name, data={**RANGE, **(data or {})})
    return parse_csv(b"".join(writers.csv_chunks(spec)))


def give(org, donor, cents, day, **fields):
    return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                    amount_cents=cents, donation_date=day, payment_method="CASH", **fields)


def test_donations_export_has_source_tag_and_employer_columns(org):
    acme = services.donor_create(organisation=org, actor=ACTOR, donor_type="ORGANISATION", organisation_name="Acme")
    ann = services.donor_create(organisation=org, actor=ACTOR, first_name="Ann", employer_id=acme.id)
    crm.donor_tags_add(organisation=org, actor=ACTOR, donor_id=ann.id, names=["volunteer", "Board"])
    gift = give(org, ann, 5000, dt.date(2026, 3, 1), source_code="EOFY-26", referrer="jo", utm_source="fb",
                utm_medium="social", utm_campaign="spring")
    header, rows = export_csv(org, "donations")
    assert header == REGISTRY["donations"].column_names
    for name in ("source_code", "referrer", "utm_source", "utm_medium", "utm_campaign", "donor_tags", "donor_employer_id"):
        assert name in header
    (row,) = [r for r in rows if r["donation_id"] == gift.id]
    assert (row["source_code"], row["referrer"], row["utm_source"], row["utm_medium"], row["utm_campaign"]) == (
        "EOFY-26", "jo", "fb", "social", "spring")
    assert row["donor_tags"] == "Board, volunteer" and row["donor_employer_id"] == acme.id
    # the shared filterset: ?source_code= narrows the export like the list
    _, only = export_csv(org, "donations", {"source_code": "eofy-26"})
    assert [r["donation_id"] for r in only] == [gift.id]
    _, tagged = export_csv(org, "donations", {"tag": "BOARD"})
    assert [r["donation_id"] for r in tagged] == [gift.id]


def test_campaign_summary_breaks_down_by_source(org):
    campaign = services.campaign_create(organisation=org, actor=ACTOR, name="Winter appeal")
    a = services.donor_create(organisation=org, actor=ACTOR, first_name="A")
    b = services.donor_create(organisation=org, actor=ACTOR, first_name="B")
    give(org, a, 1000, dt.date(2026, 6, 1), campaign_id=campaign.id, source_code="MAIL")
    give(org, b, 2000, dt.date(2026, 6, 2), campaign_id=campaign.id, source_code="MAIL")
    give(org, a, 4000, dt.date(2026, 6, 3), campaign_id=campaign.id, source_code="WEB")
    give(org, b, 8000, dt.date(2026, 6, 4), campaign_id=campaign.id)
    header, rows = export_csv(org, "campaign-summary")
    assert header == REGISTRY["campaign-summary"].column_names and "source_code" in header
    got = {(r["campaign_id"], r["month"], r["source_code"]): (int(r["gifts_count"]), int(r["donors_count"]), int(r["raised_cents"]))
           for r in rows}
    assert got == {
        (campaign.id, "2026-06", ""): (1, 1, 8000),
        (campaign.id, "2026-06", "MAIL"): (2, 2, 3000),
        (campaign.id, "2026-06", "WEB"): (1, 1, 4000),
    }
    # the lines of a campaign's month add up to its total
    assert sum(v[2] for v in got.values()) == 15000
