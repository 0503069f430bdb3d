"""`/recurring` in a fixed number of queries (issue 19's page speed): the status counts
and the monthly recurring revenue come from one grouped query (plan_overview, the
same figures as plan_status_counts and plan_mrr), the plans table reads only the
columns its rows show, whatever the plans' states; the frame counts memberships."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from organisations.models import Role
from payments import recurring
from payments.models import PauseReason, PlanStatus, RecurringPlan
from payments.selectors import plan_mrr, plan_overview, plan_status_counts
from tests.conftest import make_org
from tests.dashboard.conftest import client_as, make_user
from tests.recurring.helpers import SYSTEM, make_donor
from tests.support.tenant_guard import guard_requests

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _tenant_guard():
    with guard_requests():
        yield


def _plans(org, n: int, *, tag: str) -> list[RecurringPlan]:
    """`n` MANUAL plans of every frequency and several states: active, paused by staff,
    canceled, failing and held by a donor cap (the last two set as billing leaves them)."""
    day = recurring.organisation_today(org)
    frequencies = ("WEEKLY", "FORTNIGHTLY", "MONTHLY", "QUARTERLY", "ANNUALLY")
    plans = []
    for i in range(n):
        donor = make_donor(org, first_name=f"{tag}{i}", last_name="Planner", email=f"{tag.lower()}{i}@example.org")
        plans.append(recurring.plan_create(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=1_000 + 7 * i,
                                           frequency=frequencies[i % 5], payment_method="MANUAL", start_date=day))
    recurring.plan_pause(organisation=org, actor=SYSTEM, plan_id=plans[1].id)
    recurring.plan_cancel(organisation=org, actor=SYSTEM, plan_id=plans[2].id)
    RecurringPlan.objects.filter(pk=plans[3].pk).update(failure_count=2, retry_at=day + dt.timedelta(days=3),
                                                        last_failure_message="Card declined.")
    RecurringPlan.objects.filter(pk=plans[4].pk).update(status=PlanStatus.PAUSED, pause_reason=PauseReason.CAP_REACHED,
                                                        pause_detail="The donor's cap has no room.")
    return plans


def test_plan_overview_is_the_status_counts_and_mrr(org, other_org):
    _plans(org, 9, tag="Ours")
    _plans(other_org, 6, tag="Theirs")
    overview = plan_overview(organisation=org)
    assert overview == {"counts": plan_status_counts(organisation=org), "mrr": plan_mrr(organisation=org)}
    assert overview["counts"][PlanStatus.ACTIVE] == 6 and overview["counts"][PlanStatus.PAUSED] == 2
    assert overview["counts"][PlanStatus.CANCELED] == 1 and sum(overview["counts"].values()) == 9
    [mrr] = overview["mrr"]
    active = RecurringPlan.objects.filter(organisation=org, status=PlanStatus.ACTIVE)
    assert mrr["plans"] == 6 and mrr["mrr_cents"] == sum(p.amount_cents * {"WEEKLY": 52, "FORTNIGHTLY": 26, "MONTHLY": 12,
                                                                           "QUARTERLY": 4, "ANNUALLY": 1}[p.frequency]
                                                         for p in active) // 12
    # a narrowed queryset still narrows (and stays in the organisation)
    weekly = RecurringPlan.objects.filter(frequency="WEEKLY")
    assert plan_status_counts(organisation=org, queryset=weekly)[PlanStatus.ACTIVE] == 2  # plans 0 and 5
    assert [m["plans"] for m in plan_mrr(organisation=org, queryset=weekly)] == [2]
    assert plan_overview(organisation=make_org("Empty")) == {"counts": {s: 0 for s in PlanStatus.values}, "mrr": []}


def _page(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/recurring")
    assert response.status_code == 200
    return response.content.decode(), len(ctx.captured_queries)


def test_the_recurring_page_reads_a_fixed_number_of_queries(org):
    client = client_as(make_user(org, Role.ADMIN), organisation=org)
    plans = _plans(org, 6, tag="First")
    _page(client)  # warm: the session's first request
    body, few = _page(client)
    assert set(re.findall(r'data-plan="(\w+)"', body)) == {p.id for p in plans}
    more = _plans(org, 12, tag="Second")
    body, many = _page(client)
    assert many == few, "a query per plan row"
    rows = re.findall(r'data-plan="(\w+)"', body)
    assert len(rows) == 18
    # the rows still show what they did: the failing one's retry, the cap-held one, a donor's email
    assert "Failing: retry" in body and "Donor cap reached" in body and "second11@example.org" in body
    assert "Second11 Planner" in body
    # the status pills count every plan (one grouped query with the MRR)
    assert re.search(r'status=PAUSED[^>]*>[^<]*<span class="count">4</span>', body)
    assert more[0].id in rows


def test_the_frame_counts_memberships(org, other_org):
    user = make_user(org, Role.VIEWER)
    body, _ = _page(client_as(user, organisation=org))
    assert "Switch organisation" not in body
    from organisations.models import Role as R
    from organisations.services import membership_set

    membership_set(organisation=other_org, user=user, role=R.VIEWER)
    body, _ = _page(client_as(user, organisation=org))
    assert "Switch organisation" in body
    assert 'href="/settings/compliance' in body or "Compliance" in body  # the optional apps' nav entries


@pytest.mark.parametrize("path", ["/", "/donors/", "/recurring"])
def test_the_frame_counts_the_memberships_the_request_already_read(org, other_org, path):
    """The frame's "Switch organisation" comes from the memberships the session check read
    for this request (organisations.session.resolve_active), not from a COUNT of its own."""
    from organisations.models import Role as R
    from organisations.services import membership_set

    user = make_user(org, Role.VIEWER)
    membership_set(organisation=other_org, user=user, role=R.VIEWER)
    client = client_as(user, organisation=org)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200 and "Switch organisation" in response.content.decode()
    membership_reads = [q["sql"] for q in ctx.captured_queries if 'FROM "organisations_membership"' in q["sql"]]
    assert len(membership_reads) == 1, membership_reads


# The plans table's rows as the template wrote them from each plan before its cells were
# formatted in the view (payments.views._plan_rows): the page must still say exactly this.
OLD_ROW = """{% load humanize_cents %}{% for p in rows %}
    <tr data-plan="{{ p.id }}" data-status="{{ p.status }}">
      <td><a href="{% url 'recurring-detail' p.id %}">{{ p.donor.display_name }}</a><div class="muted small">{{ p.donor.email|default:"" }}</div></td>
      <td class="num">{{ p.amount_cents|dollars }}<div class="muted small">{{ p.get_frequency_display }}</div></td>
      <td><span class="badge status-{{ p.status }}">{{ p.get_status_display }}</span>
        {% if p.held_by_cap %}<div class="muted small">Donor cap reached</div>{% elif p.pause_reason %}<div class="muted small">{{ p.pause_reason|title }}</div>{% elif p.is_failing %}<div class="muted small">Failing: retry {{ p.retry_at|date:"j M" }}</div>{% endif %}</td>
      <td>{% if p.next_bill_date %}{{ p.next_bill_date|date:"j M Y" }}{% else %}<span class="muted">—</span>{% endif %}</td>
      <td class="num">{% if p.status == 'ACTIVE' %}{{ p.monthly_cents|dollars }}{% else %}<span class="muted">—</span>{% endif %}</td>
      <td>{% if p.payment_method == 'CARD' %}Card{% else %}Standing order{% endif %}</td>
      <td class="num">{{ p.payments_made }}{% if p.max_payments %} / {{ p.max_payments }}{% endif %}</td>
    </tr>
  {% endfor %}"""


def test_the_plan_rows_read_as_the_template_wrote_them(org):
    from django.template import engines

    plans = _plans(org, 8, tag="Row")
    RecurringPlan.objects.filter(pk=plans[5].pk).update(max_payments=12, payments_made=3, next_bill_date=None)
    RecurringPlan.objects.filter(pk=plans[6].pk).update(status=PlanStatus.PAUSED, pause_reason=PauseReason.DONOR)
    RecurringPlan.objects.filter(pk=plans[7].pk).update(failure_count=1, retry_at=None)
    donor = plans[0].donor
    type(donor).objects.filter(pk=donor.pk).update(first_name="<Ann & 'Co'>", email=None)
    body, _ = _page(client_as(make_user(org, Role.VIEWER), organisation=org))
    tbody = body[body.index('<table id="plans"'):]
    tbody = tbody[tbody.index("<tbody>") + len("<tbody>"):tbody.index("  </tbody>")]
    ordered = list(RecurringPlan.objects.filter(organisation=org).select_related("donor").order_by("-created_at", "-id"))
    expected = engines["django"].from_string(OLD_ROW).render({"rows": ordered})
    assert tbody.strip() == expected.strip()
    assert "&lt;Ann &amp; &#x27;Co&#x27;&gt;" in tbody and "3 / 12" in tbody and "Donor</div>" in tbody
