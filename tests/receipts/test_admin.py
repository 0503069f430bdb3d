"""Receipts in the staff admin: the list states number, date, donor, amount and
status; a receipt is read-only there (never added, changed or deleted); withdraw
and re-send are actions through receipts.services, by an EDITOR, only on the
member's own organisation's receipts."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils.formats import date_format

from organisations.models import AuditEntry, Membership
from receipts.models import Receipt, ReceiptStatus
from tests.conftest import make_org
from tests.receipts.conftest import make_donor, record, set_up_receipts

pytestmark = pytest.mark.django_db
User = get_user_model()
LIST = "admin:receipts_receipt_changelist"


def staff(org, role: str, name: str):
    user = User.objects.create_user(username=name, email=f"{name}@example.org", password="pw", is_staff=True)
    Membership.objects.create(user=user, organisation=org, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def two(org, django_capture_on_commit_callbacks):
    """A receipt in `org` and one in another organisation."""
    other = make_org("Elsewhere")
    out = {}
    for organisation, name in ((org, "Ann Mine"), (other, "Zed Theirs")):
        set_up_receipts(organisation)
        first, last = name.split()
        donor = make_donor(organisation, first_name=first, last_name=last, email=f"{first.lower()}@example.com")
        gift = record(organisation, donor, django_capture_on_commit_callbacks, amount_cents=123_450)
        out[organisation.id] = Receipt.objects.get(donation=gift)
    mail.outbox.clear()
    return out[org.id], out[other.id]


def test_list_shows_number_date_donor_amount_status_of_the_members_receipts_only(org, two):
    mine, theirs = two
    response = staff(org, "VIEWER", "viewer").get(reverse(LIST))
    assert response.status_code == 200
    assert list(response.context["cl"].queryset.values_list("pk", flat=True)) == [mine.pk]
    html = response.content.decode()
    row = html[html.index('class="field-number"'):]
    row = row[:row.index("</tr>")]
    assert f">{mine.number}</a>" in row and "Ann Mine" in row and "$1,234.50 AUD" in row and ">Issued<" in row
    assert f">{date_format(mine.donation_date)}<" in row and "$1,234.50 AUD" in html and "ISSUED" in html
    assert "Zed Theirs" not in html and theirs.pk not in html
    # Sorted by each column (the donor as the receipt states it, the amount).
    for column in ("3", "-3", "4"):
        assert staff(org, "VIEWER", f"sorter{column}").get(reverse(LIST), {"o": column}).status_code == 200
    # Found by its number; another organisation's page is a missing object.
    found = staff(org, "VIEWER", "viewer2").get(reverse(LIST), {"q": str(mine.number)})
    assert [r.pk for r in found.context["cl"].queryset] == [mine.pk]
    other_page = staff(org, "ADMIN", "admin").get(reverse("admin:receipts_receipt_change", args=[theirs.pk]))
    assert other_page.status_code == 302 and other_page["Location"] == reverse("admin:index")


def test_a_receipt_is_read_only_even_for_an_admin(org, two):
    mine, _ = two
    client = staff(org, "ADMIN", "admin")
    page = client.get(reverse("admin:receipts_receipt_change", args=[mine.pk]))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert reverse("receipt-pdf", args=[mine.pk]) in page.content.decode()  # the PDF the donor was sent
    before = Receipt.objects.filter(pk=mine.pk).values().get()
    assert client.post(reverse("admin:receipts_receipt_change", args=[mine.pk]), {"number": "99", "status": "WITHDRAWN"}).status_code == 403
    assert client.post(reverse("admin:receipts_receipt_delete", args=[mine.pk]), {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:receipts_receipt_add")).status_code == 403
    assert Receipt.objects.filter(pk=mine.pk).values().get() == before


def test_withdraw_asks_for_a_reason_then_withdraws_through_the_service(org, two):
    mine, theirs = two
    client = staff(org, "EDITOR", "editor")
    selection = {"action": "withdraw_selected", "_selected_action": [mine.pk, theirs.pk]}
    page = client.post(reverse(LIST), selection)
    assert page.status_code == 200 and b"Withdraw 1 receipt?" in page.content  # the other organisation's is not selected
    assert theirs.pk.encode() not in page.content
    refused = client.post(reverse(LIST), {**selection, "apply": "1", "reason": ""})
    assert refused.status_code == 200 and b"This field is required" in refused.content
    done = client.post(reverse(LIST), {**selection, "apply": "1", "reason": "Issued to the wrong donor"})
    assert done.status_code == 302
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == ReceiptStatus.WITHDRAWN and mine.withdraw_reason == "Issued to the wrong donor"
    assert mine.donation.acknowledgement_status == "DO_NOT_RECEIPT"
    assert theirs.status == ReceiptStatus.ISSUED
    assert AuditEntry.objects.filter(organisation=org, action="receipt.withdrawn", object_id=mine.pk).exists()
    # Again: refused by the receipt's own rule, reported, nothing changed.
    again = client.post(reverse(LIST), {**selection, "apply": "1", "reason": "twice"}, follow=True)
    assert "already withdrawn" in again.content.decode()
    mine.refresh_from_db()
    assert mine.withdraw_reason == "Issued to the wrong donor"


def test_resend_emails_the_same_receipt_once_more(org, two, django_capture_on_commit_callbacks):
    mine, theirs = two
    with django_capture_on_commit_callbacks(execute=True):
        response = staff(org, "EDITOR", "editor").post(reverse(LIST), {"action": "resend_selected",
                                                                       "_selected_action": [mine.pk, theirs.pk]})
    assert response.status_code == 302
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]
    assert mail.outbox[0].attachments[0][0] == f"receipt-{mine.number}.pdf"
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.email_count == 2 and theirs.email_count == 1


def test_a_viewer_cannot_withdraw_or_resend(org, two, django_capture_on_commit_callbacks):
    mine, _ = two
    client = staff(org, "VIEWER", "viewer")
    before = Receipt.objects.filter(pk=mine.pk).values().get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse(LIST), {"action": "withdraw_selected", "_selected_action": [mine.pk], "apply": "1", "reason": "no"})
        client.post(reverse(LIST), {"action": "resend_selected", "_selected_action": [mine.pk]})
    assert Receipt.objects.filter(pk=mine.pk).values().get() == before
    assert mail.outbox == []
