"""The public giving form in a real browser (Chromium via Playwright) against
pytest-django's live server, in all three amount modes: the live total, the
server's checks shown beside the fields, and the pledge stored at the end.
Screenshots go to artifacts/ (gitignored)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from recommendations import services
from recommendations.models import SplitGift
from tests.conftest import make_org
from tests.recommendations.conftest import SYSTEM, link

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"

# `make test` installs Debian's chromium first; a missing browser is a failure, not a skip.
pytestmark = [pytest.mark.django_db(transaction=True)]

DONOR = {
    "First name": "Alice", "Last name": "Ng", "Email": "alice@example.org", "Address": "1 River St",
    "Suburb": "Fitzroy", "State": "VIC", "Postcode": "3065",
}


@pytest.fixture
def browser(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM
    # calls stay synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 900, "height": 1300})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def setup(db):
    directing = make_org("Climate Collective")
    recipients = [make_org(name) for name in ("Riverbank Action Fund", "Coastal Climate", "Forest Futures")]
    links = [link(directing, r) for r in recipients]
    return directing, recipients, links


def make_set(directing, links, mode, amounts):
    return services.recommendation_set_create(
        organisation=directing, actor=SYSTEM, name=f"Climate distribution - {mode.title()}", amount_mode=mode,
        description="One gift, shared between three climate groups.",
        allocations=[{"recipient_org_account_link_id": x.id, "amount_cents": a} for x, a in zip(links, amounts)])


def fill_donor(page, **overrides):
    for label, value in {**DONOR, **overrides}.items():
        page.get_by_label(label, exact=True).fill(value)


def total(page) -> str:
    return page.locator("#total").inner_text()


def test_fixed_mode_amounts_are_locked(live_server, page, setup):
    directing, recipients, links = setup
    the_set = make_set(directing, links, "FIXED", (2500, 5000, 7500))
    page.goto(f"{live_server.url}/give/{the_set.id}")
    assert directing.name in page.content()
    # Recipients in the set's order, amounts as text, no inputs to change them.
    rows = page.locator(".amount-row").all_inner_texts()
    assert [r.split("\n")[0].strip() for r in rows] == [r.name for r in recipients]
    assert page.locator("input[data-amount]").count() == 0
    assert total(page) == "$150.00"
    fill_donor(page)
    page.screenshot(path=str(ARTIFACTS / "give-fixed-form.png"), full_page=True)
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#pledge-total")
    assert page.locator("#pledge-total").inner_text() == "$150.00"
    assert "No payment was taken" in page.content()
    page.screenshot(path=str(ARTIFACTS / "give-fixed-done.png"), full_page=True)
    pledge = SplitGift.objects.get()
    assert pledge.status == "PLEDGED" and pledge.total_cents == 15000 and pledge.donor_details["email"] == "alice@example.org"


def test_suggested_mode_prefilled_editable_with_a_live_total_and_server_checks(live_server, page, setup):
    directing, recipients, links = setup
    the_set = make_set(directing, links, "SUGGESTED", (2500, 5000, 7500))
    page.goto(f"{live_server.url}/give/{the_set.id}")
    fields = [page.get_by_label(r.name, exact=True) for r in recipients]
    assert [f.input_value() for f in fields] == ["25.00", "50.00", "75.00"]
    assert total(page) == "$150.00"
    fields[1].fill("10")
    assert total(page) == "$110.00"
    fields[2].fill("1,000.50")
    assert total(page) == "$1,035.50"
    fields[2].fill("abc")
    assert total(page) == "Check the amounts"
    # Under $1 is refused by the server, beside the field.
    fields[2].fill("0.50")
    fill_donor(page)
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#error-summary")
    assert "at least $1.00" in page.locator("#error-summary").inner_text()
    page.screenshot(path=str(ARTIFACTS / "give-suggested-error.png"), full_page=True)
    # The donor's entries survive the round trip; fix and send.
    assert page.get_by_label(recipients[1].name, exact=True).input_value() == "10"
    assert page.get_by_label("Email", exact=True).input_value() == "alice@example.org"
    page.get_by_label(recipients[2].name, exact=True).fill("0")
    assert total(page) == "$35.00"
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#pledge-total")
    assert page.locator("#pledge-total").inner_text() == "$35.00"
    page.screenshot(path=str(ARTIFACTS / "give-suggested-done.png"), full_page=True)
    pledge = SplitGift.objects.get()
    assert [(p.position, p.amount_cents) for p in pledge.parts.order_by("position")] == [(0, 2500), (1, 1000)]


def test_open_mode_the_donor_enters_every_amount(live_server, page, setup):
    directing, recipients, links = setup
    the_set = make_set(directing, links, "OPEN", (0, 0, 0))
    page.goto(f"{live_server.url}/give/{the_set.id}")
    fields = [page.get_by_label(r.name, exact=True) for r in recipients]
    assert [f.input_value() for f in fields] == ["", "", ""]
    assert total(page) == "$0.00"
    # Nothing entered, no details: the server lists every problem.
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#error-summary")
    summary = page.locator("#error-summary").inner_text()
    assert "First name is required" in summary
    fill_donor(page)
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#error-summary")
    assert "at least one recipient" in page.locator("#error-summary").inner_text()
    fields = [page.get_by_label(r.name, exact=True) for r in recipients]
    fields[0].fill("20")
    fields[2].fill("$5.25")
    assert total(page) == "$25.25"
    page.screenshot(path=str(ARTIFACTS / "give-open-form.png"), full_page=True)
    page.get_by_role("button", name="Pledge my gift").click()
    page.wait_for_selector("#pledge-total")
    assert page.locator("#pledge-total").inner_text() == "$25.25"
    pledge = SplitGift.objects.get()
    assert [(p.recipient_organisation_id, p.amount_cents) for p in pledge.parts.order_by("position")] == [
        (recipients[0].id, 2000), (recipients[2].id, 525)]


def test_a_closed_form_says_so(live_server, page, setup):
    directing, recipients, links = setup
    the_set = make_set(directing, links, "FIXED", (2500, 5000, 7500))
    services.recommendation_set_delete(organisation=directing, actor=SYSTEM, set_id=the_set.id)
    response = page.goto(f"{live_server.url}/give/{the_set.id}")
    assert response.status == 410
    assert "This giving form is closed." in page.content()
    assert page.get_by_role("button", name="Pledge my gift").count() == 0
