"""Staff journeys in real Chromium (Playwright) against the live server: what
people do in the dashboard every day, checked on the page and in the database.
Screenshots of the main pages land in artifacts/screenshots/ (not committed)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
import requests
from playwright.sync_api import expect

from compliance import services as compliance
from donations import services
from donations.models import BatchStatus, DepositBatch, Donation, Donor
from organisations.models import ApiKey, Role
from tests.dashboard.conftest import PASSWORD, make_user, screenshot, sign_in
from tests.dashboard.helpers import FED_CAP, SYSTEM

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("regime_rules")]

DAY = "2027-03-15"
D = dt.date.fromisoformat


def fed_code(org, code: str = "FED-GENERAL"):
    return compliance.revenue_code_create(organisation=org, actor=SYSTEM, code=code, jurisdiction="FEDERAL")


def compliance_total(page, donor_id: str, jurisdiction: str, period: str = DAY) -> str:
    """The donor page's compliance total for a jurisdiction, after choosing the period on the page."""
    page.goto(f"/donors/{donor_id}/")
    page.get_by_label("Period containing").fill(period)
    page.get_by_role("button", name="Show").click()
    row = page.locator(f"#compliance tr[data-jurisdiction={jurisdiction}]")
    if row.count() == 0:
        return "$0.00"
    return row.locator("td.agg-total").inner_text().strip()


def type_date(page, iso: str) -> None:
    """Type a date into the focused <input type=date> with the keyboard alone. The order of its
    parts follows the browser's own locale (headless Chromium: month first), so find it out first."""
    page.keyboard.type("01022003")
    month_first = page.evaluate("document.activeElement.value") == "2003-01-02"
    page.keyboard.press("Shift+Tab")  # Tab and Shift+Tab walk the date's own parts: back to the first
    page.keyboard.press("Shift+Tab")
    year, month, day = iso.split("-")
    page.keyboard.type(f"{month}{day}{year}" if month_first else f"{day}{month}{year}")


# --- sign in ---------------------------------------------------------------------------------

def test_sign_in_wrong_password_then_throttle(page, live_server, org):
    user = make_user(org, Role.EDITOR, name="Sid Signin")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    screenshot(page, "01-sign-in")

    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("correct email and password")
    expect(page.get_by_label("Email")).to_have_value(user.email)

    page.get_by_label("Email").fill(user.email.upper())  # the address as people type it
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(org.name)
    expect(page.locator("header.top")).to_contain_text(org.name)
    expect(page.locator("header.top")).to_contain_text("EDITOR")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You have signed out")
    page.get_by_role("link", name="Sign in again").click()
    expect(page).to_have_url(re.compile(r"/login/"))

    # Five failures lock the address out, even for the right password afterwards.
    for _ in range(4):  # one failure above already
        page.goto("/login/")
        page.get_by_label("Email").fill(user.email)
        page.get_by_label("Password").fill("still wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("correct email and password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    expect(page).to_have_url(re.compile(r"/login/"))


def test_member_of_two_picks_an_organisation(page, live_server, org, other_org):
    from organisations.services import membership_set

    user = make_user(org, Role.ADMIN)
    membership_set(organisation=other_org, user=user, role=Role.VIEWER)
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose an organisation")
    page.get_by_label(re.compile(re.escape(other_org.name))).check()
    page.get_by_role("button", name="Open").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(other_org.name)
    expect(page.locator("header.top")).to_contain_text("VIEWER")


# --- API keys --------------------------------------------------------------------------------

def test_create_read_key_call_whoami_then_revoke(page, context, live_server, org):
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server)
    page.goto("/settings/api")
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("Read").check()
    page.get_by_role("button", name="Create key").click()
    plaintext = page.locator("#new-key").inner_text().strip()
    assert plaintext.startswith("pc_"), plaintext
    screenshot(page, "09-api-keys")

    whoami = requests.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"}, timeout=10)
    assert whoami.status_code == 200, whoami.text
    body = whoami.json()
    assert body["scope"] == "READ"
    assert body["organisation_id"] == org.id

    # Shown once: a reload does not show it again.
    page.goto("/settings/api")
    expect(page.locator("#new-key")).to_have_count(0)
    assert plaintext not in page.content()
    row = page.get_by_role("row").filter(has_text="CRM sync")
    expect(row).to_contain_text("READ")
    expect(row).to_contain_text(admin.email)

    row.get_by_role("button", name="Revoke CRM sync").click()
    expect(page.locator(".messages")).to_contain_text("revoked")
    expect(page.get_by_role("row").filter(has_text="CRM sync")).to_contain_text("revoked")
    after = requests.get(f"{live_server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {plaintext}"}, timeout=10)
    assert after.status_code == 401, after.text
    assert ApiKey.objects.get(organisation=org, name="CRM sync").revoked_at is not None


