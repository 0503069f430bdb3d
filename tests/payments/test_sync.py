"""payment_sync: Stripe's word moves the payment and its donations forward, once;
the books take the gift exactly like a manual one, or, over the cap, refund it."""
from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from compliance.models import DonorAggregate
from donations import services as donations
from donations.models import Donation, Donor
from organisations.models import AuditEntry, Role
from organisations.services import membership_set, user_get_or_create
from payments import services as payments
from payments.models import Payment, PaymentStatus
from tests.conftest import make_org
from tests.payments.helpers import (
    DONOR, NSW_CAP, SYSTEM, connect, make_donor, make_form, make_link, nsw_code, pay, pay_and_sync, start_form_payment,
    start_split_payment,
)
from tests.support import stripe as fake_stripe
from webhooks.models import Event


def _fee(amount: int) -> int:
    return round(amount * 0.0175) + 30  # Stripe's Australian card price, as localstripe charges it


@pytest.mark.django_db
def test_a_paid_form_gift_is_a_confirmed_stripe_donation_with_fee_net_and_snapshot(org, localstripe):
    account = connect(org)
    form = make_form(org)
    payment = pay_and_sync(start_form_payment(org, form, 5000))
    assert payment.status == PaymentStatus.SUCCEEDED and payment.stripe_charge_id
    part = payment.parts.get()
    gift = part.donation
    assert (gift.status, gift.source, gift.amount_cents, gift.payment_method) == ("CONFIRMED", "STRIPE", 5000, "CARD")
    assert gift.donation_date == timezone.localdate()
    assert gift.fee_cents == _fee(5000) == 118 and gift.net_cents == 5000 - 118
    assert gift.stripe_payment_intent_id == payment.payment_intent_id and gift.stripe_charge_id == payment.stripe_charge_id
    assert gift.stripe_balance_transaction_id.startswith("txn_")
    assert gift.donor_snapshot["email"] == DONOR["email"] and gift.donor_snapshot["address_line1"] == DONOR["address_line1"]
    assert gift.metadata == {"payment_id": payment.id, "form_id": form.id}
    donor = gift.donor
    assert (donor.first_name, donor.email, donor.donations_total_cents) == ("Dana", DONOR["email"], 5000)
    # The net went to the organisation's connected account, in the payment's transfer group.
    transfer = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY).v1.transfers.retrieve(part.stripe_transfer_id)
    assert (transfer.destination, transfer.amount, transfer.source_transaction) == (account, 5000 - 118, payment.stripe_charge_id)
    assert transfer.transfer_group == payment.transfer_group and gift.stripe_transfer_id == transfer.id
    # donation.created, as for a manual gift, with the card fields.
    event = Event.objects.get(organisation=org, type="donation.created", data__id=gift.id)
    assert event.data["source"] == "STRIPE" and event.data["fee_cents"] == 118 and event.data["net_cents"] == 4882
    assert event.data["stripe_charge_id"] == payment.stripe_charge_id and event.data["refunded_cents"] == 0
    # Once: syncing again changes nothing.
    again = payments.payment_sync(payment_intent_id=payment.payment_intent_id)
    assert again.status == PaymentStatus.SUCCEEDED
    assert Donation.objects.filter(organisation=org).count() == 1
    assert Event.objects.filter(organisation=org, type="donation.created").count() == 1


