"""Events are written in the transaction of their change, from the audit trail."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from donations import services as donations
from organisations.models import AuditEntry
from organisations.services import audit_record
from tests.conftest import client_for, make_key
from webhooks.events import EVENT_TYPES, event_body, event_record
from webhooks.models import Event, WebhookDelivery
from webhooks.queue import enqueue_flushes
from webhooks.services import webhook_endpoint_create

pytestmark = pytest.mark.django_db


def test_event_record_writes_the_audit_entry_and_the_event_together(org, actor):
    event = event_record(organisation=org, actor=actor, type="campaign.updated", object_type="campaign",
                         object_id="cm1", before={"name": "a"}, after={"name": "b"})
    entry = AuditEntry.objects.get(organisation=org, action="campaign.updated")
    assert (entry.object_id, entry.before, entry.after) == ("cm1", {"name": "a"}, {"name": "b"})
    assert event.data == {"name": "b"} and event.occurred_at == entry.created_at
    gone = event_record(organisation=org, actor=actor, type="donor.deleted", object_type="donor", object_id="cm2",
                        before={"id": "cm2"})
    assert gone.data == {"id": "cm2"}  # a hard delete has only `before`


def test_event_record_refuses_a_type_outside_the_catalogue(org, actor):
    with pytest.raises(ValueError):
        event_record(organisation=org, actor=actor, type="api_key.created", object_type="api_key", object_id="x")
    assert not AuditEntry.objects.filter(organisation=org).exists()


def test_public_changes_are_recorded_with_event_record_not_audit_record():
    """`audit_record` alone writes no event: a service recording a public event
    type with it would silently send no webhook."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    found = []
    for path in root.glob("*/**/*.py"):
        rel = path.relative_to(root)
        if rel.parts[0] in ("tests", ".venv", "bench", "scripts") or "migrations" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_record":
                for kw in node.keywords:
                    if kw.arg == "action" and isinstance(kw.value, ast.Constant) and kw.value.value in EVENT_TYPES:
                        found.append(f"{rel}:{node.lineno} {kw.value.value}")
    assert found == []


def test_catalogue_lists_the_reference_types_and_ours():
    reference = {
        "donor.created", "introduction.created", "introduction.viewed", "introduction.accepted", "introduction.linked",
        "introduction.expired", "introduction.revoked", "recipient_org_account_link.created",
    }
    ours = {
        "donor.updated", "donor.merged", "donor.deleted", "donor.tagged", "donor.untagged", "donation.created", "donation.updated", "donation.voided",
        "donation.refunded", "campaign.created", "campaign.updated", "campaign.archived", "recommendation_set.created",
        "recommendation_set.updated", "recommendation_set.deleted", "recipient_org_account_link.updated",
        "disclosure_obligation.created", "disclosure_obligation.updated", "compliance_breach.created",
        "donor_cap_alert.changed", "form.created", "form.updated", "form.archived", "checkout_link.created",
        "checkout_link.canceled", "checkout_link.completed", "checkout_link.expired", "recurring_plan.created",
        "recurring_plan.updated", "recurring_plan.paused", "recurring_plan.resumed", "recurring_plan.canceled",
        "recurring_plan.ended", "receipt.issued", "receipt.withdrawn",
    }
    assert set(EVENT_TYPES) == reference | ours
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES))


def test_a_change_writes_its_event_in_the_same_transaction(org, actor):
    donor = donations.donor_create(organisation=org, actor=actor, email="alice@example.com", first_name="Alice", last_name="Ng")
    event = Event.objects.get(organisation=org, type="donor.created")
    assert event.data["id"] == donor.id
    for key in ("id", "donor_type", "email", "first_name", "last_name", "organisation_name"):
        assert key in event.data
    assert event.data["email"] == "alice@example.com"
    assert event.data["organisation_name"] is None


def test_a_rolled_back_change_leaves_no_event(org, actor):
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with transaction.atomic():
            donations.donor_create(organisation=org, actor=actor, email="bob@example.com")
            assert Event.objects.filter(organisation=org, type="donor.created").count() == 1
            raise Boom
    assert not Event.objects.filter(organisation=org).exists()
    assert not donations.Donor.objects.filter(organisation=org).exists()


