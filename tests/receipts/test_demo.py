"""receipts/demo.py: the demo organisation's receipt settings and a bulk run over
the financial year of the latest gift (numbered in gift-date order, PDFs that
read back), through the services; running it again issues nothing and prints
the same line."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core import mail

from donations import services as donations
from receipts.demo import DEMO_RECEIPT_SETTINGS, demo_receipts
from receipts.models import Receipt, ReceiptRun, ReceiptSettings
from receipts.services import donor_acknowledgement_default_set, receipt_pdf
from tests.receipts.conftest import ACTOR, make_donor, pdf_text
from together.demo import DemoContext

pytestmark = pytest.mark.django_db


def run(org, capture) -> list[str]:
    ctx = DemoContext(stdout=io.StringIO(), organisation=org, sandbox=org.sandbox)
    with capture(execute=True):
        demo_receipts(ctx)
    return ctx.lines


def gift(org, donor, day, **fields):
    data = {"donation_type": "MONETARY", "amount_cents": 5_000, "donation_date": day, "payment_method": "CASH"}
    return donations.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, **{**data, **fields})


def test_demo_receipts_every_confirmed_gift_once(org, django_capture_on_commit_callbacks):
    # Demo records come first (donations.records, order 100): recorded before receipts are set up.
    ann, opted_out = make_donor(org, email="ann@example.org"), make_donor(org, email="bob@example.org")
    donor_acknowledgement_default_set(organisation=org, actor=ACTOR, donor_id=opted_out.id, status="DO_NOT_RECEIPT")
    later = gift(org, ann, dt.date(2026, 3, 1), amount_cents=12_345)
    earlier = gift(org, ann, dt.date(2025, 8, 1))
    in_kind = gift(org, ann, dt.date(2025, 9, 1), donation_type="IN_KIND", payment_method=None, in_kind_category="GOODS",
                   in_kind_description="Printing of 5,000 leaflets", in_kind_valuation_method="Supplier's price list")
    voided = gift(org, ann, dt.date(2025, 10, 1))
    donations.donation_void(organisation=org, actor=ACTOR, donation_id=voided.id, reason="Entered twice")
    skipped = gift(org, opted_out, dt.date(2025, 11, 1))
    last_year = gift(org, ann, dt.date(2025, 6, 30))  # FY 2024-25: left for a bulk run

    lines = run(org, django_capture_on_commit_callbacks)
    settings = ReceiptSettings.objects.for_organisation(org).get()
    assert settings.legal_name == DEMO_RECEIPT_SETTINGS["legal_name"] and settings.mode == "ON_RECORD"
    receipts = list(Receipt.objects.for_organisation(org).order_by("number"))
    # Oldest gift first, as a bulk run takes them; the in-kind gift gets an acknowledgement.
    assert [(r.number, r.donation_id, r.kind) for r in receipts] == [
        (1, earlier.id, "RECEIPT"), (2, in_kind.id, "ACKNOWLEDGEMENT"), (3, later.id, "RECEIPT")]
    assert lines == ["Demo receipts: 3 issued for FY 2025-26 (numbers 1 to 3); PDFs on each gift's page, "
                     "earlier years to issue in bulk at Finance → Receipts"]
    [the_run] = ReceiptRun.objects.for_organisation(org)
    assert (the_run.status, the_run.date_from, the_run.date_to, the_run.issued) == ("DONE", dt.date(2025, 7, 1), dt.date(2026, 6, 30), 3)
    text = pdf_text(receipt_pdf(receipts[2]))
    assert "Riverbank Action Incorporated" in text and "51 824 753 556" in text and "123.45" in text
    assert not Receipt.objects.filter(donation_id__in=[voided.id, skipped.id, last_year.id]).exists()
    assert len(mail.outbox) == 3  # one each, to the donor's (example) address

    assert run(org, django_capture_on_commit_callbacks) == lines  # again: nothing new
    assert Receipt.objects.for_organisation(org).count() == 3 and len(mail.outbox) == 3
    assert ReceiptSettings.objects.for_organisation(org).count() == 1 and ReceiptRun.objects.for_organisation(org).count() == 1


def test_demo_without_gifts_says_so(org, django_capture_on_commit_callbacks):
    assert run(org, django_capture_on_commit_callbacks) == ["Demo receipts: none yet (no confirmed gifts)"]