@pytest.mark.django_db
def test_an_existing_donors_name_address_and_phone_are_never_overwritten(org, localstripe):
    connect(org)
    form = make_form(org)
    kept = make_donor(org, first_name="Canonical", last_name="Record", email="dana@example.com", phone="+61 2 9999 0000",
                      address_line1="99 Kept Street", suburb="Keptville", postcode="2999")
    typed = {**DONOR, "email": "Dana@Example.com", "first_name": "Impostor", "last_name": "Typed",
             "address_line1": "1 Other Road", "phone": "+61 400 111 222"}
    payment = pay_and_sync(start_form_payment(org, form, 2500, donor=typed))
    gift = payment.parts.get().donation
    assert gift.donor_id == kept.id
    kept.refresh_from_db()
    assert (kept.first_name, kept.last_name, kept.phone, kept.address_line1, kept.suburb, kept.postcode) == (
        "Canonical", "Record", "+61 2 9999 0000", "99 Kept Street", "Keptville", "2999")
    assert gift.donor_snapshot["first_name"] == "Impostor" and gift.donor_snapshot["address_line1"] == "1 Other Road"
    assert gift.donor_snapshot["phone"] == "+61 400 111 222"
    assert Donor.objects.filter(organisation=org).count() == 1


@pytest.mark.django_db
def test_a_declined_card_is_a_failed_attempt_that_counts_nothing(org, localstripe):
    connect(org)
    form = make_form(org, revenue_code=nsw_code(org))
    payment = start_form_payment(org, form, 7000)
    result = pay(payment, fake_stripe.DECLINED_CARD)
    assert result["error"]["message"] == fake_stripe.DECLINE_MESSAGE
    payment = payments.payment_sync(payment_intent_id=payment.payment_intent_id)
    assert payment.status == PaymentStatus.FAILED and payment.failure_message == fake_stripe.DECLINE_MESSAGE
    failed = Donation.objects.get(organisation=org)
    assert (failed.status, failed.source, failed.amount_cents) == ("FAILED", "STRIPE", 7000)
    assert failed.donor.donations_total_cents == 0 and failed.donor.donations_count == 0
    assert not DonorAggregate.objects.filter(donor=failed.donor, total_cents__gt=0).exists()
    assert payment.parts.get().donation_id is None
    # The same failure seen again records nothing more.
    payments.payment_sync(payment_intent_id=payment.payment_intent_id)
    assert Donation.objects.filter(organisation=org).count() == 1
    # The donor tries another card on the same intent: the gift is recorded once, CONFIRMED.
    payment = pay_and_sync(payment)
    assert payment.status == PaymentStatus.SUCCEEDED
    assert sorted(Donation.objects.filter(organisation=org).values_list("status", flat=True)) == ["CONFIRMED", "FAILED"]
    assert Donor.objects.get(organisation=org).donations_total_cents == 7000


@pytest.mark.django_db
def test_a_checkout_link_paid_once_completes_with_the_consent_answer(org, localstripe):
    connect(org)
    donor = make_donor(org, email="linked@example.com", first_name="Linked")
    link = make_link(org, donor, 12_500, consent_text="Keep me informed")
    payment = payments.payment_start(
        organisation=org, kind="CHECKOUT_LINK", attempt_key="anything-the-page-sent", donor_details={"email": donor.email},
        parts=[payments.PartSpec(recipient_organisation=org, amount_cents=12_500)], checkout_link=link,
        consent_text=link.consent_text, consent_given=False,
    )
    payment = pay_and_sync(payment)
    gift = payment.parts.get().donation
    assert (gift.source, gift.status, gift.donor_id, gift.consent_given, gift.consent_text) == (
        "CHECKOUT_LINK", "CONFIRMED", donor.id, False, "Keep me informed")
    link.refresh_from_db()
    assert link.status == "COMPLETED" and link.donation_id == gift.id
    with pytest.raises(Exception, match="already been paid"):
        payments.payment_start(
            organisation=org, kind="CHECKOUT_LINK", attempt_key="another-attempt-key", donor_details={"email": donor.email},
            parts=[payments.PartSpec(recipient_organisation=org, amount_cents=12_500)], checkout_link=link)


