"""The obligations page's summary by jurisdiction (compliance.selectors.jurisdiction_summary)
in one statement after the rules' stamp: the same figures as the four grouped reads
it replaced (kept here as the reference), for this organisation only, whatever day
is asked; and the page itself in a fixed number of queries."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance import rules, services as compliance
from compliance.models import AlertLevel, ComplianceBreach, DisclosureObligation, DonorAggregate, Jurisdiction, ObligationStatus
from compliance.selectors import jurisdiction_summary
from donations import services
from organisations.models import Role
from tests.compliance.helpers import SYSTEM, code, gift
from tests.dashboard.conftest import client_as, make_user

pytestmark = pytest.mark.django_db


def reference_summary(organisation, today: dt.date) -> list[dict]:
    """The summary as it was computed before (three grouped reads and the breaches', the rules read afresh)."""
    out: dict[str, dict] = {}

    def entry(j):
        return out.setdefault(j, {"jurisdiction": j, "donors": 0, "total_cents": 0, "near_cap": 0, "open": 0, "overdue": 0,
                                  "breaches": 0})

    main_rules = []
    for in_force in ([r for r in group if rules.applies_on(r, today)] for group in rules.rules_by_jurisdiction().values()):
        main = next((r for r in in_force if r.threshold_cents is not None), None) or next((r for r in in_force if r.cap_cents), None)
        if main is not None:
            main_rules.append(main.id)
    open_now = DonorAggregate.objects.filter(organisation=organisation, period_start__lte=today, period_end__gte=today)
    for r in (open_now.filter(rule_id__in=main_rules, total_cents__gt=0).values("jurisdiction")
              .annotate(donors=Count("donor_id", distinct=True), total=Sum("total_cents")).order_by()):
        entry(r["jurisdiction"]).update(donors=r["donors"], total_cents=r["total"] or 0)
    for r in (open_now.exclude(alert_level=AlertLevel.NONE).values("jurisdiction")
              .annotate(near=Count("donor_id", distinct=True)).order_by()):
        entry(r["jurisdiction"])["near_cap"] = r["near"]
    for r in (DisclosureObligation.objects.filter(organisation=organisation, status=ObligationStatus.OPEN)
              .values("jurisdiction").annotate(n=Count("id"), late=Count("id", filter=Q(due_date__lt=today))).order_by()):
        entry(r["jurisdiction"]).update(open=r["n"], overdue=r["late"])
    for r in ComplianceBreach.objects.filter(organisation=organisation).values("jurisdiction").annotate(n=Count("id")).order_by():
        entry(r["jurisdiction"])["breaches"] = r["n"]
    order = {j: i for i, j in enumerate(Jurisdiction.values)}
    return sorted(out.values(), key=lambda e: order.get(e["jurisdiction"], 99))


def donor(org, name):
    return services.donor_create(organisation=org, actor=SYSTEM, first_name=name, last_name="Summary")


@pytest.fixture
def world(org, other_org):
    today = timezone.localdate()
    for o in (org, other_org):
        code(o, "NSW-1", "NSW")
        code(o, "VIC-1", "VIC")
    near = donor(org, "Nora")
    gift(org, near, 700_000, today, revenue_code="NSW-1")  # near the NSW cap, over its threshold
    gift(org, donor(org, "Otto"), 200_000, today, revenue_code="NSW-1")  # an NSW obligation
    lodged = donor(org, "Lou")
    gift(org, lodged, 150_000, today, revenue_code="VIC-1")
    obligation = DisclosureObligation.objects.get(donor=lodged)
    compliance.obligation_lodge(organisation=org, actor=SYSTEM, obligation_id=obligation.id, reference="VIC-REF-1",
                                lodged_date=today)
    gift(org, donor(org, "Vi"), 180_000, today, revenue_code="VIC-1")  # still open
    gift(org, donor(org, "Fed"), 20_000, today)  # the default jurisdiction, below every threshold
    # two donors under the NSW cap apart, over it merged: a breach after the fact
    a, b = donor(org, "Ann"), donor(org, "Bea")
    gift(org, a, 500_000, today, revenue_code="NSW-1")
    gift(org, b, 500_000, today, revenue_code="NSW-1")
    services.donor_merge(organisation=org, actor=SYSTEM, survivor_id=a.id, duplicate_id=b.id)
    # the other organisation's figures are never ours
    gift(other_org, donor(other_org, "Theirs"), 750_000, today, revenue_code="NSW-1")
    return today


def test_the_summary_is_the_four_grouped_reads(org, other_org, world):
    today = world
    assert ComplianceBreach.objects.filter(organisation=org).exists()
    summary = jurisdiction_summary(organisation=org, today=today)
    assert summary == reference_summary(org, today)
    nsw = next(e for e in summary if e["jurisdiction"] == "NSW")
    assert nsw["near_cap"] >= 1 and nsw["breaches"] >= 1 and nsw["open"] >= 2 and nsw["donors"] == 3
    vic = next(e for e in summary if e["jurisdiction"] == "VIC")
    assert (vic["donors"], vic["total_cents"], vic["open"]) == (2, 330_000, 1)
    for later in (today + dt.timedelta(days=100), today + dt.timedelta(days=400), today - dt.timedelta(days=400)):
        assert jurisdiction_summary(organisation=org, today=later) == reference_summary(org, later), later
    assert jurisdiction_summary(organisation=other_org, today=today) == reference_summary(other_org, today)
    from tests.conftest import make_org

    assert jurisdiction_summary(organisation=make_org("Empty"), today=today) == []


def test_the_summary_is_one_statement_after_the_rules_stamp(org, world):
    jurisdiction_summary(organisation=org, today=world)  # this process holds the rules
    with CaptureQueriesContext(connection) as ctx:
        jurisdiction_summary(organisation=org, today=world)
    assert len(ctx.captured_queries) == 2, [q["sql"][:120] for q in ctx.captured_queries]
    assert "UNION ALL" in ctx.captured_queries[1]["sql"]


def test_the_obligations_page_shows_the_summary(org, world):
    client = client_as(make_user(org, Role.VIEWER))
    client.get("/settings/compliance/obligations")
    with CaptureQueriesContext(connection) as ctx:
        body = client.get("/settings/compliance/obligations").content.decode()
    assert 'data-jurisdiction="NSW"' in body and 'data-jurisdiction="VIC"' in body
    assert '<tr data-jurisdiction="VIC"><th scope="row">VIC</th><td class="num">2</td><td class="num">$3,300.00</td>' in body
    assert len(ctx.captured_queries) <= 9, [q["sql"][:120] for q in ctx.captured_queries]
