"""Unknown routes under /api/ (issue 13, defect 7): every method answers the JSON
404 envelope, never Django's HTML CSRF page, and with a valid key the 404 carries
the rate-limit headers like every other authenticated response."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.api.test_rate_limit import RATE_HEADERS, assert_rate_headers
from tests.conftest import make_key
from tests.support.api import assert_error, header

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]
PATHS = ["/api/v1/nope", "/api/v1/donors/x/y/z", "/api/v2/whoami", "/api/", "/api/v1/", "/api/v1/whoami/",
         "/api/v1/donors/", "/api/anything/at/all", "/api/v1/donations/abc/void/extra"]


@pytest.fixture(autouse=True)
def _rate_limit_on(settings):
    settings.RATE_LIMIT_ENABLED = True


def csrf_checking_client(key: str | None) -> APIClient:
    """Like a browser-less client in production: CSRF checks are enforced (the test
    client skips them by default, which hid the HTML 403)."""
    client = APIClient(enforce_csrf_checks=True)
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def call(client, method: str, path: str, body: bool):
    if body and method in ("post", "put", "patch"):
        return getattr(client, method)(path, {"a": 1}, format="json")
    return getattr(client, method)(path)


@pytest.mark.parametrize("body", [True, False], ids=["json-body", "no-body"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", PATHS)
def test_unknown_route_with_a_valid_key_is_404_envelope_with_rate_limit_headers(org, path, method, body):
    client = csrf_checking_client(make_key(org, "WRITE"))
    response = call(client, method, path, body)
    error = assert_error(response, 404, "not_found")
    assert method.upper() in error["message"] and path in error["message"]
    assert_rate_headers(response)
    assert header(response, "Allow") is None


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("path", PATHS)
def test_unknown_route_without_a_key_is_404_envelope_without_rate_headers(db, path, method):
    response = call(csrf_checking_client(None), method, path, body=True)
    assert_error(response, 404, "not_found")
    for name in RATE_HEADERS:
        assert header(response, name) is None, name


@pytest.mark.parametrize("method", METHODS)
def test_unknown_route_with_an_unknown_key_is_401_envelope(db, method):
    client = csrf_checking_client("pc_abcdefghijklmnopqrstuvwxyz0123456789")
    response = call(client, method, "/api/v1/nope", body=True)
    assert_error(response, 401, "unauthorized")
    assert header(response, "WWW-Authenticate")


def test_unknown_route_with_a_session_cookie_and_csrf_still_answers_json(org, django_user_model):
    """A signed-in browser posting to a typo'd API path gets JSON, not the CSRF page."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(django_user_model.objects.create_user(username="someone@example.org", password="x" * 20))
    response = client.post("/api/v1/nope", data=b"{}", content_type="application/json")
    assert_error(response, 404, "not_found")


def test_unknown_route_takes_a_token_from_the_bucket(org, settings):
    settings.RATE_LIMIT_RATE = 1  # a slow refill: the two answers are a token apart
    client = csrf_checking_client(make_key(org, "READ"))
    first = int(header(client.get("/api/v1/whoami"), "RateLimit-Remaining"))
    second = int(header(client.post("/api/v1/nope", {}, format="json"), "RateLimit-Remaining"))
    assert second <= first - 1


@pytest.mark.parametrize("query", ["?bogus=1", "?limit=10"])
def test_unknown_route_with_query_parameters_is_still_404(org, query):
    client = csrf_checking_client(make_key(org, "READ"))
    assert_error(client.get("/api/v1/nope" + query), 404, "not_found")


def test_unknown_route_with_text_html_accept_is_still_json(org):
    client = csrf_checking_client(make_key(org, "READ"))
    assert_error(client.get("/api/v1/nope", HTTP_ACCEPT="text/html"), 404, "not_found")


def test_head_on_an_unknown_route_is_404_with_rate_headers(org):
    client = csrf_checking_client(make_key(org, "READ"))
    response = client.head("/api/v1/nope")
    assert response.status_code == 404
    assert_rate_headers(response)


def test_the_catch_all_is_not_in_the_openapi_document(anon_client):
    paths = anon_client.get("/api/v1/openapi.json").json()["paths"]
    assert not [p for p in paths if not p.startswith("/api/v1/")]
