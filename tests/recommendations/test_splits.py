"""The split: one Donation per recipient in the recipient's own books, all parts or
none. Caps are the real compliance caps (federal, from 2027) plus a check
registered in DONATION_CHECKS; pledges from the public form write nothing to the
recipients' books."""
from __future__ import annotations

import datetime as dt

import pytest

from donations import services as donation_services
from donations.models import Donation, Donor
from organisations.models import AuditEntry
from recommendations import services
from recommendations.models import SplitGift, SplitGiftPart, SplitGiftStatus
from tests.recommendations.conftest import SYSTEM, link
from together.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db

DONOR = {
    "first_name": "Alice", "last_name": "Ng", "email": "Alice@Example.org", "address_line1": "1 River St",
    "suburb": "Fitzroy", "state": "VIC", "postcode": "3065", "country": "AU",
}
CAP_YEAR_DAY = dt.date(2027, 3, 1)  # federal caps apply to gifts dated from 1 January 2027


def make_set(org, links, mode="FIXED", amounts=(10000, 20000, 30000)):
    return services.recommendation_set_create(
        organisation=org, actor=SYSTEM, name=f"{mode} set", amount_mode=mode,
        allocations=[{"recipient_org_account_link_id": x.id, "amount_cents": a} for x, a in zip(links, amounts)])


def record(org, the_set, **kwargs):
    kwargs.setdefault("donor", DONOR)
    kwargs.setdefault("donation_date", CAP_YEAR_DAY)
    return services.recommendation_split_record(organisation=org, actor=SYSTEM, recommendation_set_id=the_set.id,
                                                payment_reference="BANK-REF-77", **kwargs)


def snapshot(organisations) -> dict:
    """Everything a split could write, counted."""
    return {
        "donations": Donation.objects.count(), "donors": Donor.objects.count(), "gifts": SplitGift.objects.count(),
        "parts": SplitGiftPart.objects.count(), "audit": AuditEntry.objects.count(),
        "totals": sorted(Donor.objects.values_list("donations_total_cents", flat=True)),
    }


def test_a_fixed_split_records_one_donation_per_recipient_in_their_books(org, links, recipients):
    the_set = make_set(org, links)
    gift = record(org, the_set)
    assert gift.status == SplitGiftStatus.RECORDED and gift.total_cents == 60000
    parts = list(gift.parts.order_by("position"))
    assert [(p.recipient_organisation_id, p.amount_cents, p.position) for p in parts] == [
        (recipients[0].id, 10000, 0), (recipients[1].id, 20000, 1), (recipients[2].id, 30000, 2)]
    for part, recipient in zip(parts, recipients):
        donation = Donation.objects.select_related("donor").get(pk=part.donation_id)
        assert donation.organisation_id == recipient.id
        assert donation.donor.organisation_id == recipient.id and donation.donor.email == "alice@example.org"
        assert donation.amount_cents == part.amount_cents and donation.status == "CONFIRMED" and donation.source == "MANUAL"
        assert donation.donation_date == CAP_YEAR_DAY and donation.reference == "BANK-REF-77"
        assert donation.metadata == {"recommendation_set_id": the_set.id, "split_gift_id": gift.id,
                                     "recommending_organisation_id": org.id}
        assert donation.donor.donations_total_cents == part.amount_cents
        assert {"donor.created", "donation.created"} <= set(AuditEntry.objects.for_organisation(recipient).values_list("action", flat=True))
    # Nothing lands in the recommending organisation's own books.
    assert not Donation.objects.for_organisation(org).exists() and not Donor.objects.for_organisation(org).exists()
    entry = AuditEntry.objects.for_organisation(org).get(action="split_gift.recorded")
    assert entry.after["total_cents"] == 60000 and [p["donation_id"] for p in entry.after["parts"]] == [p.donation_id for p in parts]


def test_an_existing_donor_is_found_by_email_and_left_as_is(org, links, recipients):
    existing = donation_services.donor_create(organisation=recipients[1], actor=SYSTEM, email="alice@EXAMPLE.org",
                                              first_name="Alicia", last_name="Ng-Smith")
    record(org, make_set(org, links))
    assert Donor.objects.for_organisation(recipients[1]).count() == 1
    existing.refresh_from_db()
    assert existing.first_name == "Alicia" and existing.donations_count == 1


