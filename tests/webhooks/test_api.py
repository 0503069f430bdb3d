"""The webhooks API: endpoints, deliveries, retries, tests; scopes and tenancy."""
from __future__ import annotations

import pytest

from donations import services as donations
from tests.conftest import client_for, make_key
from tests.webhooks.conftest import pump
from tests.webhooks.receiver import Reply
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

ENDPOINT_KEYS = {"id", "object", "url", "description", "enabled_events", "status", "disabled_reason", "disabled_at",
                 "created_at", "updated_at"}


def create(client, receiver, path="/hook", **body):
    response = client.post("/api/v1/webhook-endpoints", {"url": receiver.url(path), **body}, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    receiver.on(path, data["secret"])
    return data


def test_create_shows_the_secret_once(write_client, receiver):
    data = create(write_client, receiver, description="CRM sync", enabled_events=["donor.created", "donation.created"])
    assert set(data) == ENDPOINT_KEYS | {"secret"}
    assert data["object"] == "webhook_endpoint" and data["status"] == "ENABLED"
    assert data["enabled_events"] == ["donor.created", "donation.created"]
    assert data["description"] == "CRM sync"
    assert data["secret"].startswith("wh_") and len(data["secret"]) == 43
    got = write_client.get(f"/api/v1/webhook-endpoints/{data['id']}").json()
    assert set(got) == ENDPOINT_KEYS and "secret" not in got
    listed = write_client.get("/api/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == [data["id"]] and "secret" not in listed["data"][0]


def test_enabled_events_default_to_all(write_client, receiver):
    assert create(write_client, receiver)["enabled_events"] == ["*"]


@pytest.mark.parametrize("body, code, param", [
    ({"description": "no url"}, "invalid_request", "url"),
    ({"url": 5}, "invalid_request", "url"),
    ({"url": "ftp://example.com/x"}, "validation_failed", "url"),
    ({"url": "https://user:pw@example.com/x"}, "validation_failed", "url"),
    ({"url": "http://127.0.0.1:9/x", "enabled_events": "donor.created"}, "invalid_request", "enabled_events"),
    ({"url": "http://127.0.0.1:9/x", "enabled_events": []}, "validation_failed", "enabled_events"),
    ({"url": "http://127.0.0.1:9/x", "enabled_events": ["donor.exploded"]}, "validation_failed", "enabled_events[0]"),
    ({"url": "http://127.0.0.1:9/x", "enabled_events": ["*", "donor.created"]}, "validation_failed", "enabled_events"),
    ({"url": "http://127.0.0.1:9/x", "secret": "mine"}, "invalid_request", "secret"),
])
def test_create_validation(write_client, body, code, param):
    response = write_client.post("/api/v1/webhook-endpoints", body, format="json")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param)
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", [
    "http://example.com/hook",  # https only
    "https://127.0.0.1/hook",
    "https://127.1.2.3:8443/hook",
    "https://localhost/hook",
    "https://10.0.0.8/hook",
    "https://172.16.4.4/hook",
    "https://192.168.1.10/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/hook",
    "https://0.0.0.0/hook",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://[::ffff:10.0.0.1]/hook",
    "https://2130706433/hook",  # 127.0.0.1 written as a number
])
def test_private_urls_are_refused_at_creation(write_client, settings, url):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = write_client.post("/api/v1/webhook-endpoints", {"url": url}, format="json")
    assert response.status_code == 400, url
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and error["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_a_public_https_address_is_accepted_when_private_urls_are_off(write_client, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = write_client.post("/api/v1/webhook-endpoints", {"url": "https://93.184.215.14/hook"}, format="json")
    assert response.status_code == 201
    patch = write_client.patch(f"/api/v1/webhook-endpoints/{response.json()['id']}", {"url": "https://10.0.0.1/"}, format="json")
    assert patch.status_code == 400 and patch.json()["error"]["param"] == "url"


def test_update_and_delete(write_client, receiver):
    data = create(write_client, receiver)
    r = write_client.patch(f"/api/v1/webhook-endpoints/{data['id']}",
                           {"description": "new", "enabled_events": ["donation.voided"]}, format="json")
    assert r.status_code == 200
    assert r.json()["description"] == "new" and r.json()["enabled_events"] == ["donation.voided"]
    r = write_client.patch(f"/api/v1/webhook-endpoints/{data['id']}", {"status": "DISABLED"}, format="json")
    assert r.json()["status"] == "DISABLED" and r.json()["disabled_at"] and r.json()["disabled_reason"]
    r = write_client.patch(f"/api/v1/webhook-endpoints/{data['id']}", {"status": "ENABLED"}, format="json")
    assert r.json()["status"] == "ENABLED" and r.json()["disabled_reason"] is None
    r = write_client.patch(f"/api/v1/webhook-endpoints/{data['id']}", {"status": "PAUSED"}, format="json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "status"
    assert write_client.get("/api/v1/webhook-endpoints", {"status": "ENABLED"}).json()["data"][0]["id"] == data["id"]
    assert write_client.delete(f"/api/v1/webhook-endpoints/{data['id']}").status_code == 204
    assert write_client.get(f"/api/v1/webhook-endpoints/{data['id']}").status_code == 404


def test_rotate_secret_returns_a_new_secret_and_the_overlap(write_client, receiver):
    data = create(write_client, receiver)
    r = write_client.post(f"/api/v1/webhook-endpoints/{data['id']}/rotate-secret")
    assert r.status_code == 200
    body = r.json()
    assert body["secret"] != data["secret"] and body["secret"].startswith("wh_")
    assert body["previous_secret_expires_at"].endswith("Z")
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == body["secret"] and endpoint.previous_secret == data["secret"]
    hours = (endpoint.previous_secret_expires_at - endpoint.updated_at).total_seconds() / 3600
    assert 23.99 <= hours <= 24.01


def test_test_event_deliveries_and_retry_through_the_api(write_client, read_client, receiver, org, actor):
    data = create(write_client, receiver)
    receiver.script = lambda path, n: Reply(500, body=b"nope") if n == 1 else Reply(200)
    r = write_client.post(f"/api/v1/webhook-endpoints/{data['id']}/test")
    assert r.status_code == 202
    queued = r.json()
    assert queued["object"] == "webhook_delivery" and queued["id"].startswith("dlv_")
    assert queued["status"] == "PENDING" and queued["event_type"] == "webhook_endpoint.tested" and queued["attempts"] == []
    pump()
    r = read_client.get(f"/api/v1/webhook-endpoints/{data['id']}/deliveries")
    assert r.status_code == 200
    [listed] = r.json()["data"]
    assert listed["id"] == queued["id"] and listed["status"] == "PENDING" and listed["attempt_count"] == 1
    [attempt] = listed["attempts"]
    assert attempt["attempt_number"] == 1 and attempt["status_code"] == 500 and attempt["succeeded"] is False
    assert attempt["response_excerpt"] == "nope" and attempt["error"] == "HTTP 500" and attempt["next_attempt_at"]
    assert attempt["latency_ms"] is not None
    r = write_client.post(f"/api/v1/webhook-deliveries/{queued['id']}/retry")
    assert r.status_code == 202 and r.json()["status"] == "PENDING"
    pump()
    one = read_client.get(f"/api/v1/webhook-deliveries/{queued['id']}").json()
    assert one["status"] == "SUCCEEDED" and one["attempt_count"] == 2 and one["delivered_at"]
    assert [a["status_code"] for a in one["attempts"]] == [500, 200]
    assert [r.headers["webhook-id"] for r in receiver.received()] == [queued["id"]] * 2
    assert all(r.valid for r in receiver.received())
    assert read_client.get(f"/api/v1/webhook-endpoints/{data['id']}/deliveries", {"status": "FAILED"}).json()["data"] == []
    assert len(read_client.get(f"/api/v1/webhook-endpoints/{data['id']}/deliveries",
                               {"event_type": "webhook_endpoint.tested"}).json()["data"]) == 1


def test_deliveries_list_pages_with_a_bounded_number_of_queries(write_client, read_client, receiver, org, actor,
                                                                django_assert_max_num_queries):
    data = create(write_client, receiver)
    receiver.script = lambda path, n: Reply(500)
    for i in range(12):
        donations.donor_create(organisation=org, actor=actor, email=f"p{i}@example.com")
    pump()
    with django_assert_max_num_queries(8):
        page = read_client.get(f"/api/v1/webhook-endpoints/{data['id']}/deliveries", {"limit": 10}).json()
    assert len(page["data"]) == 10 and page["has_more"] is True
    assert all(len(d["attempts"]) == 1 for d in page["data"])


def test_test_and_retry_on_a_disabled_endpoint_conflict(write_client, receiver):
    data = create(write_client, receiver)
    queued = write_client.post(f"/api/v1/webhook-endpoints/{data['id']}/test").json()
    write_client.patch(f"/api/v1/webhook-endpoints/{data['id']}", {"status": "DISABLED"}, format="json")
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED  # pending deliveries fail with the endpoint
    for path in (f"/api/v1/webhook-endpoints/{data['id']}/test", f"/api/v1/webhook-deliveries/{queued['id']}/retry"):
        r = write_client.post(path)
        assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


def test_action_bodies_must_be_empty(write_client, receiver):
    data = create(write_client, receiver)
    r = write_client.post(f"/api/v1/webhook-endpoints/{data['id']}/test", {"foo": 1}, format="json")
    assert r.status_code == 400 and r.json()["error"]["param"] == "foo"


def test_scopes(read_client, write_client, anon_client, receiver):
    data = create(write_client, receiver)
    base = f"/api/v1/webhook-endpoints/{data['id']}"
    delivery = write_client.post(f"{base}/test").json()
    assert read_client.get("/api/v1/webhook-endpoints").status_code == 200
    assert read_client.get(f"{base}/deliveries").status_code == 200
    for method, path in [("post", "/api/v1/webhook-endpoints"), ("patch", base), ("delete", base),
                         ("post", f"{base}/rotate-secret"), ("post", f"{base}/test"),
                         ("post", f"/api/v1/webhook-deliveries/{delivery['id']}/retry")]:
        r = getattr(read_client, method)(path, {}, format="json")
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", (method, path)
        assert getattr(anon_client, method)(path, {}, format="json").status_code == 401
    assert anon_client.get("/api/v1/events").status_code == 401


def test_another_organisations_and_the_sandbox_twins_objects_are_404(write_client, other_write_client,
                                                                      sandbox_write_client, receiver):
    data = create(write_client, receiver)
    delivery = write_client.post(f"/api/v1/webhook-endpoints/{data['id']}/test").json()
    base = f"/api/v1/webhook-endpoints/{data['id']}"
    for client in (other_write_client, sandbox_write_client):
        for method, path in [("get", base), ("patch", base), ("delete", base), ("post", f"{base}/rotate-secret"),
                             ("post", f"{base}/test"), ("get", f"{base}/deliveries"),
                             ("get", f"/api/v1/webhook-deliveries/{delivery['id']}"),
                             ("post", f"/api/v1/webhook-deliveries/{delivery['id']}/retry")]:
            body = {"description": "x"} if method == "patch" else None
            r = getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (method, path)
        assert client.get("/api/v1/webhook-endpoints").json()["data"] == []
    assert WebhookEndpoint.objects.get().description is None


def test_sandbox_endpoints_get_only_sandbox_events(sandbox_write_client, write_client, receiver, org, actor):
    live = create(write_client, receiver, "/live")
    sandbox = create(sandbox_write_client, receiver, "/sandbox")
    assert WebhookEndpoint.objects.get(pk=sandbox["id"]).organisation_id == org.sandbox.id
    assert live["id"] != sandbox["id"]
    donations.donor_create(organisation=org.sandbox, actor=actor, email="sb@example.com")
    pump()
    assert [(r.path, r.json["organisation_id"], r.valid) for r in receiver.received()] == [("/sandbox", org.sandbox.id, True)]


def test_at_most_twenty_endpoints(write_client, receiver):
    for i in range(20):
        create(write_client, receiver, f"/h{i}")
    r = write_client.post("/api/v1/webhook-endpoints", {"url": receiver.url("/h21")}, format="json")
    assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"


def test_the_openapi_document_tags_every_webhooks_operation(read_client):
    schema = read_client.get("/api/v1/openapi.json").json()
    paths = {p: ops for p, ops in schema["paths"].items() if p.startswith(("/api/v1/events", "/api/v1/webhook-"))}
    assert set(paths) == {
        "/api/v1/events", "/api/v1/events/{id}", "/api/v1/webhook-endpoints", "/api/v1/webhook-endpoints/{id}",
        "/api/v1/webhook-endpoints/{id}/rotate-secret", "/api/v1/webhook-endpoints/{id}/test",
        "/api/v1/webhook-endpoints/{id}/deliveries", "/api/v1/webhook-deliveries/{id}",
        "/api/v1/webhook-deliveries/{id}/retry",
    }
    for path, ops in paths.items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert op["tags"] == ["webhooks"], (path, method)
            assert op.get("summary"), (path, method)
    components = schema["components"]["schemas"]
    created = paths["/api/v1/webhook-endpoints"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert "secret" in components[created["$ref"].rsplit("/", 1)[1]]["properties"]
    assert "secret" not in components["WebhookEndpoint"]["properties"]


def test_the_developer_page_documents_delivery(client):
    r = client.get("/developer/webhooks")
    assert r.status_code == 200
    text = r.content.decode()
    for needle in ("webhook-id", "At least once", "dedupe", "410", "base64", "donor.created", "Retry-After"):
        assert needle in text, needle


def test_a_read_key_can_poll_events(org, actor):
    client = client_for(make_key(org, "READ"))
    donations.donor_create(organisation=org, actor=actor, email="poll@example.com")
    assert client.get("/api/v1/events").json()["data"][0]["type"] == "donor.created"
