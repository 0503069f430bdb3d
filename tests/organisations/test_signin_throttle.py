"""The sign-in throttle (security review, issue 13, defect 9): an attempt is
reserved atomically in Redis before the password is checked, so parallel wrong
passwords for one email cannot get more than the limit evaluated, and once the
limit is reached even the right password waits for the window to pass."""
from __future__ import annotations

import re
import threading
import time

import pytest
import requests
from django.contrib.auth.signals import user_login_failed

from organisations import services
from organisations.models import Role
from tests.conftest import make_org
from tests.dashboard.conftest import PASSWORD, make_user
from together.redis import client as redis_client

WRONG = "correct email and password"
THROTTLED = "Too many failed sign-ins"
WINDOW = 12  # seconds: long enough for the burst on a busy machine, short enough to wait out


class LoginPage:
    """Posts the sign-in form to the live server like a browser (CSRF cookie and token)."""

    def __init__(self, base_url: str):
        self.url = base_url + "/login/"
        page = requests.get(self.url, timeout=30)
        self.csrf_cookie = page.cookies["csrftoken"]
        self.csrf_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)

    def post(self, email: str, password: str) -> requests.Response:
        return requests.post(self.url, data={"username": email, "password": password, "csrfmiddlewaretoken": self.csrf_token},
                             cookies={"csrftoken": self.csrf_cookie}, allow_redirects=False, timeout=60)


def outcome(response: requests.Response) -> str:
    if response.status_code == 302:
        return "signed-in"
    assert response.status_code == 200, response.status_code
    if THROTTLED in response.text:
        return "throttled"
    assert WRONG in response.text, response.text[:500]
    return "wrong"


@pytest.mark.slow
def test_twenty_parallel_wrong_passwords_get_at_most_the_limit_evaluated(transactional_db, live_server, monkeypatch):
    monkeypatch.setattr(services, "FAILED_LOGIN_WINDOW", WINDOW)
    user = make_user(make_org("Throttle"), Role.EDITOR)
    login = LoginPage(live_server.url)

    evaluated = []  # every password the server checked and found wrong

    def count(sender, credentials, request=None, **kwargs):
        if credentials.get("username") == user.email:
            evaluated.append(1)

    user_login_failed.connect(count, weak=False, dispatch_uid="h1accounts-throttle-test")
    n = 20
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i):
        barrier.wait()
        try:
            results[i] = login.post(user.email, f"wrong guess {i}")
        except Exception as exc:  # noqa: BLE001 - asserted below
            results[i] = exc

    started = time.monotonic()
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        user_login_failed.disconnect(dispatch_uid="h1accounts-throttle-test")
    elapsed = time.monotonic() - started

    assert all(isinstance(r, requests.Response) for r in results), results
    outcomes = [outcome(r) for r in results]
    assert elapsed < WINDOW, f"the burst took {elapsed:.1f} s, longer than the test's window"
    assert outcomes.count("wrong") == services.FAILED_LOGIN_LIMIT, outcomes
    assert outcomes.count("throttled") == n - services.FAILED_LOGIN_LIMIT, outcomes
    assert len(evaluated) == services.FAILED_LOGIN_LIMIT

    # The right password is refused too, without being checked, until the window passes.
    assert outcome(login.post(user.email.upper(), PASSWORD)) == "throttled"
    assert len(evaluated) == services.FAILED_LOGIN_LIMIT
    key = services.signin_attempts_key(email=user.email, client_ip="127.0.0.1")
    ttl = redis_client().ttl(key)
    assert 0 < ttl <= WINDOW
    deadline = time.monotonic() + WINDOW + 5
    while redis_client().exists(key) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not redis_client().exists(key)
    assert outcome(login.post(user.email, PASSWORD)) == "signed-in"


@pytest.mark.django_db
def test_a_right_password_gives_its_attempt_back_and_a_wrong_one_keeps_it(client):
    from django.urls import reverse

    user = make_user(make_org("Refund"), Role.VIEWER)
    key = services.signin_attempts_key(email=user.email, client_ip="127.0.0.1")
    for _ in range(services.FAILED_LOGIN_LIMIT - 1):
        assert WRONG in client.post(reverse("login"), {"username": user.email, "password": "nope"}).content.decode()
    assert int(redis_client().get(key)) == services.FAILED_LOGIN_LIMIT - 1
    assert client.post(reverse("login"), {"username": user.email, "password": PASSWORD}).status_code == 302
    assert int(redis_client().get(key)) == services.FAILED_LOGIN_LIMIT - 1  # success is not a failure, nor a reset
    client.logout()
    assert WRONG in client.post(reverse("login"), {"username": user.email, "password": "nope"}).content.decode()
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 200 and THROTTLED in response.content.decode()
    assert int(redis_client().get(key)) == services.FAILED_LOGIN_LIMIT  # a refused attempt does not extend the count
