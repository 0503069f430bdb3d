"""The dashboard's Recurring pages (issue 17, item 5): `/recurring` (plans, filters,
monthly recurring revenue), a plan's page (its gifts, history and actions through
payments.recurring), the donor page's plans and *New manual plan*, VIEWER reading
only; the demo's plans. Chromium at desktop and 390 px, screenshots in
artifacts/screenshots/recurring-*.png."""
from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.core import mail

from donations.models import Donation
from organisations.models import Role
from payments import billing, recurring
from payments.models import PlanStatus, RecurringPlan
from payments.selectors import plan_mrr
from tests.dashboard.conftest import SCREENSHOTS, browser, client_as, context, make_user, page, sign_in  # noqa: F401 - fixtures
from tests.conftest import make_org
from tests.recurring.helpers import SYSTEM, card_plan, connect, make_donor
from tests.support.tenant_guard import guard_requests
from together.demo import DEMO_STEPS, DemoContext, discover_steps

ACTIONS = ("pause", "resume", "cancel", "amount", "next_date", "resend_link", "confirm_gift", "miss_gift")


@pytest.fixture(autouse=True)
def _tenant_guard():
    """Every request here runs under the second tenancy guard (an unscoped tenant query fails)."""
    with guard_requests():
        yield


def today(org) -> dt.date:
    return recurring.organisation_today(org)


def manual(org, donor, amount_cents: int, frequency: str = "MONTHLY", *, start: dt.date | None = None, **fields) -> RecurringPlan:
    return recurring.plan_create(organisation=org, actor=SYSTEM, donor_id=donor.id, amount_cents=amount_cents,
                                 frequency=frequency, payment_method="MANUAL", start_date=start or today(org), **fields)


def mixed_plans(org) -> dict[str, RecurringPlan]:
    """One ACTIVE plan per frequency, plus a PAUSED and a CANCELED one (not counted in MRR)."""
    donors = {name: make_donor(org, first_name=name, last_name="Giver", email=f"{name.lower()}@example.org")
              for name in ("Wendy", "Fred", "Molly", "Quentin", "Anna", "Paula", "Carl")}
    day = today(org)
    plans = {
        "weekly": manual(org, donors["Wendy"], 1_000, "WEEKLY"),
        "fortnightly": manual(org, donors["Fred"], 1_200, "FORTNIGHTLY", start=day + dt.timedelta(days=20)),
        "monthly": manual(org, donors["Molly"], 2_500, "MONTHLY", start=day + dt.timedelta(days=40)),
        "quarterly": manual(org, donors["Quentin"], 3_000, "QUARTERLY", start=day + dt.timedelta(days=60)),
        "annually": manual(org, donors["Anna"], 12_000, "ANNUALLY", start=day + dt.timedelta(days=90)),
        "paused": manual(org, donors["Paula"], 99_900, "MONTHLY"),
        "canceled": manual(org, donors["Carl"], 50_000, "WEEKLY"),
    }
    recurring.plan_pause(organisation=org, actor=SYSTEM, plan_id=plans["paused"].id)
    recurring.plan_cancel(organisation=org, actor=SYSTEM, plan_id=plans["canceled"].id)
    return plans


# Yearly: 1000×52 + 1200×26 + 2500×12 + 3000×4 + 12000×1 = 137,200 cents → 11,433.33 a month.
MRR_CENTS = 11_433


# --- the selector ----------------------------------------------------------------------------

@pytest.mark.django_db
def test_monthly_recurring_revenue_normalises_each_active_plan_to_a_month(org, other_org):
    mixed_plans(org)
    manual(other_org, make_donor(other_org, email="else@example.org"), 500_000)  # another organisation's: not ours
    [mrr] = plan_mrr(organisation=org)
    assert (mrr["currency"], mrr["mrr_cents"], mrr["plans"]) == ("AUD", MRR_CENTS, 5)
    by = {f["frequency"]: (f["plans"], f["amount_cents"], f["mrr_cents"]) for f in mrr["by_frequency"]}
    assert by == {"WEEKLY": (1, 1_000, 4_333), "FORTNIGHTLY": (1, 1_200, 2_600), "MONTHLY": (1, 2_500, 2_500),
                  "QUARTERLY": (1, 3_000, 1_000), "ANNUALLY": (1, 12_000, 1_000)}
    # The total is rounded once: 52,000/12 + 31,200/12 + ... = 11,433 (not the sum of rounded parts plus drift).
    assert sum(RecurringPlan.objects.get(pk=p.pk).monthly_cents for p in RecurringPlan.objects.filter(organisation=org, status="ACTIVE")) == MRR_CENTS
    assert plan_mrr(organisation=make_org("Empty")) == []


