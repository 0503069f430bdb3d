"""POST /webhooks/stripe against a live server, with localstripe sending (and the
tests re-sending) Stripe's signed events: verified, stored once, processed once,
in any order, only forward."""
from __future__ import annotations

import json

import pytest
import requests

from donations.models import Donation
from payments import services as payments
from payments.models import Payment, PaymentStatus, Payout, StripeEvent
from tests.conftest import make_org
from tests.payments.helpers import connect, make_form, pay, start_form_payment, start_split_payment
from tests.support import stripe as fake_stripe
from tests.support.stripe import find_event, send_signed_event, wait_until
from webhooks.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


def _gift(payment: Payment) -> Donation | None:
    return Donation.objects.filter(stripe_payment_intent_id=payment.payment_intent_id).exclude(status="FAILED").first()


def _paid_by_stripe_events(org, amount=5000) -> tuple[Payment, Donation]:
    """A form gift paid by card and recorded from Stripe's own webhook (no payment_sync here)."""
    payment = start_form_payment(org, make_form(org), amount)
    pay(payment)
    gift = wait_until(lambda: _gift(payment), message="the donation from payment_intent.succeeded")
    return payment, gift


def test_a_bad_signature_is_400_and_nothing_is_stored(live_server, localstripe):
    url = f"{live_server.url}/webhooks/stripe"
    event = fake_stripe.event_payload("payment_intent.succeeded", {"id": "pi_bad", "object": "payment_intent"})
    assert send_signed_event(url, event, secret="whsec_not_ours").status_code == 400
    payload = json.dumps(event).encode()
    forged = requests.post(url, data=payload, headers={"Stripe-Signature": "t=1,v1=deadbeef"}, timeout=10)
    unsigned = requests.post(url, data=payload, timeout=10)
    assert (forged.status_code, unsigned.status_code) == (400, 400)
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert not StripeEvent.objects.exists()
    assert requests.get(url, timeout=10).status_code == 405


def test_stripes_own_events_record_the_gift_and_a_duplicate_changes_nothing(stripe_webhooks, localstripe):
    org = make_org("Hooked")
    connect(org)
    payment, gift = _paid_by_stripe_events(org)
    assert gift.status == "CONFIRMED" and gift.source == "STRIPE"
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    event = find_event("payment_intent.succeeded", payment.payment_intent_id)
    stored = wait_until(lambda: StripeEvent.objects.filter(event_id=event["id"], processed_at__isnull=False).first())
    assert stored.outcome == "PROCESSED" and stored.type == "payment_intent.succeeded"
    # Stripe delivers at least once: the same event again, twice more.
    for _ in range(2):
        response = send_signed_event(stripe_webhooks, event)
        assert response.status_code == 200
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert StripeEvent.objects.get(event_id=event["id"]).processed_at == stored.processed_at
    assert Donation.objects.filter(organisation=org).count() == 1
    assert Event.objects.filter(organisation=org, type="donation.created").count() == 1
    assert Event.objects.get(organisation=org, type="donation.created").data["source"] == "STRIPE"


def test_events_out_of_order_never_move_backwards(stripe_webhooks, localstripe):
    org = make_org("Ordered")
    connect(org)
    payment, gift = _paid_by_stripe_events(org)
    succeeded = find_event("payment_intent.succeeded", payment.payment_intent_id)
    # A `processing` event (delayed in transit) arrives after `succeeded`: it carries an older state of the intent.
    processing = fake_stripe.event_payload("payment_intent.processing", {**succeeded["data"]["object"], "status": "processing"})
    assert send_signed_event(stripe_webhooks, processing).status_code == 200
    failed = fake_stripe.event_payload("payment_intent.payment_failed", {**succeeded["data"]["object"], "status": "requires_payment_method"})
    assert send_signed_event(stripe_webhooks, failed).status_code == 200
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    gift.refresh_from_db()
    assert gift.status == "CONFIRMED" and Donation.objects.filter(organisation=org).count() == 1
    assert StripeEvent.objects.get(event_id=processing["id"]).outcome == "PROCESSED"


def test_a_declined_card_from_stripes_event_is_a_failed_attempt(stripe_webhooks, localstripe):
    org = make_org("Declined")
    connect(org)
    payment = start_form_payment(org, make_form(org), 3000)
    assert pay(payment, fake_stripe.DECLINED_CARD)["error"]["message"] == fake_stripe.DECLINE_MESSAGE
    failed = wait_until(lambda: Donation.objects.filter(organisation=org, status="FAILED").first())
    assert failed.donor.donations_total_cents == 0
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.FAILED
    assert not Donation.objects.filter(organisation=org, status="CONFIRMED").exists()


def test_unknown_event_types_are_200_and_ignored(stripe_webhooks, localstripe):
    event = fake_stripe.event_payload("customer.created", {"id": "cus_x", "object": "customer"})
    response = send_signed_event(stripe_webhooks, event)
    assert response.status_code == 200
    assert StripeEvent.objects.get(event_id=event["id"]).outcome == "IGNORED"
    other = fake_stripe.event_payload("payment_intent.succeeded", {"id": "pi_of_another_process", "object": "payment_intent"})
    assert send_signed_event(stripe_webhooks, other).status_code == 200
    assert StripeEvent.objects.get(event_id=other["id"]).outcome == "IGNORED"


