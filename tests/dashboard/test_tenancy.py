"""The dashboard's tenancy, CSRF and role sweep, over every dashboard route found
in the URL conf (a new page is covered the day it is added, or fails
test_every_route_is_classified until it gets a row here).

- another organisation's object id is a 404, for GET and POST;
- a forged `pc_active_org` naming an organisation the user has no membership in
  falls back to the user's own organisation and shows none of the other's data;
- every POST without a CSRF token is refused (403) and changes nothing;
- a VIEWER's POST is 403; an EDITOR is refused the ADMIN pages; an ADMIN is not.

Each test sweeps all routes and reports every failing one at once (one
fixture build per check instead of one per route keeps the file fast).
"""
from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from organisations.models import AuditEntry, Role
from organisations.services import membership_set, user_get_or_create
from organisations.session import COOKIE
from tests.dashboard.conftest import client_as, make_user
from tests.dashboard.helpers import SESSION_ROUTES, all_routes, build_world, dashboard_routes, is_public

# Route name -> the World attribute whose id fills its one path parameter.
OBJECT_ROUTES = {
    "donor-detail": "donor",
    "donor-edit": "donor",
    "donor-tags-edit": "donor",
    "donation-detail": "donation",
    "campaign-edit": "campaign",
    "campaign-sources": "campaign",
    "batch-edit": "batch",
    "recommendation-set-gifts": "recommendation_set",
    "recommendation-set-edit": "recommendation_set",
    "report-job-status": "export_job",
    "report-job-download": "export_job",
    "import-detail": "import_job",
    "import-result": "import_job",
    "engage-form-edit": "form",
    "engage-link-detail": "checkout_link",
    "recurring-detail": "plan",
    "recurring-donor-fragment": "donor",
    "receipt-pdf": "receipt",
    "receipts-run": "receipt_run",
    "receipts-donation-fragment": "donation",
    "receipts-donor-fragment": "donor",
    "receipts-statement": "donor",
    "custom-field-edit": "custom_field",
}
# Query strings aimed at the victim's records, for routes that take them.
QUERIES = {
    "donors": "?q={marker}",
    "donor-search": "?q={marker}",
    "donations": "?donor_id={donor}",
    "donations-export": "?donor_id={donor}",
    "donors-export": "?q={marker}",
    "gift-new": "?donor={donor}",
    "gift-cap-room": "?donor={donor}&donation_date=2027-03-15&revenue_code=CODE-{marker}&amount=10",
    "compliance-home": "?q={marker}",
}
# Pages only an ADMIN may open, and pages anyone reads but only an ADMIN changes.
ADMIN_PAGES = {"settings-api", "settings-users", "settings-receipts"}
ADMIN_WRITES = ADMIN_PAGES | {"custom-fields", "custom-field-edit", "compliance-home", "compliance-elections", "compliance-settings", "distribution-settings",
                              "settings-webhooks"}
# Pages where a POST is a read (an export), open to every role.
READ_POSTS = {"reports"}
# Pages that are a form only writers can send: a VIEWER gets 403 at the URL.
WRITE_FORMS = {"engage-form-new", "engage-link-new", "engage-link-suggest", "imports", "import-detail", "import-result", "gift-new", "donor-new", "donor-edit", "batch-new", "campaign-new", "recommendation-set-new", "recommendation-set-edit", "custom-fields", "custom-field-edit"}
# A body that would change something on most pages, were it let through.
HOSTILE_BODY = {"name": "Hijacked", "action": "void", "reason": "x", "archive": "1", "email": "hijack@example.org",
                "full_name": "H", "role": "ADMIN", "scope": "WRITE", "survivor_id": "x", "duplicate_id": "y"}

DASHBOARD = dashboard_routes()
OBJECTS = [r for r in DASHBOARD if r.params]
LISTS = [r for r in DASHBOARD if not r.params]
WRITABLE = [r for r in DASHBOARD if r.has_post]


def url_for(route, world) -> str:
    if route.params:
        return reverse(route.name, kwargs={route.params[0]: getattr(world, OBJECT_ROUTES[route.name]).id})
    return reverse(route.name) + QUERIES.get(route.name, "").format(marker=world.marker, donor=world.donor.id)


def data_markers(world) -> list[str]:
    """Strings only that organisation's records produce (a query string may echo the bare marker)."""
    m = world.marker
    return [f"Donor{m}", f"Campaign{m}", f"CODE-{m}", f"DEP{m}", f"CHQ{m}", f"Set{m}", world.organisation.name,
            world.donation.id]