# --- the pages through the test client ------------------------------------------------------

@pytest.mark.django_db
def test_the_list_filters_by_status_frequency_and_next_bill_window(org):
    plans = mixed_plans(org)
    client = client_as(make_user(org, Role.VIEWER), organisation=org)

    def listed(query: str = "") -> set[str]:
        response = client.get("/recurring" + query)
        assert response.status_code == 200
        return set(re.findall(r'data-plan="(\w+)"', response.content.decode()))

    assert listed() == {p.id for p in plans.values()}
    assert listed("?status=PAUSED") == {plans["paused"].id}
    assert listed("?frequency=WEEKLY") == {plans["weekly"].id, plans["canceled"].id}
    assert listed("?frequency=WEEKLY&status=ACTIVE") == {plans["weekly"].id}
    day = today(org)
    window = f"?next_bill_date[gte]={day + dt.timedelta(days=15)}&next_bill_date[lte]={day + dt.timedelta(days=45)}"
    assert listed(window) == {plans["fortnightly"].id, plans["monthly"].id}
    assert listed(f"?donor_id={plans['annually'].donor_id}") == {plans["annually"].id}
    body = client.get("/recurring").content.decode()
    assert "$114.33" in body  # the MRR card
    # Keyset pages like the other lists: 3 a page, newest first, then older.
    first = client.get("/recurring?limit=3").content.decode()
    assert len(re.findall(r'data-plan="', first)) == 3 and "Older" in first
    bad = client.get("/recurring?status=NOPE")
    assert bad.status_code == 200 and "status:" in bad.content.decode()


@pytest.mark.django_db
def test_a_viewer_reads_but_has_no_actions_and_every_post_is_403(org):
    plans = mixed_plans(org)
    plan = plans["weekly"]
    viewer = client_as(make_user(org, Role.VIEWER), organisation=org)
    page_html = viewer.get(f"/recurring/{plan.id}").content.decode()
    assert plan.donor.display_name in page_html and 'id="plan-facts"' in page_html
    for control in ('value="pause"', 'value="resume"', 'value="cancel"', 'value="amount"', 'value="next_date"',
                    'value="resend_link"', "Change amount", "Resend management link"):
        assert control not in page_html
    fragment = viewer.get(f"/recurring/donor/{plan.donor_id}/fragment").content.decode()
    assert plan.id in fragment and "manual-plan-form" not in fragment
    for action in ACTIONS:
        assert viewer.post(f"/recurring/{plan.id}", {"action": action, "amount": "5", "next_bill_date": "2030-01-01"}).status_code == 403
    assert viewer.post(f"/recurring/donor/{plan.donor_id}/fragment",
                       {"amount": "5", "frequency": "MONTHLY", "start_date": today(org).isoformat()}).status_code == 403
    plan.refresh_from_db()
    assert (plan.status, plan.amount_cents) == ("ACTIVE", 1_000)
    assert RecurringPlan.objects.filter(organisation=org).count() == len(plans)


@pytest.mark.django_db
def test_another_organisations_plan_and_donor_are_404(org, other_org):
    theirs = manual(other_org, make_donor(other_org, email="theirs@example.org"), 4_200)
    admin = client_as(make_user(org, Role.ADMIN), organisation=org)
    assert admin.get(f"/recurring/{theirs.id}").status_code == 404
    assert admin.post(f"/recurring/{theirs.id}", {"action": "cancel"}).status_code == 404
    assert admin.get(f"/recurring/donor/{theirs.donor_id}/fragment").status_code == 404
    assert admin.post(f"/recurring/donor/{theirs.donor_id}/fragment", {"amount": "5", "frequency": "MONTHLY",
                                                                      "start_date": today(org).isoformat()}).status_code == 404
    assert theirs.id not in admin.get(f"/recurring?donor_id={theirs.donor_id}").content.decode()
    theirs.refresh_from_db()
    assert theirs.status == "ACTIVE"