def test_a_refund_made_in_stripe_syncs_forward_and_emits_donation_refunded(stripe_webhooks, localstripe):
    org = make_org("Refunded")
    connect(org)
    payment, gift = _paid_by_stripe_events(org, 8000)
    client = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY)
    client.v1.refunds.create(params={"charge": gift.stripe_charge_id, "amount": 3000})  # in Stripe's dashboard
    wait_until(lambda: Donation.objects.get(pk=gift.pk).refunded_cents == 3000, message="the partial refund")
    gift.refresh_from_db()
    assert client.v1.transfers.retrieve(gift.stripe_transfer_id).amount_reversed == 3000
    assert gift.status == "CONFIRMED" and gift.donor.donations_total_cents == 5000
    event = Event.objects.get(organisation=org, type="donation.refunded")
    assert event.data["refunded_cents"] == 3000 and event.data["status"] == "CONFIRMED"
    client.v1.refunds.create(params={"charge": gift.stripe_charge_id})  # the rest
    wait_until(lambda: Donation.objects.get(pk=gift.pk).status == "REFUNDED", message="the full refund")
    gift.refresh_from_db()
    assert gift.refunded_cents == 8000 and gift.donor.donations_total_cents == 0
    # The first charge.refunded delivered again (older state) moves nothing back.
    first = find_event("charge.refunded", gift.stripe_charge_id)
    assert send_signed_event(stripe_webhooks, first).status_code == 200
    assert Donation.objects.get(pk=gift.pk).refunded_cents == 8000


def test_a_lost_dispute_refunds_the_gift_and_a_won_one_keeps_it(stripe_webhooks, localstripe):
    org = make_org("Disputed")
    connect(org)
    _p1, lost = _paid_by_stripe_events(org, 4000)
    _p2, won = _paid_by_stripe_events(org, 6000)
    lost_dispute = fake_stripe.open_dispute(charge=lost.stripe_charge_id)
    won_dispute = fake_stripe.open_dispute(charge=won.stripe_charge_id)
    wait_until(lambda: Donation.objects.get(pk=lost.pk).dispute_status and Donation.objects.get(pk=won.pk).dispute_status)
    assert Donation.objects.get(pk=lost.pk).status == "CONFIRMED"
    fake_stripe.close_dispute(lost_dispute["id"], "lost")
    fake_stripe.close_dispute(won_dispute["id"], "won")
    wait_until(lambda: Donation.objects.get(pk=lost.pk).status == "REFUNDED", message="the lost dispute")
    wait_until(lambda: Donation.objects.get(pk=won.pk).dispute_status == "won", message="the won dispute")
    lost.refresh_from_db()
    won.refresh_from_db()
    assert (lost.dispute_status, lost.refunded_cents) == ("lost", 4000)
    assert (won.status, won.refunded_cents) == ("CONFIRMED", 0)
    assert won.donor.donations_total_cents == 6000
    client = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY)
    lost_transfer = client.v1.transfers.retrieve(lost.stripe_transfer_id)
    assert lost_transfer.amount_reversed == lost_transfer.amount  # taken back from the recipient's account
    assert client.v1.transfers.retrieve(won.stripe_transfer_id).amount_reversed == 0


def test_payout_paid_links_its_donations(stripe_webhooks, localstripe):
    org = make_org("Paidout")
    connect(org)
    _p1, first = _paid_by_stripe_events(org, 2500)
    _p2, second = _paid_by_stripe_events(org, 7500)
    client = fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY)
    payout = client.v1.payouts.create(params={"currency": "aud"})  # takes every available balance transaction
    wait_until(lambda: Payout.objects.filter(organisation=org, payout_id=payout.id).exists(), message="payout.paid")
    for gift in (first, second):
        gift.refresh_from_db()
        assert gift.stripe_payout_id == payout.id
    row = Payout.objects.get(organisation=org, payout_id=payout.id)
    assert (row.donations_count, row.gross_cents, row.status) == (2, 10_000, "paid")
    assert row.fee_cents == first.fee_cents + second.fee_cents and row.net_cents == 10_000 - row.fee_cents


def test_a_split_payment_through_stripes_events(stripe_webhooks, localstripe):
    org = make_org("Splitter")
    connect(org)
    recipients = [make_org("R1"), make_org("R2")]
    for r in recipients:
        connect(r)
    payment = start_split_payment(org, [(recipients[0], 1500), (recipients[1], 3500)])
    pay(payment)
    wait_until(lambda: Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED)
    assert [Donation.objects.get(organisation=r).amount_cents for r in recipients] == [1500, 3500]
    assert all(p.stripe_transfer_id for p in Payment.objects.get(pk=payment.pk).parts.all())
    assert payments.payment_sync(payment_intent_id=payment.payment_intent_id).status == PaymentStatus.SUCCEEDED
