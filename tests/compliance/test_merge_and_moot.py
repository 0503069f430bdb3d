"""A merge moves totals and cancels the obligations it makes moot (kept for
audit); a refund or void that takes a donor back under a threshold cancels the
open obligation."""
from __future__ import annotations

import pytest
from django.utils import timezone

from compliance import services as compliance
from compliance.models import ComplianceBreach, DisclosureObligation
from donations import services
from organisations.models import AuditEntry
from tests.compliance.helpers import D, SYSTEM, aggregates, code, gift, obligations
from tests.support.api import make_donor

CY27 = ("FEDERAL", D(2027, 1, 1), D(2027, 12, 31))


def _merge(client, survivor, duplicate):
    response = client.post(f"/api/v1/donors/{survivor.id}/merge", {"duplicate_id": duplicate.id}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


MERGES = [
    # label, survivor's gifts, duplicate's gifts (2027 federal), survivor total after, obligations by status after
    ("both over the threshold: one survives, the other is cancelled", [600_000], [700_000], 1_300_000, {"OPEN": 1, "CANCELLED": 1}),
    ("only the duplicate was over: its obligation moves", [100_000], [700_000], 800_000, {"OPEN": 1}),
    ("only the survivor was over", [700_000], [100_000], 800_000, {"OPEN": 1}),
    ("neither was over, together they are: a new obligation", [300_000], [300_000], 600_000, {"OPEN": 1}),
    ("neither over, nor together", [200_000], [300_000], 500_000, {}),
]


@pytest.mark.parametrize("label, mine, theirs, total, statuses", MERGES, ids=[m[0] for m in MERGES])
def test_merge_moves_totals_and_cancels_moot_obligations(org, write_client, label, mine, theirs, total, statuses):
    survivor, duplicate = make_donor(org), make_donor(org)
    for amount in mine:
        gift(org, survivor, amount, D(2027, 2, 1))
    for amount in theirs:
        gift(org, duplicate, amount, D(2027, 3, 1))
    _merge(write_client, survivor, duplicate)
    assert aggregates(survivor)[CY27][:4] == (total, total, 0, len(mine) + len(theirs))
    found = {}
    for o in DisclosureObligation.objects.filter(organisation=org):
        assert o.donor_id == survivor.id  # every obligation, cancelled ones too, follows the survivor
        found[o.status] = found.get(o.status, 0) + 1
    assert found == statuses
    if statuses.get("CANCELLED"):
        cancelled, = obligations(survivor, "CANCELLED")
        assert "merge" in cancelled.cancelled_reason and cancelled.cancelled_at
    if statuses.get("OPEN"):
        live, = obligations(survivor, "OPEN")
        assert live.aggregate_cents == total


def test_merge_over_the_cap_raises_a_breach(org, write_client, read_client):
    survivor, duplicate = make_donor(org), make_donor(org)
    gift(org, survivor, 3_000_000, D(2027, 2, 1))
    gift(org, duplicate, 3_000_000, D(2027, 3, 1))
    _merge(write_client, survivor, duplicate)
    breach, = read_client.get(f"/api/v1/compliance-breaches?donor_id={survivor.id}").json()["data"]
    assert (breach["aggregate_cents"], breach["cap_cents"], breach["excess_cents"]) == (6_000_000, 5_000_000, 1_000_000)
    assert "after the fact" in breach["reason"]  # a merge is a change after the fact, like a remap
    body = read_client.get(f"/api/v1/donors/{survivor.id}/compliance?period=2027-06-01").json()
    federal = next(e for e in body["data"] if e["jurisdiction"] == "FEDERAL")
    assert (federal["total_cents"], federal["cap_remaining_cents"], federal["alert_level"]) == (6_000_000, 0, "CRITICAL")


@pytest.mark.parametrize("which", ["duplicate", "survivor", "both"])
def test_merge_keeps_lodged_obligations(org, write_client, which):
    """Obligations already lodged are history: a merge must neither fail on them nor cancel them."""
    survivor, duplicate = make_donor(org), make_donor(org)
    gift(org, survivor, 1_800_000, D(2026, 2, 1))   # both over the FY 2025-26 threshold
    gift(org, duplicate, 1_800_000, D(2026, 3, 1))
    lodged = []
    for donor in {"duplicate": [duplicate], "survivor": [survivor], "both": [survivor, duplicate]}[which]:
        obligation, = obligations(donor)
        compliance.obligation_lodge(organisation=org, actor=SYSTEM, obligation_id=obligation.id, reference=f"AEC-{donor.id[-4:]}",
                                    lodged_date=timezone.localdate())
        lodged.append(obligation.id)
    _merge(write_client, survivor, duplicate)
    assert sorted(o.id for o in obligations(survivor, "LODGED")) == sorted(lodged)
    assert len(obligations(survivor, "OPEN")) + len(obligations(survivor, "LODGED")) >= 1
    assert aggregates(survivor)[("FEDERAL", D(2025, 7, 1), D(2026, 6, 30))][0] == 3_600_000


# --- refunds and voids ------------------------------------------------------------------------

MOOT = [
    # label, gifts, action on gift index, obligation status after
    ("refund below the threshold", [300_000, 300_000], ("refund", 1), "CANCELLED"),
    ("void below the threshold", [300_000, 300_000], ("void", 0), "CANCELLED"),
    ("refund still above", [300_000, 300_000, 100_000], ("refund", 2), "OPEN"),
    ("void of an in-kind gift", [300_000, ("IN_KIND", 300_000)], ("void", 1), "CANCELLED"),
    ("amount lowered below", [300_000, 300_000], ("amount", 0), "CANCELLED"),
    ("date moved to another year", [300_000, 300_000], ("date", 0), "CANCELLED"),
]


@pytest.mark.parametrize("label, amounts, action, status", MOOT, ids=[m[0] for m in MOOT])
def test_refund_or_void_cancels_a_moot_obligation(org, read_client, label, amounts, action, status):
    donor = make_donor(org)
    made = []
    for i, amount in enumerate(amounts):
        kind, amount = amount if isinstance(amount, tuple) else ("MONETARY", amount)
        made.append(gift(org, donor, amount, D(2027, 2, 1 + i), kind))
    obligation, = obligations(donor)
    verb, index = action
    target = made[index].id
    if verb == "refund":
        services.donation_refund(organisation=org, actor=SYSTEM, donation_id=target, refund_date=D(2027, 3, 1), reason="returned")
    elif verb == "void":
        services.donation_void(organisation=org, actor=SYSTEM, donation_id=target, reason="duplicate entry")
    elif verb == "amount":
        services.donation_update(organisation=org, actor=SYSTEM, donation_id=target, amount_cents=100_000)
    else:
        services.donation_update(organisation=org, actor=SYSTEM, donation_id=target, donation_date=D(2028, 1, 5))
    obligation.refresh_from_db()
    assert obligation.status == status
    shown = read_client.get(f"/api/v1/disclosure-obligations?donor_id={donor.id}&status={status}").json()["data"]
    assert [o["id"] for o in shown] == [obligation.id]
    if status == "CANCELLED":
        assert obligation.cancelled_reason and obligation.cancelled_at
        assert AuditEntry.objects.filter(object_id=obligation.id, action="disclosure_obligation.updated").exists()
        # A new gift crossing again opens a fresh obligation; the cancelled one stays for audit.
        gift(org, donor, 500_000, D(2027, 4, 1))
        assert [o.status for o in obligations(donor)] == ["CANCELLED", "OPEN"]