@pytest.mark.django_db
def test_refusals_land_beside_their_fields_and_change_nothing(org):
    plan = manual(org, make_donor(org, email="r@example.org"), 2_000)
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    response = editor.post(f"/recurring/{plan.id}", {"action": "next_date", "next_bill_date": "2001-01-01"})
    assert response.status_code == 400 and "next_bill_date is today or later." in response.content.decode()
    response = editor.post(f"/recurring/{plan.id}", {"action": "amount", "amount": "0"})
    assert response.status_code == 400 and "more than $0" in response.content.decode()
    recurring.plan_cancel(organisation=org, actor=SYSTEM, plan_id=plan.id)
    response = editor.post(f"/recurring/{plan.id}", {"action": "resume"}, follow=True)
    assert "This plan is cancelled." in response.content.decode()
    plan.refresh_from_db()
    assert (plan.status, plan.amount_cents) == ("CANCELED", 2_000)


@pytest.mark.django_db
def test_staff_confirm_or_miss_a_manual_plans_expected_gifts(org):
    donor = make_donor(org, email="standing@example.org")
    plan = manual(org, donor, 3_000, "WEEKLY")
    assert billing.billing_run() == {"expected": 1}
    expected = Donation.objects.get(organisation=org, recurring_plan_id=plan.id)
    assert expected.status == "PENDING"
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    body = editor.get(f"/recurring/{plan.id}").content.decode()
    assert "Confirm received" in body and "Mark missed" in body
    response = editor.post(f"/recurring/{plan.id}", {"action": "confirm_gift", "donation_id": expected.id}, follow=True)
    assert "Expected gift confirmed" in response.content.decode()
    expected.refresh_from_db()
    plan.refresh_from_db()
    assert expected.status == "CONFIRMED" and plan.payments_made == 1


