"""NUL (and other control characters) never reach the database, never make a 500.

PostgreSQL text and jsonb cannot hold U+0000. Everything here is generated from
the URL conf and the served OpenAPI document, not hand-listed:

- every route of the URL conf, every method it serves, with `%00` / `a%00b` in
  each path parameter (or appended to a path without one): a 404, the envelope
  under /api/ (WRITE key), Django's plain page elsewhere (anonymous and a
  signed-in ADMIN);
- every API route with each documented query parameter, the pagination cursors
  and an unknown name set to `%00` / `a%00b` (and a name holding `%00`): 400
  `invalid_request` naming the parameter; the same query on every dashboard
  route (on its seeded page): a plain 400;
- every API POST/PATCH with `\\u0000` in each string of its body, in a metadata
  key and a metadata value, and in all of them at once: 400 `invalid_request`
  with `param` at the string, and nothing stored changes;
- every dashboard, public and staff-admin form (scraped from its seeded page)
  posted with NUL in each field in turn and in all at once: a plain 400 page,
  and nothing stored changes (views also read `request.POST` directly, so the
  guard refuses the post before any of them);
- a cookie holding a NUL is treated as not sent.
"""
from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser
from urllib.parse import quote, urljoin

import pytest
from django.test import Client

from tests.api.test_route_matrix import ROUTES, Seeds, _snapshot
from tests.conftest import client_for, make_key
from tests.support.api import assert_error
from tests.support.routes import api_routes, normalise, walk

PATH_VALUES = ("%00", "a%00b")
QUERY_VALUES = ("%00", "a%00b")
PARAM = re.compile(r"\{(\w+)\}")
NUL_NAME = "a\x00b"  # a query parameter or body key whose very name holds a NUL


def _methods(method: str) -> list[str]:
    return ["GET", "POST"] if method == "*" else [method]


def _url_conf() -> list[tuple[str, list[str]]]:
    """(path template, methods) for every route of the URL conf."""
    by_template: dict[str, set[str]] = defaultdict(set)
    for template, method, _ in walk():
        by_template[template].update(_methods(method))
    return sorted((template, sorted(methods)) for template, methods in by_template.items())


URL_CONF = _url_conf()


def _nul_paths(template: str) -> list[str]:
    """The template with a NUL value in each path parameter in turn (the others
    a harmless value), or with `%00` appended when it has none."""
    names = PARAM.findall(template)
    if not names:
        return [template + "%00", template.rstrip("/") + "/a%00b"]
    out = []
    for target in names:
        for value in PATH_VALUES:
            out.append(PARAM.sub(lambda m, t=target, v=value: v if m.group(1) == t else "x", template))
    return out


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


@pytest.fixture
def admin_client(org):
    """A signed-in dashboard ADMIN who is also Django staff (so /admin/ routes answer as for staff)."""
    from tests.dashboard.conftest import client_as, make_user

    user = make_user(org)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    return client_as(user, organisation=org)


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.RATE_LIMIT_ENABLED = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- every route of the URL conf: NUL in the path -----------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize(("template", "methods"), URL_CONF, ids=[t for t, _ in URL_CONF])
def test_nul_in_any_path_segment_is_a_404(template, methods, org, admin_client):
    callers = [("WRITE key", client_for(make_key(org, "WRITE")))] if _is_api(template) else [
        ("anonymous", Client()), ("ADMIN", admin_client)]
    before = _snapshot(org)
    for path in _nul_paths(template):
        for method in methods:
            for who, client in callers:
                response = client.generic(method, path)
                assert response.status_code < 500, (who, method, path, response.status_code)
                if _is_api(path):
                    assert_error(response, 404, "not_found")
                else:
                    assert response.status_code == 404, (who, method, path, response.status_code)
    assert _snapshot(org) == before


