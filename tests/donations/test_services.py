"""Donation and deposit-batch rules that need no HTTP: the lifecycle table
(Donation.can_edit / can_void / can_refund and their reasons, which the services
enforce), and the use cases that span two services."""
from __future__ import annotations

import datetime as dt

import pytest

from donations import services
from donations.models import BatchStatus, DepositBatch, Donation, DonationType, Donor, Source, Status
from together.actors import Actor
from together.exceptions import ValidationFailed

ACTOR = Actor.system("test")
DAY = dt.date(2024, 3, 1)


def gift(**fields) -> Donation:
    values = {"source": Source.MANUAL, "status": Status.CONFIRMED, "donation_type": DonationType.MONETARY,
              "amount_cents": 10_000, "refunded_cents": 0}
    return Donation(**(values | fields))


# (fields, can_edit, can_void, can_refund)
TABLE = [
    ({}, True, True, True),
    ({"status": Status.PENDING}, True, True, False),
    ({"status": Status.FAILED}, True, True, False),  # editable by the service, and so by the page
    ({"status": Status.VOIDED}, False, False, False),
    ({"status": Status.REFUNDED}, False, False, False),
    ({"donation_type": DonationType.IN_KIND}, True, True, False),
    ({"source": Source.STRIPE}, False, True, True),
    ({"source": Source.CHECKOUT_LINK}, False, True, True),
    ({"source": Source.STRIPE, "refunded_cents": 4_000}, False, True, True),  # partly refunded: the rest may go back
    ({"source": Source.STRIPE, "refunded_cents": 10_000}, False, True, False),
    ({"source": Source.NATIONBUILDER}, False, True, False),  # refunded where it was paid
    ({"source": Source.RAISELY}, False, True, False),
    ({"source": Source.GATEWAY}, False, True, False),
]


@pytest.mark.parametrize(("fields", "can_edit", "can_void", "can_refund"), TABLE)
def test_donation_lifecycle_table(fields, can_edit, can_void, can_refund):
    donation = gift(**fields)
    assert (donation.can_edit, donation.can_void, donation.can_refund) == (can_edit, can_void, can_refund)
    for action, allowed in (("edit", can_edit), ("void", can_void), ("refund", can_refund)):
        refusal = donation.refusal_for(action)
        assert (refusal is None) == allowed
        if refusal is not None:
            assert refusal.message and refusal.param in {"source", "status", "donation_type"}
            assert donation.refusals[action] == refusal.message


def test_batch_lifecycle():
    draft, posted = DepositBatch(status=BatchStatus.DRAFT), DepositBatch(status=BatchStatus.POSTED)
    assert (draft.can_edit, draft.can_post) == (True, True)
    assert (posted.can_edit, posted.can_post) == (False, False)
    assert posted.refusals == {"edit": "A posted batch cannot be changed.", "post": "This batch is already posted."}


@pytest.fixture
def donor(org):
    return services.donor_create(organisation=org, actor=ACTOR, first_name="Ada", email="ada@example.org")


def record(org, donor, **fields):
    return services.donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY",
                                    amount_cents=fields.pop("amount_cents", 5_000), donation_date=DAY,
                                    payment_method="CASH", **fields)


@pytest.mark.django_db
def test_services_refuse_what_the_model_refuses(org, donor):
    failed = record(org, donor, status=Status.FAILED)
    assert failed.can_edit
    services.donation_update(organisation=org, actor=ACTOR, donation_id=failed.id, notes="corrected")  # allowed
    voided = services.donation_void(organisation=org, actor=ACTOR, donation_id=record(org, donor).id, reason="typo")
    for call in (
        lambda: services.donation_update(organisation=org, actor=ACTOR, donation_id=voided.id, notes="x"),
        lambda: services.donation_void(organisation=org, actor=ACTOR, donation_id=voided.id, reason="again"),
        lambda: services.donation_refund(organisation=org, actor=ACTOR, donation_id=voided.id, refund_date=DAY, reason="x"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            call()
        assert caught.value.param == "status"
    with pytest.raises(ValidationFailed) as caught:
        services.donation_refund(organisation=org, actor=ACTOR, donation_id=failed.id, refund_date=DAY, reason="x")
    assert caught.value.message == failed.refusal_for("refund").message


@pytest.mark.django_db
def test_gift_with_a_new_donor_is_one_transaction(org, donor):
    created = services.donation_record_with_donor(organisation=org, actor=ACTOR, new_donor={"first_name": "Grace"},
                                                  donation_type="MONETARY", amount_cents=2_500, donation_date=DAY,
                                                  payment_method="CASH")
    fresh = Donor.objects.for_organisation(org).get(pk=created.donor_id)
    assert fresh.first_name == "Grace" and fresh.donations_total_cents == 2_500
    before = Donor.objects.for_organisation(org).count()
    with pytest.raises(ValidationFailed):  # the gift is refused: the new donor is not kept either
        services.donation_record_with_donor(organisation=org, actor=ACTOR, new_donor={"first_name": "Lin"},
                                            donation_type="MONETARY", amount_cents=-1, donation_date=DAY)
    assert Donor.objects.for_organisation(org).count() == before


@pytest.mark.django_db
def test_batch_submit_keeps_the_draft_when_posting_is_refused(org, donor):
    draft = {"reference": "DEP-1", "deposit_date": DAY, "control_count": 2, "control_total_cents": 3_000,
             "rows": [{"donor_id": donor.id, "amount_cents": 1_000, "donation_date": DAY}]}
    refused = services.batch_submit(organisation=org, actor=ACTOR, post=True, **draft)
    assert not refused.posted and refused.post_refusal.param == "control_count"
    assert refused.batch.status == BatchStatus.DRAFT and refused.batch.rows.count() == 1
    draft["rows"].append({"donor_id": donor.id, "amount_cents": 2_000, "donation_date": DAY})
    posted = services.batch_submit(organisation=org, actor=ACTOR, post=True, batch_id=refused.batch.id, **draft)
    assert posted.posted and posted.post_refusal is None and not posted.batch.can_edit
    with pytest.raises(ValidationFailed) as caught:
        services.batch_submit(organisation=org, actor=ACTOR, batch_id=posted.batch.id, **draft)
    assert caught.value.message == "A posted batch cannot be changed."