# --- recording gifts ---------------------------------------------------------------------------

def test_cheque_and_in_kind_gifts_for_a_new_donor(page, context, live_server, org):
    editor = make_user(org, Role.EDITOR)
    fed_code(org)
    campaign = services.campaign_create(organisation=org, actor=SYSTEM, name="Autumn appeal")
    sign_in(context, editor, live_server)

    page.goto("/gifts/new")
    page.get_by_label("New donor").check()
    page.get_by_label("First name").fill("Kira")
    page.get_by_label("Last name").fill("Okafor")
    page.get_by_label("Email", exact=True).fill("kira.okafor@example.org")
    page.get_by_label("Cheque", exact=True).check()
    page.get_by_label("Amount (AUD)").fill("1,200")
    page.get_by_label("Date of the gift").fill(DAY)
    page.get_by_label("Cheque number / bank reference").fill("000451")
    page.get_by_label("Revenue code").fill("FED-GENERAL")
    page.get_by_label("Campaign", exact=True).select_option(label="Autumn appeal")  # not "UTM campaign"
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator(".messages")).to_contain_text("Recorded $1,200.00 from Kira Okafor")

    donor = Donor.objects.get(organisation=org, email="kira.okafor@example.org")
    cheque = Donation.objects.get(donor=donor)
    assert (cheque.amount_cents, cheque.payment_method, cheque.reference, cheque.jurisdiction, cheque.campaign_id) == (
        120_000, "CHEQUE", "000451", "FEDERAL", campaign.id)
    assert cheque.donation_date.isoformat() == DAY
    assert compliance_total(page, donor.id, "FEDERAL") == "$1,200.00"
    screenshot(page, "04-donor-detail")

    # The second gift: the donor now exists, picked by type-ahead.
    page.goto("/gifts/new")
    page.get_by_label("Find donor").fill("kira oka")
    page.locator("#donor-options .pick-donor").filter(has_text="kira.okafor@example.org").click()
    expect(page.locator("#donor-chosen")).to_contain_text("Chosen: Kira Okafor")
    expect(page.get_by_label("Amount (AUD)")).to_be_focused()
    page.get_by_label("In-kind", exact=True).check()
    expect(page.locator("#in-kind-fields")).to_be_visible()
    expect(page.locator("#cheque-fields")).to_be_hidden()
    page.get_by_label("In-kind category").select_option(label="Donated services")
    page.get_by_label("Description").fill("Printing of 5,000 flyers")
    page.get_by_label("How the value was set").fill("Printer's list price")
    page.get_by_label("Amount (AUD)").fill("300")
    page.get_by_label("Date of the gift").fill(DAY)
    page.get_by_label("Revenue code").fill("FED-GENERAL")
    screenshot(page, "03-gift-form-in-kind")
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator(".messages")).to_contain_text("Recorded $300.00 from Kira Okafor")

    in_kind = Donation.objects.get(donor=donor, donation_type="IN_KIND")
    assert (in_kind.amount_cents, in_kind.payment_method, in_kind.in_kind_category) == (30_000, None, "SERVICES")
    assert compliance_total(page, donor.id, "FEDERAL") == "$1,500.00"
    expect(page.locator("#compliance")).to_contain_text("$50,000.00")  # the cap
    expect(page.locator("#compliance tr[data-jurisdiction=FEDERAL]")).to_contain_text("$48,500.00")  # room left


