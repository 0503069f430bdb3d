"""Dashboard flows that need no browser (Django test client): donors (a known
email offers the existing record; duplicates and merge), a donation's edit,
void and refund with the audit trail, batches that fail a row, the users page
(invite, /join/<token>, roles), password reset, filters and pagination."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core import mail
from django.urls import reverse

from donations import services
from donations.models import BatchStatus, DepositBatch, Donation, Donor
from organisations.models import AuditEntry, Membership, Role
from tests.dashboard.conftest import PASSWORD, client_as, make_user
from tests.dashboard.helpers import FED_CAP, SYSTEM

DAY = dt.date(2027, 3, 15)


def text(response) -> str:
    return response.content.decode()


def donor(org, **fields):
    fields.setdefault("first_name", "Dana")
    fields.setdefault("last_name", "Donor")
    return services.donor_create(organisation=org, actor=SYSTEM, **fields)


def gift(org, d, cents, **fields):
    fields.setdefault("donation_type", "MONETARY")
    fields.setdefault("payment_method", "CHEQUE")
    return services.donation_record(organisation=org, actor=SYSTEM, donor_id=d.id, amount_cents=cents, donation_date=DAY, **fields)


# --- donors ---------------------------------------------------------------------------------

def test_add_donor_with_a_known_email_offers_the_existing_record(org, editor):
    existing = donor(org, email="known@example.org")
    client = client_as(editor)
    response = client.post(reverse("donor-new"), {"donor_type": "INDIVIDUAL", "first_name": "Other", "email": "KNOWN@example.org"})
    assert response.status_code == 200
    body = text(response)
    assert reverse("donor-detail", args=[existing.id]) in body and reverse("donor-edit", args=[existing.id]) in body
    assert Donor.objects.filter(organisation=org).count() == 1
    # A partial record (an email alone) is fine, and opens the donor's page.
    response = client.post(reverse("donor-new"), {"donor_type": "UNKNOWN", "email": "only@example.org", "country": "AU"})
    assert response.status_code == 302
    created = Donor.objects.get(organisation=org, email="only@example.org")
    assert response["Location"] == reverse("donor-detail", args=[created.id])


def test_edit_donor(org, editor):
    d = donor(org, email="edit@example.org")
    client = client_as(editor)
    page = client.get(reverse("donor-edit", args=[d.id]))
    assert 'value="edit@example.org"' in text(page)
    response = client.post(reverse("donor-edit", args=[d.id]), {"donor_type": "INDIVIDUAL", "first_name": "Dana", "last_name": "Renamed",
                                                                "email": "edit@example.org", "country": "AU"})
    assert response.status_code == 302
    d.refresh_from_db()
    assert d.last_name == "Renamed"


def test_duplicates_queue_and_merge_keep_every_gift(org, editor):
    a = donor(org, first_name="Alice", last_name="Nguyen", email="alice.nguyen@example.org", postcode="2042")
    b = donor(org, first_name="Alice", last_name="Nguyen", email="alicenguyen@example.org", postcode="2042")
    gift(org, a, 10_000)
    gift(org, b, 20_000)
    client = client_as(editor)
    page = text(client.get(reverse("donor-duplicates")))
    assert a.id in page and b.id in page
    response = client.post(reverse("donor-duplicates"), {"survivor_id": a.id, "duplicate_id": b.id})
    assert response.status_code == 302 and response["Location"] == reverse("donor-detail", args=[a.id])
    assert not Donor.objects.filter(pk=b.id).exists()
    assert sorted(Donation.objects.filter(donor=a).values_list("amount_cents", flat=True)) == [10_000, 20_000]
    assert "No likely duplicates" in text(client.get(reverse("donor-duplicates")))


# --- a donation's page --------------------------------------------------------------------------

def test_donation_edit_void_refund_and_audit_trail(org, editor):
    d = donor(org)
    first = gift(org, d, 10_000, reference="111")
    second = gift(org, d, 5_000)
    client = client_as(editor)
    url = reverse("donation-detail", args=[first.id])

    response = client.post(url, {"action": "edit", "amount": "150.00", "donation_date": "2027-03-16", "reference": "112"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert (first.amount_cents, first.donation_date, first.reference) == (15_000, dt.date(2027, 3, 16), "112")

    response = client.post(url, {"action": "void", "reason": ""})
    assert response.status_code == 400
    assert 'id="void_reason_error"' in text(response)
    response = client.post(url, {"action": "void", "reason": "Entered twice"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == "VOIDED" and first.void_reason == "Entered twice"

    refund_url = reverse("donation-detail", args=[second.id])
    response = client.post(refund_url, {"action": "refund", "refund_date": "2027-03-20", "reason": "Donor asked"})
    assert response.status_code == 302
    second.refresh_from_db()
    assert second.status == "REFUNDED"

    page = text(client.get(url))
    for action in ("donation.created", "donation.updated", "donation.voided"):
        assert action in page, action
    assert "Void donation" not in page  # a voided gift offers no second void


def test_over_cap_edit_is_refused_beside_the_amount(org, editor):
    from compliance import services as compliance

    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="FED", jurisdiction="FEDERAL")
    d = donor(org)
    gift(org, d, FED_CAP - 100_000, revenue_code="FED")
    small = gift(org, d, 10_000, revenue_code="FED")
    response = client_as(editor).post(reverse("donation-detail", args=[small.id]),
                                      {"action": "edit", "amount": "2,000", "donation_date": DAY.isoformat(), "revenue_code": "FED"})
    assert response.status_code == 400
    error = re.search(r'id="id_amount_error"[^>]*>([^<]+)<', text(response))
    assert error and "cap" in error.group(1), text(response)[:3000]
    small.refresh_from_db()
    assert small.amount_cents == 10_000


# --- batches --------------------------------------------------------------------------------------

def _batch_post(client, reference, count, total, rows, url=None, button="post"):
    data = {"reference": reference, "deposit_date": "2027-04-01", "payment_method": "CHEQUE", "control_count": str(count),
            "control_total": total, "rows-TOTAL_FORMS": str(len(rows)), "rows-INITIAL_FORMS": "0", button: "1"}
    for i, (who, amount) in enumerate(rows):
        data[f"rows-{i}-donor"], data[f"rows-{i}-amount"] = who, amount
    return client.post(url or reverse("batch-new"), data)


def test_batch_with_an_over_cap_row_records_nothing(org, editor):
    from compliance import services as compliance

    compliance.revenue_code_create(organisation=org, actor=SYSTEM, code="FED", jurisdiction="FEDERAL")
    capped = donor(org, email="capped@example.org")
    gift(org, capped, FED_CAP - 100_000, revenue_code="FED")
    other = donor(org, email="fine@example.org")
    before = Donation.objects.filter(organisation=org).count()
    client = client_as(editor)
    data = {"reference": "DEP-CAP", "deposit_date": "2027-04-01", "payment_method": "CHEQUE", "control_count": "2",
            "control_total": "2,100", "rows-TOTAL_FORMS": "2", "rows-INITIAL_FORMS": "0", "post": "1",
            "rows-0-donor": "fine@example.org", "rows-0-amount": "100", "rows-0-revenue_code": "FED",
            "rows-1-donor": "capped@example.org", "rows-1-amount": "2000", "rows-1-revenue_code": "FED"}
    response = client.post(reverse("batch-new"), data, follow=True)
    assert "Not posted" in text(response) and "cap" in text(response)
    batch = DepositBatch.objects.get(organisation=org, reference="DEP-CAP")
    assert batch.status == BatchStatus.DRAFT
    assert Donation.objects.filter(organisation=org).count() == before
    assert not Donation.objects.filter(donor=other).exists()


def test_batch_unknown_donor_row_is_shown_on_its_row(org, editor):
    response = _batch_post(client_as(editor), "DEP-X", 1, "10", [("nobody@example.org", "10")])
    assert response.status_code == 400
    assert 'id="id_rows-0-donor_error"' in text(response)
    assert not DepositBatch.objects.filter(organisation=org).exists()


def test_batch_draft_then_post(org, editor):
    donor(org, email="bea@example.org")
    client = client_as(editor)
    response = _batch_post(client, "DEP-D", 1, "50", [("bea@example.org", "50")], button="save")
    batch = DepositBatch.objects.get(organisation=org, reference="DEP-D")
    assert response.status_code == 302 and batch.status == BatchStatus.DRAFT
    page = text(client.get(reverse("batch-edit", args=[batch.id])))
    assert 'value="bea@example.org"' in page and 'value="50.00"' in page
    response = _batch_post(client, "DEP-D", 1, "50", [("bea@example.org", "50")], url=reverse("batch-edit", args=[batch.id]))
    batch.refresh_from_db()
    assert batch.status == BatchStatus.POSTED
    assert Donation.objects.filter(organisation=org, amount_cents=5_000).count() == 1
    response = _batch_post(client, "DEP-D", 1, "50", [("bea@example.org", "50")], url=reverse("batch-edit", args=[batch.id]))
    assert Donation.objects.filter(organisation=org, amount_cents=5_000).count() == 1  # posting twice records once


# --- users ------------------------------------------------------------------------------------------

def test_invite_join_and_roles(client, org, admin, django_capture_on_commit_callbacks):
    mail.outbox.clear()
    admin_client = client_as(admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("settings-users"), {"action": "invite", "full_name": "Nia Newcomer",
                                                                  "email": "Nia@Example.org", "role": "VIEWER"}, follow=True)
    assert response.status_code == 200 and "/join/" not in text(response)  # the link goes to the inbox only
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nia@example.org"]
    join = re.search(r"/join/[\w-]+", mail.outbox[0].body).group(0)
    page = client.get(join)
    assert "Join " + org.name in text(page) and "VIEWER" in text(page)
    response = client.post(join, {"password": "short"})
    assert response.status_code == 200 and not Membership.objects.filter(user__email="nia@example.org").exists()
    response = client.post(join, {"password": "a much longer passphrase"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    assert client.get(reverse("settings-api")).status_code == 403
    assert "no longer valid" in text(client.get(join))  # used once

    newcomer = Membership.objects.get(organisation=org, user__email="nia@example.org")
    response = admin_client.post(reverse("settings-users"), {"action": "role", "user_id": newcomer.user_id, "role": "EDITOR"})
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.role == Role.EDITOR
    assert client.post(reverse("donor-new"), {"email": "by-nia@example.org", "donor_type": "UNKNOWN"}).status_code == 302

    response = admin_client.post(reverse("settings-users"), {"action": "remove", "user_id": newcomer.user_id})
    assert response.status_code == 302
    assert not Membership.objects.filter(organisation=org, user_id=newcomer.user_id).exists()
    assert client.get(reverse("home")).status_code in (302, 403)  # signed out, or no organisation left


def test_last_admin_cannot_demote_themselves(org, admin):
    response = client_as(admin).post(reverse("settings-users"), {"action": "role", "user_id": admin.id, "role": "VIEWER"}, follow=True)
    assert Membership.objects.get(organisation=org, user=admin).role == Role.ADMIN
    assert '<li class="error">The last ADMIN cannot be demoted.</li>' in text(response)


def test_password_reset_by_email(client, org):
    user = make_user(org, Role.EDITOR)
    mail.outbox.clear()
    response = client.post(reverse("password_reset"), {"email": user.email.upper()})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/reset/\S+/)", mail.outbox[0].body).group(1)
    page = client.get(link, follow=True)
    assert page.status_code == 200
    response = client.post(page.redirect_chain[-1][0] if page.redirect_chain else link,
                           {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a brand new passphrase") and not user.check_password(PASSWORD)


# --- lists ------------------------------------------------------------------------------------------

def test_donations_list_filters_and_pages(org, viewer):
    d = donor(org)
    for i in range(30):
        gift(org, d, 1_000 + i)
    services.donation_record(organisation=org, actor=SYSTEM, donor_id=d.id, amount_cents=777_00, donation_date=dt.date(2027, 5, 1),
                             donation_type="IN_KIND", in_kind_category="GOODS", in_kind_description="Chairs")
    client = client_as(viewer)
    first = text(client.get(reverse("donations")))
    assert first.count('href="/donations/c') == 25 and "Older" in first
    in_kind = text(client.get(reverse("donations") + "?donation_type=IN_KIND"))
    assert "$777.00" in in_kind and in_kind.count('href="/donations/c') == 1
    dated = text(client.get(reverse("donations") + "?donation_date[gte]=2027-04-01"))
    assert dated.count('href="/donations/c') == 1
    bad = client.get(reverse("donations") + "?donation_date[gte]=not-a-date")
    assert bad.status_code == 200 and 'role="alert"' in text(bad)


def test_audit_entries_name_the_staff_member(org, editor):
    d = donor(org)
    client_as(editor).post(reverse("gift-new"), {"donor": d.id, "method": "CASH", "amount": "12", "donation_date": DAY.isoformat()})
    entry = AuditEntry.objects.filter(organisation=org, action="donation.created").latest("created_at")
    assert (entry.actor_type, entry.actor_id) == ("USER", str(editor.pk))


@pytest.mark.parametrize("back,landing", [
    ("/donors/", "/donors/"),
    ("/donations/?status=CONFIRMED", "/donations/?status=CONFIRMED"),
    ("//evil.example/phish", "/"),
    ("/\\evil.example/phish", "/"),
    ("https://evil.example/phish", "/"),
    ("javascript:alert(1)", "/"),
    ("/donors/{donor}/", "/"),  # the live donor has no twin in the sandbox
    ("/no-such-page", "/"),
])
def test_sandbox_switch_goes_back_only_to_this_site(org, admin, back, landing):
    d = donor(org)
    response = client_as(admin).post(reverse("sandbox-toggle"), {"next": back.format(donor=d.id)})
    assert response.status_code == 302
    assert response["Location"] == landing
    assert response.cookies["pc_active_org"].value == org.sandbox.id


def test_gift_for_a_new_donor_with_a_known_email_offers_the_existing_donor(org, editor):
    existing = donor(org, first_name="Kira", last_name="Okafor", email="kira@example.org")
    response = client_as(editor).post(reverse("gift-new"), {
        "new_donor": "on", "new_first_name": "Kira", "new_email": "Kira@example.org", "method": "CASH", "amount": "20",
        "donation_date": DAY.isoformat()})
    assert response.status_code == 400
    body = text(response)
    error = re.search(r'id="id_new_email_error"[^>]*>(.*?)</div>', body, re.S)
    assert error, body[:3000]
    assert reverse("gift-new") + f"?donor={existing.id}" in body  # one click to record it for the existing donor
    assert Donor.objects.filter(organisation=org).count() == 1
    assert not Donation.objects.filter(organisation=org).exists()
