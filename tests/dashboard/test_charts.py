"""The dashboard's pictures (issue 19): each chart renders as accessible SVG with the
data table behind it, and the table's figures are the selector's.

Server-rendered pages through the whole stack (signed-in Django client); the
Chromium run, with screenshots at 1280 and 390 px, is in test_charts_browser.py."""
from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.utils import timezone

from compliance.rules import cap_room, financial_year_of
from compliance.services import revenue_code_create
from donations import services
from donations.selectors import year_by_month
from payments import recurring
from payments.selectors import recurring_revenue_by_month
from tests.dashboard.conftest import client_as, make_user
from together.actors import Actor
from together.templatetags.humanize_cents import dollars

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


def table(body: str, table_id: str) -> list[list[str]]:
    """The rows (header cell first) of the table `table_id` in `body`, as text."""
    match = re.search(rf'<table[^>]*id="{re.escape(table_id)}"[^>]*>(.*?)</table>', body, re.S)
    assert match, f"no table #{table_id}"
    tbody = re.search(r"<tbody>(.*?)</tbody>", match.group(1), re.S).group(1)
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", tbody, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return rows


def chart_svg(body: str, chart_id: str) -> str:
    match = re.search(rf'<figure[^>]*id="{chart_id}"[^>]*>(.*?)</figure>', body, re.S)
    assert match, f"no chart #{chart_id}"
    svg = re.search(r"<svg[^>]*>.*?</svg>", match.group(1), re.S).group(0)
    assert 'role="img"' in svg and f'aria-labelledby="{chart_id}-t {chart_id}-d"' in svg
    assert f'<title id="{chart_id}-t">' in svg and f'<desc id="{chart_id}-d">' in svg
    assert '<details class="chart-data"' in match.group(1)
    return svg


def gift(org, donor, amount, day, *, kind="MONETARY", code=None, **extra):
    if kind == "IN_KIND":
        extra |= {"in_kind_category": "GOODS", "in_kind_description": "Leaflets"}
    return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type=kind, amount_cents=amount,
                                    donation_date=day, revenue_code=code, **extra)


@pytest.fixture
def donor(org):
    return services.donor_create(organisation=org, actor=ACTOR, first_name="Mei", last_name="Tran")


def test_home_months_this_year_against_last_with_its_table(org, admin, donor):
    today = timezone.localdate()
    start, end = financial_year_of(today)
    gift(org, donor, 12_345, start)
    gift(org, donor, 2_000, start, kind="IN_KIND")
    gift(org, donor, 50_000, start.replace(year=start.year - 1))
    voided = gift(org, donor, 99_900, today)
    services.donation_void(organisation=org, actor=ACTOR, donation_id=voided.id, reason="typo")

    body = client_as(admin).get("/").content.decode()
    svg = chart_svg(body, "gifts-by-month")
    assert svg.count("<rect") >= 3  # this year's two stacked segments and last year's column
    year = year_by_month(organisation=org, start=start, end=end)
    expected = [[f"{this['month']:%b}", dollars(this["monetary_cents"]), dollars(this["in_kind_cents"]), dollars(this["total_cents"]),
                 dollars(last["monetary_cents"]), dollars(last["in_kind_cents"]), dollars(last["total_cents"]), f"{this['gifts']:,}"]
                for this, last in zip(year["this"], year["last"])]
    assert table(body, "gifts-by-month-table") == expected
    assert expected[0][1:4] == ["$123.45", "$20.00", "$143.45"] and expected[0][4] == "$500.00"
    assert '<div class="n" id="total-monetary">$123.45</div>' in body  # the voided gift counts nothing
    assert '<div class="n" id="total-gifts">2</div>' in body


def test_near_cap_lists_open_periods_most_urgent_first_and_past_ones_in_history(org, admin):
    revenue_code_create(organisation=org, actor=ACTOR, code="NSW-1", jurisdiction="NSW")
    start, _ = financial_year_of(timezone.localdate())
    last_fy = start.replace(year=start.year - 1)
    amber, critical, past = (services.donor_create(organisation=org, actor=ACTOR, first_name=n, last_name="Donor")
                             for n in ("Amber", "Critical", "Past"))
    gift(org, amber, 500_000, start, code="NSW-1")      # 63 % of $7,900: AMBER
    gift(org, critical, 780_000, start, code="NSW-1")   # 98.7 %: CRITICAL
    gift(org, past, 720_000, last_fy, code="NSW-1")     # 91 % of a period that has ended

    body = client_as(admin).get("/").content.decode()
    rows = table(body, "near-cap")
    assert [r[0] for r in rows] == ["Critical Donor", "Amber Donor"]
    assert [r[-1] for r in rows] == ["CRITICAL", "AMBER"] and rows[0][5] == "99 %"  # 98.7 %, rounded
    assert 'href="/alerts/history"' in body
    history = client_as(admin).get("/alerts/history").content.decode()
    assert [r[0] for r in table(history, "cap-history")] == ["Past Donor"]