@pytest.mark.django_db
def test_a_split_card_gift_lands_in_each_recipients_books_with_a_transfer_each(org, localstripe):
    connect(org)
    recipients = [make_org(name) for name in ("Alpha", "Beta", "Gamma")]
    accounts = [connect(r) for r in recipients]
    make_donor(recipients[1], email=DONOR["email"], first_name="KnownAtBeta")
    payment = pay_and_sync(start_split_payment(org, list(zip(recipients, (1000, 2000, 3000)))))
    assert payment.status == PaymentStatus.SUCCEEDED
    fee = _fee(6000)
    parts = list(payment.parts.order_by("position"))
    assert sum(p.fee_cents for p in parts) == fee
    client = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY)
    transfers = client.v1.transfers.list(params={"transfer_group": payment.transfer_group}).data
    assert sorted((t.destination, t.amount) for t in transfers) == sorted(
        (accounts[i], parts[i].amount_cents - parts[i].fee_cents) for i in range(3))
    for recipient, part in zip(recipients, parts):
        gift = Donation.objects.get(organisation=recipient)
        assert part.donation_id == gift.id and gift.source == "STRIPE" and gift.amount_cents == part.amount_cents
        assert gift.metadata["recommending_organisation_id"] == org.id
        assert gift.stripe_transfer_id == part.stripe_transfer_id
    assert Donation.objects.get(organisation=recipients[1]).donor.first_name == "KnownAtBeta"
    assert not Donation.objects.filter(organisation=org).exists()


def _admin(org, email):
    membership_set(organisation=org, user=user_get_or_create(email=email, password="x"), role=Role.ADMIN)


@pytest.mark.django_db(transaction=True)
def test_two_payments_racing_at_the_cap_edge_never_go_over_and_the_loser_is_refunded(localstripe):
    org = make_org("Racer")
    connect(org)
    _admin(org, "admin@racer.example")
    form = make_form(org, revenue_code=nsw_code(org))
    donor = make_donor(org, email=DONOR["email"])
    donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                              amount_cents=NSW_CAP - 60_000, donation_date=timezone.localdate(), revenue_code="NSW-STATE")
    # Each fits the room left ($600) alone; both together do not. Both pass the check before the intent...
    first, second = (start_form_payment(org, form, 40_000) for _ in range(2))
    pay(first)
    pay(second)
    barrier, results, errors = threading.Barrier(2), {}, []

    def settle(payment):
        try:
            barrier.wait()
            results[payment.id] = payments.payment_sync(payment_intent_id=payment.payment_intent_id).status
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=settle, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(results.values()) == [PaymentStatus.REFUNDED_OVER_CAP, PaymentStatus.SUCCEEDED]
    loser = Payment.objects.get(pk=next(pid for pid, status in results.items() if status == PaymentStatus.REFUNDED_OVER_CAP))
    donor.refresh_from_db()
    assert donor.donations_total_cents == NSW_CAP - 60_000 + 40_000 <= NSW_CAP
    assert Donation.objects.filter(organisation=org, status="CONFIRMED").count() == 2  # the manual gift and the winner
    assert not Donation.objects.filter(stripe_payment_intent_id=loser.payment_intent_id).exists()
    # The loser's money went back in full, automatically.
    intent = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY).v1.payment_intents.retrieve(
        loser.payment_intent_id, params={"expand": ["latest_charge"]})
    assert intent.latest_charge.amount_refunded == 40_000
    # Staff are alerted: the audit trail, the Payments page's list, and an email to the ADMINs.
    alert = AuditEntry.objects.get(organisation=org, action="payment.refunded_over_cap")
    assert alert.object_id == loser.id and "cap" in alert.after["refusal"]
    assert any("over a donor cap" in m.subject and "admin@racer.example" in m.to for m in mail.outbox)
    # A late event for the loser changes nothing.
    assert payments.payment_sync(payment_intent_id=loser.payment_intent_id).status == PaymentStatus.REFUNDED_OVER_CAP
    assert Donation.objects.filter(organisation=org).count() == 2