def test_a_recipients_cap_refuses_the_whole_split(org, links, recipients):
    """The federal cap ($50,000 per donor per recipient per calendar year, from
    2027): the donor already gave recipient 1 $49,900, so its $200 part fails,
    and neither the other recipients' parts nor any donor record survive."""
    near = donation_services.donor_create(organisation=recipients[1], actor=SYSTEM, email="alice@example.org", first_name="Alice")
    donation_services.donation_record(organisation=recipients[1], actor=SYSTEM, donor_id=near.id, donation_type="MONETARY",
                                      amount_cents=4_990_000, donation_date=dt.date(2027, 2, 1))
    the_set = make_set(org, links)
    before = snapshot(recipients)
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set)
    error = refused.value
    assert error.param == "allocations[1].amount_cents"
    assert error.extra["reason"] == "donor_cap_exceeded" and error.extra["remaining_cents"] == 10_000
    assert error.extra["recipient_organisation_id"] == recipients[1].id
    assert recipients[1].name in error.message
    assert snapshot(recipients) == before
    # Within the room left, the same split goes through.
    ok_set = make_set(org, links, amounts=(10000, 10000, 30000))
    assert record(org, ok_set).parts.count() == 3


def test_a_registered_donation_check_failing_one_recipient_stores_nothing(org, links, recipients, monkeypatch):
    def refuse_third(*, organisation, donor, before, after):
        if organisation.id == recipients[2].id:
            raise ValidationFailed("Foreign donors may not give $1,000 or more.", param="amount_cents", reason="foreign_donor")

    monkeypatch.setattr(donation_services, "DONATION_CHECKS", [refuse_third])
    the_set = make_set(org, links)
    before = snapshot(recipients)
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set, donation_date=dt.date(2026, 10, 1))
    assert refused.value.param == "allocations[2].amount_cents" and refused.value.extra["reason"] == "foreign_donor"
    assert snapshot(recipients) == before


@pytest.mark.parametrize("mode, amounts, param, reason", [
    ("SUGGESTED", [5000, 50, 0], "allocations[1].amount_cents", "amount_too_small"),
    ("OPEN", [0, 0, 0], "allocations", "total_zero"),
    ("OPEN", [100, 100], "allocations", None),
    ("OPEN", [100, -1, 100], "allocations[1].amount_cents", None),
    ("SUGGESTED", None, "allocations", None),
    ("FIXED", [10000, 20000, 1], "allocations", "amounts_fixed"),
])
def test_amount_rules(org, links, mode, amounts, param, reason):
    the_set = make_set(org, links, mode=mode, amounts=(0, 0, 0) if mode == "OPEN" else (10000, 20000, 30000))
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set, amounts=amounts)
    assert refused.value.param == param
    if reason:
        assert refused.value.extra["reason"] == reason
    assert not SplitGift.objects.exists()


def test_open_amounts_with_a_skipped_recipient(org, links, recipients):
    gift = record(org, make_set(org, links, mode="OPEN", amounts=(0, 0, 0)), amounts=[2500, 0, 100])
    assert [(p.recipient_organisation_id, p.amount_cents) for p in gift.parts.order_by("position")] == [
        (recipients[0].id, 2500), (recipients[2].id, 100)]
    assert not Donation.objects.for_organisation(recipients[1]).exists()


@pytest.mark.parametrize("missing", ["first_name", "last_name", "email", "address_line1", "suburb", "state", "postcode"])
def test_donor_details_are_required(org, links, missing):
    with pytest.raises(ValidationFailed) as refused:
        record(org, make_set(org, links), donor={**DONOR, missing: "  "})
    assert refused.value.param == missing


def test_a_bad_email_is_refused(org, links):
    with pytest.raises(ValidationFailed) as refused:
        record(org, make_set(org, links), donor={**DONOR, "email": "alice at example"})
    assert refused.value.param == "email"


