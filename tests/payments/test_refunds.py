"""Refunding card gifts: through the API (a WRITE key, the whole HTTP stack) and the
dashboard, in part or in full, through Stripe; every total follows."""
from __future__ import annotations

import pytest
from django.test import Client

from compliance.models import DonorAggregate
from donations import services as donations
from donations.models import Donation
from donations.selectors import campaign_rollups
from organisations.models import Role
from organisations.services import membership_set, user_get_or_create
from tests.conftest import make_org
from tests.payments.helpers import SYSTEM, connect, make_form, nsw_code, pay_and_sync, start_form_payment, start_split_payment
from tests.support import stripe as fake_stripe
from webhooks.models import Event

pytestmark = pytest.mark.django_db

URL = "/api/v1/donations/{}/refund"


def _card_gift(org, amount=10_000, **form_fields):
    payment = pay_and_sync(start_form_payment(org, make_form(org, **form_fields), amount))
    return payment, payment.parts.get().donation


def _stripe():
    return fake_stripe.client(fake_stripe.settings.STRIPE_SECRET_KEY)


def test_partial_then_full_refund_through_the_api_moves_every_total(org, write_client, localstripe):
    connect(org)
    campaign = donations.campaign_create(organisation=org, actor=SYSTEM, name="Spring")
    payment, gift = _card_gift(org, 10_000, campaign_id=campaign.id, revenue_code=nsw_code(org))

    def nsw_total():  # the donor's counted total under the NSW cap (compliance's aggregate)
        return DonorAggregate.objects.get(donor_id=gift.donor_id, jurisdiction="NSW", rule__cap_cents__isnull=False).total_cents

    assert nsw_total() == 10_000
    part = payment.parts.get()
    transfer_amount = 10_000 - gift.fee_cents

    response = write_client.post(URL.format(gift.id), {"refund_date": gift.donation_date.isoformat(),
                                                      "reason": "Meant to give $60", "amount_cents": 4000}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["refunded_cents"], body["amount_cents"]) == ("CONFIRMED", 4000, 10_000)
    assert body["stripe_charge_id"] == gift.stripe_charge_id and body["fee_cents"] == gift.fee_cents
    gift.refresh_from_db()
    assert gift.donor.donations_total_cents == 6000
    assert campaign_rollups(organisation=org, campaign_ids=[campaign.id])[campaign.id]["raised_cents"] == 6000
    assert nsw_total() == 6000
    charge = _stripe().v1.charges.retrieve(gift.stripe_charge_id)
    assert charge.amount_refunded == 4000
    assert _stripe().v1.transfers.retrieve(part.stripe_transfer_id).amount_reversed == 4000
    refunded = Event.objects.filter(organisation=org, type="donation.refunded").order_by("created_at")
    assert [e.data["refunded_cents"] for e in refunded] == [4000]

    # More than is left is refused, and nothing changes.
    too_much = write_client.post(URL.format(gift.id), {"refund_date": gift.donation_date.isoformat(), "reason": "x",
                                                      "amount_cents": 6001}, format="json")
    assert too_much.status_code == 400 and too_much.json()["error"]["param"] == "amount_cents"

    # The rest (no amount: all that is left).
    response = write_client.post(URL.format(gift.id), {"refund_date": gift.donation_date.isoformat(), "reason": "All of it"},
                                 format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["refunded_cents"]) == ("REFUNDED", 10_000)
    gift.refresh_from_db()
    assert gift.donor.donations_total_cents == 0
    assert campaign_rollups(organisation=org, campaign_ids=[campaign.id]).get(campaign.id, {}).get("raised_cents", 0) == 0
    assert not DonorAggregate.objects.filter(donor_id=gift.donor_id, total_cents__gt=0).exists()
    assert _stripe().v1.charges.retrieve(gift.stripe_charge_id).amount_refunded == 10_000
    # The transfer gives back what is left of it (the fee was never transferred).
    assert _stripe().v1.transfers.retrieve(part.stripe_transfer_id).amount_reversed == transfer_amount
    assert [e.data["status"] for e in Event.objects.filter(organisation=org, type="donation.refunded").order_by("created_at")] == [
        "CONFIRMED", "REFUNDED"]
    again = write_client.post(URL.format(gift.id), {"refund_date": gift.donation_date.isoformat(), "reason": "again"},
                              format="json")
    assert again.status_code == 400 and again.json()["error"]["param"] == "status"


