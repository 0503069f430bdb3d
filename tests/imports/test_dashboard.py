"""Donors → Import in the dashboard: roles, tenancy, and the whole flow in Chromium."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from donations.models import Donation
from organisations.models import Role
from tests.conftest import make_org
from tests.dashboard.conftest import (  # noqa: F401 - fixtures
    browser, client_as, context, make_user, page, regime_rules, screenshot, sign_in,
)
from tests.support.tenant_guard import guard_requests

REAL_TASKS = True
CSV = ("First name,Surname,Email address,Gift amount,Date,External ID\n"
       "Ann,Lee,ann@example.org,\"$1,234.50\",01/03/2025,X-1\n"
       "Bob,Ray,bob@example.org,$20,2/3/2025,X-2\n"
       "Cat,Nil,cat@example.org,lots,3/3/2025,X-3\n").encode()


@pytest.fixture(autouse=True)
def _guard():
    with guard_requests():
        yield


@pytest.mark.django_db(transaction=True)  # the dry run and the commit are enqueued on commit (run inline here)
def test_roles_and_tenancy(org):
    viewer = client_as(make_user(org, Role.VIEWER), organisation=org)
    assert viewer.get("/donors/import").status_code == 403
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    assert editor.get("/donors/import").status_code == 200
    response = editor.post("/donors/import", {"file": SimpleUploadedFile("gifts.csv", CSV)})
    assert response.status_code == 302
    detail = response["Location"]
    page_text = editor.get(detail).content.decode()
    assert "READY" in page_text and "CREATE_GIFT" in page_text and "INVALID" in page_text
    other = make_org("Other")
    stranger = client_as(make_user(other, Role.ADMIN), organisation=other)
    assert stranger.get(detail).status_code == 404
    assert stranger.post(detail, {"action": "commit"}).status_code == 404
    bad = editor.post("/donors/import", {"file": SimpleUploadedFile("gifts.xlsx", b"not a workbook")})
    assert bad.status_code == 400 and "not an Excel workbook" in bad.content.decode()
    assert editor.post(detail, {"action": "commit"}).status_code == 302
    assert Donation.objects.filter(organisation=org).count() == 2


def test_import_flow_in_chromium(page, context, live_server, regime_rules, tmp_path):
    from organisations.services import organisation_create

    org = organisation_create(name="Riverbank Import", slug="riverbank-import-flow")
    user = make_user(org, Role.EDITOR)
    sign_in(context, user, live_server, org)
    page.goto("/donors/")
    page.get_by_role("link", name="Import", exact=True).click()
    path = tmp_path / "gifts.csv"
    path.write_bytes(CSV)
    page.set_input_files("input[type=file]", str(path))
    page.get_by_role("button", name="Upload and check").click()
    page.wait_for_selector("[data-status=READY]")
    assert page.get_by_label("Gift amount").input_value() == "amount"
    assert page.get_by_label("External ID").input_value() == "gift_external_id"
    page.get_by_role("link", name="INVALID").click()
    assert "lots" in page.content() or "amount" in page.locator("table").inner_text()
    screenshot(page, "imports-dry-run")
    page.get_by_role("button", name="Commit this import").click()
    page.wait_for_selector("[data-status=COMPLETED]")
    assert page.locator("progress").get_attribute("value") == "100"
    screenshot(page, "imports-completed")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "imports-completed-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the result file (CSV)").click()
    text = open(download.value.path(), encoding="utf-8-sig").read()
    assert "CREATE_GIFT" in text and "INVALID" in text
    assert Donation.objects.filter(organisation=org).count() == 2
