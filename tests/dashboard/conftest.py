"""Fixtures for the dashboard tests: staff users with roles, Django test clients
signed in as them, and (for the browser journeys) one Chromium per session
driven by Playwright against pytest-django's live server."""
from __future__ import annotations

import itertools
import os
import secrets
from pathlib import Path

import pytest
from django.test import Client

from organisations.models import Role
from organisations.services import membership_set, user_get_or_create
from organisations.session import COOKIE
from tests.support.tenant_guard import guard_requests

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery staple"

_n = itertools.count()


@pytest.fixture(autouse=True)
def _tenant_guard():
    """Every dashboard request here runs under the second tenancy guard (tests/support/tenant_guard.py)."""
    with guard_requests():
        yield


@pytest.fixture(autouse=True)
def _dashboard_settings(settings, tmp_path_factory):
    settings.RATE_LIMIT_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # PBKDF2 costs ~2 s a user here
    settings.REPORTS_EXPORT_DIR = tmp_path_factory.mktemp("exports")
    from together.celery import app

    # Tasks run inline here. Celery's own switch is set and put back (not the Django
    # setting: Celery reads its settings once, so a changed one would outlive the test).
    before = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def make_user(organisation, role: str = Role.ADMIN, *, email: str | None = None, name: str = "Sam Staff"):
    """A staff user (unique email: the sign-in throttle lives in Redis across runs)."""
    email = email or f"{role.lower()}-{next(_n)}-{secrets.token_hex(4)}@staff.example.org"
    user = user_get_or_create(email=email, password=PASSWORD, full_name=name)
    membership_set(organisation=organisation, user=user, role=role)
    return user


def client_as(user, *, organisation=None, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    if organisation is not None:
        client.cookies[COOKIE] = organisation.id
    return client


@pytest.fixture
def admin(org):
    return make_user(org, Role.ADMIN, name="Ada Admin")


@pytest.fixture
def editor(org):
    return make_user(org, Role.EDITOR, name="Eddie Editor")


@pytest.fixture
def viewer(org):
    return make_user(org, Role.VIEWER, name="Vera Viewer")


# --- the browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    """One Chromium per module, stopped with it: while Playwright's sync API runs, this
    thread has a running event loop, so Django hands the thread's ORM calls a
    connection of their own (asgiref's Local turns per-context); other modules'
    tests must not inherit that."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make chromium` (or apt-get install -y chromium) installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # (fixtures, assertions) then look "async" to Django. They are not. Only while it runs.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def context(browser, live_server):
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-AU",
                              timezone_id="Australia/Sydney")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def regime_rules(transactional_db):
    """The regime rules a data migration loads. A transactional test's flush removes them,
    and serialized_rollback cannot bring them back here (see `browser`), so load them."""
    from django.conf import settings

    from compliance.models import RegimeRule
    from compliance.regimes import load_default_rules

    if not RegimeRule.objects.exists():
        load_default_rules(RegimeRule, settings.FEDERAL_REFORM_COMMENCEMENT)
    return RegimeRule.objects.count()


def sign_in(context, user, live_server, organisation=None) -> None:
    """Put a real session for `user` into the browser (the sign-in form has its own test)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    cookies = [{"name": "sessionid", "value": cookie.value, "url": live_server.url}]
    if organisation is not None:
        cookies.append({"name": COOKIE, "value": organisation.id, "url": live_server.url})
    context.add_cookies(cookies)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
