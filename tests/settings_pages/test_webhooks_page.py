"""Settings → Webhooks in the dashboard: ADMINs manage endpoints through the
webhooks services; the secret shows once; other roles and organisations cannot act."""
from __future__ import annotations

import pytest
from django.test import Client

from organisations.models import Role
from organisations.services import membership_set, user_get_or_create
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def signed_in(org, role):
    user = user_get_or_create(email=f"{role.lower()}-{org.slug}@example.org", password="pw-for-tests-123")
    membership_set(organisation=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


def create(client, url="http://127.0.0.1:9/hook"):
    return client.post("/settings/webhooks", {"action": "create", "url": url, "description": "CRM", "enabled_events": ["*"]})


def test_admin_creates_endpoint_and_sees_the_secret_once(org):
    admin = signed_in(org, Role.ADMIN)
    response = create(admin)
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.for_organisation(org).get()
    assert endpoint.secret in response.content.decode()
    assert response["Cache-Control"] == "no-store"
    assert endpoint.secret not in admin.get("/settings/webhooks").content.decode()


def test_bad_url_is_shown_beside_the_field_and_nothing_stored(org, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = create(signed_in(org, Role.ADMIN), url="http://10.0.0.1/hook")
    assert response.status_code == 400
    assert not WebhookEndpoint.objects.for_organisation(org).exists()


def test_test_event_rotate_and_delete(org):
    admin = signed_in(org, Role.ADMIN)
    create(admin)
    endpoint = WebhookEndpoint.objects.for_organisation(org).get()
    assert admin.post("/settings/webhooks", {"action": "test", "id": endpoint.id}).status_code == 302
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    old = endpoint.secret
    rotated = admin.post("/settings/webhooks", {"action": "rotate", "id": endpoint.id})
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in rotated.content.decode()
    assert admin.post("/settings/webhooks", {"action": "delete", "id": endpoint.id}).status_code == 302
    assert not WebhookEndpoint.objects.filter(pk=endpoint.id).exists()


def test_viewer_reads_but_cannot_act(org):
    create(signed_in(org, Role.ADMIN))
    viewer = signed_in(org, Role.VIEWER)
    page = viewer.get("/settings/webhooks")
    assert page.status_code == 200
    assert "Add endpoint" not in page.content.decode()
    assert create(viewer).status_code == 403
    assert WebhookEndpoint.objects.for_organisation(org).count() == 1


def test_another_organisations_endpoint_cannot_be_touched(org, other_org):
    create(signed_in(org, Role.ADMIN))
    endpoint = WebhookEndpoint.objects.for_organisation(org).get()
    outsider = signed_in(other_org, Role.ADMIN)
    outsider.post("/settings/webhooks", {"action": "delete", "id": endpoint.id})
    assert WebhookEndpoint.objects.filter(pk=endpoint.id).exists()
    assert endpoint.url not in outsider.get("/settings/webhooks").content.decode()