def test_a_failing_service_leaves_no_event(org, actor):
    donations.donor_create(organisation=org, actor=actor, email="dup@example.com")
    with pytest.raises(Exception):
        donations.donor_create(organisation=org, actor=actor, email="DUP@example.com")  # 409: duplicate email
    assert Event.objects.filter(organisation=org, type="donor.created").count() == 1


def test_events_follow_the_lifecycle_and_deletion_keeps_the_object(org, actor):
    donor = donations.donor_create(organisation=org, actor=actor, email="carol@example.com")
    donations.donor_update(organisation=org, actor=actor, donor_id=donor.id, first_name="Carol")
    donation = donations.donation_record(organisation=org, actor=actor, donor_id=donor.id, donation_type="MONETARY",
                                         amount_cents=5000, donation_date=dt.date(2026, 3, 1), payment_method="CASH")
    donations.donation_void(organisation=org, actor=actor, donation_id=donation.id, reason="entered twice")
    other = donations.donor_create(organisation=org, actor=actor, email="dan@example.com")
    donations.donor_delete(organisation=org, actor=actor, donor_id=other.id)
    types = list(Event.objects.filter(organisation=org).order_by("created_at").values_list("type", flat=True))
    assert types == ["donor.created", "donor.updated", "donation.created", "donation.voided", "donor.created", "donor.deleted"]
    updated = Event.objects.get(organisation=org, type="donor.updated")
    assert updated.data["first_name"] == "Carol"
    voided = Event.objects.get(organisation=org, type="donation.voided")
    assert voided.data["id"] == donation.id and voided.data["status"] == "VOIDED"
    deleted = Event.objects.get(organisation=org, type="donor.deleted")
    assert deleted.data["id"] == other.id and deleted.data["email"] == "dan@example.com"


def test_non_public_audit_actions_make_no_event(org, actor):
    make_key(org, "READ")  # api_key.created is audited, not an event
    audit_record(organisation=org, actor=actor, action="something.private", object_type="x", object_id="1", after={"a": 1})
    assert not Event.objects.filter(organisation=org).exists()


