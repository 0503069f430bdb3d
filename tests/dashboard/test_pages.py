"""Every main page in Chromium, with records on it: it renders without a
JavaScript error, every form control has a label a screen reader can read,
lists are paginated, and a screenshot lands in artifacts/screenshots/."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from donations import services
from organisations.models import Role
from tests.dashboard.conftest import make_user, screenshot, sign_in
from tests.dashboard.helpers import SYSTEM, build_world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]

# Controls without a label: their id/name, or the outer HTML when they have neither.
UNLABELLED_JS = """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')
                && !(el.getAttribute('title') || '').trim())
  .map(el => el.id || el.name || el.outerHTML.slice(0, 120))"""


@pytest.fixture
def records(org):
    """A small but complete organisation: donors of each type, gifts of each kind, a campaign, a batch,
    a donor near the federal cap (an alert) and one over the disclosure threshold (an obligation)."""
    world = build_world(org, "Tour")
    from compliance import services as compliance

    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="NSW-STATE", jurisdiction="NSW")
    day = dt.date(2027, 2, 1)
    donors = [world.donor]
    for i, (kind, fields) in enumerate([
        ("INDIVIDUAL", {"first_name": "Alice", "last_name": "Nguyen", "email": "alice@example.org", "postcode": "2042"}),
        ("INDIVIDUAL", {"first_name": "Bilal", "last_name": "Singh", "email": "bilal@example.org"}),
        ("ORGANISATION", {"organisation_name": "Harbour Builders Union", "email": "office@hbu.example.org"}),
        ("TRUST", {"organisation_name": "Wattle Foundation"}),
        ("INDIVIDUAL", {"first_name": "Alice", "last_name": "Nguyen", "postcode": "2042"}),  # a likely duplicate
    ]):
        donors.append(services.donor_create(organisation=org, actor=SYSTEM, donor_type=kind, **fields))
    for i, donor in enumerate(donors):
        services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=10_000 * (i + 1),
                                 donation_date=day, donation_type="MONETARY", payment_method="CHEQUE", reference=f"10{i}",
                                 campaign_id=world.campaign.id, revenue_code=world.revenue_code.code)
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=donors[4].id, amount_cents=45_000_00, donation_date=day,
                             donation_type="MONETARY", payment_method="BANK_TRANSFER", revenue_code=world.revenue_code.code)
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=donors[2].id, amount_cents=1_500_00, donation_date=day,
                             donation_type="IN_KIND", in_kind_category="SERVICES", in_kind_description="Printing",
                             revenue_code="NSW-STATE")
    return world


def pages_for(world) -> list[tuple[str, str]]:
    w = world
    return [
        ("home", "/"),
        ("donors", "/donors/"),
        ("donor-detail", f"/donors/{w.donor.id}/?period=2027-03-15"),
        ("donor-new", "/donors/new"),
        ("donor-edit", f"/donors/{w.donor.id}/edit"),
        ("duplicates", "/donors/duplicates"),
        ("gift-new", "/gifts/new"),
        ("batches", "/batches/"),
        ("batch-new", "/batches/new"),
        ("batch-edit", f"/batches/{w.batch.id}/"),
        ("donations", "/donations/"),
        ("donation-detail", f"/donations/{w.donation.id}/"),
        ("campaigns", "/campaigns/"),
        ("campaign-edit", f"/campaigns/{w.campaign.id}/"),
        ("settings-api", "/settings/api"),
        ("settings-users", "/settings/users"),
        ("compliance-codes", "/settings/compliance/revenue-codes"),
        ("compliance-obligations", "/settings/compliance/obligations"),
        ("compliance-breaches", "/settings/compliance/breaches"),
        ("compliance-elections", "/settings/compliance/elections"),
        ("compliance-settings", "/settings/compliance"),
    ]


def test_main_pages_render_with_labels_and_screenshots(page, context, live_server, org, records):
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server)
    problems = []
    for name, path in pages_for(records):
        response = page.goto(path)
        if response.status != 200:
            problems.append((path, response.status))
            continue
        expect(page.locator("header.top")).to_contain_text(org.name)
        if name == "gift-new":  # show the hidden parts too: they are labelled as well
            page.get_by_label("New donor").check()
            page.get_by_label("In-kind", exact=True).check()
        unlabelled = page.evaluate(UNLABELLED_JS)
        if unlabelled:
            problems.append((path, "unlabelled", unlabelled))
        if page.locator("h1").count() != 1:
            problems.append((path, "h1 count", page.locator("h1").count()))
        screenshot(page, f"page-{name}")
    assert not problems, problems
    assert not page.js_errors


def test_home_shows_totals_alerts_and_recent_gifts(page, context, live_server, org, records):
    viewer = make_user(org, Role.VIEWER)
    sign_in(context, viewer, live_server)
    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text(org.name)
    # Wattle Foundation gave $45,500 federal in 2027: 91% of the $50,000 cap (RED at 90%).
    alerts = page.locator("section[aria-labelledby=alerts]")
    expect(alerts.get_by_role("row").filter(has_text="$50,000.00")).to_contain_text("Wattle Foundation")
    expect(alerts.get_by_role("row").filter(has_text="$50,000.00")).to_contain_text("RED")
    # Over the $5,000 disclosure threshold: an open obligation, listed by due date.
    expect(alerts.get_by_role("row").filter(has_text="2027-03-21")).to_contain_text("Wattle Foundation")
    expect(page.locator("section[aria-labelledby=alerts]")).to_contain_text("$50,000.00")
    expect(page.locator("section[aria-labelledby=recent]")).to_contain_text("Harbour Builders Union")
    screenshot(page, "page-home-viewer")


def test_donor_list_is_paginated_and_searchable(page, context, live_server, org):
    for i in range(30):
        services.donor_create(organisation=org, actor=SYSTEM, first_name="Page", last_name=f"Person{i:02d}", email=f"p{i}@example.org")
    sign_in(context, make_user(org, Role.VIEWER), live_server)
    page.goto("/donors/")
    rows = page.locator("main table tbody tr")
    expect(rows).to_have_count(25)
    first_page = set(rows.all_inner_texts())
    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(5)
    assert not first_page & set(rows.all_inner_texts())
    page.get_by_role("link", name="← Newer").click()
    expect(rows).to_have_count(25)
    page.get_by_label("Search name, email or organisation").fill("person07")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Page Person07")


def test_other_pages_have_labels_too(page, context, live_server, org, records):
    """Sign-in pages, the organisation picker, and the pages other apps put in the frame."""
    from django.urls import NoReverseMatch, reverse

    problems = []
    for path in ["/login/", "/password-reset/"]:
        page.goto(path)
        if unlabelled := page.evaluate(UNLABELLED_JS):
            problems.append((path, unlabelled))
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server)
    paths = ["/orgs/"]
    for name, kwargs in [("recommendation-sets", {}), ("distribution-settings", {}), ("reports", {}),
                         ("recommendation-set-gifts", {"set_id": records.recommendation_set.id if records.recommendation_set else ""})]:
        try:
            paths.append(reverse(name, kwargs=kwargs))
        except NoReverseMatch:
            continue
    for path in paths:
        response = page.goto(path)
        if response.status != 200:
            problems.append((path, response.status))
        elif unlabelled := page.evaluate(UNLABELLED_JS):
            problems.append((path, unlabelled))
        screenshot(page, "page-" + path.strip("/").replace("/", "-")[:40])
    assert not problems, problems
