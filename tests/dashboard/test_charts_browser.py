"""Chromium: every chart page draws its SVG with the data table behind it, the table
opens, nothing overflows at 1280 or 390 px wide, and screenshots of each page go to
artifacts/screenshots/charts-*.png (looked at by a person, not only by this test)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from compliance.rules import financial_year_of
from compliance.services import revenue_code_create
from donations import services
from payments import recurring
from tests.dashboard.conftest import make_user, screenshot, sign_in
from together.actors import Actor

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]
ACTOR = Actor.system("tests")


def _world(org) -> dict:
    today = timezone.localdate()
    start, _ = financial_year_of(today)
    revenue_code_create(organisation=org, actor=ACTOR, code="NSW-1", jurisdiction="NSW")
    revenue_code_create(organisation=org, actor=ACTOR, code="VIC-1", jurisdiction="VIC")
    appeal = services.campaign_create(organisation=org, actor=ACTOR, name="Winter Appeal", goal_cents=5_000_000)
    rivers = services.campaign_create(organisation=org, actor=ACTOR, name="Clean Rivers", goal_cents=40_000_000)
    donors = [services.donor_create(organisation=org, actor=ACTOR, first_name=f, last_name=l)
              for f, l in (("Mei", "Tran"), ("Liam", "Kelly"), ("Priya", "Singh"), ("Sione", "Walker"))]
    day, n = start.replace(year=start.year - 1), 0
    while day <= today:
        for k in range(1 + (day.month in (5, 6)) * 2):  # end of the financial year: more gifts
            n += 1
            services.donation_record(
                organisation=org, actor=ACTOR, donor_id=donors[n % 4].id, donation_type="IN_KIND" if n % 7 == 0 else "MONETARY",
                amount_cents=(5_000, 25_000, 100_000, 50_000)[n % 4], donation_date=day,
                campaign_id=(appeal.id if n % 3 == 0 else rivers.id if n % 3 == 1 else None),
                **({"in_kind_category": "SERVICES", "in_kind_description": "Venue hire"} if n % 7 == 0 else {}))
        day += dt.timedelta(days=9)
    near = services.donor_create(organisation=org, actor=ACTOR, first_name="Grace", last_name="Nguyen")
    services.donation_record(organisation=org, actor=ACTOR, donor_id=near.id, donation_type="MONETARY", amount_cents=720_000,
                             donation_date=start, revenue_code="NSW-1")
    services.donation_record(organisation=org, actor=ACTOR, donor_id=near.id, donation_type="MONETARY", amount_cents=150_000,
                             donation_date=today, revenue_code="VIC-1")
    plan = recurring.plan_create(organisation=org, actor=ACTOR, donor_id=donors[0].id, amount_cents=3_000, frequency="MONTHLY",
                                 payment_method="MANUAL", start_date=today)
    for months_ago in range(1, 10):
        paid = today - dt.timedelta(days=30 * months_ago)
        services.donation_record(organisation=org, actor=ACTOR, donor_id=donors[0].id, donation_type="MONETARY", amount_cents=3_000,
                                 donation_date=paid, recurring_plan_id=plan.id, recurring_period=paid, payment_method="BANK_TRANSFER")
    return {"appeal": appeal, "near": near}


PAGES = [
    ("home", lambda w: "/", ["gifts-by-month"]),
    ("campaigns", lambda w: "/campaigns/", []),
    ("campaign", lambda w: f"/campaigns/{w['appeal'].id}/", ["campaign-progress", "campaign-weeks"]),
    ("donor", lambda w: f"/donors/{w['near'].id}/", ["donor-giving", "gauge-nsw", "gauge-vic"]),
    ("compliance", lambda w: "/settings/compliance/obligations", ["obligations-timeline"]),
    ("recurring", lambda w: "/recurring", ["recurring-revenue"]),
]


def test_each_chart_page_renders_with_its_table_at_desktop_and_phone_width(page, context, live_server, org):
    world = _world(org)
    sign_in(context, make_user(org, "ADMIN"), live_server)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, path_for, chart_ids in PAGES:
            page.goto(path_for(world))
            assert page.locator("main h1, h1").first.is_visible()
            for chart_id in chart_ids:
                figure = page.locator(f"figure#{chart_id}")
                svg = figure.locator("svg[role=img]")
                assert svg.is_visible(), (name, chart_id)
                assert svg.bounding_box()["width"] <= width, (name, chart_id)
                assert figure.locator("svg title").first.text_content()
                figure.locator("details.chart-data summary").click()
                rows = figure.locator("table.chart-table tbody tr")
                assert rows.count() >= 1 and rows.first.is_visible(), (name, chart_id)
            if name == "campaigns":
                assert page.locator("#campaigns td.progress-cell svg").count() == 2
            overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} overflows by {overflow}px at {width}px"
            screenshot(page, f"charts-{name}-{width}")


def test_print_keeps_the_chart_and_opens_its_table(page, context, live_server, org):
    world = _world(org)
    sign_in(context, make_user(org, "VIEWER"), live_server)
    page.goto(f"/campaigns/{world['appeal'].id}/")
    page.emulate_media(media="print")
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.locator("figure#campaign-progress svg").is_visible()
    assert page.locator("#campaign-progress-table").is_visible()