@pytest.mark.django_db
def test_resend_management_link_emails_the_donor(org, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    plan = manual(org, make_donor(org, email="links@example.org"), 2_000)
    mail.outbox.clear()
    editor = client_as(make_user(org, Role.EDITOR), organisation=org)
    with django_capture_on_commit_callbacks(execute=True):
        response = editor.post(f"/recurring/{plan.id}", {"action": "resend_link"}, follow=True)
    assert "Management link sent to links@example.org" in response.content.decode()
    assert [m.to for m in mail.outbox] == [["links@example.org"]]
    assert "recurring_plan.manage_link_sent" in editor.get(f"/recurring/{plan.id}").content.decode()


# --- the demo ------------------------------------------------------------------------------------

def run_demo_steps(names: set[str]) -> DemoContext:
    discover_steps()
    ctx = DemoContext(stdout=io.StringIO())
    for step in sorted(DEMO_STEPS, key=lambda s: (s.order, s.name)):
        if step.order < 100 or step.name in names:
            step.run(ctx)
    return ctx


@pytest.mark.django_db
def test_demo_plans_in_every_status_idempotent(localstripe):
    from compliance.services import revenue_code_create

    ctx = run_demo_steps({"engage.payments"})
    # donations/demo.py's NSW code (its FCA-2026 the demo form already made).
    revenue_code_create(organisation=ctx.organisation, actor=SYSTEM, code="NSW-STATE", jurisdiction="NSW")
    ctx = run_demo_steps({"engage.payments", "payments.recurring"})
    org = ctx.organisation
    plans = RecurringPlan.objects.filter(organisation=org)
    counts = {s: plans.filter(status=s).count() for s in PlanStatus.values}
    assert counts == {"ACTIVE": 6, "PAUSED": 2, "PAST_DUE": 2, "CANCELED": 2, "ENDED": 2}, counts
    assert plans.filter(status="PAUSED", pause_reason="CAP_REACHED").count() == 1
    assert plans.filter(status="PAST_DUE", last_failure_code="authentication_required").count() == 2
    card = plans.filter(payment_method="CARD", status="ACTIVE")
    assert card.count() == 4 and all(p.stripe_customer_id.startswith("cus_") and p.stripe_payment_method_id for p in card)
    charged = Donation.objects.filter(organisation=org, recurring_plan_id__isnull=False, source="STRIPE", status="CONFIRMED")
    assert charged.count() == 1
    expected = Donation.objects.filter(organisation=org, recurring_plan_id__isnull=False, source="MANUAL", status="PENDING")
    assert expected.count() == 1
    # The beat bills what is due today: the weekly card plan started today.
    assert billing.billing_run() == {"charged": 1}
    line = next(line for line in ctx.lines if line.startswith("Demo recurring plans:"))
    assert "14 new" in line
    again = run_demo_steps({"engage.payments", "payments.recurring"})
    assert RecurringPlan.objects.filter(organisation=org).count() == 14
    assert "(0 new)" in next(line for line in again.lines if line.startswith("Demo recurring plans:"))


# --- Chromium ---------------------------------------------------------------------------------------

def _fits(page, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 900})
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{overflow}px of sideways scrolling at {width}px"


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _both_widths(page, name: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    _shot(page, name)
    _fits(page, 390)
    _shot(page, f"{name}-390")
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.django_db(transaction=True)
def test_an_admin_lists_filters_and_manages_plans_in_chromium(org, page, context, live_server, localstripe):
    connect(org)
    plans = mixed_plans(org)
    donor = make_donor(org, first_name="Carmen", last_name="Card", email="carmen@example.org")
    card = card_plan(org, donor, amount_cents=4_000, frequency="MONTHLY", start=today(org))
    admin = make_user(org, Role.ADMIN)
    sign_in(context, admin, live_server, org)

    page.goto("/recurring")
    assert page.locator("header nav a[aria-current=page]").inner_text() == "Recurring"
    # MRR: the five manual plans ($114.33) + the $40 monthly card plan.
    assert page.locator(".mrr-total").first.inner_text() == "$154.33"
    assert page.locator("#plans tbody tr[data-plan]").count() == len(plans) + 1
    _both_widths(page, "recurring-list")
    page.locator("nav.pills a", has_text="Paused").click()
    page.wait_for_url(re.compile(r"status=PAUSED"))
    assert page.locator("#plans tbody tr[data-plan]").count() == 1
    page.goto("/recurring")
    page.get_by_label("Frequency").select_option("WEEKLY")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"frequency=WEEKLY"))
    assert {page.locator("#plans tbody tr[data-plan]").nth(i).get_attribute("data-plan") for i in range(2)} == {
        plans["weekly"].id, plans["canceled"].id}
    page.get_by_label("Payment").select_option("CARD")
    page.get_by_label("Frequency").select_option("")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"payment_method=CARD"))
    page.locator("#plans a", has_text="Carmen Card").click()

    # The plan's page: change the amount, the next date, pause, resume, cancel.
    page.wait_for_url(f"**/recurring/{card.id}")
    assert page.locator("#plan-status").inner_text() == "Active"
    page.get_by_label("New amount (AUD)").fill("55")
    page.get_by_role("button", name="Change amount").click()
    assert "Amount changed to $55.00" in page.locator(".messages").inner_text()
    assert "$55.00" in page.locator("#plan-amount").inner_text()
    new_date = today(org) + dt.timedelta(days=10)
    page.get_by_label("New next bill date").fill(new_date.isoformat())
    page.get_by_role("button", name="Change next date").click()
    assert "Schedule moved" in page.locator(".messages").inner_text()
    card.refresh_from_db()
    assert (card.amount_cents, card.next_bill_date) == (5_500, new_date)
    page.get_by_label("New next bill date").fill("2001-01-01")
    page.get_by_role("button", name="Change next date").click()
    assert "next_bill_date is today or later." in page.locator("#date-form .error").inner_text()
    _both_widths(page, "recurring-detail")

    page.locator("#pause-open").click()
    page.get_by_label("Note (optional)").fill("Donor on leave")
    page.locator("#pause").click()
    assert page.locator("#plan-status").inner_text() == "Paused"
    assert "Donor on leave" in page.locator("main").inner_text()
    page.locator("#resume").click()
    assert page.locator("#plan-status").inner_text() == "Active"
    page.locator("#cancel-open").click()
    page.get_by_label("Reason (optional)").fill("Asked by phone")
    page.locator("#cancel").click()
    assert page.locator("#plan-status").inner_text() == "Cancelled"
    assert page.locator("#pause-open").count() == 0 and page.locator("#resume").count() == 0
    history = page.locator("#plan-history").inner_text()
    for event in ("recurring_plan.created", "recurring_plan.updated", "recurring_plan.paused", "recurring_plan.resumed",
                  "recurring_plan.canceled"):
        assert event in history
    card.refresh_from_db()
    assert (card.status, card.cancel_reason) == ("CANCELED", "Asked by phone")
    _both_widths(page, "recurring-detail-canceled")


