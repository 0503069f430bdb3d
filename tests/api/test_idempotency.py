"""Idempotency-Key on POST and PATCH: replay, conflicts, scope, failures, the
in-flight race against a live threaded server, and pruning."""
from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import requests
from django.utils import timezone

from donations.models import Donation, Donor
from organisations.models import AuditEntry
from tests.conftest import client_for, make_key, make_org
from tests.support.api import assert_error, make_donor
from together.models import IdempotencyKey

BODY = {"email": "idem@example.org", "first_name": "Ida"}


def post(client, body, key, path="/api/v1/donors"):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post(path, body, format="json", **headers)


@pytest.mark.django_db
class TestReplay:
    def test_same_key_same_body_replays_status_and_body(self, org, write_client):
        key = str(uuid.uuid4())
        first = post(write_client, BODY, key)
        assert first.status_code == 201, first.content
        assert "Idempotent-Replayed" not in first
        second = post(write_client, BODY, key)
        assert second.status_code == 201
        assert second["Idempotent-Replayed"] == "true"
        assert second.content == first.content
        assert second["Content-Type"] == "application/json"
        # A replay is a new request: its own request id, and rate-limit headers.
        assert second["x-request-id"] != first["x-request-id"]
        assert "RateLimit-Remaining" in second
        # No second effect: one donor, one audit entry.
        assert Donor.objects.for_organisation(org).count() == 1
        assert AuditEntry.objects.filter(organisation=org, action="donor.created").count() == 1

    def test_replay_ignores_key_order_and_whitespace_of_the_body(self, org, write_client):
        key = str(uuid.uuid4())
        first = write_client.generic("POST", "/api/v1/donors", b'{"email": "idem@example.org", "first_name": "Ida"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        assert first.status_code == 201
        again = write_client.generic("POST", "/api/v1/donors", b'{"first_name":"Ida","email":"idem@example.org"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
        assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
        assert again.content == first.content

    def test_replay_is_returned_even_after_the_object_changed(self, org, write_client):
        key = str(uuid.uuid4())
        first = post(write_client, BODY, key)
        donor_id = first.json()["id"]
        assert write_client.patch(f"/api/v1/donors/{donor_id}", {"first_name": "Changed"}, format="json").status_code == 200
        replay = post(write_client, BODY, key)
        assert replay.json()["first_name"] == "Ida"
        assert replay["Idempotent-Replayed"] == "true"

    def test_another_key_of_the_same_organisation_gets_the_replay(self, org, write_client):
        key = str(uuid.uuid4())
        first = post(write_client, BODY, key)
        other_key_client = client_for(make_key(org, "WRITE", name="second key"))
        replay = post(other_key_client, BODY, key)
        assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
        assert replay.content == first.content
        assert Donor.objects.for_organisation(org).count() == 1

    def test_patch_replays_and_does_not_repeat(self, org, write_client):
        donor = make_donor(org, first_name="Before")
        key = str(uuid.uuid4())
        path = f"/api/v1/donors/{donor.id}"
        first = write_client.patch(path, {"first_name": "After"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert first.status_code == 200
        updates = AuditEntry.objects.filter(organisation=org, action="donor.updated").count()
        again = write_client.patch(path, {"first_name": "After"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
        assert again.content == first.content
        assert AuditEntry.objects.filter(organisation=org, action="donor.updated").count() == updates

    def test_donation_post_with_key_records_one_gift(self, org, write_client):
        donor = make_donor(org)
        body = {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 420000, "donation_date": "2026-03-15"}
        key = str(uuid.uuid4())
        responses = [post(write_client, body, key, "/api/v1/donations") for _ in range(3)]
        assert [r.status_code for r in responses] == [201, 201, 201]
        assert len({r.content for r in responses}) == 1
        assert Donation.objects.filter(organisation=org).count() == 1
        donor.refresh_from_db()
        assert donor.donations_total_cents == 420000

    def test_without_a_key_each_post_is_a_new_request(self, org, write_client):
        assert post(write_client, {"first_name": "A"}, None).status_code == 201
        assert post(write_client, {"first_name": "A"}, None).status_code == 201
        assert Donor.objects.for_organisation(org).count() == 2

    def test_get_and_delete_ignore_the_header(self, org, write_client):
        donor = make_donor(org)
        key = str(uuid.uuid4())
        assert write_client.get("/api/v1/donors", HTTP_IDEMPOTENCY_KEY=key).status_code == 200
        assert write_client.delete(f"/api/v1/donors/{donor.id}", HTTP_IDEMPOTENCY_KEY=key).status_code == 204
        assert not IdempotencyKey.objects.filter(organisation=org).exists()
        # The key was not consumed by the GET or the DELETE.
        assert post(write_client, BODY, key).status_code == 201


@pytest.mark.django_db
class TestConflicts:
    def test_same_key_different_body_is_idempotency_conflict(self, org, write_client):
        key = str(uuid.uuid4())
        assert post(write_client, BODY, key).status_code == 201
        response = post(write_client, {**BODY, "first_name": "Other"}, key)
        assert_error(response, 409, "idempotency_conflict", param="Idempotency-Key")
        assert "Idempotent-Replayed" not in response
        assert Donor.objects.for_organisation(org).count() == 1

    def test_same_key_on_another_path_or_method_is_idempotency_conflict(self, org, write_client):
        key = str(uuid.uuid4())
        first = post(write_client, {"name": "Spring"}, key, "/api/v1/campaigns")
        assert first.status_code == 201
        assert_error(post(write_client, {"name": "Spring"}, key, "/api/v1/donors"), 409, "idempotency_conflict")
        campaign = first.json()["id"]
        patched = write_client.patch(f"/api/v1/campaigns/{campaign}", {"name": "Spring"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        assert_error(patched, 409, "idempotency_conflict")

    @pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "tab\there", "new\nline"])
    def test_malformed_key_is_invalid_request(self, org, write_client, bad):
        response = write_client.generic(
            "POST", "/api/v1/donors", b'{"email": "a@example.org"}', content_type="application/json", HTTP_IDEMPOTENCY_KEY=bad
        )
        assert_error(response, 400, "invalid_request", param="Idempotency-Key")
        assert not Donor.objects.for_organisation(org).exists()

    def test_longest_key_is_accepted(self, org, write_client):
        assert post(write_client, BODY, "k" * 255).status_code == 201


@pytest.mark.django_db
class TestFailuresLeaveTheKeyFree:
    def test_validation_error_is_not_stored(self, org, write_client):
        key = str(uuid.uuid4())
        bad = post(write_client, {"email": "idem@example.org", "amount_cents": 5}, key)
        assert_error(bad, 400, "invalid_request", param="amount_cents")
        assert not IdempotencyKey.objects.filter(organisation=org, key=key).exists()
        # A corrected request with the same key goes through (a different body, no conflict).
        good = post(write_client, BODY, key)
        assert good.status_code == 201 and "Idempotent-Replayed" not in good
        assert post(write_client, BODY, key)["Idempotent-Replayed"] == "true"

    def test_business_rule_refusal_is_not_stored(self, org, write_client):
        key = str(uuid.uuid4())
        body = {"donor_id": "cm3doesnotexist000000000", "donation_type": "MONETARY", "amount_cents": 100, "donation_date": "2026-03-01"}
        assert_error(post(write_client, body, key, "/api/v1/donations"), 400, "validation_failed", param="donor_id")
        donor = make_donor(org)
        # Same key, same body now that the donor exists... is still a new attempt (nothing was stored).
        body["donor_id"] = donor.id
        assert post(write_client, body, key, "/api/v1/donations").status_code == 201

    def test_state_conflict_is_not_stored(self, org, write_client):
        make_donor(org, email=BODY["email"])
        key = str(uuid.uuid4())
        assert_error(post(write_client, BODY, key), 409, "conflict")
        assert not IdempotencyKey.objects.filter(organisation=org, key=key).exists()

    def test_forbidden_and_unauthorized_do_not_touch_the_key(self, org, read_client, anon_client, write_client):
        key = str(uuid.uuid4())
        assert_error(post(read_client, BODY, key), 403, "forbidden")
        assert_error(post(anon_client, BODY, key), 401, "unauthorized")
        assert post(write_client, BODY, key).status_code == 201


@pytest.mark.django_db
class TestScope:
    def test_keys_are_per_organisation(self, org, other_org, write_client, other_write_client, sandbox_write_client):
        key = str(uuid.uuid4())
        mine = post(write_client, BODY, key)
        theirs = post(other_write_client, BODY, key)
        sandboxed = post(sandbox_write_client, BODY, key)
        for response in (mine, theirs, sandboxed):
            assert response.status_code == 201, response.content
            assert "Idempotent-Replayed" not in response
        assert len({mine.json()["id"], theirs.json()["id"], sandboxed.json()["id"]}) == 3
        assert Donor.objects.for_organisation(org).count() == 1
        assert Donor.objects.for_organisation(other_org).count() == 1
        assert Donor.objects.for_organisation(org.sandbox).count() == 1
        # A different body under the same key in another organisation is no conflict either.
        assert post(other_write_client, {"first_name": "Else"}, "another-" + key).status_code == 201


@pytest.mark.django_db
def test_prune_task_removes_keys_older_than_24_hours_only(org, write_client):
    from together.tasks import prune_idempotency_keys

    keys = {}
    for name in ("fresh", "day_minus", "day_plus", "old"):
        response = post(write_client, {"first_name": name}, f"prune-{name}")
        assert response.status_code == 201
        keys[name] = f"prune-{name}"
    now = timezone.now()
    ages = {"fresh": dt.timedelta(0), "day_minus": dt.timedelta(hours=23, minutes=50), "day_plus": dt.timedelta(hours=24, minutes=10), "old": dt.timedelta(days=9)}
    for name, age in ages.items():
        IdempotencyKey.objects.filter(organisation=org, key=keys[name]).update(created_at=now - age)
    other = make_org("Prune")
    assert post(client_for(make_key(other, "WRITE")), {"first_name": "x"}, "prune-other").status_code == 201
    IdempotencyKey.objects.filter(organisation=other).update(created_at=now - dt.timedelta(days=2))

    deleted = prune_idempotency_keys()
    assert deleted == 3
    left = set(IdempotencyKey.objects.filter(organisation=org).values_list("key", flat=True))
    assert left == {"prune-fresh", "prune-day_minus"}
    assert not IdempotencyKey.objects.filter(organisation=other).exists()
    # A pruned key may be used again: it is a new request.
    again = post(write_client, {"first_name": "old"}, "prune-old")
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    # A kept key still replays.
    assert post(write_client, {"first_name": "day_minus"}, "prune-day_minus")["Idempotent-Replayed"] == "true"


def test_prune_runs_hourly_from_beat():
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["prune-idempotency-keys"]
    assert entry["task"] == "together.tasks.prune_idempotency_keys"
    assert float(entry["schedule"]) <= 3600


# --- the in-flight race, against a live threaded server ---------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("path,body_for", [
    ("/api/v1/donors", lambda donor: BODY),
    ("/api/v1/donations", lambda donor: {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 2500, "donation_date": "2026-03-15"}),
])
def test_twenty_concurrent_posts_with_one_key_have_one_effect(transactional_db, live_server, path, body_for):
    org = make_org("Race")
    plaintext = make_key(org, "WRITE")
    donor = make_donor(org) if path.endswith("donations") else None
    body = body_for(donor)
    key = str(uuid.uuid4())
    url = live_server.url + path
    n = 20
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        session = requests.Session()
        headers = {"Authorization": f"Bearer {plaintext}", "Idempotency-Key": key}
        barrier.wait()
        try:
            results[i] = session.post(url, json=body, headers=headers, timeout=30)
        except Exception as exc:  # noqa: BLE001 - recorded and asserted below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert all(isinstance(r, requests.Response) for r in results), results
    statuses = sorted(r.status_code for r in results)
    assert all(s < 500 for s in statuses), statuses
    created = [r for r in results if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    replayed = [r for r in results if r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true"]
    conflicts = [r for r in results if r.status_code == 409]
    assert len(created) == 1, statuses
    assert len(created) + len(replayed) + len(conflicts) == n, statuses
    for response in replayed:
        assert response.content == created[0].content
    for response in conflicts:
        assert_error(response, 409, "conflict", param="Idempotency-Key")

    model = Donor if path.endswith("donors") else Donation
    assert model.objects.filter(organisation=org).count() == 1
    assert IdempotencyKey.objects.filter(organisation=org, key=key).count() == 1

    # Once the first has completed, every retry is the replay.
    late = requests.post(url, json=body, headers={"Authorization": f"Bearer {plaintext}", "Idempotency-Key": key}, timeout=30)
    assert late.status_code == 201 and late.headers["Idempotent-Replayed"] == "true"
    assert late.content == created[0].content
