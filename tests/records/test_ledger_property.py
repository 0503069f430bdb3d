"""Property: whatever sequence of record / void / refund / edit a donor goes
through, its stored totals equal the sums recomputed from its ledger, and the
services refuse exactly the transitions the rules forbid."""
from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db.models import Count, Q, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from donations import services
from donations.models import Donation, Donor
from tests.records.helpers import SYSTEM
from together.exceptions import ValidationFailed

BASE_DATE = dt.date(2026, 1, 1)
_serial = itertools.count()

amounts = st.integers(min_value=1, max_value=500_000)
record_op = st.tuples(
    st.just("record"), amounts, st.sampled_from(["MONETARY", "IN_KIND"]),
    st.sampled_from([("MANUAL", "CONFIRMED"), ("STRIPE", "CONFIRMED"), ("STRIPE", "PENDING"), ("STRIPE", "FAILED")]),
    st.integers(min_value=0, max_value=60),
)
void_op = st.tuples(st.just("void"), st.integers(min_value=0, max_value=20))
refund_op = st.tuples(st.just("refund"), st.integers(min_value=0, max_value=20), st.integers(min_value=-3, max_value=30))
edit_op = st.tuples(st.just("edit"), st.integers(min_value=0, max_value=20), amounts)
operations = st.lists(st.one_of(record_op, record_op, void_op, refund_op, edit_op), min_size=1, max_size=12)


def stored_and_recomputed(donor_id: str):
    donor = Donor.objects.get(pk=donor_id)
    agg = Donation.objects.filter(donor_id=donor_id).aggregate(
        total=Sum("amount_cents", filter=Q(status="CONFIRMED")), n=Count("id", filter=Q(status="CONFIRMED"))
    )
    return (donor.donations_total_cents, donor.donations_count), (agg["total"] or 0, agg["n"])


@pytest.mark.django_db
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=operations)
def test_stored_totals_follow_the_ledger(org, ops):
    donor = services.donor_create(organisation=org, actor=SYSTEM, email=f"prop{next(_serial)}@example.com")
    model: list[dict] = []  # what we expect each gift to be

    for op in ops:
        kind = op[0]
        if kind == "record":
            _, amount, dtype, (source, status), day = op
            extra = {"in_kind_category": "GOODS", "in_kind_description": "Goods"} if dtype == "IN_KIND" else {}
            gift = services.donation_record(
                organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type=dtype, amount_cents=amount,
                donation_date=BASE_DATE + dt.timedelta(days=day), source=source, status=status, **extra,
            )
            model.append({"id": gift.id, "amount": amount, "type": dtype, "source": source, "status": status,
                          "date": BASE_DATE + dt.timedelta(days=day)})
        elif model:
            gift = model[op[1] % len(model)]
            if kind == "void":
                allowed = gift["status"] not in ("VOIDED", "REFUNDED")
                call = lambda: services.donation_void(organisation=org, actor=SYSTEM, donation_id=gift["id"], reason="error")
                effect = {"status": "VOIDED"}
            elif kind == "refund":
                refund_date = gift["date"] + dt.timedelta(days=op[2])
                allowed = (gift["status"] == "CONFIRMED" and gift["type"] == "MONETARY" and gift["source"] == "MANUAL"
                           and refund_date >= gift["date"])
                call = lambda: services.donation_refund(organisation=org, actor=SYSTEM, donation_id=gift["id"],
                                                        refund_date=refund_date, reason="returned")
                effect = {"status": "REFUNDED"}
            else:
                allowed = gift["source"] == "MANUAL" and gift["status"] not in ("VOIDED", "REFUNDED")
                call = lambda: services.donation_update(organisation=org, actor=SYSTEM, donation_id=gift["id"], amount_cents=op[2])
                effect = {"amount": op[2]}
            if allowed:
                call()
                gift.update(effect)
            else:
                with pytest.raises(ValidationFailed):
                    call()

        stored, recomputed = stored_and_recomputed(donor.id)
        expected = (sum(g["amount"] for g in model if g["status"] == "CONFIRMED"),
                    sum(1 for g in model if g["status"] == "CONFIRMED"))
        assert stored == recomputed == expected, (op, stored, recomputed, expected)

    # the ledger itself matches the model, gift by gift
    rows = {r["id"]: r for r in Donation.objects.filter(donor_id=donor.id).values("id", "status", "amount_cents")}
    assert {g["id"]: (g["status"], g["amount"]) for g in model} == {i: (r["status"], r["amount_cents"]) for i, r in rows.items()}
