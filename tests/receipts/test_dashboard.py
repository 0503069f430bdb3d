"""Receipts in the dashboard: Settings → Receipts (ADMIN), Finance → Receipts
(register, bulk runs), the gift's and the donor's receipts, PDFs; tenancy and
roles; Chromium screenshots at desktop and 390 px."""
from __future__ import annotations

import datetime as dt

import pytest

from organisations.models import Role
from receipts.models import Receipt, ReceiptRun, ReceiptSettings
from tests.conftest import make_org
from tests.dashboard.conftest import (  # noqa: F401 - fixtures
    SCREENSHOTS, _dashboard_settings, browser, client_as, context, make_user, page, sign_in,
)
from tests.receipts.conftest import make_donor, pdf_text, record, set_up_receipts
from tests.support.tenant_guard import guard_requests


@pytest.fixture(autouse=True)
def _tenant_guard():
    with guard_requests():
        yield


SETTINGS_POST = {
    "legal_name": "Riverbank Action Incorporated", "fund_name": "", "abn": "51 824 753 556", "address": "12 Riverbank Road",
    "signatory_name": "Jo Treasurer", "signatory_title": "Treasurer", "deductibility": "DGR", "mode": "ON_RECORD",
    "wording": "Thank you.", "email_subject": "", "email_body": "",
}


@pytest.mark.django_db
def test_settings_are_for_admins_and_check_the_abn(org):
    assert client_as(make_user(org, Role.EDITOR), organisation=org).get("/settings/receipts").status_code == 403
    admin = client_as(make_user(org, Role.ADMIN), organisation=org)
    page = admin.get("/settings/receipts")
    assert page.status_code == 200 and b"Receipts are not set up yet" in page.content
    bad = admin.post("/settings/receipts", {**SETTINGS_POST, "abn": "51 824 753 557"})
    assert bad.status_code == 400 and b"not a valid ABN" in bad.content
    assert not ReceiptSettings.objects.filter(organisation=org).exists()
    assert admin.post("/settings/receipts", SETTINGS_POST).status_code == 302
    saved = ReceiptSettings.objects.get(organisation=org)
    assert (saved.abn, saved.deductibility, saved.mode) == ("51824753556", "DGR", "ON_RECORD")