def test_campaign_over_goal_shows_percent_full_bar_and_marker(org, admin, donor):
    campaign = services.campaign_create(organisation=org, actor=ACTOR, name="Winter Appeal", goal_cents=50_000)
    gift(org, donor, 359_620, timezone.localdate(), campaign_id=campaign.id)
    client = client_as(admin)

    listing = client.get("/campaigns/").content.decode()
    row = table(listing, "campaigns")[0]
    assert row[0] == "Winter Appeal" and row[1].startswith("719 %") and "over goal" in row[1]
    assert row[2:] == ["$3,596.20", "$500.00", "1", "1", "ACTIVE"]
    assert 'class="goal-marker" x1="13"' in listing  # the goal sits at 13 % of a full bar

    page = client.get(f"/campaigns/{campaign.id}/").content.decode()
    svg = chart_svg(page, "campaign-progress")
    assert f'width="{480:.1f}"' in svg and 'class="goal-marker"' in svg
    assert table(page, "campaign-progress-table") == [["Raised", "$3,596.20"], ["Goal", "$500.00"], ["Of the goal", "719 %"]]
    chart_svg(page, "campaign-weeks")
    weeks = table(page, "campaign-weeks-table")
    assert weeks[-1][1:] == ["$3,596.20", "1"] and len(weeks) == 26


def test_donor_timeline_and_cap_gauge_ask_the_rules(org, admin, donor):
    revenue_code_create(organisation=org, actor=ACTOR, code="NSW-1", jurisdiction="NSW")
    today = timezone.localdate()
    gift(org, donor, 600_000, financial_year_of(today)[0], code="NSW-1")
    gift(org, donor, 4_000, today, kind="IN_KIND")

    body = client_as(admin).get(f"/donors/{donor.id}/").content.decode()
    chart_svg(body, "donor-giving")
    months = table(body, "donor-giving-table")
    assert len(months) == 24 and months[-1][0] == f"{today:%b %y}"
    assert sum(int(r[-1]) for r in months) == 2
    chart_svg(body, "gauge-nsw")
    room = cap_room(donor_id=donor.id, jurisdiction="NSW", day=today)
    assert table(body, "gauge-nsw-table") == [["Counted", "$6,000.00"], ["Disclosure threshold", "$1,000.00"], ["Cap", "$7,900.00"],
                                              ["Room left", dollars(room["remaining"])]]
    assert room["remaining"] == 190_000


def test_compliance_timeline_and_summary(org, admin, donor):
    revenue_code_create(organisation=org, actor=ACTOR, code="VIC-1", jurisdiction="VIC")
    gift(org, donor, 200_000, timezone.localdate(), code="VIC-1")  # over the VIC threshold: an obligation
    body = client_as(admin).get("/settings/compliance/obligations").content.decode()
    chart_svg(body, "obligations-timeline")
    rows = table(body, "obligations-timeline-table")
    assert len(rows) == 1 and rows[0][1:4] == ["Mei Tran", "VIC", "$2,000.00"]
    summary = {r[0]: r for r in table(body, "jurisdiction-summary")}
    assert summary["VIC"][1:5] == ["1", "$2,000.00", "0", "1"]


def test_recurring_revenue_by_month(org, admin, donor):
    today = timezone.localdate()
    plan = recurring.plan_create(organisation=org, actor=ACTOR, donor_id=donor.id, amount_cents=2_500, frequency="MONTHLY",
                                 payment_method="MANUAL", start_date=today)
    month_ago = today - dt.timedelta(days=31)
    gift(org, donor, 2_500, month_ago, recurring_plan_id=plan.id, recurring_period=month_ago, payment_method="BANK_TRANSFER")
    gift(org, donor, 9_900, today)  # not a plan's: not recurring revenue
    body = client_as(admin).get("/recurring").content.decode()
    chart_svg(body, "recurring-revenue")
    months = recurring_revenue_by_month(organisation=org, today=today)
    assert table(body, "recurring-revenue-table") == [[f"{m['month']:%b %y}", dollars(m["total_cents"]), str(m["gifts"])] for m in months]
    assert sum(m["total_cents"] for m in months) == 2_500


def test_viewer_sees_the_charts_but_not_another_organisations(org, other_org, donor):
    other = services.donor_create(organisation=other_org, actor=ACTOR, first_name="Other", last_name="Org")
    gift(other_org, other, 77_700, timezone.localdate())
    body = client_as(make_user(org, "VIEWER")).get("/").content.decode()
    assert "$777.00" not in body and "gifts-by-month-table" in body


def test_a_column_chart_with_nothing_in_it_labels_its_axis_zero_alone():
    from together import charts

    empty = charts.columns(chart_id="empty", title="Nothing", description="No gifts.", categories=["Jan", "Feb"],
                           series=[{"label": "Monetary", "values": [0, 0], "tone": "monetary"}], fmt=dollars)
    svg = str(empty.svg)
    assert re.findall(r'<text class="axis"[^>]*text-anchor="end">([^<]*)</text>', svg) == ["$0"]  # not $0.01 … $0.04
    assert svg.count('<line class="grid"') == 5
    some = charts.columns(chart_id="some", title="Some", description="Gifts.", categories=["Jan"],
                          series=[{"label": "Monetary", "values": [10_000], "tone": "monetary"}], fmt=dollars)
    svg = str(some.svg)
    assert re.findall(r'<text class="axis"[^>]*text-anchor="end">([^<]*)</text>', svg) == ["$0", "$25", "$50", "$75", "$100"]
