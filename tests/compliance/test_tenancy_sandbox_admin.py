"""Another organisation's (or the sandbox twin's) compliance records are 404; the
sandbox computes exactly as live; the law's rules are editable by superusers only."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from compliance import services as compliance
from compliance.models import ComplianceBreach, DisclosureObligation, DonorAggregate, RegimeRule, RevenueCode
from donations.models import Donor
from tests.compliance.helpers import D, SYSTEM, code, gift, gift_body
from tests.support.api import assert_error, make_donor
from tests.conftest import client_for, make_key


@pytest.fixture
def foreign(other_org, eager_celery, django_capture_on_commit_callbacks):
    """Another organisation with an obligation, a breach, a revenue code and a donor."""
    rc = code(other_org, "THEIRS", "UNREGULATED")
    donor = make_donor(other_org)
    gift(other_org, donor, 4_000_000, D(2027, 2, 1))
    gift(other_org, donor, 2_000_000, D(2027, 3, 1), revenue_code="THEIRS")
    with django_capture_on_commit_callbacks(execute=True):
        compliance.revenue_code_update(organisation=other_org, actor=SYSTEM, revenue_code_id=rc.id, jurisdiction="FEDERAL")
    return {
        "obligation": DisclosureObligation.objects.get(donor=donor).id,
        "breach": ComplianceBreach.objects.get(donor=donor).id,
        "code": rc.id,
        "donor": donor.id,
    }


ROUTES = [
    ("GET", "/api/v1/disclosure-obligations/{obligation}", None),
    ("POST", "/api/v1/disclosure-obligations/{obligation}/lodge", {"reference": "X", "lodged_date": "2026-01-05"}),
    ("GET", "/api/v1/compliance-breaches/{breach}", None),
    ("GET", "/api/v1/revenue-codes/{code}", None),
    ("PATCH", "/api/v1/revenue-codes/{code}", {"jurisdiction": "NSW"}),
    ("POST", "/api/v1/revenue-codes/{code}/archive", None),
    ("GET", "/api/v1/donors/{donor}/compliance", None),
    ("GET", "/api/v1/donors/{donor}/compliance?period=2027-03-01", None),
]


@pytest.mark.parametrize("as_", ["other organisation", "sandbox twin"])
@pytest.mark.parametrize("method, path, body", ROUTES)
def test_foreign_records_are_not_found(org, write_client, sandbox_write_client, foreign, method, path, body, as_):
    client = write_client if as_ == "other organisation" else sandbox_write_client
    url = path.format(**foreign)
    response = client.generic(method, url, json.dumps(body) if body else "", content_type="application/json")
    assert_error(response, 404, "not_found")
    assert DisclosureObligation.objects.get(pk=foreign["obligation"]).status == "OPEN"
    assert RevenueCode.objects.get(pk=foreign["code"]).jurisdiction == "FEDERAL"
    assert RevenueCode.objects.get(pk=foreign["code"]).status == "ACTIVE"


@pytest.mark.parametrize("path", ["/api/v1/disclosure-obligations", "/api/v1/compliance-breaches", "/api/v1/revenue-codes"])
def test_lists_show_only_ours(org, read_client, foreign, path):
    assert read_client.get(path).json()["data"] == []
    if "revenue-codes" not in path:
        assert read_client.get(f"{path}?donor_id={foreign['donor']}").json()["data"] == []


def test_a_foreign_donor_in_a_gift_is_refused_before_any_compliance_work(org, write_client, foreign):
    error = assert_error(write_client.post("/api/v1/donations", gift_body(foreign["donor"], 1, "2027-03-01"), format="json"),
                         400, "validation_failed", "donor_id")
    assert "reason" not in error


# --- sandbox ----------------------------------------------------------------------------------

GIFTS = [
    # amount, date, kind, code
    (300_000, "2026-12-31", "MONETARY", None),
    (1_600_000, "2026-11-01", "IN_KIND", None),
    (3_000_000, "2027-01-01", "MONETARY", "Gala"),
    (1_500_000, "2027-02-01", "IN_KIND", None),
    (600_000, "2027-03-01", "MONETARY", "nsw-drive"),
    (190_000, "2027-03-02", "MONETARY", "NSW-DRIVE"),   # exactly the NSW cap
]


def _fingerprint(organisation):
    donor = Donor.objects.get(organisation=organisation)
    aggregates = sorted((a.jurisdiction, a.rule.name, a.period_start, a.period_end, a.total_cents, a.monetary_cents, a.in_kind_cents,
                         a.donations_count, a.alert_level) for a in DonorAggregate.objects.filter(donor=donor).select_related("rule"))
    obligations = sorted((o.jurisdiction, o.period_start, o.period_end, o.aggregate_cents, o.crossed_on, o.due_date, o.deadline_basis,
                          o.status) for o in DisclosureObligation.objects.filter(donor=donor))
    codes = sorted((c.code, c.jurisdiction, c.reviewed) for c in RevenueCode.objects.filter(organisation=organisation))
    return aggregates, obligations, codes


def test_sandbox_computes_exactly_as_live(org, sandbox, write_client, sandbox_write_client):
    outcomes = {}
    for label, client, organisation in (("live", write_client, org), ("sandbox", sandbox_write_client, sandbox)):
        assert client.post("/api/v1/revenue-codes", {"code": "NSW-Drive", "jurisdiction": "NSW"}, format="json").status_code == 201
        donor = client.post("/api/v1/donors", {"first_name": "Twin", "last_name": "Donor"}, format="json").json()
        statuses = []
        for amount, day, kind, rc in GIFTS + [(600_000, "2027-12-31", "MONETARY", None), (500_000, "2027-06-01", "MONETARY", "gala"),
                                              (1, "2027-03-03", "IN_KIND", "nsw-drive")]:
            body = gift_body(donor["id"], amount, day, kind, **({"revenue_code": rc} if rc else {}))
            response = client.post("/api/v1/donations", body, format="json")
            statuses.append((response.status_code, response.json().get("error", {}).get("remaining_cents")))
        position = client.get(f"/api/v1/donors/{donor['id']}/compliance?period=2027-03-01").json()["data"]
        outcomes[label] = (statuses, _fingerprint(organisation), position)
    assert outcomes["live"][0] == [(201, None)] * 6 + [(400, 500_000), (201, None), (400, 0)]
    assert outcomes["sandbox"] == outcomes["live"]
    aggregates, obligations, codes = outcomes["live"][1]
    # federal FY 2026-27 ($19,000 > $17,900), federal 2027 (at the cap), NSW FY 2026-27 (at the cap)
    assert [(a[0], a[2], a[4], a[8]) for a in aggregates] == [
        ("FEDERAL", D(2026, 7, 1), 1_900_000, "NONE"), ("FEDERAL", D(2027, 1, 1), 5_000_000, "CRITICAL"),
        ("NSW", D(2026, 7, 1), 790_000, "CRITICAL")]
    assert [(o[0], o[1], o[-1]) for o in obligations] == [
        ("FEDERAL", D(2026, 7, 1), "OPEN"), ("FEDERAL", D(2027, 1, 1), "OPEN"), ("NSW", D(2026, 7, 1), "OPEN")]
    assert codes == [("Gala", "FEDERAL", False), ("NSW-Drive", "NSW", True)]


# --- the regime rules admin ----------------------------------------------------------------------

def _client_for_user(**flags):
    User = get_user_model()
    user = User.objects.create_user(username=f"u-{len(flags)}-{sorted(flags)}", email="staff@example.org", password="x", **flags)
    if not user.is_superuser:
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="compliance"))
    client = Client()
    client.force_login(user)
    return client


def test_regime_rules_are_editable_by_superusers_only(db):
    rule = RegimeRule.objects.get(name__startswith="Federal calendar-year")
    staff = _client_for_user(is_staff=True)
    page = staff.get(f"/admin/compliance/regimerule/{rule.pk}/change/")  # it may view (it holds view_regimerule), not change
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    response = staff.post(f"/admin/compliance/regimerule/{rule.pk}/change/", {"cap_cents": "1"})
    assert response.status_code == 403
    assert staff.get("/admin/compliance/regimerule/add/").status_code == 403
    assert staff.post(f"/admin/compliance/regimerule/{rule.pk}/delete/", {"post": "yes"}).status_code == 403
    rule.refresh_from_db()
    assert rule.cap_cents == 5_000_000

    from django.contrib import admin as django_admin
    from django.test import RequestFactory

    model_admin = django_admin.site._registry[RegimeRule]
    request = RequestFactory().get("/")
    request.user = get_user_model().objects.get(email="staff@example.org")
    assert not model_admin.has_change_permission(request, rule)
    assert not model_admin.has_add_permission(request) and not model_admin.has_delete_permission(request, rule)

    root = _client_for_user(is_staff=True, is_superuser=True)
    page = root.get(f"/admin/compliance/regimerule/{rule.pk}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data.update({"cap_cents": "5100000", "effective_to": "", "period_start": "", "period_end": "", "deadline_days": "",
                 "deadline_month": "", "threshold_cents": "500000", "election_deadlines": "on"})
    data = {k: v for k, v in data.items() if v is not False}
    response = root.post(f"/admin/compliance/regimerule/{rule.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    rule.refresh_from_db()
    assert rule.cap_cents == 5_100_000


@pytest.mark.parametrize("model", ["disclosureobligation", "compliancebreach", "donoraggregate", "recompute", "revenuecode"])
def test_computed_records_are_read_only_in_the_admin_even_for_superusers(db, model):
    root = _client_for_user(is_staff=True, is_superuser=True)
    assert root.get(f"/admin/compliance/{model}/add/").status_code == 403


def _post_rule(client, rule, **changes):
    page = client.get(f"/admin/compliance/regimerule/{rule.pk}/change/")
    form = page.context["adminform"].form
    data = {name: ("" if value is None else value) for name, value in form.initial.items()}
    data = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items() if v is not False}
    data.update({k: str(v) for k, v in changes.items()})
    return client.post(f"/admin/compliance/regimerule/{rule.pk}/change/", data)


def test_a_rule_edit_recomputes_every_organisation_and_raises_breaches(org, other_org, eager_celery, django_capture_on_commit_callbacks):
    """A rule edited after the fact is never silently accepted: totals, alerts and
    obligations follow it, and a donor now over the cap raises a breach."""
    ours, theirs, small = make_donor(org), make_donor(other_org), make_donor(org)
    gift(org, ours, 4_500_000, D(2027, 2, 1))
    gift(other_org, theirs, 4_200_000, D(2027, 2, 1))
    gift(org, small, 450_000, D(2027, 2, 1))
    assert DisclosureObligation.objects.filter(donor=small).count() == 0
    rule = RegimeRule.objects.get(name__startswith="Federal calendar-year")
    root = _client_for_user(is_staff=True, is_superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post_rule(root, rule, cap_cents=4_000_000, threshold_cents=400_000)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    for donor, total in ((ours, 4_500_000), (theirs, 4_200_000)):
        breach = ComplianceBreach.objects.get(donor=donor)
        assert (breach.cap_cents, breach.aggregate_cents, breach.excess_cents) == (4_000_000, total, total - 4_000_000)
        assert DonorAggregate.objects.get(donor=donor).alert_level == "CRITICAL"
    assert DisclosureObligation.objects.get(donor=small).status == "OPEN"  # $4,500 is now more than the threshold
    assert DonorAggregate.objects.get(donor=small).alert_level == "NONE"
    from compliance.models import Recompute
    done = Recompute.objects.filter(reason__contains=rule.name)
    assert {r.organisation_id for r in done} == {org.id, other_org.id}
    assert all(r.status == "COMPLETED" for r in done)
    assert sum(r.breaches_created for r in done) == 2 and sum(r.obligations_created for r in done) == 1
