"""Deliveries to a real local HTTP receiver, every signature verified by `standardwebhooks`."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.utils import timezone

from donations import services as donations
from organisations.models import Role
from organisations.services import membership_set, user_get_or_create
from tests.conftest import make_org
from tests.webhooks.conftest import pump
from tests.webhooks.receiver import Reply, verify
from webhooks import delivery, services
from webhooks.models import DeliveryStatus, EndpointStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def endpoint_on(receiver, org, actor, path="/hook", **kwargs):
    created = services.webhook_endpoint_create(organisation=org, actor=actor, url=receiver.url(path), **kwargs)
    receiver.on(path, created.secret)
    return created


def test_delivers_the_bare_event_with_the_reference_headers(receiver, org, actor):
    created = endpoint_on(receiver, org, actor)
    donor = donations.donor_create(organisation=org, actor=actor, email="alice@example.com", first_name="Alice", last_name="Ng")
    pump()
    [request] = receiver.received()
    assert request.valid is True
    payload = verify(created.secret, request.body, request.headers)
    assert list(payload) == ["type", "occurred_at", "organisation_id", "data"]
    assert payload["type"] == "donor.created"
    assert payload["organisation_id"] == org.id
    assert payload["data"]["id"] == donor.id and payload["data"]["first_name"] == "Alice"
    assert payload["occurred_at"].endswith("Z") and len(payload["occurred_at"]) == 24
    h = request.headers
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == "Together-Webhooks/1.0"
    assert h["webhook-id"].startswith("dlv_") and len(h["webhook-id"]) == 30
    assert abs(int(h["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    assert h["webhook-signature"].startswith("v1,") and " " not in h["webhook-signature"]
    d = WebhookDelivery.objects.get()
    assert d.id == h["webhook-id"] and d.status == DeliveryStatus.SUCCEEDED and d.attempt_count == 1
    attempt = WebhookAttempt.objects.get()
    assert attempt.succeeded and attempt.status_code == 200 and attempt.latency_ms is not None
    assert attempt.response_excerpt == '{"ok":true}'


def test_on_commit_path_delivers_through_the_tasks(receiver, org, actor, eager_celery, django_capture_on_commit_callbacks):
    endpoint_on(receiver, org, actor)
    with django_capture_on_commit_callbacks(execute=True):
        donations.donor_create(organisation=org, actor=actor, email="eager@example.com")
    assert [r.valid for r in receiver.received()] == [True]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED


def test_only_enabled_endpoints_wanting_the_type_get_it(receiver, org, actor):
    endpoint_on(receiver, org, actor, "/all")
    endpoint_on(receiver, org, actor, "/donations", enabled_events=["donation.created"])
    off = endpoint_on(receiver, org, actor, "/off")
    services.webhook_endpoint_update(organisation=org, actor=actor, endpoint_id=off.endpoint.id, status="DISABLED")
    donations.donor_create(organisation=org, actor=actor, email="x@example.com")
    pump()
    assert [r.path for r in receiver.received()] == ["/all"]


def test_retries_on_500_with_the_same_webhook_id_until_2xx(receiver, org, actor):
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500, body=b"boom") if n <= 2 else Reply(204, body=b"")
    donations.donor_create(organisation=org, actor=actor, email="r@example.com")
    pump()
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.PENDING and d.attempt_count == 1 and d.last_status_code == 500
    wait = (d.next_attempt_at - timezone.now()).total_seconds()
    assert 3.5 <= wait <= 5.6  # 5 s plus up to 10 % jitter
    pump()  # not due yet: nothing sent
    assert len(receiver.received()) == 1
    for _ in range(2):
        WebhookDelivery.objects.filter(pk=d.pk).update(next_attempt_at=timezone.now())  # time passes
        pump()
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED and d.attempt_count == 3 and d.last_status_code == 204
    requests = receiver.received()
    assert [r.status for r in requests] == [500, 500, 204]
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert all(r.valid for r in requests)
    attempts = list(WebhookAttempt.objects.order_by("attempt_number"))
    assert [a.attempt_number for a in attempts] == [1, 2, 3]
    assert attempts[0].response_excerpt == "boom" and attempts[0].error == "HTTP 500"
    second_wait = (attempts[1].next_attempt_at - attempts[1].created_at).total_seconds()
    assert 299 <= second_wait <= 331  # the second retry waits 5 minutes (+ jitter)
    assert attempts[2].next_attempt_at is None


def test_retries_after_a_timeout(receiver, org, actor, settings):
    settings.WEBHOOKS_TIMEOUT_SECONDS = 0.5
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(200, delay=1.5) if n == 1 else Reply(200)
    donations.donor_create(organisation=org, actor=actor, email="slow@example.com")
    pump()
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.PENDING and d.last_status_code is None
    assert d.last_error.startswith("timeout")
    WebhookDelivery.objects.filter(pk=d.pk).update(next_attempt_at=timezone.now())
    pump()
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED and d.attempt_count == 2


def test_gives_up_after_the_schedule(receiver, org, actor, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.0, 0.0, 0.0]
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500)
    donations.donor_create(organisation=org, actor=actor, email="never@example.com")
    pump()  # delays of 0: one flush goes through the whole schedule
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.FAILED and d.attempt_count == 4 and d.next_attempt_at is None
    assert len(receiver.received()) == 4
    assert WebhookEndpoint.objects.get().status == EndpointStatus.ENABLED


def test_the_default_schedule_spans_about_three_days():
    from django.conf import settings

    assert settings.WEBHOOKS_RETRY_SCHEDULE == [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
    assert 3 * 86400 <= sum(settings.WEBHOOKS_RETRY_SCHEDULE) <= 3.3 * 86400
    delays = [delivery.retry_delay(n) for n in range(1, 11)]
    assert delays[-1] is None
    for base, delay in zip(settings.WEBHOOKS_RETRY_SCHEDULE, delays):
        assert base <= delay <= base * 1.1


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_failures_and_not_followed(receiver, org, actor, status):
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(status, headers={"Location": receiver.url("/elsewhere")}) if path == "/hook" else Reply(200)
    donations.donor_create(organisation=org, actor=actor, email="redir@example.com")
    pump()
    assert [r.path for r in receiver.received()] == ["/hook"]
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.PENDING and d.last_status_code == status and "redirect" in d.last_error


def test_410_disables_the_endpoint_at_once(receiver, org, actor):
    admin = user_get_or_create(email="admin@acme.test")
    membership_set(organisation=org, user=admin, role=Role.ADMIN)
    created = endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(410)
    donations.donor_create(organisation=org, actor=actor, email="gone1@example.com")
    donations.donor_create(organisation=org, actor=actor, email="gone2@example.com")
    delivery.endpoint_flush(endpoint_id=created.endpoint.id)
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.status == EndpointStatus.DISABLED and "410" in endpoint.disabled_reason
    assert len(receiver.received()) == 2  # one batch, sent concurrently
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    donations.donor_create(organisation=org, actor=actor, email="gone3@example.com")
    pump()  # a later event is not even queued for a disabled endpoint
    assert WebhookDelivery.objects.count() == 2 and len(receiver.received()) == 2


def test_retry_after_is_honoured_on_429_and_503(receiver, org, actor):
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(429, headers={"Retry-After": "120"}) if n == 1 else Reply(503, headers={"Retry-After": "900"})
    donations.donor_create(organisation=org, actor=actor, email="busy@example.com")
    pump()
    d = WebhookDelivery.objects.get()
    assert 119 <= (d.next_attempt_at - timezone.now()).total_seconds() <= 121  # 120 s, not the 5 s of the schedule
    WebhookDelivery.objects.filter(pk=d.pk).update(next_attempt_at=timezone.now())
    pump()
    d.refresh_from_db()
    assert 899 <= (d.next_attempt_at - timezone.now()).total_seconds() <= 901


def test_an_endpoint_failing_five_days_straight_is_disabled_and_admins_emailed(receiver, org, actor):
    admin = user_get_or_create(email="boss@acme.test")
    membership_set(organisation=org, user=admin, role=Role.ADMIN)
    editor = user_get_or_create(email="editor@acme.test")
    membership_set(organisation=org, user=editor, role=Role.EDITOR)
    created = endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500)
    donations.donor_create(organisation=org, actor=actor, email="f1@example.com")
    pump()
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.failing_since is not None and endpoint.status == EndpointStatus.ENABLED
    # Four days later it still fails: still enabled.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=4))
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    pump()
    assert WebhookEndpoint.objects.get().status == EndpointStatus.ENABLED
    assert mail.outbox == []
    # Five days: disabled, and the organisation's ADMINs (only) are told.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=timezone.now() - dt.timedelta(days=5, minutes=1))
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    pump()
    endpoint.refresh_from_db()
    assert endpoint.id == created.endpoint.id
    assert endpoint.status == EndpointStatus.DISABLED and "5 days" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED


def test_admins_are_emailed_after_commit(receiver, org, actor, django_capture_on_commit_callbacks):
    admin = user_get_or_create(email="boss2@acme.test")
    membership_set(organisation=org, user=admin, role=Role.ADMIN)
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500)
    donations.donor_create(organisation=org, actor=actor, email="f2@example.com")
    WebhookEndpoint.objects.update(failing_since=timezone.now() - dt.timedelta(days=6))
    with django_capture_on_commit_callbacks(execute=True):
        pump()
    assert WebhookEndpoint.objects.get().status == EndpointStatus.DISABLED
    [message] = mail.outbox
    assert message.to == ["boss2@acme.test"]
    assert "disabled" in message.subject and receiver.url() in message.body


def test_a_success_ends_the_failure_streak(receiver, org, actor):
    endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500) if n == 1 else Reply(200)
    donations.donor_create(organisation=org, actor=actor, email="s@example.com")
    pump()
    assert WebhookEndpoint.objects.get().failing_since is not None
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    pump()
    assert WebhookEndpoint.objects.get().failing_since is None


def test_rotation_signs_with_both_secrets_for_24_hours(receiver, org, actor):
    created = endpoint_on(receiver, org, actor)
    old = created.secret
    rotated = services.webhook_endpoint_rotate_secret(organisation=org, actor=actor, endpoint_id=created.endpoint.id)
    new = rotated.secret
    assert new != old
    receiver.secrets["/hook"] = [old, new]  # the receiver requires both to verify
    donations.donor_create(organisation=org, actor=actor, email="rot@example.com")
    pump()
    [request] = receiver.received()
    assert request.valid is True
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    verify(old, request.body, request.headers)
    verify(new, request.body, request.headers)
    # After the overlap only the new secret signs.
    WebhookEndpoint.objects.update(previous_secret_expires_at=timezone.now() - dt.timedelta(seconds=1))
    receiver.secrets["/hook"] = [new]
    donations.donor_create(organisation=org, actor=actor, email="rot2@example.com")
    pump()
    later = receiver.received()[-1]
    assert later.valid is True and " " not in later.headers["webhook-signature"]
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        verify(old, later.body, later.headers)


def test_a_tampered_body_does_not_verify(receiver, org, actor):
    created = endpoint_on(receiver, org, actor)
    donations.donor_create(organisation=org, actor=actor, email="t@example.com")
    pump()
    [request] = receiver.received()
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        verify(created.secret, request.body.replace(b"t@example.com", b"u@example.com"), request.headers)
    with pytest.raises(WebhookVerificationError):
        verify("wrong-secret", request.body, request.headers)


# --- SSRF at delivery --------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://localhost:{port}/hook",  # a name that resolves to loopback at delivery time
    "https://127.0.0.1:{port}/hook",
    "https://10.20.30.40/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]:{port}/hook",
])
def test_private_addresses_are_refused_at_delivery(receiver, org, actor, settings, url):
    created = endpoint_on(receiver, org, actor)  # created while private URLs were allowed
    WebhookEndpoint.objects.filter(pk=created.endpoint.id).update(url=url.format(port=receiver.port))
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    donations.donor_create(organisation=org, actor=actor, email="ssrf@example.com")
    pump()
    assert receiver.received() == []
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.PENDING and d.attempt_count == 1
    assert d.last_error.startswith("refused before sending") and d.last_status_code is None
    assert WebhookAttempt.objects.get().error == d.last_error


def test_plain_http_is_refused_at_delivery_when_private_urls_are_off(receiver, org, actor, settings):
    endpoint_on(receiver, org, actor)
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    donations.donor_create(organisation=org, actor=actor, email="http@example.com")
    pump()
    assert receiver.received() == []
    assert "https" in WebhookDelivery.objects.get().last_error


# --- isolation ------------------------------------------------------------------------------

def test_cross_organisation_and_sandbox_isolation(receiver, org, actor):
    other = make_org("Other")
    sandbox = org.sandbox
    endpoint_on(receiver, org, actor, "/live")
    endpoint_on(receiver, other, actor, "/other")
    endpoint_on(receiver, sandbox, actor, "/sandbox")
    live_donor = donations.donor_create(organisation=org, actor=actor, email="a@example.com")
    other_donor = donations.donor_create(organisation=other, actor=actor, email="a@example.com")
    sandbox_donor = donations.donor_create(organisation=sandbox, actor=actor, email="a@example.com")
    pump()
    got = {r.path: r.json for r in receiver.received()}
    assert set(got) == {"/live", "/other", "/sandbox"}
    assert all(r.valid for r in receiver.received()) and len(receiver.received()) == 3
    assert got["/live"]["data"]["id"] == live_donor.id and got["/live"]["organisation_id"] == org.id
    assert got["/other"]["data"]["id"] == other_donor.id and got["/other"]["organisation_id"] == other.id
    assert got["/sandbox"]["data"]["id"] == sandbox_donor.id and got["/sandbox"]["organisation_id"] == sandbox.id


# --- manual retry and test events -------------------------------------------------------------

def test_manual_retry_resends_with_the_same_webhook_id(receiver, org, actor, settings):
    settings.WEBHOOKS_RETRY_SCHEDULE = [0.0]
    created = endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(500) if n <= 2 else Reply(200)
    donations.donor_create(organisation=org, actor=actor, email="m@example.com")
    pump()
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.FAILED and d.attempt_count == 2
    services.webhook_delivery_retry(organisation=org, actor=actor, delivery_id=d.id)
    delivery.endpoint_flush(endpoint_id=created.endpoint.id)
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED and d.attempt_count == 3
    assert len({r.headers["webhook-id"] for r in receiver.received()}) == 1
    assert all(r.valid for r in receiver.received())
    # A succeeded delivery can be replayed too.
    services.webhook_delivery_retry(organisation=org, actor=actor, delivery_id=d.id)
    delivery.endpoint_flush(endpoint_id=created.endpoint.id)
    assert len(receiver.received()) == 4 and receiver.received()[-1].headers["webhook-id"] == d.id


def test_the_test_event_goes_to_that_endpoint_only(receiver, org, actor):
    created = endpoint_on(receiver, org, actor, "/a")
    endpoint_on(receiver, org, actor, "/b")
    test_delivery = services.webhook_endpoint_test(organisation=org, actor=actor, endpoint_id=created.endpoint.id)
    pump()
    [request] = receiver.received()
    assert request.path == "/a" and request.valid is True
    payload = request.json
    assert payload["type"] == "webhook_endpoint.tested" and payload["data"]["id"] == created.endpoint.id
    assert request.headers["webhook-id"] == test_delivery.id
    assert WebhookDelivery.objects.get(pk=test_delivery.id).status == DeliveryStatus.SUCCEEDED


# --- crash safety -------------------------------------------------------------------------------

def test_a_killed_workers_claim_expires_and_the_delivery_is_sent_again(receiver, org, actor):
    created = endpoint_on(receiver, org, actor)
    donations.donor_create(organisation=org, actor=actor, email="k@example.com")
    stale = delivery.deliveries_claim(endpoint_id=created.endpoint.id)  # a worker claims, then dies
    assert len(stale.items) == 1
    assert delivery.deliveries_claim(endpoint_id=created.endpoint.id).items == []  # leased: nobody else takes it
    WebhookDelivery.objects.update(leased_until=timezone.now() - dt.timedelta(seconds=1))  # the lease runs out
    delivery.endpoint_flush(endpoint_id=created.endpoint.id)
    d = WebhookDelivery.objects.get()
    assert d.status == DeliveryStatus.SUCCEEDED and len(receiver.received()) == 1
    # The dead worker's attempt was counted by its claim, before any send, and is on record, interrupted (issue 21).
    first, second = WebhookAttempt.objects.order_by("attempt_number")
    assert (first.attempt_number, first.succeeded, first.error.startswith("interrupted")) == (1, False, True)
    assert (second.attempt_number, second.succeeded) == (2, True)
    assert d.attempt_count == 2
    # The dead worker's late result (if it ever came) cannot overwrite the delivery: its lease token is stale.
    from webhooks.transport import SendResult

    delivery.batch_record(stale, {stale.items[0].delivery_id: SendResult(succeeded=False, status_code=500, error="HTTP 500")})
    d.refresh_from_db()
    assert d.status == DeliveryStatus.SUCCEEDED and d.attempt_count == 2


def test_the_sweep_requeues_deliveries_whose_message_was_lost(receiver, org, actor, eager_celery):
    endpoint_on(receiver, org, actor)
    donations.donor_create(organisation=org, actor=actor, email="lost@example.com")  # its on-commit enqueue never ran
    assert WebhookDelivery.objects.get().status == DeliveryStatus.PENDING
    result = delivery.sweep()
    assert result == {"endpoints_due": 1, "endpoints_queued": 1}
    assert [r.valid for r in receiver.received()] == [True]
    assert WebhookDelivery.objects.get().status == DeliveryStatus.SUCCEEDED
    assert delivery.sweep() == {"endpoints_due": 0, "endpoints_queued": 0}


def test_the_sweep_leaves_leased_and_future_deliveries_alone(receiver, org, actor, eager_celery):
    created = endpoint_on(receiver, org, actor)
    donations.donor_create(organisation=org, actor=actor, email="a1@example.com")
    delivery.deliveries_claim(endpoint_id=created.endpoint.id)  # in flight elsewhere
    donations.donor_create(organisation=org, actor=actor, email="a2@example.com")
    WebhookDelivery.objects.filter(lease_token__isnull=True).update(next_attempt_at=timezone.now() + dt.timedelta(minutes=5))
    assert delivery.sweep()["endpoints_due"] == 0
    assert receiver.received() == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_send_each_delivery_once(receiver, settings):
    """Three workers flush the same endpoint at once (real threads, own connections):
    SKIP LOCKED and the leases split the work, nothing is sent twice or left behind."""
    from django.db import connection

    from together.actors import Actor

    settings.WEBHOOKS_BATCH_SIZE = 4
    org = make_org("Race")
    actor = Actor.system("tests")
    created = endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(200, delay=0.01)
    for i in range(40):
        donations.donor_create(organisation=org, actor=actor, email=f"c{i}@example.com")
    barrier = threading.Barrier(3)

    def work():
        try:
            barrier.wait()
            delivery.endpoint_flush(endpoint_id=created.endpoint.id)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ids = [r.headers["webhook-id"] for r in receiver.received()]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(r.valid for r in receiver.received())
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 40
    assert WebhookAttempt.objects.count() == 40


def test_after_a_410_no_further_batch_is_sent(receiver, org, actor, settings):
    settings.WEBHOOKS_BATCH_SIZE = 2
    created = endpoint_on(receiver, org, actor)
    receiver.script = lambda path, n: Reply(410)
    for i in range(7):
        donations.donor_create(organisation=org, actor=actor, email=f"g{i}@example.com")
    delivery.endpoint_flush(endpoint_id=created.endpoint.id)
    assert len(receiver.received()) == 2  # the first batch; the one claimed meanwhile is released unsent
    assert WebhookEndpoint.objects.get().status == EndpointStatus.DISABLED
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {DeliveryStatus.FAILED}
    assert WebhookAttempt.objects.count() == 2
    assert not WebhookDelivery.objects.filter(lease_token__isnull=False).exists()
