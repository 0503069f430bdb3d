"""The pages of this issue in Chromium: Settings → Payments (an ADMIN connects,
everyone sees Connected / Not connected) and the donor's /pay/<id> status page,
at desktop and phone widths (no sideways scrolling at 390 px)."""
from __future__ import annotations

import pytest
from django.test import Client

from organisations.models import Role
from payments.models import PaymentStatus
from tests.dashboard.conftest import SCREENSHOTS, browser, context, make_user, page, sign_in  # noqa: F401 - fixtures
from tests.payments.helpers import connect, make_form, pay, start_form_payment
from tests.support import stripe as fake_stripe

pytestmark = pytest.mark.django_db(transaction=True)


def _fits(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_admin_connects_stripe_and_a_viewer_sees_the_status(org, page, context, live_server, browser):
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server, org)
    page.goto("/settings/payments")
    assert page.locator("#stripe-connection").inner_text() == "Not connected"
    page.get_by_label("Stripe account id").fill("acct not valid")
    page.get_by_role("button", name="Connect").click()
    assert "acct_ followed by" in page.locator(".error").first.inner_text()
    page.get_by_label("Stripe account id").fill("acct_1PqRsTuVwXyZ")
    page.get_by_role("button", name="Connect").click()
    assert page.locator("#stripe-connection").inner_text() == "Connected"
    assert page.locator("#stripe-account").inner_text() == "acct_1PqRsTuVwXyZ"
    org.refresh_from_db()
    assert org.stripe_connected and org.stripe_account_id == "acct_1PqRsTuVwXyZ"
    _shot(page, "payments-settings-admin")
    _fits(page, 390)
    _shot(page, "payments-settings-admin-390")

    viewer = make_user(org, Role.VIEWER)
    viewer_context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 900})
    try:
        sign_in(viewer_context, viewer, live_server, org)
        viewer_page = viewer_context.new_page()
        viewer_page.goto("/settings/payments")
        assert viewer_page.locator("#stripe-connection").inner_text() == "Connected"
        assert viewer_page.get_by_label("Stripe account id").count() == 0
    finally:
        viewer_context.close()
    # The role is the server's rule, not the page's: a VIEWER's POST is refused.
    client = Client()
    client.force_login(viewer)
    assert client.post("/settings/payments", {"action": "disconnect"}).status_code == 403
    org.refresh_from_db()
    assert org.stripe_connected


def test_the_donors_status_page_after_paying_and_after_a_decline(org, page, localstripe):
    connect(org)
    form = make_form(org)
    paid = start_form_payment(org, form, 5000)
    pay(paid)
    page.goto(f"/pay/{paid.id}")
    assert page.locator("#pay-status").get_attribute("data-status") == PaymentStatus.SUCCEEDED
    assert page.locator("h1").inner_text() == "Thank you for your gift"
    assert page.locator("#pay-amount").inner_text() == "$50.00"
    _shot(page, "pay-status-succeeded")
    _fits(page, 390)
    _shot(page, "pay-status-succeeded-390")

    declined = start_form_payment(org, form, 2500)
    pay(declined, fake_stripe.DECLINED_CARD)
    page.goto(f"/pay/{declined.id}")
    assert page.locator("#pay-status").get_attribute("data-status") == PaymentStatus.FAILED
    assert fake_stripe.DECLINE_MESSAGE in page.locator("#pay-status").inner_text()
    assert page.get_by_role("link", name="Try again").get_attribute("href") == f"/donate/{form.slug}"
    _fits(page, 390)
    _shot(page, "pay-status-failed-390")
    assert page.goto("/pay/cm3doesnotexist00000000000").status == 404