def test_the_url_conf_walk_sees_every_kind_of_route():
    templates = {t for t, _ in URL_CONF}
    assert "/api/v1/donors/{pk}" in templates
    assert "/give/{set_id}" in templates
    assert "/donors/{pk}/edit" in templates
    assert any(t.startswith("/admin/") and "{" in t for t in templates)
    assert "/api/v1/donors/a%00b" in _nul_paths("/api/v1/donors/{pk}")


# --- the API: query parameters and bodies, on seeded objects ----------------------------------

def _documented_query_params() -> dict[tuple[str, str], list[str]]:
    from django.test import Client as _Client

    doc = _Client().get("/api/v1/openapi.json").json()
    out = {}
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            params = [p["name"] for p in operation.get("parameters", []) + item.get("parameters", []) if p.get("in") == "query"]
            out[(method.upper(), normalise(path))] = params
    return out


def _string_leaves(value, prefix: str = ""):
    """(param, setter) for every string in a JSON body, in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(item, str):
                yield name, (value, key)
            else:
                yield from _string_leaves(item, name)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            name = f"{prefix}[{index}]"
            if isinstance(item, str):
                yield name, (value, index)
            else:
                yield from _string_leaves(item, name)


def _with_nul(text: str) -> str:
    return text[:1] + "\x00" + text[1:]


def _body_variants(body: dict) -> list[tuple[str, dict]]:
    """(expected param, body) with a NUL in each string, in a metadata key, in a
    metadata value, in a top-level key, and everywhere at once."""
    import copy

    variants = []
    for index, (param, _) in enumerate(list(_string_leaves(body))):
        variant = copy.deepcopy(body)
        container, key = list(_string_leaves(variant))[index][1]
        container[key] = _with_nul(container[key])
        variants.append((param, variant))
    variants.append(("metadata.k\x00ey", {**copy.deepcopy(body), "metadata": {"k\x00ey": "value"}}))
    variants.append(("metadata.key", {**copy.deepcopy(body), "metadata": {"key": "va\x00lue"}}))
    variants.append((NUL_NAME, {**copy.deepcopy(body), NUL_NAME: "x"}))
    everything = {**copy.deepcopy(body), "metadata": {"key": "value", "other": "value"}}
    leaves = list(_string_leaves(everything))
    for _, (container, key) in leaves:
        container[key] = _with_nul(container[key])
    everything["metadata"] = {_with_nul(k): v for k, v in everything["metadata"].items()}
    # The first string in document order is the one named.
    first = leaves[0][0] if leaves[0][0] != "metadata.key" else "metadata.k\x00ey"
    variants.append((first, everything))
    return variants


DOCUMENTED = _documented_query_params()


@pytest.mark.django_db
@pytest.mark.parametrize("row", ROUTES, ids=lambda r: r.id)
def test_api_route_refuses_nul_in_path_query_and_body(row, org):
    ids = Seeds(org)
    path = row.path.format_map(ids)
    body = row.body(ids) if callable(row.body) else (row.body or {})
    for name in row.seeds:
        ids[name]
    client = client_for(make_key(org, "WRITE"))
    before = _snapshot(org)

    # Each path parameter.
    for name in PARAM.findall(row.path):
        for value in PATH_VALUES:
            nul_path = row.path.format_map({**ids, name: value})
            assert_error(client.generic(row.method, nul_path), 404, "not_found")

    # Each documented query parameter, the cursors, an unknown name, and a name holding a NUL.
    documented = DOCUMENTED.get((row.method, normalise(row.path.split("?")[0])), [])
    sep = "&" if "?" in path else "?"
    for name in sorted(set(documented) | {"starting_after", "ending_before", "limit", "unknown"}):
        for value in QUERY_VALUES:
            response = client.generic(row.method, f"{path}{sep}{quote(name, safe='[]')}={value}")
            assert_error(response, 400, "invalid_request", param=name)
    response = client.generic(row.method, f"{path}{sep}a%00b=1")
    assert_error(response, 400, "invalid_request", param=NUL_NAME)

    # Bodies of writes.
    if row.method in ("POST", "PATCH"):
        import json

        for param, variant in _body_variants(body):
            response = client.generic(row.method, path, json.dumps(variant), content_type="application/json")
            assert_error(response, 400, "invalid_request", param=param)
    assert _snapshot(org) == before, "a refused request changed stored data"


def test_every_api_write_route_is_covered():
    """The body sweep above runs over ROUTES: every served POST/PATCH must be in it."""
    served = {r for r in api_routes() if r[0] in ("POST", "PATCH")}
    rows = {(row.method, normalise(row.path)) for row in ROUTES}
    assert served and not served - rows, sorted(served - rows)


@pytest.mark.django_db
def test_a_refused_patch_leaves_the_record_as_it_was(org):
    """Metadata in particular: the stored keys and values stay exactly as they were."""
    client = client_for(make_key(org, "WRITE"))
    created = client.post("/api/v1/donors", {"email": "kept@example.org", "first_name": "Kept", "metadata": {"a": "1"}},
                          format="json")
    assert created.status_code == 201, created.content
    donor = created.json()
    for variant in ({"metadata": {"a": "\x00"}}, {"metadata": {"b\x00": "2"}}, {"first_name": "Ke\x00pt"}):
        response = client.patch(f"/api/v1/donors/{donor['id']}", variant, format="json")
        assert_error(response, 400, "invalid_request")
    assert client.get(f"/api/v1/donors/{donor['id']}").json() == donor


@pytest.mark.django_db
def test_tab_and_newline_in_a_query_value_are_not_control_character_errors(org):
    """The guard refuses NUL and its kin, not the whitespace a search box may send."""
    client = client_for(make_key(org, "READ"))
    assert client.get("/api/v1/donors?limit=5").status_code == 200
    response = client.get("/api/v1/donors?limit=%0A5")
    assert response.status_code in (200, 400)
    assert "control character" not in response.content.decode()


# --- the dashboard: seeded pages, their queries and their forms -------------------------------

PUBLIC = ("/give/", "/join/", "/introductions/", "/login/", "/logout/", "/password-reset/", "/reset/", "/developer/")
# Path parameters of the dashboard, by the template's first segment, from the seeded world.
SEED_OF = {
    "donors": lambda w: w.donor.id, "donations": lambda w: w.donation.id, "campaigns": lambda w: w.campaign.id,
    "batches": lambda w: w.batch.id, "engage": lambda w: w.recommendation_set.id, "give": lambda w: w.recommendation_set.id,
    "reports": lambda w: w.export_job.id, "introductions": lambda w: w.introduction_token,
    "developer": lambda w: "invalid_request", "join": lambda w: w.join_token, "reset": lambda w: w.reset_params,
}


@pytest.fixture
def world(org, django_capture_on_commit_callbacks):
    import secrets

    from django.contrib.auth.tokens import default_token_generator
    from django.core import mail
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from organisations.services import invitation_create
    from recommendations.services import introduction_create
    from tests.dashboard.conftest import make_user
    from tests.dashboard.helpers import SYSTEM, build_world

    w = build_world(org, "Nul")
    w.introduction_token = introduction_create(organisation=org, actor=SYSTEM, invitee_email="invitee@example.org").token
    with django_capture_on_commit_callbacks(execute=True):  # the join link is only ever in the email
        invitation_create(organisation=org, actor=SYSTEM, email=f"joiner-{secrets.token_hex(4)}@example.org", full_name="Jo Iner")
    w.join_token = re.search(r"/join/([^\s]+)", mail.outbox[-1].body).group(1)
    forgetful = make_user(org)
    w.reset_params = {"uidb64": urlsafe_base64_encode(force_bytes(forgetful.pk)),
                      "token": default_token_generator.make_token(forgetful)}
    return w


def _dashboard_targets() -> list[tuple[str, list[str]]]:
    """Every page outside the API; of the staff admin, the pages without an object id."""
    return [(t, m) for t, m in URL_CONF if not t.startswith(("/api/", "/static/"))
            and not (t.startswith("/admin/") and "{" in t)]


DASHBOARD = _dashboard_targets()


def _seeded_path(template: str, w) -> str | None:
    if "{" not in template:
        return template
    seed = SEED_OF.get(template.strip("/").split("/")[0])
    if seed is None:
        return None
    value = seed(w)
    return PARAM.sub(lambda m: str(value[m.group(1)] if isinstance(value, dict) else value), template)


class _Forms(HTMLParser):
    """Every POST form on a page: its action and its fields with their values."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "fields": {}}
            self.forms.append(self._form)
        elif self._form is None:
            return
        elif tag in ("input", "button") and a.get("name"):
            kind = (a.get("type") or "text").lower()
            if kind == "file" or (kind in ("checkbox", "radio") and "checked" not in a and a["name"] in self._form["fields"]):
                return
            self._form["fields"].setdefault(a["name"], a.get("value") or "on" if kind in ("checkbox", "radio") else a.get("value") or "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            self._form["fields"].setdefault(a["name"], "")
        elif tag == "option" and self._select and (not self._form["fields"][self._select] or "selected" in a):
            self._form["fields"][self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form["fields"].setdefault(a["name"], "")

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form["fields"][self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _post_forms(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return [f for f in parser.forms if f["method"] == "post" and f["fields"]]


@pytest.mark.django_db
@pytest.mark.parametrize(("template", "methods"), DASHBOARD, ids=[t for t, _ in DASHBOARD])
def test_dashboard_route_refuses_nul_in_query_and_forms(template, methods, org, admin_client, request):
    path = _seeded_path(template, request.getfixturevalue("world") if "{" in template else None)
    if path is None:
        pytest.skip(f"{template}: no seed for its path parameters (the path sweep covers it)")
    client = Client() if template.startswith(PUBLIC) else admin_client

    # The query string, with the route's own methods.
    for method in methods:
        for query in ("starting_after=%00", "ending_before=%00", "q=a%00b", "page=%00", "a%00b=1"):
            response = client.generic(method, f"{path}?{query}")
            assert response.status_code == 400, (method, path, query, response.status_code)

    # Every form of the page, NUL in each field in turn, then in all of them.
    if "GET" not in methods:
        return
    page = client.get(path, follow=True)  # /reset/<uid>/<token>/ moves on to its set-password page
    assert page.status_code < 500, (path, page.status_code)
    if page.status_code != 200 or "text/html" not in page.get("Content-Type", ""):
        return
    path = page.request["PATH_INFO"]
    for form in _post_forms(page.content.decode()):
        action = urljoin(path, form["action"]) if form["action"] else path
        fields = dict(form["fields"])
        if "logout" in action or not set(fields) - {"csrfmiddlewaretoken"}:
            continue  # signing out, or nothing but the CSRF token: no field to hold a NUL
        variants = [{**fields, name: _with_nul(value or "x")} for name, value in fields.items() if name != "csrfmiddlewaretoken"]
        variants.append({name: (value if name == "csrfmiddlewaretoken" else _with_nul(value or "x")) for name, value in fields.items()})
        before = _snapshot(org)
        for data in variants:
            response = client.post(action, data)
            assert response.status_code == 400, (action, data, response.status_code)
        assert _snapshot(org) == before, f"a refused post to {action} changed stored data"


@pytest.mark.django_db
def test_a_cookie_holding_nul_is_ignored(org, admin_client):
    """`"\\000"` in a quoted cookie unquotes to NUL: the session and the active
    organisation are then looked up in the database. Such a cookie counts as not sent."""
    from django.conf import settings

    from organisations.session import COOKIE

    anonymous = Client()
    assert anonymous.get("/login/", HTTP_COOKIE=f'{settings.SESSION_COOKIE_NAME}="\\000abcdefghij"').status_code == 200
    signed_in = "; ".join(f"{m.key}={m.coded_value}" for m in admin_client.cookies.values() if m.key != COOKIE)
    assert admin_client.get("/donors/", HTTP_COOKIE=f'{signed_in}; {COOKIE}="\\000"').status_code == 200
