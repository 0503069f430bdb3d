"""Every service records who did what, with the object before and after, in the
same transaction as the change."""
from __future__ import annotations

import pytest

from donations import services
from donations.models import Donation
from organisations.models import ApiKey, AuditEntry
from tests.records.helpers import SYSTEM, make_campaign, patch, post, record
from tests.support.api import make_donor


def _donor(org):
    return make_donor(org, first_name="Ann", email="ann@example.com")


# (name, setup(org) -> context, request(client, ctx) -> response, action, object_id(ctx, body), check(before, after, ctx))
CASES = [
    ("donor.created", lambda org: {}, lambda c, x: post(c, "/api/v1/donors", {"email": "new@example.com"}),
     "donor.created", lambda x, b: b["id"], lambda before, after, x: before is None and after["email"] == "new@example.com"),
    ("donor.updated", lambda org: {"donor": _donor(org)}, lambda c, x: patch(c, f"/api/v1/donors/{x['donor'].id}", {"first_name": "Anne"}),
     "donor.updated", lambda x, b: x["donor"].id, lambda before, after, x: (before["first_name"], after["first_name"]) == ("Ann", "Anne")),
    ("donor.deleted", lambda org: {"donor": _donor(org)}, lambda c, x: c.delete(f"/api/v1/donors/{x['donor'].id}"),
     "donor.deleted", lambda x, b: x["donor"].id, lambda before, after, x: after is None and before["email"] == "ann@example.com"),
    ("donor.merged", lambda org: {"a": _donor(org), "b": make_donor(org, email="b@example.com")},
     lambda c, x: post(c, f"/api/v1/donors/{x['a'].id}/merge", {"duplicate_id": x["b"].id}),
     "donor.merged", lambda x, b: x["a"].id, lambda before, after, x: before["duplicate"]["id"] == x["b"].id and after["id"] == x["a"].id),
    ("campaign.created", lambda org: {}, lambda c, x: post(c, "/api/v1/campaigns", {"name": "Winter"}),
     "campaign.created", lambda x, b: b["id"], lambda before, after, x: before is None and after["name"] == "Winter"),
    ("campaign.updated", lambda org: {"campaign": make_campaign(org, name="Old")},
     lambda c, x: patch(c, f"/api/v1/campaigns/{x['campaign'].id}", {"name": "New"}),
     "campaign.updated", lambda x, b: x["campaign"].id, lambda before, after, x: (before["name"], after["name"]) == ("Old", "New")),
    ("campaign.archived", lambda org: {"campaign": make_campaign(org)},
     lambda c, x: c.post(f"/api/v1/campaigns/{x['campaign'].id}/archive"),
     "campaign.archived", lambda x, b: x["campaign"].id, lambda before, after, x: after["status"] == "ARCHIVED"),
    ("donation.created", lambda org: {"donor": _donor(org)},
     lambda c, x: post(c, "/api/v1/donations", {"donor_id": x["donor"].id, "donation_type": "MONETARY", "amount_cents": 1234, "donation_date": "2026-03-01"}),
     "donation.created", lambda x, b: b["id"], lambda before, after, x: before is None and after["amount_cents"] == 1234 and after["source"] == "MANUAL"),
    ("donation.updated", lambda org: {"gift": record(org, _donor(org), amount_cents=1000)},
     lambda c, x: patch(c, f"/api/v1/donations/{x['gift'].id}", {"amount_cents": 2500}),
     "donation.updated", lambda x, b: x["gift"].id, lambda before, after, x: (before["amount_cents"], after["amount_cents"]) == (1000, 2500)),
    ("donation.voided", lambda org: {"gift": record(org, _donor(org))},
     lambda c, x: post(c, f"/api/v1/donations/{x['gift'].id}/void", {"reason": "dup"}),
     "donation.voided", lambda x, b: x["gift"].id, lambda before, after, x: (before["status"], after["status"], after["void_reason"]) == ("CONFIRMED", "VOIDED", "dup")),
    ("donation.refunded", lambda org: {"gift": record(org, _donor(org))},
     lambda c, x: post(c, f"/api/v1/donations/{x['gift'].id}/refund", {"refund_date": "2026-03-09", "reason": "asked"}),
     "donation.refunded", lambda x, b: x["gift"].id, lambda before, after, x: (before["status"], after["status"], after["refund_date"]) == ("CONFIRMED", "REFUNDED", "2026-03-09")),
]


@pytest.mark.parametrize("name, setup, request_, action, object_id, check", CASES, ids=[c[0] for c in CASES])
def test_every_write_is_audited(write_client, org, name, setup, request_, action, object_id, check):
    ctx = setup(org)
    existing = set(AuditEntry.objects.filter(organisation=org).values_list("id", flat=True))
    response = request_(write_client, ctx)
    assert response.status_code in (200, 201, 204), response.content
    body = response.json() if response.content else {}
    new = AuditEntry.objects.filter(organisation=org).exclude(id__in=existing)
    entry = new.get(action=action)
    key = ApiKey.objects.get(organisation=org)
    assert (entry.actor_type, entry.actor_id) == ("API_KEY", key.id)
    assert key.prefix in entry.actor_label
    assert entry.request_id == response["x-request-id"]
    assert entry.object_id == object_id(ctx, body)
    assert check(entry.before, entry.after, ctx), (entry.before, entry.after)


def test_refused_writes_leave_no_audit(write_client, org):
    donor = _donor(org)
    existing = AuditEntry.objects.filter(organisation=org).count()
    assert post(write_client, "/api/v1/donations", {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 0,
                                                    "donation_date": "2026-03-01"}).status_code == 400
    assert post(write_client, "/api/v1/donors", {"email": "ann@example.com"}).status_code == 409
    assert AuditEntry.objects.filter(organisation=org).count() == existing


def test_audit_is_in_the_same_transaction(write_client, org, monkeypatch):
    """A failure after the gift is saved and the audit written rolls both back."""
    donor = _donor(org)

    def failing_hook(**kwargs):
        raise RuntimeError("downstream failure")

    monkeypatch.setattr(services, "DONATION_AFTER_CHANGE", [*services.DONATION_AFTER_CHANGE, failing_hook])
    response = post(write_client, "/api/v1/donations", {"donor_id": donor.id, "donation_type": "MONETARY",
                                                        "amount_cents": 100, "donation_date": "2026-03-01"})
    assert response.status_code == 500 and response.json()["error"]["code"] == "internal_error"
    assert not Donation.objects.filter(donor=donor).exists()
    assert not AuditEntry.objects.filter(organisation=org, action="donation.created").exists()
    donor.refresh_from_db()
    assert donor.donations_count == 0


def test_services_called_directly_record_their_actor(org):
    donor = _donor(org)
    gift = record(org, donor)
    services.donation_void(organisation=org, actor=SYSTEM, donation_id=gift.id, reason="import error")
    entry = AuditEntry.objects.get(organisation=org, action="donation.voided")
    assert (entry.actor_type, entry.actor_label, entry.object_id) == ("SYSTEM", "tests", gift.id)
