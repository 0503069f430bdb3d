"""Helpers for the compliance tests: gifts recorded through the services (the
path every entry point takes), the refusal envelope, and ledger arithmetic."""
from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F, Sum

from compliance import services as compliance
from compliance.models import DisclosureObligation, DonorAggregate, RegimeRule
from donations import services
from donations.models import Donation, Donor, Status
from donations.rollups import rollup_apply
from organisations.models import AuditEntry
from together.actors import Actor

SYSTEM = Actor.system("tests")
D = dt.date
FED_CAP = 5_000_000          # $50,000 per donor per recipient per calendar year, from 2027
FED_THRESHOLD = 500_000      # more than $5,000, from 2027
NSW_CAP = 790_000
NSW_THRESHOLD = 100_000
VIC_THRESHOLD = 117_000
VIC_CAP = 467_000
ACT_THRESHOLD = 100_000

def code(organisation, name: str, jurisdiction: str):
    return compliance.revenue_code_create(organisation=organisation, actor=SYSTEM, code=name, jurisdiction=jurisdiction)


def gift(organisation, donor, amount_cents: int, day: dt.date, kind: str = "MONETARY", **fields):
    fields.setdefault("donation_type", kind)
    if kind == "IN_KIND":
        fields.setdefault("in_kind_category", "SERVICES")
        fields.setdefault("in_kind_description", "Printing at fair value")
    return services.donation_record(organisation=organisation, actor=SYSTEM, donor_id=donor.id,
                                    amount_cents=amount_cents, donation_date=day, **fields)


def gift_body(donor, amount_cents: int, day: dt.date | str, kind: str = "MONETARY", **fields) -> dict:
    body = {"donor_id": donor.id if hasattr(donor, "id") else donor, "donation_type": kind, "amount_cents": amount_cents,
            "donation_date": day.isoformat() if isinstance(day, dt.date) else day}
    if kind == "IN_KIND":
        body |= {"in_kind_category": "SERVICES", "in_kind_description": "Printing at fair value"}
    return body | fields


def rule(name_contains: str) -> RegimeRule:
    return RegimeRule.objects.get(name__contains=name_contains)


def aggregates(donor) -> dict:
    """{(jurisdiction, period_start, period_end): (total, monetary, in_kind, count, alert)}"""
    return {
        (a.jurisdiction, a.period_start, a.period_end): (a.total_cents, a.monetary_cents, a.in_kind_cents, a.donations_count, a.alert_level)
        for a in DonorAggregate.objects.filter(donor_id=donor.id)
    }


def obligations(donor, status: str | None = None):
    qs = DisclosureObligation.objects.filter(donor_id=donor.id).order_by("created_at", "id")
    if status:
        qs = qs.filter(status=status)
    return list(qs)


def ledger_total(donor, jurisdiction: str, start: dt.date, end: dt.date) -> int:
    return Donation.objects.filter(donor_id=donor.id, status=Status.CONFIRMED, jurisdiction=jurisdiction,
                                   donation_date__gte=start, donation_date__lte=end).aggregate(
        s=Sum(F("amount_cents") - F("refunded_cents")))["s"] or 0


def stored_counts(organisation) -> tuple[int, int]:
    return (Donation.objects.filter(organisation=organisation).count(), AuditEntry.objects.filter(organisation=organisation).count())


def assert_cap_refusal(response, remaining_cents: int) -> dict:
    """400 validation_failed, param amount_cents, reason donor_cap_exceeded, the room left, a message in words."""
    assert response.status_code == 400, (response.status_code, response.content[:600])
    error = response.json()["error"]
    assert error["code"] == "validation_failed", error
    assert error["param"] == "amount_cents", error
    assert error["reason"] == "donor_cap_exceeded", error
    assert error["remaining_cents"] == remaining_cents, error
    assert error["request_id"] == response["x-request-id"]
    message = error["message"]
    assert "cap" in message and "remains" in message, message
    assert f"${remaining_cents / 100:,.2f}" in message, message
    return error


def partly_refund(organisation, donation: Donation, refunded_cents: int) -> None:
    """What a partial card refund leaves in the books (donations.services records it
    the same way: the gift stays CONFIRMED with refunded_cents, then the donor's
    totals and compliance are recomputed under the donor's lock)."""
    with transaction.atomic():
        Donor.objects.select_for_update().get(pk=donation.donor_id)
        before = Donation.objects.get(pk=donation.pk)
        Donation.objects.filter(pk=donation.pk).update(refunded_cents=refunded_cents)
        services.donor_refresh_totals(donor_ids=[donation.donor_id])
        rollup_apply(organisation_id=organisation.id, changes=[(before, Donation.objects.get(pk=donation.pk))])
        compliance.donor_compliance_recompute(organisation=organisation, donor_id=donation.donor_id)