def _pay_by_debit(payment, iban: str) -> dict:
    """A bank debit (localstripe's sepa_debit stands in for BECS: it settles after a moment)."""
    import requests

    intent_id = payment.client_secret.split("_secret_")[0]
    return requests.post(f"{fake_stripe.api_base()}/v1/payment_intents/{intent_id}/confirm", timeout=30, json={
        "key": fake_stripe.settings.STRIPE_PUBLISHABLE_KEY, "client_secret": payment.client_secret,
        "payment_method_data": {"type": "sepa_debit", "sepa_debit": {"iban": iban}}}).json()


@pytest.mark.django_db
def test_a_processing_debit_is_pending_and_failed_when_the_bank_rejects_it(org, localstripe):
    """localstripe's debits stand in for BECS: this IBAN is processing for a moment, then rejected.
    (Its debits that clear are reported succeeded at once, so pending → confirmed is the
    donations.services.donation_payment_settle path, covered by the cap race's settle too.)"""
    connect(org)
    payment = start_form_payment(org, make_form(org, revenue_code=nsw_code(org)), 20_000)
    assert _pay_by_debit(payment, "DE62370400440532013001")["status"] == "processing"  # localstripe's failing IBAN
    payment = payments.payment_sync(payment_intent_id=payment.payment_intent_id)
    if payment.status == PaymentStatus.PROCESSING:  # usually: the bank answers half a second later
        gift = payment.parts.get().donation
        assert (gift.status, gift.source, gift.donor.donations_total_cents) == ("PENDING", "STRIPE", 0)
    payment = fake_stripe.wait_until(lambda: (p := payments.payment_sync(payment_intent_id=payment.payment_intent_id))
                                     .status == PaymentStatus.FAILED and p, message="the debit to fail")
    gift = Donation.objects.get(organisation=org)
    assert gift.status == "FAILED" and gift.donor.donations_total_cents == 0
    assert not DonorAggregate.objects.filter(donor=gift.donor, total_cents__gt=0).exists()
    statuses = [e.data["status"] for e in Event.objects.filter(organisation=org, type__startswith="donation.").order_by("created_at")]
    assert statuses in (["PENDING", "FAILED"], ["FAILED"])


@pytest.mark.django_db
def test_a_pending_card_gift_settles_through_the_cap_like_a_new_one(org):
    """donations.services.donation_payment_settle, which payment_sync calls when a
    PENDING (bank debit) payment clears: CONFIRMED and counted, or refused by the cap."""
    from compliance.services import CapExceeded

    code = nsw_code(org)
    donor = make_donor(org)

    def pending(amount):
        return donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                         amount_cents=amount, donation_date=timezone.localdate(), source="STRIPE",
                                         status="PENDING", payment_method="CARD", revenue_code=code,
                                         card={"stripe_payment_intent_id": "pi_pending_test"})

    first, second = pending(NSW_CAP - 100), pending(200)  # PENDING counts nothing: both recorded
    donor.refresh_from_db()
    assert donor.donations_total_cents == 0
    donations.donation_payment_settle(organisation=org, actor=SYSTEM, donation_id=first.id, status="CONFIRMED",
                                      card={"fee_cents": 100, "net_cents": NSW_CAP - 200})
    donor.refresh_from_db()
    assert donor.donations_total_cents == NSW_CAP - 100
    with pytest.raises(CapExceeded):
        donations.donation_payment_settle(organisation=org, actor=SYSTEM, donation_id=second.id, status="CONFIRMED")
    second.refresh_from_db()
    assert second.status == "PENDING"
    donations.donation_payment_settle(organisation=org, actor=SYSTEM, donation_id=second.id, status="FAILED",
                                      reason="Refunded: over the cap.")
    second.refresh_from_db()
    assert second.status == "FAILED" and "over the cap" in second.notes
    with pytest.raises(Exception, match="Only a PENDING gift settles"):
        donations.donation_payment_settle(organisation=org, actor=SYSTEM, donation_id=second.id, status="CONFIRMED")
