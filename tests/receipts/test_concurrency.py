"""Numbers under real concurrency: threads with their own database connections
issue receipts at once; the numbers are consecutive, with no gap and no duplicate."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from donations import services as donations
from receipts import services
from receipts.models import Receipt, ReceiptCounter
from tests.receipts.conftest import ACTOR, make_donor, set_up_receipts

pytestmark = pytest.mark.django_db(transaction=True)


def run_threads(target, args_list):
    barrier = threading.Barrier(len(args_list))
    errors: list[BaseException] = []

    def worker(*args):
        try:
            barrier.wait(timeout=30)
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()  # each thread had a connection of its own

    threads = [threading.Thread(target=worker, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:3]


# The database is shared (max_connections): 25 threads, each with its own connection,
# issue 4 receipts each, all at once.
THREADS = 25


def test_100_concurrent_issues_get_100_consecutive_numbers(org):
    donors = [make_donor(org, email=f"d{i}@example.com") for i in range(10)]
    gifts = [donations.donation_record(organisation=org, actor=ACTOR, donor_id=donors[i % 10].id, donation_type="MONETARY",
                                       amount_cents=100 + i, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
             for i in range(100)]
    assert not Receipt.objects.exists()  # not set up yet: nothing issued on record
    set_up_receipts(org)
    def issue(gift_ids):
        for gift_id in gift_ids:
            services.receipt_issue(organisation=org, actor=ACTOR, donation_id=gift_id)

    run_threads(issue, [([g.id for g in gifts[i::THREADS]],) for i in range(THREADS)])
    numbers = sorted(Receipt.objects.filter(organisation=org).values_list("number", flat=True))
    assert numbers == list(range(1, 101))
    assert Receipt.objects.filter(organisation=org).values("donation_id").distinct().count() == 100
    assert ReceiptCounter.objects.get(organisation=org).next_number == 101


def test_gifts_recorded_at_once_are_receipted_in_one_sequence_per_organisation(org, other_org):
    """Every path records through donation_record, whose commit enqueues the receipt
    task (inline here): 30 gifts in two organisations at once, two clean sequences."""
    set_up_receipts(org)
    set_up_receipts(other_org)
    donors = {o.id: [make_donor(o, email=f"c{i}@example.com") for i in range(15)] for o in (org, other_org)}

    def give(organisation, donor_id, cents):
        donations.donation_record(organisation=organisation, actor=ACTOR, donor_id=donor_id, donation_type="MONETARY",
                                  amount_cents=cents, donation_date=dt.date(2026, 3, 2), payment_method="CARD")

    run_threads(give, [(o, d.id, 500 + i) for o in (org, other_org) for i, d in enumerate(donors[o.id])])
    for o in (org, other_org):
        numbers = sorted(Receipt.objects.filter(organisation=o).values_list("number", flat=True))
        assert numbers == list(range(1, 16))


def test_the_same_gift_synced_at_once_gets_one_receipt(org):
    set_up_receipts(org, mode="BATCH")
    donor = make_donor(org)
    gift = donations.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                     amount_cents=700, donation_date=dt.date(2026, 3, 2), payment_method="CASH")
    run_threads(lambda: services.receipt_issue(organisation=org, actor=ACTOR, donation_id=gift.id), [()] * 10)
    assert list(Receipt.objects.filter(donation=gift).values_list("number", "status")) == [(1, "ISSUED")]
