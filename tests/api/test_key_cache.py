"""Remembered API keys (organisations.keycache, issue 15): a key read once is not
read again while nothing changed, and a revocation or an organisation change
reaches every process on its very next request."""
from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from organisations import keycache
from organisations.models import ApiKey
from organisations.services import api_key_revoke
from tests.conftest import client_for, make_key, make_org
from tests.support.servers import gunicorn_servers
from together import redis as together_redis
from together.actors import Actor

SYSTEM = Actor.system("tests")


def _key_reads(queries) -> list[str]:
    return [q["sql"] for q in queries if 'FROM "organisations_apikey"' in q["sql"] and q["sql"].lstrip().startswith("SELECT")]


@pytest.mark.django_db
class TestInOneProcess:
    def test_a_remembered_key_is_not_read_again(self, org):
        client = client_for(make_key(org, "READ"))
        assert client.get("/api/v1/whoami").status_code == 200
        with CaptureQueriesContext(connection) as again:
            response = client.get("/api/v1/whoami")
        assert response.status_code == 200
        assert response.json()["organisation_id"] == org.id
        assert _key_reads(again.captured_queries) == []

    def test_revoked_key_fails_on_the_next_request(self, org):
        plaintext = make_key(org, "READ")
        client = client_for(plaintext)
        assert client.get("/api/v1/whoami").status_code == 200
        key = ApiKey.objects.get(organisation=org)
        api_key_revoke(organisation=org, actor=SYSTEM, api_key_id=key.id)
        response = client.get("/api/v1/whoami")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"

    def test_an_organisation_change_is_seen_at_once(self, org):
        client = client_for(make_key(org, "READ"))
        assert client.get("/api/v1/whoami").json()["organisation_name"] == org.name
        org.name = "Renamed"
        org.save(update_fields=["name", "updated_at"])
        assert client.get("/api/v1/whoami").json()["organisation_name"] == "Renamed"

    def test_each_request_has_its_own_copy(self, org):
        """A view may change request.organisation; the next request never sees it."""
        plaintext = make_key(org, "READ")
        client = client_for(plaintext)
        assert client.get("/api/v1/whoami").status_code == 200
        hashed = ApiKey.hash_plaintext(plaintext)
        first, _ = keycache.remembered(hashed)
        first.organisation.name = "changed in one request"
        second, _ = keycache.remembered(hashed)
        assert second.organisation.name == org.name
        assert second is not first and second.organisation is not first.organisation

    def test_a_generation_moved_on_elsewhere_is_a_fresh_read(self, org):
        """Another process changed a key: its bump is all this process sees."""
        client = client_for(make_key(org, "READ"))
        assert client.get("/api/v1/whoami").status_code == 200
        together_redis.client().set(keycache.generation_key(), "moved-on-by-another-process")
        with CaptureQueriesContext(connection) as after:
            assert client.get("/api/v1/whoami").status_code == 200
        assert len(_key_reads(after.captured_queries)) == 1
        with CaptureQueriesContext(connection) as then:
            assert client.get("/api/v1/whoami").status_code == 200
        assert _key_reads(then.captured_queries) == []

    def test_redis_down_reads_the_database_and_refuses_revoked_keys(self, org, settings):
        plaintext = make_key(org, "READ")
        client = client_for(plaintext)
        assert client.get("/api/v1/whoami").status_code == 200  # remembered
        key = ApiKey.objects.get(organisation=org)
        closed = "redis://127.0.0.1:1/0"
        settings.REDIS_URL = closed
        settings.CACHES = {"default": {"BACKEND": "together.cache.RedisCache", "LOCATION": closed}}
        together_redis.client.cache_clear()
        try:
            with CaptureQueriesContext(connection) as down:
                assert client.get("/api/v1/whoami").status_code == 200
            assert len(_key_reads(down.captured_queries)) == 1  # no generation to check: the database
            api_key_revoke(organisation=org, actor=SYSTEM, api_key_id=key.id)
            assert client.get("/api/v1/whoami").status_code == 401
        finally:
            together_redis.client.cache_clear()


def _get(base_url: str, path: str, plaintext: str) -> tuple[int, dict]:
    """One request on a connection of its own (a fresh connection may reach any worker)."""
    import json

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {plaintext}", "Accept": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def test_revocation_reaches_every_process_on_its_next_request(transactional_db):
    """Two gunicorn servers of one worker each (two processes), both remembering
    the key; a revocation in this (third) process; the very next request to each
    is 401. The same for an organisation's new name."""
    org = make_org("Cached")
    plaintext = make_key(org, "READ")
    key = ApiKey.objects.get(organisation=org)
    with gunicorn_servers(2, workers=1, threads=2) as servers:
        for server in servers:
            for _ in range(3):
                status, body = _get(server.url, "/api/v1/whoami", plaintext)
                assert status == 200 and body["key_id"] == key.id
        org.name = "Cached, renamed"
        org.save(update_fields=["name", "updated_at"])
        for server in servers:
            status, body = _get(server.url, "/api/v1/whoami", plaintext)
            assert (status, body["organisation_name"]) == (200, "Cached, renamed")
            status, body = _get(server.url, "/api/v1/whoami", plaintext)  # remembered again
            assert status == 200
        api_key_revoke(organisation=org, actor=SYSTEM, api_key_id=key.id)
        for server in servers:
            status, body = _get(server.url, "/api/v1/whoami", plaintext)
            assert status == 401, (server.url, body)
            assert body["error"]["code"] == "unauthorized"