@pytest.mark.django_db
def test_gift_and_donor_fragments_download_and_statement(org, django_capture_on_commit_callbacks):
    set_up_receipts(org)
    donor = make_donor(org, email="frag@example.com")
    gift = record(org, donor, django_capture_on_commit_callbacks, amount_cents=2500, donation_date=dt.date(2025, 9, 1))
    receipt = Receipt.objects.get(donation=gift)
    viewer = client_as(make_user(org, Role.VIEWER), organisation=org)
    fragment = viewer.get(f"/receipts/donation/{gift.id}").content.decode()
    assert f"Receipt <strong>{receipt.number}</strong>" in fragment and f"/receipts/{receipt.id}.pdf" in fragment
    assert "Withdraw receipt" not in fragment  # a viewer has no actions
    assert viewer.post(f"/receipts/donation/{gift.id}", {"action": "resend"}).status_code == 403
    download = viewer.get(f"/receipts/{receipt.id}.pdf")
    assert download["Content-Type"] == "application/pdf" and bytes(download.content) == bytes(receipt.pdf)
    donor_fragment = viewer.get(f"/receipts/donor/{donor.id}").content.decode()
    assert f"/receipts/donor/{donor.id}/statement?year=2025" in donor_fragment and "2025-26" in donor_fragment
    statement = viewer.get(f"/receipts/donor/{donor.id}/statement?year=2025")
    assert statement.status_code == 200 and "$25.00" in pdf_text(statement.content)
    assert f"/receipts/donation/{gift.id}" in viewer.get(f"/donations/{gift.id}/").content.decode()
    # An editor withdraws it with a reason, then issues a new one.
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    response = editor.post(f"/receipts/donation/{gift.id}", {"action": "withdraw", "reason": "issued in error"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Receipt 1 withdrawn" not in response.content.decode()
    receipt.refresh_from_db()
    assert receipt.status == "WITHDRAWN" and receipt.withdraw_reason == "issued in error"
    with django_capture_on_commit_callbacks(execute=True):
        editor.post(f"/receipts/donation/{gift.id}", {"action": "issue"})
    assert Receipt.objects.get(donation=gift, status="ISSUED").number == 2


@pytest.mark.django_db
def test_another_organisations_receipts_are_404(org, django_capture_on_commit_callbacks):
    set_up_receipts(org)
    donor = make_donor(org)
    gift = record(org, donor, django_capture_on_commit_callbacks)
    receipt = Receipt.objects.get(donation=gift)
    other = make_org("Other")
    stranger = client_as(make_user(other, Role.ADMIN), organisation=other)
    for url in (f"/receipts/{receipt.id}.pdf", f"/receipts/donation/{gift.id}", f"/receipts/donor/{donor.id}",
                f"/receipts/donor/{donor.id}/statement?year=2025"):
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(f"/receipts/donation/{gift.id}", {"action": "issue"}).status_code == 404


@pytest.mark.django_db
def test_finance_page_runs_a_bulk_issue(org, django_capture_on_commit_callbacks):
    set_up_receipts(org, mode="BATCH")
    donor = make_donor(org)
    for i in range(3):
        record(org, donor, django_capture_on_commit_callbacks, amount_cents=1000 + i)
    viewer = client_as(make_user(org, Role.VIEWER), organisation=org)
    page = viewer.get("/finance/receipts").content.decode()
    assert '<strong id="waiting-count">3</strong>' in page
    assert viewer.post("/finance/receipts", {"date_from": "2026-01-01", "date_to": "2026-06-30"}).status_code == 403
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    with django_capture_on_commit_callbacks(execute=True):
        assert editor.post("/finance/receipts", {"date_from": "2026-01-01", "date_to": "2026-06-30"}).status_code == 302
    run = ReceiptRun.objects.get(organisation=org)
    assert (run.status, run.total, run.issued) == ("DONE", 3, 3)
    progress = editor.get(f"/finance/receipts/runs/{run.id}").content.decode()
    assert "DONE" in progress and "3 of 3" in progress and 'hx-trigger' not in progress
    register = editor.get("/finance/receipts").content.decode()
    assert register.count("/receipts/") >= 3


# --- Chromium ---------------------------------------------------------------------------------

def _shot(page, name):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _fits(page, width):
    page.set_viewport_size({"width": width, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"


@pytest.mark.django_db(transaction=True)
def test_settings_and_a_receipt_download_in_chromium(org, page, context, live_server, tmp_path):
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server, org)
    page.goto("/settings/receipts")
    page.get_by_label("Legal name").fill("Riverbank Action Incorporated")
    page.get_by_label("ABN").fill("51 824 753 557")
    page.get_by_label("Gift to a registered political party or candidate (Subdivision 30-DA)").check()
    page.get_by_role("button", name="Save receipt settings").click()
    page.get_by_text("not a valid ABN").wait_for()
    page.get_by_label("ABN").fill("51 824 753 556")
    page.get_by_label("Address").fill("12 Riverbank Road\nAbbotsford VIC 3067")
    page.get_by_label("Signatory name").fill("Jo Treasurer")
    page.get_by_role("button", name="Save receipt settings").click()
    page.get_by_text("Receipt settings saved").wait_for()
    _shot(page, "receipts-settings")
    _fits(page, 390)
    _shot(page, "receipts-settings-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    donor = make_donor(org, first_name="Dana", last_name="Download", email="dana@example.org")
    from donations import services as donations
    from tests.receipts.conftest import ACTOR

    gift = donations.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                     amount_cents=8800, donation_date=dt.date(2026, 3, 2), payment_method="CARD")
    receipt = Receipt.objects.get(donation=gift)  # issued on commit (Celery inline here)
    page.goto(f"/donations/{gift.id}/")
    page.locator("#receipt-standing").wait_for()
    with page.expect_download() as info:
        page.locator("#receipt-download").click()
    path = tmp_path / "receipt.pdf"
    info.value.save_as(path)
    assert info.value.suggested_filename == f"receipt-{receipt.number}.pdf"
    text = " ".join(pdf_text(path.read_bytes()).split())
    assert "Dana Download" in text and "$88.00" in text and "ABN 51 824 753 556" in text
    _shot(page, "receipts-gift-page")
    page.set_viewport_size({"width": 390, "height": 900})
    wide = page.evaluate("""[...document.querySelectorAll('#donation-receipts-slot *')]
        .filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > document.documentElement.clientWidth)
        .map(e => e.tagName + '#' + e.id)""")
    assert wide == [], wide
    _shot(page, "receipts-gift-page-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/finance/receipts")
    page.locator("#receipts-register").wait_for()
    _shot(page, "receipts-finance")
