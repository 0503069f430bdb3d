"""Authentication, scopes and the error envelope, through the whole HTTP stack
(middleware, DRF, our exception handler) with real Bearer keys."""
from __future__ import annotations

import json
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from organisations.models import ApiKey
from organisations.services import api_key_create, api_key_revoke
from tests.conftest import client_for, make_key
from tests.support.api import assert_error, make_donor
from together.actors import Actor

pytestmark = pytest.mark.django_db

DONOR_BODY = {"email": "alice@example.org", "first_name": "Alice"}


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        from together.logging import JsonFormatter, RequestIdFilter

        self.lines: list[dict] = []
        self.addFilter(RequestIdFilter())
        self.setFormatter(JsonFormatter())

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


# --- authentication ------------------------------------------------------------

@pytest.mark.parametrize(
    "authorization",
    [
        None,                                   # no header at all
        "",                                     # empty header
        "Bearer",                               # scheme, no token
        "Bearer ",                              # scheme, blank token
        "Basic dXNlcjpwYXNz",                   # another scheme
        "Token pc_abcdefghijklmnopqrstuvwxyz0123456789",
        "pc_abcdefghijklmnopqrstuvwxyz0123456789",  # token without scheme
        "Bearer pc_abcdefghijklmnopqrstuvwxyz0123456789",  # well-formed, unknown
        "Bearer sk_abcdefghijklmnopqrstuvwxyz0123456789",  # not a pc_ key
        "Bearer pc_",                           # prefix only
    ],
)
def test_missing_malformed_or_unknown_key_is_401(org, authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    for path in ("/api/v1/whoami", "/api/v1/donors"):
        response = client.get(path)
        assert_error(response, 401, "unauthorized")


def test_unknown_key_with_a_real_prefix_is_401(org, read_key):
    """Same lookup prefix as a real key, different secret: the hash comparison refuses it."""
    forged = read_key[:-4] + ("aaaa" if not read_key.endswith("aaaa") else "bbbb")
    assert_error(client_for(forged).get("/api/v1/whoami"), 401, "unauthorized")


def test_revoked_key_is_401(org):
    created = api_key_create(organisation=org, actor=Actor.system("tests"), name="to revoke", scope="WRITE")
    client = client_for(created.plaintext)
    assert client.get("/api/v1/whoami").status_code == 200
    api_key_revoke(organisation=org, actor=Actor.system("tests"), api_key_id=created.api_key.id)
    assert_error(client.get("/api/v1/whoami"), 401, "unauthorized")
    assert_error(client.post("/api/v1/donors", DONOR_BODY, format="json"), 401, "unauthorized")


def test_unauthorized_response_offers_the_bearer_challenge(anon_client):
    response = anon_client.get("/api/v1/whoami")
    assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_key_picks_the_organisation_live_and_sandbox(org, read_client, sandbox):
    body = read_client.get("/api/v1/whoami").json()
    assert body["organisation_id"] == org.id
    assert body["scope"] == "READ"
    assert body["is_sandbox"] is False
    sandbox_body = client_for(make_key(sandbox, "WRITE")).get("/api/v1/whoami").json()
    assert sandbox_body["organisation_id"] == sandbox.id
    assert sandbox_body["scope"] == "WRITE"
    assert sandbox_body["is_sandbox"] is True
    assert sandbox_body["organisation_slug"] == f"{org.slug}-sandbox"


@pytest.mark.parametrize("method,path", [("get", "/api/v1/whoami"), ("get", "/api/v1/donors"), ("post", "/api/v1/donors"), ("get", "/api/v1/health"), ("get", "/api/v1/nope")])
def test_x_org_slug_header_is_400_never_ignored(org, write_client, other_org, method, path):
    kwargs = {"format": "json"} if method == "post" else {}
    args = (DONOR_BODY,) if method == "post" else ()
    response = getattr(write_client, method)(path, *args, HTTP_X_ORG_SLUG=other_org.slug, **kwargs)
    assert_error(response, 400, "invalid_request", param="x-org-slug")
    # Nothing was created in either organisation.
    from donations.models import Donor

    assert not Donor.objects.filter(email=DONOR_BODY["email"]).exists()


def test_x_org_slug_even_with_own_slug_or_without_a_key(org, write_client, anon_client):
    assert_error(write_client.get("/api/v1/whoami", HTTP_X_ORG_SLUG=org.slug), 400, "invalid_request", param="x-org-slug")
    assert_error(anon_client.get("/api/v1/whoami", HTTP_X_ORG_SLUG=org.slug), 400, "invalid_request", param="x-org-slug")


# --- scopes --------------------------------------------------------------------

@pytest.mark.parametrize(
    "method,path,body",
    [
        ("post", "/api/v1/donors", DONOR_BODY),
        ("patch", "/api/v1/donors/{donor}", {"first_name": "Bob"}),
        ("delete", "/api/v1/donors/{donor}", None),
        ("post", "/api/v1/campaigns", {"name": "Spring"}),
    ],
)
def test_read_key_on_a_write_is_403_and_changes_nothing(org, read_client, method, path, body):
    donor = make_donor(org, first_name="Carol")
    kwargs = {"format": "json"} if body is not None else {}
    args = (body,) if body is not None else ()
    response = getattr(read_client, method)(path.format(donor=donor.id), *args, **kwargs)
    assert_error(response, 403, "forbidden")
    donor.refresh_from_db()
    assert donor.first_name == "Carol"
    from donations.models import Campaign, Donor

    assert Donor.objects.for_organisation(org).count() == 1
    assert not Campaign.objects.for_organisation(org).exists()


def test_read_key_reads_and_write_key_writes(org, read_client, write_client):
    assert read_client.get("/api/v1/donors").status_code == 200
    created = write_client.post("/api/v1/donors", DONOR_BODY, format="json")
    assert created.status_code == 201, created.content
    assert write_client.get(f"/api/v1/donors/{created.json()['id']}").status_code == 200


# --- last_used_at ----------------------------------------------------------------

def _touch_updates(queries) -> list[str]:
    table = ApiKey._meta.db_table
    return [q["sql"] for q in queries if q["sql"].startswith("UPDATE") and table in q["sql"] and "last_used_at" in q["sql"]]


def test_last_used_at_is_written_at_most_once_a_minute(org):
    from django.core.cache import cache

    plaintext = make_key(org, "READ")
    key = ApiKey.objects.get(organisation=org)
    assert key.last_used_at is None
    client = client_for(plaintext)

    with CaptureQueriesContext(connection) as first:
        assert client.get("/api/v1/whoami").status_code == 200
    key.refresh_from_db()
    first_use = key.last_used_at
    assert first_use is not None
    assert len(_touch_updates(first.captured_queries)) == 1

    # Within the minute: no write at all, the value stays.
    for _ in range(5):
        with CaptureQueriesContext(connection) as again:
            assert client.get("/api/v1/whoami").status_code == 200
        assert _touch_updates(again.captured_queries) == []
    key.refresh_from_db()
    assert key.last_used_at == first_use

    # The once-a-minute gate is a Redis marker that expires after 60 s.
    marker = f"apikey-touch:{key.id}"
    redis_key = cache.make_and_validate_key(marker)
    ttl = cache._cache.get_client(redis_key).ttl(redis_key)
    assert 0 < ttl <= 60, ttl

    # A minute later (the marker expired), the next request records the use again.
    cache.delete(marker)
    with CaptureQueriesContext(connection) as later:
        assert client.get("/api/v1/whoami").status_code == 200
    assert len(_touch_updates(later.captured_queries)) == 1
    key.refresh_from_db()
    assert key.last_used_at > first_use


def test_failed_authentication_does_not_touch_a_key(org):
    plaintext = make_key(org, "READ")
    key = ApiKey.objects.get(organisation=org)
    api_key_revoke(organisation=org, actor=Actor.system("tests"), api_key_id=key.id)
    assert_error(client_for(plaintext).get("/api/v1/whoami"), 401, "unauthorized")
    key.refresh_from_db()
    assert key.last_used_at is None


# --- request bodies ----------------------------------------------------------------

@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"email": }', b"{'email': 'a@b.c'}", b'{"email": "a@b.c",}', b"\xff\xfe", b"nul", b"[1, 2"],
)
def test_malformed_json_is_invalid_request(write_client, raw):
    response = write_client.generic("POST", "/api/v1/donors", raw, content_type="application/json")
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null", b"true"])
def test_json_that_is_not_an_object_is_invalid_request(write_client, raw):
    response = write_client.generic("POST", "/api/v1/donors", raw, content_type="application/json")
    assert_error(response, 400, "invalid_request")


