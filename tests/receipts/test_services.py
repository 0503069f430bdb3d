"""Receipts through the services: issued as a confirmed gift is recorded, never
changed after, withdrawn on a void or a full refund, corrected with a new number,
acknowledgements for gifts in kind, DO_NOT_RECEIPT per gift and per donor, batch
mode and bulk runs, emails sent once, annual statements, ABN checks."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from donations import services as donations
from donations.models import Donation
from receipts import services
from receipts.abn import abn_is_valid
from receipts.models import Receipt, ReceiptRun
from tests.receipts.conftest import ACTOR, make_donor, pdf_text, record, set_up_receipts
from together.exceptions import ValidationFailed
from webhooks.models import Event

pytestmark = pytest.mark.django_db


def receipts_of(donation):
    return list(Receipt.objects.filter(donation=donation).order_by("number"))


def test_abn_checksum():
    assert abn_is_valid("51 824 753 556")
    assert abn_is_valid("53004085616")
    assert not abn_is_valid("51 824 753 557")
    assert not abn_is_valid("5182475355")
    assert not abn_is_valid("01824753556")
    assert not abn_is_valid("5182475355a")


def test_settings_refuse_a_bad_abn_and_need_one_for_a_dgr(org):
    with pytest.raises(ValidationFailed) as exc:
        set_up_receipts(org, abn="51 824 753 557")
    assert exc.value.param == "abn"
    with pytest.raises(ValidationFailed) as exc:
        set_up_receipts(org, abn="", deductibility="DGR")
    assert exc.value.param == "abn"
    settings = set_up_receipts(org, abn="", deductibility="POLITICAL")
    assert settings.abn == ""


def test_a_confirmed_gift_is_receipted_as_it_is_recorded(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=25000)
    [receipt] = receipts_of(gift)
    assert receipt.status == "ISSUED" and receipt.kind == "RECEIPT" and receipt.number == 1
    assert receipt.amount_cents == 25000 and receipt.donation_date == gift.donation_date
    gift.refresh_from_db()
    assert gift.acknowledgement_status == "RECEIPTED"
    assert Event.objects.filter(organisation_id=receipts_org.id, type="receipt.issued").count() == 1
    second = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=1000)
    assert receipts_of(second)[0].number == 2


def test_the_pdf_states_what_the_ato_requires(receipts_org, django_capture_on_commit_callbacks):
    set_up_receipts(receipts_org, deductibility="DGR", fund_name="Riverbank Public Fund")
    donor = make_donor(receipts_org, first_name="Zoë", last_name="O'Brien")
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=123456)
    [receipt] = receipts_of(gift)
    text = pdf_text(bytes(receipt.pdf))
    flat = " ".join(text.split())
    for expected in ("Riverbank Public Fund", "ABN 51 824 753 556", "Receipt for a gift", "This receipt is for a gift",
                     f"Receipt number {receipt.number}", "$1,234.56", "2 March 2026", "Zoë O'Brien", "3 Elm Street",
                     "deductible gift recipient", "Division 30", "Jo Treasurer", "Thank you for standing with us."):
        assert expected in flat, (expected, flat)


def test_political_and_not_deductible_wording(org, django_capture_on_commit_callbacks):
    set_up_receipts(org, deductibility="POLITICAL")
    donor = make_donor(org)
    text = " ".join(pdf_text(bytes(receipts_of(record(org, donor, django_capture_on_commit_callbacks))[0].pdf)).split())
    assert "registered political party" in text and "Subdivision 30-DA" in text and "$1,500" in text
    set_up_receipts(org, deductibility="NONE")
    text = " ".join(pdf_text(bytes(receipts_of(record(org, donor, django_capture_on_commit_callbacks))[0].pdf)).split())
    assert "are not tax deductible" in text


def test_an_in_kind_gift_gets_an_acknowledgement_of_its_fair_value(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=420000, donation_type="IN_KIND",
                  payment_method=None, in_kind_category="SERVICES", in_kind_description="Pro bono legal advice",
                  in_kind_valuation_method="The firm's standard hourly rate, 12 hours")
    [receipt] = receipts_of(gift)
    assert receipt.kind == "ACKNOWLEDGEMENT" and receipt.deductibility == "NONE"
    text = " ".join(pdf_text(bytes(receipt.pdf)).split())
    for expected in ("Acknowledgement of a gift in kind", "Fair value", "$4,200.00", "Pro bono legal advice",
                     "The firm's standard hourly rate, 12 hours", "not a receipt for a tax-deductible gift"):
        assert expected in text, expected
    assert "Subdivision 30-DA" not in text


def test_a_correction_withdraws_and_issues_a_new_number_keeping_history(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=25000)
    [first] = receipts_of(gift)
    first_pdf = bytes(first.pdf)
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, amount_cents=30000)
    old, new = receipts_of(gift)
    assert (old.number, new.number) == (1, 2)
    assert old.status == "WITHDRAWN" and old.withdrawn_at and "amount 250.00 → 300.00" in old.withdraw_reason
    assert old.replaced_by_id == new.id and old.amount_cents == 25000 and bytes(old.pdf) == first_pdf
    assert new.status == "ISSUED" and new.amount_cents == 30000
    # The withdrawn one downloads marked WITHDRAWN, naming its replacement.
    text = " ".join(pdf_text(services.receipt_pdf(old)).split())
    assert "WITHDRAWN" in text and "replaced by receipt 2" in text
    # A change that no receipt states (notes) issues nothing.
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, notes="thanked by phone")
    assert len(receipts_of(gift)) == 2
    # Date and donor corrections too.
    other = make_donor(receipts_org, email="bob@example.com", first_name="Bob")
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, donor_id=other.id,
                                  donation_date=dt.date(2026, 3, 1))
    *_, previous, latest = receipts_of(gift)
    assert "date 2026-03-02 → 2026-03-01" in previous.withdraw_reason and "donor changed" in previous.withdraw_reason
    assert latest.donor_id == other.id and latest.donor_snapshot["name"] == "Bob Ng"
    types = list(Event.objects.filter(organisation_id=receipts_org.id, type__startswith="receipt.")
                 .order_by("occurred_at", "id").values_list("type", flat=True))
    assert types.count("receipt.issued") == 3 and types.count("receipt.withdrawn") == 2


def test_void_and_full_refund_withdraw(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    voided = record(receipts_org, donor, django_capture_on_commit_callbacks)
    refunded = record(receipts_org, donor, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_void(organisation=receipts_org, actor=ACTOR, donation_id=voided.id, reason="entered twice")
        donations.donation_refund(organisation=receipts_org, actor=ACTOR, donation_id=refunded.id,
                                  refund_date=dt.date(2026, 3, 5), reason="donor asked")
    [v] = receipts_of(voided)
    [r] = receipts_of(refunded)
    assert v.status == "WITHDRAWN" and v.withdraw_reason == "The donation was voided: entered twice" and v.replaced_by_id is None
    assert r.status == "WITHDRAWN" and r.withdraw_reason == "The donation was refunded in full."
    assert Donation.objects.get(pk=voided.pk).acknowledgement_status == "NEEDS_RECEIPT"


def test_do_not_receipt_per_gift_and_per_donor(receipts_org, django_capture_on_commit_callbacks):
    quiet = make_donor(receipts_org, email="quiet@example.com")
    services.donor_acknowledgement_default_set(organisation=receipts_org, actor=ACTOR, donor_id=quiet.id, status="DO_NOT_RECEIPT")
    gift = record(receipts_org, quiet, django_capture_on_commit_callbacks)
    assert receipts_of(gift) == []
    assert Donation.objects.get(pk=gift.pk).acknowledgement_status == "DO_NOT_RECEIPT"
    # Staff may still issue one for this gift.
    receipt = services.receipt_issue(organisation=receipts_org, actor=ACTOR, donation_id=gift.id)
    assert receipt.status == "ISSUED" and Donation.objects.get(pk=gift.pk).acknowledgement_status == "RECEIPTED"
    # Per gift: withdrawing by hand marks the gift DO_NOT_RECEIPT; later edits issue nothing new.
    services.receipt_withdraw(organisation=receipts_org, actor=ACTOR, receipt_id=receipt.id, reason="issued in error")
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, amount_cents=9900)
    assert [r.status for r in receipts_of(gift)] == ["WITHDRAWN"]
    with pytest.raises(ValidationFailed):
        services.donation_acknowledgement_set(organisation=receipts_org, actor=ACTOR, donation_id=gift.id, status="RECEIPTED")


def test_batch_mode_waits_for_a_bulk_run(org, django_capture_on_commit_callbacks):
    set_up_receipts(org, mode="BATCH")
    donor = make_donor(org)
    gifts = [record(org, donor, django_capture_on_commit_callbacks, amount_cents=1000 + i,
                    donation_date=dt.date(2026, 2, 1) + dt.timedelta(days=i)) for i in range(5)]
    outside = record(org, donor, django_capture_on_commit_callbacks, donation_date=dt.date(2025, 1, 1))
    skip = record(org, donor, django_capture_on_commit_callbacks, donation_date=dt.date(2026, 2, 3))
    services.donation_acknowledgement_set(organisation=org, actor=ACTOR, donation_id=skip.id, status="DO_NOT_RECEIPT")
    assert not Receipt.objects.filter(organisation=org).exists()
    with django_capture_on_commit_callbacks(execute=True):
        run = services.receipt_run_start(organisation=org, actor=ACTOR, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 6, 30))
    assert run.total == 5
    run = ReceiptRun.objects.get(pk=run.pk)
    assert (run.status, run.processed, run.issued) == ("DONE", 5, 5) and run.percent == 100
    # Oldest gift first: numbers follow gift dates.
    assert [receipts_of(g)[0].number for g in gifts] == [1, 2, 3, 4, 5]
    assert receipts_of(outside) == [] and receipts_of(skip) == []
    # A second run finds nothing left to do.
    with django_capture_on_commit_callbacks(execute=True):
        again = services.receipt_run_start(organisation=org, actor=ACTOR, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 6, 30))
    assert ReceiptRun.objects.get(pk=again.pk).issued == 0 and Receipt.objects.filter(organisation=org).count() == 5


def test_no_settings_no_receipt(org, django_capture_on_commit_callbacks):
    gift = record(org, make_donor(org), django_capture_on_commit_callbacks)
    assert receipts_of(gift) == []
    with pytest.raises(ValidationFailed) as exc:
        services.receipt_issue(organisation=org, actor=ACTOR, donation_id=gift.id)
    assert exc.value.param == "settings"
    # Set up later: an edit of a gift recorded before does not receipt it (a bulk run or staff do).
    set_up_receipts(org)
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_update(organisation=org, actor=ACTOR, donation_id=gift.id, notes="later")
    assert receipts_of(gift) == []
    assert services.receipt_issue(organisation=org, actor=ACTOR, donation_id=gift.id).number == 1


def test_emails_are_sent_once_even_if_the_task_runs_twice(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org, email="donor@example.com")
    gift = record(receipts_org, donor, django_capture_on_commit_callbacks)
    [receipt] = receipts_of(gift)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["donor@example.com"] and f"receipt {receipt.number}" in message.subject
    assert message.attachments[0][0] == f"receipt-{receipt.number}.pdf"
    assert message.attachments[0][2] == "application/pdf" and message.attachments[0][1] == bytes(receipt.pdf)
    from receipts.tasks import receipt_email_task, receipt_sync_batch_task

    receipt_email_task(receipts_org.id, receipt.id)
    receipt_email_task(receipts_org.id, receipt.id)
    receipt_sync_batch_task(receipts_org.id, [gift.id])  # the sync task run again: nothing new
    assert len(mail.outbox) == 1 and len(receipts_of(gift)) == 1
    # A resend sends one more, once.
    with django_capture_on_commit_callbacks(execute=True):
        services.receipt_resend(organisation=receipts_org, actor=ACTOR, donation_id=gift.id)
    receipt_email_task(receipts_org.id, receipt.id)
    assert len(mail.outbox) == 2
    receipt.refresh_from_db()
    assert receipt.email_count == 2 and receipt.emailed_at is not None


def test_annual_statement(receipts_org, django_capture_on_commit_callbacks):
    donor = make_donor(receipts_org)
    a = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=10000, donation_date=dt.date(2025, 7, 1))
    record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=5000, donation_date=dt.date(2026, 6, 30))
    record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=7000, donation_date=dt.date(2026, 7, 1))
    voided = record(receipts_org, donor, django_capture_on_commit_callbacks, amount_cents=999, donation_date=dt.date(2025, 8, 1))
    with django_capture_on_commit_callbacks(execute=True):
        donations.donation_void(organisation=receipts_org, actor=ACTOR, donation_id=voided.id, reason="bounced")
    text = " ".join(pdf_text(services.annual_statement_pdf(organisation=receipts_org, donor_id=donor.id, year=2025)).split())
    assert "Annual statement of gifts" in text and "1 July 2025 to 30 June 2026" in text
    assert "$150.00" in text and "$100.00" in text and "$50.00" in text
    assert "$70.00" not in text and "$9.99" not in text
    assert str(receipts_of(a)[0].number) in text


def test_a_receipt_is_never_reused_after_a_rollback(receipts_org):
    """A failed issuing transaction gives its number back: no gap."""
    from django.db import transaction

    donor = make_donor(receipts_org)
    gift = donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                     amount_cents=500, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            services.receipt_issue(organisation=receipts_org, actor=ACTOR, donation_id=gift.id)
            raise RuntimeError("crash after numbering")
    assert services.receipt_issue(organisation=receipts_org, actor=ACTOR, donation_id=gift.id).number == 1


def test_the_sweep_does_what_a_lost_task_did_not(receipts_org):
    """No after-commit task ran (as if the broker was down): the sweep issues, corrects and withdraws."""
    from django.utils import timezone

    from receipts.services import SWEEP_GRACE, receipts_sweep

    from receipts.models import ReceiptSettings

    donor = make_donor(receipts_org)
    before_receipts = donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                                amount_cents=777, donation_date=dt.date(2020, 3, 2), payment_method="CASH")
    gifts = [donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                       amount_cents=1000 + i, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
             for i in range(3)]
    assert receipts_sweep() == 0  # too fresh: their tasks may still be on the way
    ReceiptSettings.objects.filter(organisation=receipts_org).update(created_at=timezone.now() - SWEEP_GRACE * 3)
    Donation.objects.filter(pk__in=[g.pk for g in gifts]).update(updated_at=timezone.now() - SWEEP_GRACE * 2)
    # A gift recorded before receipts were set up is left to a bulk run.
    Donation.objects.filter(pk=before_receipts.pk).update(created_at=timezone.now() - SWEEP_GRACE * 10,
                                                          updated_at=timezone.now() - SWEEP_GRACE * 10)
    assert receipts_sweep() == 3 and Receipt.objects.filter(organisation=receipts_org, status="ISSUED").count() == 3
    donations.donation_update(organisation=receipts_org, actor=ACTOR, donation_id=gifts[0].id, amount_cents=5000)
    donations.donation_void(organisation=receipts_org, actor=ACTOR, donation_id=gifts[1].id, reason="duplicate")
    Donation.objects.filter(pk__in=[g.pk for g in gifts]).update(updated_at=timezone.now() - SWEEP_GRACE * 2)
    assert receipts_sweep() == 2
    assert [r.status for r in receipts_of(gifts[0])] == ["WITHDRAWN", "ISSUED"] and receipts_of(gifts[0])[1].amount_cents == 5000
    assert [r.status for r in receipts_of(gifts[1])] == ["WITHDRAWN"]
    assert receipts_sweep() == 0 and receipts_of(before_receipts) == []


def test_one_message_per_transaction_however_many_gifts(receipts_org, django_capture_on_commit_callbacks, monkeypatch):
    """An import-sized transaction asks for its receipts in one message per 500 gifts, not one per gift;
    a savepoint rolled back inside it loses neither the flush nor the other gifts."""
    from django.db import transaction

    import together.celery

    sent = []
    real = together.celery.task_send
    monkeypatch.setattr(together.celery, "task_send", lambda name, *args, **kw: (sent.append((name, args)), real(name, *args, **kw)))
    donor = make_donor(receipts_org)
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            with pytest.raises(RuntimeError):
                with transaction.atomic():
                    donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                              amount_cents=1, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
                    raise RuntimeError("rolled back")
            gifts = [donations.donation_record(organisation=receipts_org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                               amount_cents=100 + i, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
                     for i in range(12)]
    receipt_sends = [args for name, args in sent if name == "receipts.tasks.receipt_sync_batch_task" and args[0] == receipts_org.id]
    assert len(receipt_sends) == 1
    assert set(receipt_sends[0][1]) >= {g.id for g in gifts}
    assert sorted(Receipt.objects.filter(organisation=receipts_org).values_list("number", flat=True)) == list(range(1, 13))


def test_merging_donors_moves_the_duplicates_receipts_to_the_survivor(receipts_org, django_capture_on_commit_callbacks):
    """A receipted donor can be merged (a receipt's donor is PROTECTed: the merge failed
    before receipts followed it); the receipt keeps its number and what it states."""
    survivor, duplicate = make_donor(receipts_org), make_donor(receipts_org, first_name="Alicia")
    gift = record(receipts_org, duplicate, django_capture_on_commit_callbacks, amount_cents=5000)
    [receipt] = receipts_of(gift)
    with django_capture_on_commit_callbacks(execute=True):
        donations.donor_merge(organisation=receipts_org, actor=ACTOR, survivor_id=survivor.id, duplicate_id=duplicate.id)
    moved = Receipt.objects.get(pk=receipt.pk)
    assert (moved.donor_id, moved.number, moved.status) == (survivor.id, receipt.number, receipt.status)
    assert Receipt.objects.filter(organisation=receipts_org).count() == 1
