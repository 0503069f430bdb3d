"""Compliance rules that need no HTTP: the obligation's lifecycle table, election
periods edited through their service, and a regime rule saved through its service
(which recomputes every organisation with gifts under it)."""
from __future__ import annotations

import datetime as dt

import pytest

from compliance import services
from compliance.models import DisclosureObligation, ElectionPeriod, ObligationStatus, Recompute, RegimeRule
from donations.services import donation_record, donor_create
from organisations.models import AuditEntry
from together.actors import Actor
from together.exceptions import ValidationFailed

ACTOR = Actor.system("test")


@pytest.mark.parametrize(("status", "can_lodge"), [
    (ObligationStatus.OPEN, True), (ObligationStatus.LODGED, False), (ObligationStatus.CANCELLED, False),
])
def test_obligation_lifecycle_table(status, can_lodge):
    obligation = DisclosureObligation(status=status)
    assert obligation.can_lodge is can_lodge
    assert ("lodge" in obligation.refusals) is not can_lodge


@pytest.mark.django_db
def test_election_period_update_keeps_the_create_rules_and_is_audited(org, other_org):
    election = services.election_period_create(organisation=org, actor=ACTOR, election_type="FEDERAL_GENERAL",
                                               name="2025 federal", writ_date=dt.date(2025, 3, 28),
                                               polling_date=dt.date(2025, 5, 3))
    services.election_period_update(organisation=org, actor=ACTOR, election_period_id=election.id, name=" 2025 general ")
    election.refresh_from_db()
    assert election.name == "2025 general"
    assert AuditEntry.objects.for_organisation(org).filter(action="election_period.updated", object_id=election.id).exists()
    with pytest.raises(ValidationFailed) as caught:
        services.election_period_update(organisation=org, actor=ACTOR, election_period_id=election.id,
                                        polling_date=dt.date(2025, 3, 1))
    assert caught.value.param == "polling_date"
    from together.exceptions import NotFound

    with pytest.raises(NotFound):  # another organisation's period is not found
        services.election_period_update(organisation=other_org, actor=ACTOR, election_period_id=election.id, name="x")
    assert ElectionPeriod.objects.for_organisation(org).get(pk=election.id).polling_date == dt.date(2025, 5, 3)


@pytest.mark.django_db
def test_regime_rule_save_recomputes_the_organisations_with_gifts_under_it(org, other_org):
    donor = donor_create(organisation=org, actor=ACTOR, first_name="Ada")
    gift = donation_record(organisation=org, actor=ACTOR, donor_id=donor.id, donation_type="MONETARY", amount_cents=1_000,
                           donation_date=dt.date(2025, 1, 10), payment_method="CASH")
    gift.refresh_from_db()
    assert gift.jurisdiction
    rule = RegimeRule(jurisdiction=gift.jurisdiction, name="Test rule", effective_from=dt.date(2030, 1, 1),
                      period_kind=RegimeRule._meta.get_field("period_kind").choices[0][0], threshold_cents=100_000_00)
    services.regime_rule_save(rule=rule, actor=ACTOR)
    assert rule.pk is not None
    recomputes = Recompute.objects.for_organisation(org).filter(reason__contains="regime rule added: Test rule")
    assert recomputes.count() == 1
    assert not Recompute.objects.for_organisation(other_org).exists()
    rule.name = "Test rule, edited"
    services.regime_rule_save(rule=rule, actor=ACTOR)
    assert Recompute.objects.for_organisation(org).filter(reason__contains="regime rule edited").count() == 1