@pytest.mark.parametrize("raw", [b"", b"   ", b"{}"])
def test_empty_body_on_a_create_is_invalid_request(write_client, raw):
    response = write_client.generic("POST", "/api/v1/donors", raw, content_type="application/json")
    assert_error(response, 400, "invalid_request")


def test_empty_body_without_content_type_is_invalid_request(write_client):
    assert_error(write_client.generic("POST", "/api/v1/donors", b""), 400, "invalid_request")


def test_empty_patch_is_invalid_request(org, write_client):
    donor = make_donor(org)
    assert_error(write_client.patch(f"/api/v1/donors/{donor.id}", {}, format="json"), 400, "invalid_request")


def test_missing_required_field_is_invalid_request_with_param(org, write_client):
    donor = make_donor(org)
    body = {"donor_id": donor.id, "donation_type": "MONETARY", "donation_date": "2026-03-01"}
    assert_error(write_client.post("/api/v1/donations", body, format="json"), 400, "invalid_request", param="amount_cents")


@pytest.mark.parametrize(
    "field,value",
    [
        ("amount_cents", "12"),      # a string where an integer belongs
        ("amount_cents", 12.5),      # a fraction
        ("amount_cents", True),      # a boolean is not an integer
        ("amount_cents", None),      # null for a required integer
        ("donation_type", 1),
        ("donation_date", 20260301),
        ("donor_id", ["x"]),
    ],
)
def test_wrong_json_type_is_invalid_request_with_param(org, write_client, field, value):
    donor = make_donor(org)
    body = {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 1200, "donation_date": "2026-03-01"}
    body[field] = value
    assert_error(write_client.post("/api/v1/donations", body, format="json"), 400, "invalid_request", param=field)
    from donations.models import Donation

    assert not Donation.objects.filter(organisation=org).exists()


