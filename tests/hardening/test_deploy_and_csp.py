"""Production security settings and the Content-Security-Policy (issue 13, defect 5).

- `manage.py check --deploy --fail-level WARNING` is clean with production settings
  (a subprocess with DEBUG=0 and an https SITE_URL);
- an https SITE_URL switches on secure cookies, HSTS (includeSubDomains), the
  redirect to https (health check exempt); each is overridable; the proxy header
  comes from the environment; a plain-http SITE_URL keeps development working;
- with those settings the session, CSRF and organisation cookies carry `Secure`;
- every HTML page (every dashboard route, the public, developer and admin pages)
  carries the policy, and none has an inline script, handler, `<style>` or `style=""`
  that the policy would block;
- in Chromium the dashboard home, the gift form (htmx), the set editor (the giving
  form in a same-origin frame), /give/<set>, /developer/api (Authorize, Try it out)
  and the admin run with zero CSP violations. Screenshots: artifacts/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from organisations.models import Role
from organisations.session import COOKIE
from tests.conftest import make_key
from tests.dashboard.conftest import (  # noqa: F401 (fixtures)
    browser,
    context,
    make_user,
    regime_rules,
    screenshot,
    sign_in,
)
from tests.dashboard.helpers import build_world, dashboard_routes
from tests.dashboard.test_tenancy import url_for
from together.csp import HEADER, build_policy

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SITE_URL": "https://together.example.org",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "ALLOWED_HOSTS": "together.example.org",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
}
SECURITY_SETTINGS = ["DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
                     "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT",
                     "SECURE_REDIRECT_EXEMPT", "SECURE_PROXY_SSL_HEADER", "X_FRAME_OPTIONS", "CSP", "CSP_STRIPE",
                     "ALLOWED_HOSTS"]
REQUIRED_DIRECTIVES = {"default-src": "'self'", "script-src": "'self'", "object-src": "'none'", "base-uri": "'self'",
                       "form-action": "'self'", "frame-ancestors": "'none'"}


def run_django(env: dict, *args: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {
        "DEBUG", "SITE_URL", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT", "SECURE_HSTS_PRELOAD",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "CSP_REPORT_ONLY",
        "DJANGO_ALLOW_ASYNC_UNSAFE"}}  # the browser fixture sets it while Chromium runs
    full_env.update(env, DJANGO_SETTINGS_MODULE="together.settings")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=300, check=False)


def derived_settings(env: dict) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n) for n in {SECURITY_SETTINGS!r}}}))")
    result = run_django(env, "-c", code)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- check --deploy and the settings the environment derives ------------------------------

def test_check_deploy_is_clean_with_production_settings():
    result = run_django(PRODUCTION_ENV, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_still_warns_when_https_is_switched_off_in_production():
    """The check is a real guard: turning the defaults off brings the warnings back."""
    env = {**PRODUCTION_ENV, "SESSION_COOKIE_SECURE": "0", "SECURE_HSTS_SECONDS": "0"}
    result = run_django(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout and "security.W004" in result.stderr + result.stdout


def test_an_https_site_url_switches_on_secure_cookies_hsts_and_the_redirect():
    s = derived_settings(PRODUCTION_ENV)
    assert s["SESSION_COOKIE_SECURE"] is True and s["CSRF_COOKIE_SECURE"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31_536_000 and s["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert s["SECURE_HSTS_PRELOAD"] is False  # opt-in
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert s["X_FRAME_OPTIONS"] == "DENY"
    for name, source in REQUIRED_DIRECTIVES.items():
        assert source in s["CSP"][name], name
    assert "upgrade-insecure-requests" in s["CSP"]
    # Stripe's own hosts, for the card pages only (together.csp.stripe_js_url); never localstripe
    assert s["CSP_STRIPE"]["script-src"] == ["https://js.stripe.com", "https://*.js.stripe.com"]
    assert s["CSP_STRIPE"]["frame-src"] == ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"]
    assert s["CSP_STRIPE"]["connect-src"] == ["https://api.stripe.com"]
    assert s["CSP"]["script-src"] == ["'self'"] and s["CSP"]["connect-src"] == ["'self'"]


def test_each_production_setting_can_be_overridden_from_the_environment():
    s = derived_settings({**PRODUCTION_ENV, "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
                          "SECURE_HSTS_SECONDS": "600", "SECURE_HSTS_PRELOAD": "1", "SECURE_SSL_REDIRECT": "0",
                          "SECURE_PROXY_SSL_HEADER": ""})
    assert (s["SESSION_COOKIE_SECURE"], s["CSRF_COOKIE_SECURE"], s["SECURE_HSTS_SECONDS"], s["SECURE_HSTS_PRELOAD"],
            s["SECURE_SSL_REDIRECT"], s["SECURE_PROXY_SSL_HEADER"]) == (False, False, 600, True, False, None)


def test_a_plain_http_site_url_keeps_development_working():
    s = derived_settings({"SITE_URL": "http://127.0.0.1:8000"})
    assert (s["SESSION_COOKIE_SECURE"], s["CSRF_COOKIE_SECURE"], s["SECURE_HSTS_SECONDS"], s["SECURE_SSL_REDIRECT"]) \
        == (False, False, 0, False)
    assert "upgrade-insecure-requests" not in s["CSP"]


def test_a_malformed_proxy_header_setting_is_refused_at_start_up():
    result = run_django({**PRODUCTION_ENV, "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}, "manage.py", "check")
    assert result.returncode != 0 and "SECURE_PROXY_SSL_HEADER" in result.stderr


# --- the production settings at work ------------------------------------------------------

@pytest.fixture(scope="module")
def production():
    """The security settings a production environment derives (from a subprocess), to apply here."""
    s = derived_settings(PRODUCTION_ENV)
    s["SECURE_PROXY_SSL_HEADER"] = tuple(s["SECURE_PROXY_SSL_HEADER"])
    s["ALLOWED_HOSTS"] = [*s["ALLOWED_HOSTS"], "testserver"]
    s.pop("DEBUG")
    return s


def set_cookie_headers(response) -> dict[str, str]:
    return {name: morsel.OutputString() for name, morsel in response.cookies.items()}


@pytest.mark.django_db
def test_cookies_carry_secure_under_production_settings(production, org):
    from organisations.services import user_get_or_create

    email = f"secure-{secrets.token_hex(4)}@example.org"
    user = user_get_or_create(email=email, password="a long enough password 1", full_name="Sec Ure")
    make_user(org, Role.ADMIN, email=email)
    with override_settings(**production, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        user.set_password("a long enough password 1")
        user.save()
        client = Client(enforce_csrf_checks=True)
        https = {"secure": True, "HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "together.example.org",
                 "HTTP_REFERER": "https://together.example.org/login/"}
        login_page = client.get("/login/", **https)
        assert login_page.status_code == 200
        assert "Strict-Transport-Security" in login_page
        assert login_page["Strict-Transport-Security"].startswith("max-age=31536000; includeSubDomains")
        cookies = set_cookie_headers(login_page)
        assert "csrftoken" in cookies and "; Secure" in cookies["csrftoken"], cookies
        token = client.cookies["csrftoken"].value
        response = client.post("/login/", {"username": email, "password": "a long enough password 1",
                                           "csrfmiddlewaretoken": token}, **https)
        assert response.status_code == 302, response.content[:500]
        cookies = set_cookie_headers(response)
        assert "sessionid" in cookies and "; Secure" in cookies["sessionid"] and "HttpOnly" in cookies["sessionid"], cookies
        toggled = client.post(reverse("sandbox-toggle"), {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}, **https)
        assert toggled.status_code == 302
        assert COOKIE in set_cookie_headers(toggled)  # the active-organisation cookie
        for name, header in {**cookies, **set_cookie_headers(toggled), **set_cookie_headers(client.get("/", **https))}.items():
            assert "; Secure" in header, (name, header)


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_except_the_health_check(production):
    with override_settings(**production):
        client = Client()
        response = client.get("/login/", HTTP_HOST="together.example.org")
        assert response.status_code == 301 and response["Location"] == "https://together.example.org/login/"
        forwarded = client.get("/login/", HTTP_HOST="together.example.org", HTTP_X_FORWARDED_PROTO="https")
        assert forwarded.status_code == 200
        assert client.get("/api/v1/health", HTTP_HOST="together.example.org").status_code in (200, 503)


# --- a policy on every HTML page, and nothing inline it would block ---------------------------

INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/(?:json|ld\+json)\")[^>]*>", re.IGNORECASE), "inline <script>"),
    (re.compile(r"<style[\s>]", re.IGNORECASE), "<style> element"),
    (re.compile(r"\sstyle\s*=", re.IGNORECASE), "style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.IGNORECASE), "event-handler attribute"),
    (re.compile(r"javascript:", re.IGNORECASE), "javascript: URL"),
]


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def problems_of(url: str, response) -> list[str]:
    if not response["Content-Type"].startswith("text/html"):
        return []
    out = []
    policy = response.get(HEADER)
    if not policy:
        return [f"{url}: no {HEADER}"]
    parsed = directives(policy)
    for name, source in REQUIRED_DIRECTIVES.items():
        if name == "frame-ancestors" and url.startswith("/give/"):
            source = "'self'"
        if parsed.get(name) != [source] and not (name in ("script-src",) and parsed.get(name, [])[:1] == [source]
                                                 and all(s.startswith("'nonce-") for s in parsed[name][1:])):
            out.append(f"{url}: {name} is {parsed.get(name)}")
    for name in ("script-src", "style-src", "default-src"):
        if any(s in ("'unsafe-inline'", "'unsafe-eval'", "*", "https:", "data:") for s in parsed.get(name, [])):
            out.append(f"{url}: {name} is too wide: {parsed[name]}")
    nonces = {s[len("'nonce-"):-1] for s in parsed.get("script-src", []) if s.startswith("'nonce-")}
    html = response.content.decode(errors="replace")
    for pattern, what in INLINE:
        for match in pattern.finditer(html):
            tag_start = html.rfind("<", 0, match.start() + 1)
            tag = html[tag_start:html.find(">", match.end()) + 1]
            if any(f'nonce="{n}"' in tag for n in nonces):
                continue
            out.append(f"{url}: {what}: {tag[:120]}")
    return out


@pytest.fixture
def world(request, org):
    if "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        request.getfixturevalue("regime_rules")  # a transactional test's flush removed them
    return build_world(org, "Csp")


def staff_member(org):
    user = make_user(org, Role.ADMIN, name="Root Staff")
    user.is_staff = user.is_superuser = True
    user.save()
    return user


@pytest.mark.django_db
def test_every_dashboard_page_carries_the_policy_and_nothing_inline(world, org):
    admin = make_user(org, Role.ADMIN)
    client = Client()
    client.force_login(admin)
    problems, seen = [], 0
    for route in dashboard_routes():
        url = url_for(route, world)
        response = client.get(url)
        if response.status_code in (301, 302, 405):
            continue
        assert response.status_code == 200, (url, response.status_code)
        if response["Content-Type"].startswith("text/html"):
            seen += 1
        problems += problems_of(url, response)
    assert seen >= 20, seen
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_public_developer_sign_in_and_admin_pages_carry_the_policy(world, org):
    anon = Client()
    urls = ["/login/", "/password-reset/", "/developer/api", "/developer/api/errors", "/developer/api/errors/not_found",
            "/developer/webhooks", reverse("give", kwargs={"set_id": world.recommendation_set.id}), "/admin/login/"]
    problems = []
    for url in urls:
        response = anon.get(url)
        assert response.status_code == 200, (url, response.status_code)
        problems += problems_of(url, response)
    staff = staff_member(org)
    admin = Client()
    admin.force_login(staff)
    for url in ["/admin/", "/admin/donations/donor/", f"/admin/donations/donor/{world.donor.id}/change/"]:
        response = admin.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert HEADER in response, url  # Django's own admin templates: the browser test checks they run
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_the_swagger_ui_start_up_script_is_served_from_a_url_of_its_own(anon_client):
    page = Client().get("/developer/api")
    src = re.search(r'<script src="(/developer/api\?[^"]*script[^"]*)"', page.content.decode())
    assert src, page.content.decode()
    script = Client().get(src.group(1).replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


def test_json_api_responses_carry_no_html_policy(client, db):
    assert HEADER not in client.get("/api/v1/health")


def test_the_giving_form_may_be_framed_by_us_only_and_other_pages_not_at_all(db, client, world):
    give = client.get(reverse("give", kwargs={"set_id": world.recommendation_set.id}))
    assert directives(give[HEADER])["frame-ancestors"] == ["'self'"] and give["X-Frame-Options"] == "SAMEORIGIN"
    login = client.get("/login/")
    assert directives(login[HEADER])["frame-ancestors"] == ["'none'"] and login["X-Frame-Options"] == "DENY"


def test_the_policy_is_extendable_from_settings(db, client, settings):
    """A third-party script (Stripe.js, later) is one entry in settings.CSP."""
    settings.CSP = {**settings.CSP, "script-src": [*settings.CSP["script-src"], "https://js.stripe.com"],
                    "frame-src": [*settings.CSP["frame-src"], "https://js.stripe.com"]}
    parsed = directives(client.get("/login/")[HEADER])
    assert parsed["script-src"][:2] == ["'self'", "https://js.stripe.com"]
    assert "https://js.stripe.com" in parsed["frame-src"]
    assert build_policy({"a": ["x"], "b": []}, nonce="n") == "a x; b"
    assert build_policy({"script-src": ["'self'"]}, nonce="n") == "script-src 'self' 'nonce-n'"


def test_stripe_js_is_allowed_only_on_a_page_that_loads_it(db, rf, settings):
    """A page that takes a card asks for Stripe.js by together.csp.stripe_js_url: CSP_STRIPE joins its policy alone."""
    from django.http import HttpResponse

    from together.csp import policy_for, stripe_js_url

    plain = directives(policy_for(rf.get("/"), HttpResponse()))
    for name, sources in settings.CSP_STRIPE.items():
        assert not set(sources) & set(plain[name]), name
    card_request = rf.get("/donate/x")
    assert stripe_js_url(card_request) == settings.STRIPE_JS_URL
    card = directives(policy_for(card_request, HttpResponse()))
    for name, sources in settings.CSP_STRIPE.items():
        assert card[name][:1] == ["'self'"] and set(sources) <= set(card[name]), name
    assert card["default-src"] == ["'self'"]  # nothing else widens


def test_report_only_mode(db, client, settings):
    settings.CSP_REPORT_ONLY = True
    response = client.get("/login/")
    assert HEADER not in response and "Content-Security-Policy-Report-Only" in response


# --- Chromium: the pages run under the policy ----------------------------------------------

@pytest.fixture
def csp_page(context):  # noqa: F811 (the fixture imported above)
    """A page that records every CSP violation: console messages and securitypolicyviolation events."""
    context.set_default_timeout(30_000)  # the machine is shared: a loaded live server is slow, not broken
    page = context.new_page()
    violations: list[str] = []
    errors: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    context.add_init_script("""
      window.__csp = [];
      document.addEventListener('securitypolicyviolation', e => window.__csp.push(
        e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
    """)
    page.violations = violations
    page.js_errors = errors
    yield page
    assert not errors, f"JavaScript errors: {errors}"


def assert_no_violations(page, where: str) -> None:
    page.wait_for_timeout(300)  # late reports (fonts, images) arrive asynchronously
    events = []
    for frame in page.frames:
        try:
            events += frame.evaluate("window.__csp || []")
        except Exception:  # noqa: BLE001, S110 - a frame navigating away
            pass
    assert not page.violations and not events, f"CSP violations on {where}: {page.violations} {events}"


@pytest.fixture
def signed_in(context, live_server, org, regime_rules):  # noqa: F811
    admin = make_user(org, Role.ADMIN, name="Ada Admin")
    sign_in(context, admin, live_server, org)
    return admin


@pytest.mark.django_db(transaction=True)
def test_browser_dashboard_home_and_gift_form_run_under_the_policy(csp_page, signed_in, live_server, world):
    page = csp_page
    response = page.goto("/")
    assert HEADER.lower() in {k.lower() for k in response.headers}
    page.get_by_role("heading", level=1).first.wait_for()
    assert page.evaluate("getComputedStyle(document.querySelector('header.top')).display") != "inline"  # the stylesheet applied
    screenshot(page, "csp-dashboard-home")
    assert_no_violations(page, "/")

    page.goto(reverse("gift-new"))
    page.fill("#donor-search", "Quill")  # htmx: the donor search swaps options in
    page.locator("#donor-options .pick-donor").first.wait_for()
    page.locator("#donor-options .pick-donor").first.click()  # the moved script: picking fills the hidden field
    assert page.input_value("input[name=donor]") == world.donor.id
    page.locator("#cap-room").wait_for()
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert_no_violations(page, "gift-new")


@pytest.mark.django_db(transaction=True)
def test_browser_set_editor_frames_the_giving_form_and_the_form_runs(csp_page, signed_in, live_server, world):
    page = csp_page
    page.goto(reverse("recommendation-set-edit", kwargs={"set_id": world.recommendation_set.id}))
    frame = page.frame_locator("iframe.preview-frame")
    frame.locator("#total").wait_for()
    assert page.evaluate("document.querySelector('iframe.preview-frame').getBoundingClientRect().height") > 300
    assert_no_violations(page, "set editor")

    page.goto(reverse("give", kwargs={"set_id": world.recommendation_set.id}))
    page.locator("#total").wait_for()
    assert page.locator("#total").inner_text().startswith("$")  # give.js computed the total
    assert page.evaluate("getComputedStyle(document.body).maxWidth") == "768px"  # public.css (48rem)
    screenshot(page, "csp-give")
    assert_no_violations(page, "/give/")


@pytest.mark.django_db(transaction=True)
def test_browser_swagger_ui_authorize_and_try_it_out(csp_page, live_server, org):
    """The reference UI in Chromium under the production policy: Authorize takes a key,
    Execute calls the API, and nothing is fetched from anywhere but this site."""
    key = make_key(org, "READ")
    page = csp_page
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((live_server.url, "data:")) else external.append(r.url))
    page.goto("/developer/api")
    page.locator(".swagger-ui .info .title").wait_for(timeout=60_000)  # the schema is built on first request
    assert_no_violations(page, "/developer/api (loaded)")
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").first.fill(key)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator(".auth-btn-wrapper button", has_text="Close").click()
    whoami = page.locator(".opblock", has=page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/v1/whoami$")))
    whoami.locator(".opblock-summary").click()
    # SWAGGER_UI_SETTINGS has tryItOutEnabled: the operation opens ready to execute.
    whoami.get_by_role("button", name="Execute").click()
    whoami.locator(".live-responses-table .response-col_status", has_text="200").first.wait_for()
    body = whoami.locator(".live-responses-table .microlight").first.inner_text()
    assert org.name in body and org.id in body and '"scope": "READ"' in body.replace('":"', '": "'), body
    screenshot(page, "csp-developer-api")
    from tests.dashboard.conftest import SCREENSHOTS

    whoami.screenshot(path=str(SCREENSHOTS / "csp-developer-api-whoami.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "csp-developer-api-top.png"))
    assert_no_violations(page, "/developer/api")
    assert not external, external


@pytest.mark.django_db(transaction=True)
def test_browser_admin_runs_under_the_policy(csp_page, live_server, org, world):
    sign_in(csp_page.context, staff_member(org), live_server, org)
    page = csp_page
    for url in ["/admin/", "/admin/donations/donor/", f"/admin/donations/donor/{world.donor.id}/change/",
                "/admin/reports/exportjob/"]:
        response = page.goto(url)
        assert response.status == 200, url
        assert_no_violations(page, url)


def test_development_error_pages_stay_usable(db, client, settings):
    """DEBUG's technical 404/500 pages are all inline; ordinary pages keep the policy even in DEBUG."""
    settings.DEBUG = True
    assert HEADER not in client.get("/no-such-page-at-all")
    assert HEADER in client.get("/login/")
    settings.DEBUG = False
    assert HEADER in client.get("/no-such-page-at-all")  # production's plain 404 page has it