@pytest.fixture
def mine(org):
    return build_world(org, "Mine")


@pytest.fixture
def theirs(other_org):
    return build_world(other_org, "Theirs")


@pytest.fixture
def intruder(other_org, theirs):
    """An ADMIN of the other organisation (the strongest role, so every refusal is about tenancy)."""
    return make_user(other_org, Role.ADMIN, name="Ivan Intruder")


def _content(response) -> str:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode(errors="replace")


def test_every_route_is_classified():
    """Each route is public (skipped), a session route with its own test, or a
    DashboardMixin page covered here; an object route needs a row in OBJECT_ROUTES."""
    unknown = [r.pattern for r in all_routes() if not is_public(r) and r.name not in SESSION_ROUTES and r not in DASHBOARD]
    assert not unknown, f"routes neither public nor DashboardMixin pages (classify them in tests/dashboard): {unknown}"
    missing = [r.name for r in OBJECTS if r.name not in OBJECT_ROUTES]
    assert not missing, f"dashboard routes with an id and no row in OBJECT_ROUTES: {missing}"
    names = {r.name for r in DASHBOARD}
    assert {"home", "donors", "donor-detail", "gift-new", "batches", "donations", "campaigns", "settings-api",
            "settings-users", "compliance-home"} <= names, names


def test_own_roles_open_every_page(org, mine):
    """ADMIN opens every page; EDITOR every page but the ADMIN ones; VIEWER neither those nor the write-only forms (403 there)."""
    problems = []
    for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
        client = client_as(make_user(org, role))
        for route in DASHBOARD:
            expected = 200
            if route.name in ADMIN_PAGES and role != Role.ADMIN or route.name in WRITE_FORMS and role == Role.VIEWER:
                expected = 403
            response = client.get(url_for(route, mine))
            if response.status_code != expected:
                problems.append((role, route.pattern, response.status_code, expected))
    assert not problems, problems


def test_another_organisations_object_is_404(mine, intruder):
    client = client_as(intruder)
    before = AuditEntry.objects.count()
    problems = []
    for route in OBJECTS:
        url = url_for(route, mine)
        if (status := client.get(url).status_code) != 404:
            problems.append(("GET", route.pattern, status))
        if route.has_post and (status := client.post(url, HOSTILE_BODY).status_code) != 404:
            problems.append(("POST", route.pattern, status))
    assert not problems, problems
    assert AuditEntry.objects.count() == before


def test_forged_cookie_cannot_reach_an_object(org, mine, intruder):
    problems = []
    for forged in (org, org.sandbox):
        client = client_as(intruder, organisation=forged)
        for route in OBJECTS:
            status = client.get(url_for(route, mine)).status_code
            if status != 404:
                problems.append((forged.slug, route.pattern, status))
    assert not problems, problems


def test_forged_cookie_falls_back_to_own_organisation(org, other_org, mine, theirs, intruder):
    problems = []
    for forged in (org, org.sandbox):
        client = client_as(intruder, organisation=forged)
        for route in LISTS:
            response = client.get(url_for(route, mine))
            if response.status_code != 200:
                problems.append((route.pattern, response.status_code))
                continue
            if response.wsgi_request.organisation != other_org:
                problems.append((route.pattern, "active organisation", response.wsgi_request.organisation))
            body = _content(response)
            leaked = [m for m in data_markers(mine) if m in body]
            if leaked:
                problems.append((route.pattern, "shows", leaked))
    assert not problems, problems
    # The page the intruder gets is their own organisation's.
    body = _content(client_as(intruder, organisation=org).get(reverse("donors")))
    assert f"Donor{theirs.marker}" in body and other_org.name in body


def test_own_pages_show_own_records(mine, admin):
    """The markers the sweep looks for do appear where they should, so their absence above means something."""
    client = client_as(admin)
    assert f"Donor{mine.marker}" in _content(client.get(reverse("donors")))
    assert f"Campaign{mine.marker}" in _content(client.get(reverse("campaigns")))
    assert f"DEP{mine.marker}" in _content(client.get(reverse("batches")))
    assert f"CODE-{mine.marker}" in _content(client.get(reverse("compliance-home")))
    assert f"Donor{mine.marker}" in _content(client.get(reverse("donor-search") + f"?q={mine.marker}"))
    assert "cap room" in _content(client.get(url_for(next(r for r in LISTS if r.name == "gift-cap-room"), mine)))


