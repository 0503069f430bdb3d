"""The receipt over the API: GET /api/v1/donations/{id}/receipt (PDF, READ),
POST …/receipt/resend (WRITE), the donation's receipt fields, and the register."""
from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core import mail

from donations import services as donations
from tests.conftest import client_for, make_key
from tests.receipts.conftest import ACTOR, make_donor, pdf_text, record, set_up_receipts
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.RATE_LIMIT_ENABLED = False


@pytest.fixture
def gift(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org, email="api-donor@example.com")
    return record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=5500)


def test_download_the_receipt(receipts_org, gift, read_client):
    response = read_client.get(f"/api/v1/donations/{gift.id}/receipt", HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="receipt-1.pdf"'
    text = " ".join(pdf_text(response.content).split())
    assert "Receipt number 1" in text and "$55.00" in text and "Riverbank Action Incorporated" in text


def test_no_receipt_is_a_404_envelope(receipts_org, read_client, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    quiet = donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                      amount_cents=100, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
    assert_error(read_client.get(f"/api/v1/donations/{quiet.id}/receipt"), 404, "not_found")
    assert_error(read_client.get("/api/v1/donations/cm3nosuchdonation00000000/receipt"), 404, "not_found")
    # Voided: the receipt is withdrawn, so there is no standing one to download.
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks)
    assert read_client.get(f"/api/v1/donations/{gift.id}/receipt").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_void(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, reason="test")
    assert_error(read_client.get(f"/api/v1/donations/{gift.id}/receipt"), 404, "not_found")


def test_another_organisations_donation_is_a_404(gift, other_org):
    other = client_for(make_key(other_org, "WRITE"))
    assert_error(other.get(f"/api/v1/donations/{gift.id}/receipt"), 404, "not_found")
    assert_error(other.post(f"/api/v1/donations/{gift.id}/receipt/resend"), 404, "not_found")
    sandbox = client_for(make_key(gift.organisation.sandbox, "WRITE"))
    assert_error(sandbox.get(f"/api/v1/donations/{gift.id}/receipt"), 404, "not_found")


def test_keys(gift, read_client, anon_client):
    assert_error(anon_client.get(f"/api/v1/donations/{gift.id}/receipt"), 401, "unauthorized")
    assert_error(read_client.post(f"/api/v1/donations/{gift.id}/receipt/resend"), 403, "forbidden")


def test_resend(receipts_org, gift, write_client, django_capture_on_commit_callbacks):
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = write_client.post(f"/api/v1/donations/{gift.id}/receipt/resend")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "receipt" and body["number"] == 1 and body["status"] == "ISSUED"
    assert body["donation_id"] == gift.id and body["amount_cents"] == 5500
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["api-donor@example.com"]


def test_resend_without_an_email_is_refused(receipts_org, write_client, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org, email=None)
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks)
    assert_error(write_client.post(f"/api/v1/donations/{gift.id}/receipt/resend"), 400, "validation_failed", "email")


def test_the_donation_shows_its_receipt(receipts_org, gift, read_client, django_capture_on_commit_callbacks,
                                        django_assert_max_num_queries):
    body = read_client.get(f"/api/v1/donations/{gift.id}").json()
    assert (body["receipt_number"], body["receipt_status"], body["acknowledgement_status"]) == (1, "ISSUED", "RECEIPTED")
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, amount_cents=6000)
    body = read_client.get(f"/api/v1/donations/{gift.id}").json()
    assert (body["receipt_number"], body["receipt_status"]) == (2, "ISSUED")
    donor = make_donor(receipts_org, email="many@example.com")
    for i in range(8):
        record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=100 + i)
    with django_assert_max_num_queries(12):
        page = read_client.get("/api/v1/donations?limit=100").json()["data"]
    assert len(page) == 9 and all(d["receipt_status"] == "ISSUED" for d in page)
    assert sorted(d["receipt_number"] for d in page) == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_the_receipts_register(receipts_org, gift, read_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_void(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, reason="duplicate entry")
    today = dt.date.today()
    response = read_client.get(f"/api/v1/reports/receipts-register?from={today - dt.timedelta(days=2)}&to={today + dt.timedelta(days=2)}")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode() if hasattr(response, "streaming_content") else response.content.decode())))
    assert [(r["receipt_number"], r["status"], r["amount_cents"], r["amount_dollars"]) for r in rows] == [("1", "WITHDRAWN", "5500", "55.00")]
    assert rows[0]["donor_name"] == "Alice Ng" and rows[0]["withdraw_reason"] == "The donation was voided: duplicate entry"