def test_deleted_sets_and_deactivated_links_take_no_gifts(org, links):
    the_set = make_set(org, links)
    services.recipient_link_update(organisation=org, actor=SYSTEM, link_id=links[2].id, is_active=False)
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set)
    assert refused.value.param == "allocations[2].recipient_org_account_link_id"
    services.recommendation_set_delete(organisation=org, actor=SYSTEM, set_id=the_set.id)
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set)
    assert refused.value.param == "recommendation_set_id" and refused.value.extra["reason"] == "set_inactive"


def test_another_organisations_set_is_unknown(org, other_org, links):
    the_set = make_set(org, links)
    with pytest.raises(ValidationFailed) as refused:
        record(other_org, the_set)
    assert refused.value.param == "recommendation_set_id"
    assert not SplitGift.objects.exists()


def test_sandbox_splits_stay_in_sandbox(org, sandbox, recipients):
    sandbox_links = [link(sandbox, r.sandbox) for r in recipients]
    gift = record(sandbox, make_set(sandbox, sandbox_links))
    assert {p.donation.organisation_id for p in gift.parts.select_related("donation")} == {r.sandbox.id for r in recipients}
    assert not Donation.objects.filter(organisation__in=recipients).exists()


# --- pledges from the public form ------------------------------------------------------------------

def test_a_pledge_is_validated_like_a_gift_but_writes_nothing_to_recipients(org, links, recipients):
    the_set = make_set(org, links, mode="SUGGESTED")
    before = snapshot(recipients)
    pledge = services.recommendation_split_pledge(recommendation_set_id=the_set.id, donor=DONOR, amounts=[1000, 0, 2500])
    assert pledge.status == SplitGiftStatus.PLEDGED and pledge.total_cents == 3500 and pledge.organisation_id == org.id
    assert [(p.position, p.amount_cents, p.donation_id) for p in pledge.parts.order_by("position")] == [(0, 1000, None), (2, 2500, None)]
    after = snapshot(recipients)
    assert after["donations"] == before["donations"] and after["donors"] == before["donors"]
    assert not AuditEntry.objects.filter(organisation__in=recipients).exclude(action="distribution_link.created").exclude(
        action__startswith="distribution_passphrase").exists()


def test_a_pledge_is_refused_by_a_recipients_check(org, links, recipients, monkeypatch):
    def cap_for_second(*, organisation, donor, before, after):
        if organisation.id == recipients[1].id and after.amount_cents > 1500:
            raise ValidationFailed("Over the cap for this donor.", param="amount_cents", reason="donor_cap_exceeded", remaining_cents=1500)

    monkeypatch.setattr(donation_services, "DONATION_CHECKS", [cap_for_second])
    the_set = make_set(org, links, mode="OPEN", amounts=(0, 0, 0))
    before = snapshot(recipients)
    with pytest.raises(ValidationFailed) as refused:
        services.recommendation_split_pledge(recommendation_set_id=the_set.id, donor=DONOR, amounts=[500, 2000, 0])
    assert refused.value.param == "allocations[1].amount_cents" and refused.value.extra["remaining_cents"] == 1500
    # Nothing of the gift is stored; the refusing recipient's staff get one audit entry with the detail.
    assert snapshot(recipients) == {**before, "audit": before["audit"] + 1}
    entry = AuditEntry.objects.latest("created_at")
    assert entry.organisation_id == recipients[1].id and entry.action == "donation.refused"
    assert entry.after["remaining_cents"] == 1500 and entry.after["donor_known"] is False


def test_staff_record_a_pledge_once(org, links, recipients):
    the_set = make_set(org, links, mode="OPEN", amounts=(0, 0, 0))
    pledge = services.recommendation_split_pledge(recommendation_set_id=the_set.id, donor=DONOR, amounts=[1000, 2000, 0])
    gift = record(org, the_set, amounts=[1000, 2000, 0], pledge_id=pledge.id)
    assert gift.id == pledge.id and gift.status == SplitGiftStatus.RECORDED
    assert all(p.donation_id for p in gift.parts.all()) and gift.parts.count() == 2
    with pytest.raises(ValidationFailed) as refused:
        record(org, the_set, amounts=[1000, 2000, 0], pledge_id=pledge.id)
    assert refused.value.extra["reason"] == "pledge_recorded"
    assert Donation.objects.filter(organisation__in=recipients).count() == 2