def test_a_read_key_may_not_refund(org, read_client, localstripe):
    connect(org)
    _payment, gift = _card_gift(org, 2500)
    response = read_client.post(URL.format(gift.id), {"refund_date": gift.donation_date.isoformat(), "reason": "x"},
                                format="json")
    assert response.status_code == 403
    assert _stripe().v1.charges.retrieve(gift.stripe_charge_id).amount_refunded == 0


def test_a_manual_gift_is_refunded_in_full_only(org, write_client):
    donor = donations.donor_create(organisation=org, actor=SYSTEM, email="m@example.com")
    gift = donations.donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY",
                                     amount_cents=5000, donation_date=__import__("datetime").date(2026, 3, 1))
    partial = write_client.post(URL.format(gift.id), {"refund_date": "2026-03-05", "reason": "x", "amount_cents": 1000},
                                format="json")
    assert partial.status_code == 400 and partial.json()["error"]["param"] == "amount_cents"
    full = write_client.post(URL.format(gift.id), {"refund_date": "2026-03-05", "reason": "x", "amount_cents": 5000},
                             format="json")
    assert full.status_code == 200 and full.json()["status"] == "REFUNDED" and full.json()["refunded_cents"] == 5000


def test_refunding_a_split_part_reverses_its_transfer_only(org, write_client, localstripe):
    connect(org)
    a, b = make_org("Alpha"), make_org("Beta")
    connect(a)
    connect(b)
    payment = pay_and_sync(start_split_payment(org, [(a, 3000), (b, 7000)]))
    part_a, part_b = payment.parts.order_by("position")
    gift_b = part_b.donation
    from tests.conftest import client_for, make_key

    b_client = client_for(make_key(b, "WRITE"))
    # The recommending organisation cannot refund the recipient's gift: it is in the recipient's books.
    assert write_client.post(URL.format(gift_b.id), {"refund_date": gift_b.donation_date.isoformat(), "reason": "x"},
                             format="json").status_code == 404
    response = b_client.post(URL.format(gift_b.id), {"refund_date": gift_b.donation_date.isoformat(), "reason": "x",
                                                     "amount_cents": 2000}, format="json")
    assert response.status_code == 200, response.content
    assert _stripe().v1.transfers.retrieve(part_b.stripe_transfer_id).amount_reversed == 2000
    assert _stripe().v1.transfers.retrieve(part_a.stripe_transfer_id).amount_reversed == 0
    assert _stripe().v1.charges.retrieve(payment.stripe_charge_id).amount_refunded == 2000
    assert Donation.objects.get(pk=part_a.donation_id).refunded_cents == 0


def test_the_dashboard_refunds_part_of_a_card_gift(org, localstripe):
    connect(org)
    _payment, gift = _card_gift(org, 5000)
    user = user_get_or_create(email="editor@example.com", password="pw-editor-123")
    membership_set(organisation=org, user=user, role=Role.EDITOR)
    client = Client()
    client.force_login(user)
    page = client.get(f"/donations/{gift.id}/")
    assert page.status_code == 200 and b"Amount to refund" in page.content and b"Refund through Stripe" in page.content
    response = client.post(f"/donations/{gift.id}/", {"action": "refund", "refund_date": gift.donation_date.isoformat(),
                                                       "reason": "Part back", "amount": "12.50"})
    assert response.status_code == 302
    gift.refresh_from_db()
    assert (gift.status, gift.refunded_cents) == ("CONFIRMED", 1250)
    assert _stripe().v1.charges.retrieve(gift.stripe_charge_id).amount_refunded == 1250
    page = client.get(f"/donations/{gift.id}/")
    assert b"$12.50 of $50.00" in page.content
    too_much = client.post(f"/donations/{gift.id}/", {"action": "refund", "refund_date": gift.donation_date.isoformat(),
                                                       "reason": "Too much", "amount": "40.00"})
    assert too_much.status_code == 400 and b"At most 3750 cents" in too_much.content