def test_unknown_body_field_is_invalid_request_with_param(write_client):
    response = write_client.post("/api/v1/donors", {**DONOR_BODY, "favourite_colour": "red"}, format="json")
    assert_error(response, 400, "invalid_request", param="favourite_colour")


@pytest.mark.parametrize(
    "content_type,raw",
    [
        ("text/plain", b'{"email": "a@example.org"}'),
        ("application/x-www-form-urlencoded", b"email=a%40example.org"),
        ("multipart/form-data; boundary=xx", b"--xx\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@example.org\r\n--xx--\r\n"),
        ("application/xml", b"<donor/>"),
        ("application/json-patch+json", b"[]"),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_non_json_content_type_is_invalid_request(org, write_client, method, content_type, raw):
    donor = make_donor(org)
    path = "/api/v1/donors" if method == "POST" else f"/api/v1/donors/{donor.id}"
    response = write_client.generic(method, path, raw, content_type=content_type)
    assert_error(response, 400, "invalid_request", param="Content-Type")


def test_json_content_type_with_charset_is_accepted(write_client):
    response = write_client.generic(
        "POST", "/api/v1/donors", json.dumps(DONOR_BODY).encode(), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201, response.content


def test_body_over_one_megabyte_is_invalid_request(write_client):
    from donations.models import Donor

    big = json.dumps({**DONOR_BODY, "notes": "x" * (1024 * 1024 + 10)}).encode()
    response = write_client.generic("POST", "/api/v1/donors", big, content_type="application/json")
    assert_error(response, 400, "invalid_request")
    assert not Donor.objects.filter(email=DONOR_BODY["email"]).exists()


def test_body_just_under_the_limit_reaches_validation(write_client):
    """A body under 1 MB is parsed; the notes field's own limit then refuses it."""
    body = json.dumps({**DONOR_BODY, "notes": "x" * (1024 * 1024 - 200)}).encode()
    assert len(body) < 1024 * 1024
    response = write_client.generic("POST", "/api/v1/donors", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "notes"


# --- query parameters ----------------------------------------------------------------

@pytest.mark.parametrize(
    "path,name",
    [
        ("/api/v1/donors?colour=red", "colour"),
        ("/api/v1/donors?limit=5&sort=name", "sort"),
        ("/api/v1/donations?created_at[eq]=2026-01-01", "created_at[eq]"),
        ("/api/v1/whoami?verbose=1", "verbose"),
        ("/api/v1/campaigns?page=2", "page"),
    ],
)
def test_unknown_query_parameter_is_invalid_request_naming_it(read_client, path, name):
    error = assert_error(read_client.get(path), 400, "invalid_request", param=name)
    assert name in error["message"]


def test_unknown_query_parameter_on_a_retrieve(org, read_client):
    donor = make_donor(org)
    # A list's filters are not accepted on a single object.
    assert_error(read_client.get(f"/api/v1/donors/{donor.id}?limit=5"), 400, "invalid_request", param="limit")


@pytest.mark.parametrize(
    "path,param",
    [
        ("/api/v1/donations?status=BOGUS", "status"),
        ("/api/v1/donations?status=confirmed", "status"),
        ("/api/v1/donations?donation_type=CASH", "donation_type"),
        ("/api/v1/donors?donor_type=ALIEN", "donor_type"),
        ("/api/v1/campaigns?status=NOPE", "status"),
        ("/api/v1/donations?amount_cents[gte]=ten", "amount_cents[gte]"),
    ],
)
def test_bad_enum_or_value_in_a_filter_is_validation_failed(read_client, path, param):
    assert_error(read_client.get(path), 400, "validation_failed", param=param)


# --- routes and methods ------------------------------------------------------------------

@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/donors/x/y/z", "/api/v2/whoami", "/api/", "/api/v1/", "/api/v1/whoami/", "/api/v1/donors/"]
)
def test_unknown_route_under_api_is_404_envelope(read_client, anon_client, path):
    assert_error(read_client.get(path), 404, "not_found")
    assert_error(read_client.post(path, {}, format="json"), 404, "not_found")
    assert_error(anon_client.get(path), 404, "not_found")


def test_unknown_object_id_is_404_envelope(read_client):
    assert_error(read_client.get("/api/v1/donors/cm3doesnotexist000000000"), 404, "not_found")
    assert_error(read_client.get("/api/v1/donations/%20"), 404, "not_found")


@pytest.mark.parametrize(
    "method,path,allowed",
    [
        ("PUT", "/api/v1/donors", {"GET", "POST"}),
        ("DELETE", "/api/v1/donors", {"GET", "POST"}),
        ("PUT", "/api/v1/donors/{donor}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/donors/{donor}", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/v1/whoami", {"GET"}),
        ("DELETE", "/api/v1/whoami", {"GET"}),
        ("PATCH", "/api/v1/donors/{donor}/merge", {"POST"}),
        ("PUT", "/api/v1/donations/{donation}/void", {"POST"}),
    ],
)
def test_wrong_method_is_405_with_allow(org, write_client, method, path, allowed):
    from tests.support.api import seed_donation

    donor = make_donor(org)
    donation = seed_donation(org, donor)
    response = write_client.generic(
        method, path.format(donor=donor.id, donation=donation.id), b'{"a": 1}', content_type="application/json"
    )
    assert_error(response, 405, "method_not_allowed")
    assert {m.strip() for m in response["Allow"].split(",")} == allowed


def test_wrong_method_with_a_read_key_is_still_405(read_client):
    response = read_client.put("/api/v1/donors", {}, format="json")
    assert_error(response, 405, "method_not_allowed")


# --- server errors ---------------------------------------------------------------------------

def test_a_500_renders_the_envelope_without_a_stack_trace(org, write_key, monkeypatch):
    from donations import services
    from donations.models import Donor

    def explode(**kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(services, "donor_create", explode)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    handler = _Collect()
    logger = logging.getLogger("together.api")
    logger.addHandler(handler)
    try:
        response = client.post("/api/v1/donors", DONOR_BODY, format="json")
    finally:
        logger.removeHandler(handler)
    error = assert_error(response, 500, "internal_error")
    assert b"hunter2" not in response.content
    assert b"RuntimeError" not in response.content
    assert not Donor.objects.filter(organisation=org).exists()
    # The failure is logged loudly, traceback and request id included, for support to find.
    errors = [line for line in handler.lines if line["level"] == "ERROR"]
    assert errors, "the 500 must be logged"
    assert any(line.get("request_id") == error["request_id"] and "hunter2" in line.get("exc", "") for line in errors), errors


def test_a_500_inside_an_idempotent_request_frees_the_key(org, write_key, monkeypatch):
    from donations import services

    real = services.donor_create
    monkeypatch.setattr(services, "donor_create", lambda **kw: (_ for _ in ()).throw(RuntimeError("boom")))
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    assert_error(client.post("/api/v1/donors", DONOR_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-500"), 500, "internal_error")
    monkeypatch.setattr(services, "donor_create", real)
    response = client.post("/api/v1/donors", DONOR_BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-500")
    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response


# --- request ids ---------------------------------------------------------------------------------

def test_request_id_on_every_response_and_unique(org, read_client, anon_client):
    responses = [
        read_client.get("/api/v1/whoami"),
        read_client.get("/api/v1/donors"),
        read_client.get("/api/v1/donors?bogus=1"),
        read_client.get("/api/v1/nope"),
        anon_client.get("/api/v1/whoami"),
        anon_client.get("/api/v1/health"),
        anon_client.get("/api/v1/openapi.json"),
        anon_client.get("/developer/api/errors"),
        anon_client.get("/developer/api/errors/unknown-code"),
        read_client.put("/api/v1/donors", {}, format="json"),
    ]
    ids = [r["x-request-id"] for r in responses]
    assert all(i and i.startswith("req_") for i in ids), ids
    assert len(set(ids)) == len(ids)
    for _ in range(20):
        ids.append(read_client.get("/api/v1/whoami")["x-request-id"])
    assert len(set(ids)) == len(ids)


def test_client_sent_request_id_is_not_honoured(read_client):
    response = read_client.get("/api/v1/donors?bogus=1", HTTP_X_REQUEST_ID="req_mine")
    assert response["x-request-id"] != "req_mine"
    assert response.json()["error"]["request_id"] == response["x-request-id"]


def test_request_id_is_in_the_structured_log_line(org, read_client):
    handler = _Collect()
    logger = logging.getLogger("together.request")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        ok = read_client.get("/api/v1/whoami")
        bad = read_client.get("/api/v1/donors?bogus=1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    by_id = {line.get("request_id"): line for line in handler.lines}
    for response in (ok, bad):
        line = by_id.get(response["x-request-id"])
        assert line is not None, handler.lines
        assert line["status"] == response.status_code
        assert line["path"] in ("/api/v1/whoami", "/api/v1/donors")
        assert line["organisation_id"] == org.id