def test_over_the_cap_is_refused_beside_the_amount(page, context, live_server, org):
    editor = make_user(org, Role.EDITOR)
    fed_code(org)
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Max", last_name="Capped", email="max@example.org")
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=FED_CAP - 100_000, donation_date=D("2027-02-01"),
                             donation_type="MONETARY", payment_method="BANK_TRANSFER", revenue_code="FED-GENERAL")
    stored = Donation.objects.filter(organisation=org).count()
    sign_in(context, editor, live_server)

    page.goto(f"/gifts/new?donor={donor.id}&revenue_code=FED-GENERAL&donation_date={DAY}")
    expect(page.locator("#donor-chosen")).to_contain_text("Chosen: Max Capped")
    hint = page.locator("#cap-room")
    expect(hint).to_contain_text("$1,000.00 of $50,000.00 left")
    expect(hint).not_to_contain_text("over the cap")
    # The hint follows the typing (htmx), before anything is saved.
    page.get_by_label("Amount (AUD)").press_sequentially("2000", delay=30)
    expect(hint).to_contain_text("This amount is over the cap")
    screenshot(page, "02-gift-form-over-cap")
    page.get_by_label("Amount (AUD)").fill("900")
    expect(hint).not_to_contain_text("over the cap")
    page.get_by_label("Amount (AUD)").fill("2,000")
    expect(hint).to_contain_text("over the cap")

    page.get_by_role("button", name="Save gift").click()
    error = page.locator("#id_amount_error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("cap")
    expect(error).to_contain_text("$1,000.00")
    # Beside the field: inside the amount's own field block, and tied to the input for screen readers.
    expect(page.locator(".field", has=page.locator("#id_amount")).locator(".error")).to_contain_text("$1,000.00")
    described = page.get_by_label("Amount (AUD)").get_attribute("aria-describedby") or ""
    assert "id_amount_error" in described.split(), described
    expect(page.get_by_label("Amount (AUD)")).to_have_value("2,000")
    assert Donation.objects.filter(organisation=org).count() == stored

    # The API says the same words.
    from tests.conftest import make_key

    api = requests.post(f"{live_server.url}/api/v1/donations", timeout=10,
                        headers={"Authorization": f"Bearer {make_key(org, 'WRITE')}"},
                        json={"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 200_000, "donation_date": DAY,
                              "revenue_code": "FED-GENERAL", "payment_method": "CHEQUE"})
    assert api.status_code == 400
    assert api.json()["error"]["message"] == error.inner_text().strip()
    assert Donation.objects.filter(organisation=org).count() == stored


def test_gift_form_by_keyboard_keeps_campaign_code_and_date(page, context, live_server, org):
    editor = make_user(org, Role.EDITOR)
    fed_code(org)
    campaign = services.campaign_create(organisation=org, actor=SYSTEM, name="Keyboard drive")
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Tab", last_name="Enterprise", email="tab@example.org")
    sign_in(context, editor, live_server)

    page.goto("/gifts/new")
    expect(page.locator("#donor-search")).to_be_focused()
    # Enter in the search picks the first match; it never sends a gift without a donor.
    page.keyboard.type("enterprise")
    expect(page.locator("#donor-options .pick-donor")).to_have_count(1)
    page.keyboard.press("Enter")
    expect(page.locator("#donor-chosen")).to_contain_text("Chosen: Tab Enterprise")
    assert not Donation.objects.filter(donor=donor).exists()
    page.keyboard.press("Shift+Tab")  # from the amount, back through the radios to the search box
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#donor-search")).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type("enterprise")
    expect(page.locator("#donor-options .pick-donor")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(page.locator("#donor-options .pick-donor")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#donor-chosen")).to_contain_text("Chosen: Tab Enterprise")
    expect(page.locator("#id_amount")).to_be_focused()
    page.keyboard.type("250")
    page.keyboard.press("Tab")
    expect(page.locator("#id_donation_date")).to_be_focused()
    type_date(page, DAY)
    expect(page.locator("#id_donation_date")).to_have_value(DAY)
    for _ in range(3):  # Tab walks the date's parts, then leaves it
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") != "id_donation_date":
            break
    expect(page.locator("#id_reference")).to_be_focused()
    page.keyboard.type("000777")
    page.keyboard.press("Tab")
    expect(page.locator("#id_revenue_code")).to_be_focused()
    page.keyboard.type("FED-GENERAL")
    page.keyboard.press("Tab")
    expect(page.locator("#id_campaign")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#id_campaign")).to_have_value(campaign.id)
    page.keyboard.press("Tab")
    expect(page.locator("#id_notes")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save gift")).to_be_focused()
    expect(page.get_by_label("UTM campaign")).to_be_hidden()  # source tracking: collapsed, after Save
    page.keyboard.press("Enter")

    expect(page.locator(".messages")).to_contain_text("Recorded $250.00 from Tab Enterprise")
    gift = Donation.objects.get(donor=donor)
    assert (gift.amount_cents, gift.payment_method, gift.reference, gift.revenue_code, gift.campaign_id) == (
        25_000, "CHEQUE", "000777", "FED-GENERAL", campaign.id)
    assert gift.donation_date.isoformat() == DAY
    # Ready for the next gift: campaign, code and date kept; donor and amount cleared; focus in the donor search.
    expect(page.locator("#id_campaign")).to_have_value(campaign.id)
    expect(page.locator("#id_revenue_code")).to_have_value("FED-GENERAL")
    expect(page.locator("#id_donation_date")).to_have_value(DAY)
    expect(page.locator("#id_amount")).to_have_value("")
    expect(page.locator("input[name=donor]")).to_have_value("")
    expect(page.locator("#donor-search")).to_be_focused()


# --- batches -----------------------------------------------------------------------------------

def _fill_batch(page, reference: str, count: int, total: str, rows: list[tuple[str, str, str]]):
    page.goto("/batches/new")
    page.get_by_label("Deposit reference").fill(reference)
    page.get_by_label("Deposit date").fill("2027-04-01")
    page.get_by_label("Number of gifts (control)").fill(str(count))
    page.get_by_label("Total amount (control, AUD)").fill(total)
    for i, (donor, amount, cheque) in enumerate(rows, start=1):
        page.get_by_label(f"Donor (email or id) row {i}", exact=True).fill(donor)
        page.get_by_label(f"Amount row {i}", exact=True).fill(amount)
        page.get_by_label(f"Cheque no. row {i}", exact=True).fill(cheque)


def test_post_a_matching_batch_and_refuse_a_mismatched_one(page, context, live_server, org):
    editor = make_user(org, Role.EDITOR)
    a = services.donor_create(organisation=org, actor=SYSTEM, first_name="Bea", last_name="Batch", email="bea@example.org")
    b = services.donor_create(organisation=org, actor=SYSTEM, first_name="Cal", last_name="Cheque", email="cal@example.org")
    sign_in(context, editor, live_server)

    _fill_batch(page, "DEP-MISMATCH", 2, "999.00", [("bea@example.org", "100", "1001"), ("cal@example.org", "200", "1002")])
    page.get_by_role("button", name="Post batch").click()
    expect(page.locator(".messages .error")).to_contain_text("Not posted")
    bad = DepositBatch.objects.get(organisation=org, reference="DEP-MISMATCH")
    assert bad.status == BatchStatus.DRAFT
    expect(page.get_by_role("heading", level=1)).to_contain_text("DRAFT")
    assert not Donation.objects.filter(organisation=org).exists()

    _fill_batch(page, "DEP-0401", 2, "300.00", [("bea@example.org", "100", "1001"), (b.id, "200", "1002")])
    screenshot(page, "05-batch-entry")
    page.get_by_role("button", name="Post batch").click()
    expect(page.locator(".messages")).to_contain_text("Batch DEP-0401 posted: 2 gift(s).")
    expect(page.get_by_role("heading", level=1)).to_contain_text("POSTED")
    good = DepositBatch.objects.get(organisation=org, reference="DEP-0401")
    assert good.status == BatchStatus.POSTED
    gifts = Donation.objects.filter(organisation=org).order_by("amount_cents")
    assert [(g.donor_id, g.amount_cents, g.payment_method, g.reference) for g in gifts] == [
        (a.id, 10_000, "CHEQUE", "1001"), (b.id, 20_000, "CHEQUE", "1002")]
    page.goto("/batches/")
    expect(page.get_by_role("row").filter(has_text="DEP-0401")).to_contain_text("POSTED")
    expect(page.get_by_role("row").filter(has_text="DEP-MISMATCH")).to_contain_text("DRAFT")


# --- compliance --------------------------------------------------------------------------------

def test_map_a_revenue_code_and_see_the_totals_move(page, context, live_server, org):
    admin = make_user(org, Role.ADMIN)
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Remy", last_name="Remap", email="remy@example.org")
    # A code first seen on a gift joins the library unreviewed, counted toward the default (FEDERAL).
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=150_000, donation_date=D(DAY),
                             donation_type="MONETARY", payment_method="CASH", revenue_code="STATE-DINNER")
    sign_in(context, admin, live_server)
    assert compliance_total(page, donor.id, "FEDERAL") == "$1,500.00"
    assert compliance_total(page, donor.id, "NSW") == "$0.00"

    page.goto("/settings/compliance/revenue-codes")
    row = page.locator("#codes tr[data-code=STATE-DINNER]")
    expect(row).to_contain_text("unreviewed")
    row.get_by_label("Jurisdiction for STATE-DINNER").select_option("NSW")
    row.get_by_role("button", name="Map").click()
    expect(page.locator(".messages")).to_contain_text("STATE-DINNER now counts toward NSW")
    screenshot(page, "08-revenue-codes")

    assert compliance_total(page, donor.id, "NSW") == "$1,500.00"
    assert compliance_total(page, donor.id, "FEDERAL") == "$0.00"
    assert Donation.objects.get(donor=donor).jurisdiction == "NSW"
    page.goto("/settings/compliance/revenue-codes")
    expect(page.locator("#codes tr[data-code=STATE-DINNER]")).not_to_contain_text("unreviewed")
    expect(page.get_by_role("row").filter(has_text="STATE-DINNER remapped")).to_contain_text("COMPLETED")


# --- sandbox -----------------------------------------------------------------------------------

def test_switch_to_sandbox_shows_no_live_data_and_back(page, context, live_server, org):
    admin = make_user(org, Role.ADMIN)
    services.donor_create(organisation=org, actor=SYSTEM, first_name="Liv", last_name="Live", email="liv@example.org")
    services.donor_create(organisation=org.sandbox, actor=SYSTEM, first_name="Sandy", last_name="Test", email="sandy@example.org")
    sign_in(context, admin, live_server)

    page.goto("/donors/")
    expect(page.get_by_role("link", name="Liv Live")).to_be_visible()
    expect(page.locator(".banner-sandbox")).to_have_count(0)
    page.get_by_role("button", name="Switch to sandbox").click()
    expect(page).to_have_url(re.compile(r"/donors/$"))
    expect(page.locator(".banner-sandbox")).to_contain_text("Sandbox")
    expect(page.get_by_role("link", name="Liv Live")).to_have_count(0)
    expect(page.get_by_role("link", name="Sandy Test")).to_be_visible()
    page.goto("/")
    expect(page.locator(".banner-sandbox")).to_be_visible()  # persistent, on every page
    screenshot(page, "10-sandbox-home")
    page.goto("/settings/api")
    expect(page.locator(".banner-sandbox")).to_be_visible()
    expect(page.locator("main")).to_contain_text("(sandbox)")

    page.get_by_role("button", name="Switch to live").click()
    expect(page.locator(".banner-sandbox")).to_have_count(0)
    page.goto("/donors/")
    expect(page.get_by_role("link", name="Liv Live")).to_be_visible()
    expect(page.get_by_role("link", name="Sandy Test")).to_have_count(0)


# --- roles -------------------------------------------------------------------------------------

def test_viewer_sees_no_write_buttons_and_is_denied_the_key_page(page, context, live_server, org):
    viewer = make_user(org, Role.VIEWER)
    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Vic", last_name="Viewed", email="vic@example.org")
    gift = services.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=5_000, donation_date=D(DAY),
                                    donation_type="MONETARY", payment_method="CASH")
    campaign = services.campaign_create(organisation=org, actor=SYSTEM, name="Read-only appeal")
    draft = services.batch_save_draft(organisation=org, actor=SYSTEM, reference="DEP-VIEW", deposit_date=D(DAY), control_count=1,
                                      control_total_cents=5_000, rows=[{"donor_id": donor.id, "amount_cents": 5_000}])
    sign_in(context, viewer, live_server)

    response = page.goto("/settings/api")
    assert response.status == 403
    for path in ["/", "/donors/", f"/donors/{donor.id}/", "/donations/", f"/donations/{gift.id}/", "/batches/", "/campaigns/",
                 f"/campaigns/{campaign.id}/", f"/batches/{draft.id}/", "/donors/duplicates", "/settings/compliance/revenue-codes",
                 "/settings/compliance/obligations", "/settings/compliance"]:
        response = page.goto(path)
        assert response.status == 200, path
        main_and_nav = page.locator("body")
        expect(main_and_nav.get_by_role("link", name="Record a gift")).to_have_count(0)
        for name in ["New batch", "New campaign", "Add donor", "Edit", "Save changes", "Void donation", "Record refund",
                     "Save campaign", "Map", "Archive", "Add code", "Save settings", "Keep A", "Post batch", "Save draft"]:
            expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
            expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
        assert page.locator("main form[method=post]").count() == 0, path
    screenshot(page, "11-viewer-compliance-settings")
    for path in ["/gifts/new", "/donors/new", f"/donors/{donor.id}/edit", "/batches/new", "/campaigns/new"]:
        assert page.goto(path).status == 403, path


def test_new_donor_with_a_known_email_is_offered_the_existing_one(page, context, live_server, org):
    existing = services.donor_create(organisation=org, actor=SYSTEM, first_name="Kira", last_name="Okafor", email="kira@example.org")
    sign_in(context, make_user(org, Role.EDITOR), live_server)
    page.goto("/gifts/new")
    page.get_by_label("New donor").check()
    page.get_by_label("Email", exact=True).fill("kira@example.org")
    page.get_by_label("Cash", exact=True).check()
    page.get_by_label("Amount (AUD)").fill("20")
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator("#id_new_email_error")).to_contain_text("already exists")
    page.get_by_role("button", name="Use Kira Okafor · kira@example.org").click()
    expect(page.locator("#donor-chosen")).to_contain_text("Chosen: Kira Okafor")
    expect(page.get_by_label("New donor")).not_to_be_checked()
    expect(page.get_by_label("Amount (AUD)")).to_have_value("20")  # nothing typed is lost
    page.get_by_role("button", name="Save gift").click()
    expect(page.locator(".messages")).to_contain_text("Recorded $20.00 from Kira Okafor")
    assert Donation.objects.get(organisation=org).donor_id == existing.id
    assert Donor.objects.filter(organisation=org).count() == 1