def test_without_endpoints_an_event_has_no_delivery(org, actor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        donations.donor_create(organisation=org, actor=actor, email="e@example.com")
    assert Event.objects.filter(organisation=org).count() == 1
    assert not WebhookDelivery.objects.exists()
    assert not any(getattr(c, "func", None) is enqueue_flushes for c in callbacks)


def test_deliveries_are_written_with_the_event_and_flushes_enqueued_after_commit(org, actor, django_capture_on_commit_callbacks):
    wanted = webhook_endpoint_create(organisation=org, actor=actor, url="http://127.0.0.1:9/a").endpoint
    also = webhook_endpoint_create(organisation=org, actor=actor, url="http://127.0.0.1:9/b", enabled_events=["donor.created"]).endpoint
    webhook_endpoint_create(organisation=org, actor=actor, url="http://127.0.0.1:9/c", enabled_events=["donation.created"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        donations.donor_create(organisation=org, actor=actor, email="f@example.com")
    event = Event.objects.get(organisation=org, type="donor.created")
    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {wanted.id, also.id}
    assert all(d.status == "PENDING" and d.next_attempt_at is not None and d.attempt_count == 0 for d in deliveries)
    [flush] = [c for c in callbacks if getattr(c, "func", None) is enqueue_flushes]
    assert sorted(flush.args[0]) == sorted([wanted.id, also.id])


def test_a_rolled_back_change_leaves_no_delivery_either(org, actor):
    webhook_endpoint_create(organisation=org, actor=actor, url="http://127.0.0.1:9/a")
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            donations.donor_create(organisation=org, actor=actor, email="g@example.com")
            assert WebhookDelivery.objects.count() == 1
            raise RuntimeError
    assert not Event.objects.filter(type="donor.created").exists() and not WebhookDelivery.objects.exists()


def test_body_is_the_bare_event_with_millisecond_utc():
    body = event_body(type="donor.created", occurred_at=dt.datetime(2026, 4, 24, 0, 13, 54, 456789, tzinfo=dt.timezone.utc),
                      organisation_id="cm3org", data={"id": "cm3don"})
    assert body == b'{"type":"donor.created","occurred_at":"2026-04-24T00:13:54.456Z","organisation_id":"cm3org","data":{"id":"cm3don"}}'


# --- the events API -------------------------------------------------------------------

def test_events_api_lists_filters_and_retrieves(org, actor, read_client):
    donor = donations.donor_create(organisation=org, actor=actor, email="g@example.com")
    donations.donor_update(organisation=org, actor=actor, donor_id=donor.id, last_name="Green")
    response = read_client.get("/api/v1/events")
    assert response.status_code == 200
    body = response.json()
    assert [e["type"] for e in body["data"]] == ["donor.updated", "donor.created"]
    assert body["has_more"] is False
    first = body["data"][1]
    assert set(first) == {"id", "object", "type", "occurred_at", "organisation_id", "data", "created_at"}
    assert first["object"] == "event" and first["organisation_id"] == org.id and first["data"]["id"] == donor.id
    assert first["occurred_at"].endswith("Z") and len(first["occurred_at"]) == 24
    only = read_client.get("/api/v1/events", {"type": "donor.created"}).json()["data"]
    assert [e["type"] for e in only] == ["donor.created"]
    one = read_client.get(f"/api/v1/events/{first['id']}")
    assert one.status_code == 200 and one.json() == first
    assert read_client.get("/api/v1/events", {"created_at[gte]": "2999-01-01"}).json()["data"] == []
    page = read_client.get("/api/v1/events", {"limit": 1}).json()
    assert page["has_more"] is True
    nxt = read_client.get("/api/v1/events", {"limit": 1, "starting_after": page["data"][0]["id"]}).json()
    assert [e["id"] for e in nxt["data"]] == [first["id"]]


def test_events_api_rejects_unknown_filters_and_types(read_client):
    r = read_client.get("/api/v1/events", {"kind": "x"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    r = read_client.get("/api/v1/events", {"type": "donor.exploded"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "validation_failed" and r.json()["error"]["param"] == "type"


def test_events_are_tenant_scoped(org, other_org, sandbox, actor, read_client):
    mine = donations.donor_create(organisation=org, actor=actor, email="h@example.com")
    donations.donor_create(organisation=other_org, actor=actor, email="h@example.com")
    donations.donor_create(organisation=sandbox, actor=actor, email="h@example.com")
    data = read_client.get("/api/v1/events").json()["data"]
    assert [e["data"]["id"] for e in data] == [mine.id]
    foreign = Event.objects.get(organisation=other_org)
    twin = Event.objects.get(organisation=sandbox)
    for event in (foreign, twin):
        r = read_client.get(f"/api/v1/events/{event.id}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    sandbox_client = client_for(make_key(sandbox, "READ"))
    assert [e["id"] for e in sandbox_client.get("/api/v1/events").json()["data"]] == [twin.id]


def test_events_are_kept_30_days(org, actor, read_client):
    from django.utils import timezone

    from webhooks.services import events_prune

    donations.donor_create(organisation=org, actor=actor, email="old@example.com")
    donations.donor_create(organisation=org, actor=actor, email="new@example.com")
    old = Event.objects.filter(organisation=org).order_by("created_at").first()
    Event.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=31))
    ids = [e["id"] for e in read_client.get("/api/v1/events").json()["data"]]
    assert old.id not in ids and len(ids) == 1
    assert read_client.get(f"/api/v1/events/{old.id}").status_code == 404
    assert events_prune() == 1
    assert not Event.objects.filter(pk=old.pk).exists()
    assert Event.objects.filter(organisation=org).count() == 1


def test_other_apps_events_arrive_through_the_audit_trail(org, actor):
    """The listener is generic: another app's audited change (an introduction) is an event too."""
    from recommendations.services import introduction_create

    created = introduction_create(organisation=org, actor=actor, invitee_email="partner@example.org").introduction
    event = Event.objects.get(organisation=org, type="introduction.created")
    assert event.data["id"] == created.id