@pytest.mark.django_db(transaction=True)
def test_a_viewer_sees_plans_without_actions_in_chromium(org, browser, live_server):
    plans = mixed_plans(org)
    viewer = make_user(org, Role.VIEWER)
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 900}, locale="en-AU")
    try:
        sign_in(ctx, viewer, live_server, org)
        page = ctx.new_page()
        page.goto(f"/recurring/{plans['weekly'].id}")
        assert page.locator("#plan-status").inner_text() == "Active"
        assert page.locator("#plan-facts").is_visible()
        for selector in ("#amount-form", "#date-form", "#pause-open", "#cancel-open", "#resend-link", "#resume"):
            assert page.locator(selector).count() == 0, selector
        _fits(page, 390)
        _shot(page, "recurring-detail-viewer-390")
    finally:
        ctx.close()
    client = client_as(viewer, organisation=org)
    assert client.post(f"/recurring/{plans['weekly'].id}", {"action": "pause"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_the_donor_page_shows_plans_and_creates_a_manual_plan_in_chromium(org, page, context, live_server):
    from compliance.services import revenue_code_create

    revenue_code_create(organisation=org, actor=SYSTEM, code="FED-REG", jurisdiction="FEDERAL")
    donor = make_donor(org, first_name="Olive", last_name="Order", email="olive@example.org")
    existing = manual(org, donor, 2_000, "MONTHLY")
    editor = make_user(org, Role.EDITOR)
    sign_in(context, editor, live_server, org)
    page.goto(f"/donors/{donor.id}/")
    rows = page.locator("#donor-plans tbody tr[data-plan]")
    rows.first.wait_for()
    assert rows.count() == 1 and rows.first.get_attribute("data-plan") == existing.id
    page.get_by_text("New manual plan").click()
    page.get_by_label("Amount each period (AUD)").fill("")
    page.get_by_role("button", name="Create plan").click()
    assert "required" in page.locator("#manual-plan-form .error").first.inner_text()
    page.get_by_label("Amount each period (AUD)").fill("35")
    page.get_by_label("Frequency").select_option("FORTNIGHTLY")
    page.get_by_label("Revenue code").fill("FED-REG")
    page.get_by_role("button", name="Create plan").click()
    page.get_by_text("Manual plan created").wait_for()
    assert page.locator("#donor-plans tbody tr[data-plan]").count() == 2
    created = RecurringPlan.objects.exclude(pk=existing.pk).get(organisation=org, donor=donor)
    assert (created.payment_method, created.amount_cents, created.frequency, created.revenue_code, created.status) == (
        "MANUAL", 3_500, "FORTNIGHTLY", "FED-REG", "ACTIVE")
    # The plans section fits at 390 px (the page's compliance table above is donations' and scrolls on its own).
    page.set_viewport_size({"width": 390, "height": 900})
    wide = page.evaluate("""[...document.querySelectorAll('#donor-plans-slot *')]
        .filter(e => !e.closest('.table-scroll') && e.getBoundingClientRect().right > document.documentElement.clientWidth)
        .map(e => e.tagName + '#' + e.id)""")
    assert wide == [], wide
    _shot(page, "recurring-donor-page-390")
    page.set_viewport_size({"width": 1280, "height": 900})
    _shot(page, "recurring-donor-page")
    page.locator("#donor-plans a", has_text="$35.00 fortnightly").click()
    page.wait_for_url(f"**/recurring/{created.id}")
    assert "Bank standing order" in page.locator("#plan-facts").inner_text()
