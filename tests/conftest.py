"""Shared fixtures: organisations with their sandbox twins, real API keys, and
API clients that send them as Bearer tokens through the whole HTTP stack."""
from __future__ import annotations

import itertools
import os

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from organisations.services import api_key_create, organisation_create
from together.actors import Actor

_counter = itertools.count()

# Playwright's `expect` waits 5 s by default, its actions 10 s here (the contexts' default timeout).
# On a loaded machine (two xdist workers, Chromium, live servers and PostgreSQL sharing two cores)
# a form post once took longer than 5 s to answer in CI: assertions wait as long as actions.
expect.set_options(timeout=10_000)


def make_org(name: str = "Org"):
    n = next(_counter)
    import secrets

    slug = f"{name.lower().replace(' ', '-')}-{n}-{secrets.token_hex(3)}"
    return organisation_create(name=f"{name} {n}", slug=slug)


def make_key(organisation, scope: str = "READ", name: str = "test key") -> str:
    return api_key_create(organisation=organisation, actor=Actor.system("tests"), name=name, scope=scope).plaintext


def client_for(plaintext: str | None) -> APIClient:
    client = APIClient()
    if plaintext:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.fixture
def org(db):
    return make_org("Acme")


@pytest.fixture
def other_org(db):
    return make_org("Other")


@pytest.fixture
def sandbox(org):
    return org.sandbox


@pytest.fixture
def read_key(org):
    return make_key(org, "READ")


@pytest.fixture
def write_key(org):
    return make_key(org, "WRITE")


@pytest.fixture
def read_client(read_key):
    return client_for(read_key)


@pytest.fixture
def write_client(write_key):
    return client_for(write_key)


@pytest.fixture
def other_write_client(other_org):
    return client_for(make_key(other_org, "WRITE"))


@pytest.fixture
def sandbox_write_client(sandbox):
    return client_for(make_key(sandbox, "WRITE"))


@pytest.fixture
def anon_client():
    return APIClient()


@pytest.fixture
def actor():
    return Actor.system("tests")


@pytest.fixture(scope="session", autouse=True)
def _celery_configured_from_the_real_settings():
    """Celery reads its configuration from Django's settings once, on first use.
    Read it now, before any test changes a setting: otherwise the first test to
    touch Celery under a changed setting (say CELERY_TASK_ALWAYS_EAGER) would fix
    that value for the rest of the session."""
    from together.celery import app

    assert app.conf.task_always_eager is False or os.environ.get("CELERY_TASK_ALWAYS_EAGER")
    yield


@pytest.fixture(scope="session", autouse=True)
def _transactional_flush_by_delete():
    """Transactional tests (live servers, real concurrency) end with Django's flush,
    which empties every table. On PostgreSQL it is one TRUNCATE of all 61 tables:
    about 0.4 s here, as TRUNCATE gives every table, index and TOAST table a new
    file. DELETE of the few rows a test leaves takes about 0.03 s, and leaves the
    same state: every table empty, sequences untouched (flush does not reset them
    either), no triggers to fire (there are none), every foreign key deferrable
    (Django creates them so), checked at the flush's commit. A flush that resets
    sequences, or cascades to other apps' tables, keeps Django's TRUNCATE."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables:  # a partial flush (available_apps) cascades: TRUNCATE
            return truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED"] + [
            f"{style.SQL_KEYWORD('DELETE FROM')} {style.SQL_FIELD(self.quote_name(table))};" for table in tables
        ]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


@pytest.fixture(autouse=True)
def _regime_rules_in_transactional_tests(request):
    """Transactional tests (live servers, real concurrency) flush every table
    after they run, the law's regime rules (a data migration) included. Each one
    starts with the rules loaded again, as migrate leaves them, so no test
    depends on which transactional test ran before it. (serialized_rollback is
    not used: mixed with flushes that recreate content types it collides.)"""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(
        {"transactional_db", "live_server"} & set(request.fixturenames)
        or (marker is not None and marker.kwargs.get("transaction"))
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        from django.conf import settings

        from compliance.models import RegimeRule
        from compliance.regimes import load_default_rules

        if not RegimeRule.objects.exists():
            load_default_rules(RegimeRule, settings.FEDERAL_REFORM_COMMENCEMENT)
    yield


@pytest.fixture(scope="session")
def localstripe():
    """localstripe (devtools/localstripe_together.py) answers on STRIPE_API_BASE:
    started as `make test` starts it when it does not. Its address."""
    from tests.support.stripe import ensure_localstripe

    return ensure_localstripe()


@pytest.fixture
def stripe_webhooks(live_server, localstripe):
    """localstripe sends its Stripe events to this live server's /webhooks/stripe,
    signed with the first STRIPE_WEBHOOK_SECRET. Registered under an id of this
    test process (xdist worker and pid: other processes, and other people's test
    runs, keep theirs), so events about other processes' intents arrive here too
    (the app answers 200 and ignores an intent it does not know). The URL."""
    from tests.support.stripe import register_stripe_webhook, unregister_stripe_webhook

    hook_id = f"pytest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"
    url = f"{live_server.url}/webhooks/stripe"
    register_stripe_webhook(url, hook_id)
    yield url
    unregister_stripe_webhook(hook_id)


@pytest.fixture
def isolated_key_generation(monkeypatch):
    """This test's own API-keys generation in Redis (organisations.keycache): another
    xdist worker creating keys at the same moment moves the shared generation on, and
    the next request here would read its key from the database again, one query more
    than a query-count test expects. Saves made by this test still move this one on."""
    import secrets as _secrets

    from organisations import keycache

    name = f"{keycache.generation_key()}:test-{_secrets.token_hex(6)}"
    monkeypatch.setattr(keycache, "generation_key", lambda: name)
    keycache.forget_all()
    yield
    keycache.forget_all()