def test_forged_cookie_on_the_sandbox_switch_stays_home(org, other_org, theirs, intruder):
    response = client_as(intruder, organisation=org).post(reverse("sandbox-toggle"), {"next": "/"})
    assert response.status_code == 302
    assert response.cookies[COOKIE].value == other_org.sandbox.id


def test_org_picker_refuses_an_organisation_without_membership(org, other_org, intruder):
    response = client_as(intruder).post(reverse("org-picker"), {"organisation_id": org.id})
    assert response.status_code == 404
    assert COOKIE not in response.cookies


def test_post_without_csrf_token_is_refused(org, mine, admin):
    client = client_as(admin, csrf=True)
    session_routes = [r for r in all_routes() if r.name in SESSION_ROUTES or r.pattern == "logout/"]
    assert len(session_routes) == 3
    before = AuditEntry.objects.count()
    problems = []
    for route in WRITABLE + session_routes:
        url = url_for(route, mine) if route in DASHBOARD else reverse(route.name)
        status = client.post(url, HOSTILE_BODY).status_code
        if status != 403:
            problems.append((route.pattern, status))
    assert not problems, problems
    assert AuditEntry.objects.count() == before
    assert client.get(reverse("home")).status_code == 200  # still signed in: the logout was refused too


def test_viewer_post_is_403(org, mine):
    client = client_as(make_user(org, Role.VIEWER))
    before = AuditEntry.objects.count()
    routes = [r for r in WRITABLE if r.name not in READ_POSTS]
    problems = [(r.pattern, s) for r in routes if (s := client.post(url_for(r, mine), HOSTILE_BODY).status_code) != 403]
    assert not problems, problems
    assert AuditEntry.objects.count() == before


def test_editor_post_to_admin_page_is_403(org, mine):
    client = client_as(make_user(org, Role.EDITOR))
    routes = [r for r in WRITABLE if r.name in ADMIN_WRITES]
    assert {"settings-api", "settings-users", "compliance-home", "compliance-settings"} <= {r.name for r in routes}
    before = AuditEntry.objects.count()
    problems = [(r.pattern, s) for r in routes if (s := client.post(url_for(r, mine), HOSTILE_BODY).status_code) != 403]
    assert not problems, problems
    assert AuditEntry.objects.count() == before


def test_editor_records_and_admin_creates_a_key(org, mine):
    """The positive side of the role table, so a 403 above is a rule and not a broken page."""
    editor, admin = make_user(org, Role.EDITOR), make_user(org, Role.ADMIN)
    response = client_as(editor).post(reverse("gift-new"), {
        "donor": mine.donor.id, "method": "CASH", "amount": "25", "donation_date": "2027-03-16"})
    assert response.status_code == 302, _content(response)[:2000]
    response = client_as(admin).post(reverse("settings-api"), {"name": "CRM sync", "scope": "READ"})
    assert response.status_code == 200 and "pc_" in _content(response)
    response = client_as(admin).post(reverse("compliance-home"), {"code": "NEW-CODE", "jurisdiction": "NSW"})
    assert response.status_code == 302


def test_signed_out_is_sent_to_sign_in(mine):
    problems = []
    for route in DASHBOARD:
        response = Client().get(url_for(route, mine))
        if response.status_code != 302 or not response["Location"].startswith("/login/"):
            problems.append((route.pattern, response.status_code))
    assert not problems, problems


def test_user_without_membership_is_refused(org, mine):
    loner = user_get_or_create(email="loner@example.org", password="x-long-password")
    client = Client()
    client.force_login(loner)
    client.cookies[COOKIE] = org.id
    assert client.get(reverse("donors")).status_code == 403
    assert client.get(url_for(OBJECTS[0], mine)).status_code == 403


def test_member_of_two_sees_each_in_turn(org, other_org, mine, theirs):
    """A member of both organisations switches with the cookie; each page shows only the active one, with its role."""
    both = make_user(org, Role.ADMIN)
    membership_set(organisation=other_org, user=both, role=Role.VIEWER)
    for active, shown, hidden in [(org, mine, theirs), (other_org, theirs, mine)]:
        body = _content(client_as(both, organisation=active).get(reverse("donors")))
        assert f"Donor{shown.marker}" in body and f"Donor{hidden.marker}" not in body
    assert client_as(both, organisation=other_org).post(reverse("donor-new"), {"email": "z@example.org"}).status_code == 403
