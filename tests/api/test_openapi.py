"""The served OpenAPI document (/api/v1/openapi.json) and the reference UI
(/developer/api): the reference's document-level facts (api.md §4), every
route documented, every operation with its error responses."""
from __future__ import annotations

import re

import pytest

from tests.support.openapi import operations, served_document
from tests.support.routes import api_routes, normalise

pytestmark = pytest.mark.django_db

TAGS = [
    ("meta", "Health and identity checks"),
    ("organisations", "Organisation self-service"),
    ("donors", "Donor records"),
    ("donations", "Donation records"),
    ("forms", "Donation forms"),
    ("checkout-links", "One-off checkout links (/c/{code}) for pre-filled donations"),
    ("recommendation-sets", "Recommendation sets"),
    ("recipient-accounts", "Recipient-org Stripe accounts this organisation has linked via passphrase exchange. Use these as `recipient_org_account_link_id` when building recommendation-set allocations."),
    ("introductions", "Programmatically introduce prospective recipient organisations to Together. Sends an invite email + tracks the prospect through pending → viewed → accepted → linked. Listen for `introduction.linked` to learn when the resulting `recipient_org_account_link_id` is usable. Raise+ entitlement."),
    ("webhooks", "Outbound webhook events we POST to receiver endpoints. See /developer/webhooks for delivery semantics (signing, retries, idempotency)."),
]


@pytest.fixture(scope="module")
def document():
    return served_document()


def test_served_without_a_key(anon_client):
    assert anon_client.get("/api/v1/openapi.json").status_code == 200


def test_document_level_facts(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] == "Together API"
    assert document["info"]["version"] == "v1"
    assert document["servers"] == [{"url": "/", "description": "Current host"}]
    assert document["security"] == [{"apiKey": []}]
    schemes = document["components"]["securitySchemes"]
    assert list(schemes) == ["apiKey"]
    assert schemes["apiKey"]["type"] == "http"
    assert schemes["apiKey"]["scheme"] == "bearer"


# Ours, after the reference's ten: campaigns and reports are not donation records (issue 14).
OUR_TAGS = ["campaigns", "compliance", "reports", "tags", "recurring-plans", "imports", "custom-fields"]


def test_the_ten_tags_in_the_reference_order(document):
    tags = [(t["name"], t["description"]) for t in document["tags"]]
    assert tags[: len(TAGS)] == TAGS
    assert [name for name, _ in tags[len(TAGS):]] == OUR_TAGS
    assert all(description for _, description in tags)


def test_every_operation_uses_a_known_tag(document):
    names = {t["name"] for t in document["tags"]}
    for path, method, op in operations(document):
        assert op.get("tags"), (method, path)
        assert set(op["tags"]) <= names, (method, path, op["tags"])


def test_error_envelope_is_the_first_schema(document):
    schemas = document["components"]["schemas"]
    assert next(iter(schemas)) == "ErrorEnvelope"
    envelope = schemas["ErrorEnvelope"]
    assert envelope["example"]["error"]["type"] == "https://alltogether.giving/developer/api/errors/not_found"
    detail = envelope["properties"]["error"]
    if "$ref" in detail:
        detail = schemas[detail["$ref"].rsplit("/", 1)[-1]]
    for name in ("type", "code", "message", "request_id", "doc_url", "param"):
        assert name in detail["properties"], name
    assert set(detail["required"]) >= {"type", "code", "message", "request_id", "doc_url"}
    from together.exceptions import ERROR_CODES

    code = detail["properties"]["code"]
    code = code["allOf"][0] if "allOf" in code else code
    if "$ref" in code:
        code = schemas[code["$ref"].rsplit("/", 1)[-1]]
    assert set(code["enum"]) == set(ERROR_CODES)


def test_every_api_route_is_in_the_document(document):
    documented = {(m.upper(), normalise(p)) for p, m, _ in operations(document)}
    served = {r for r in api_routes() if r[1] != "/api/v1/openapi.json"}
    assert not served - documented, sorted(served - documented)
    assert not documented - served, sorted(documented - served)


def test_paths_carry_the_api_prefix(document):
    assert all(p.startswith("/api/v1/") for p in document["paths"])


def _refs_envelope(response: dict, document: dict) -> bool:
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref") == "#/components/schemas/ErrorEnvelope"


def test_every_operation_documents_its_error_responses(document):
    for path, method, op in operations(document):
        responses = op["responses"]
        where = f"{method.upper()} {path}"
        assert any(c.startswith("2") for c in responses), where
        errors = {c: r for c, r in responses.items() if c[0] in "45"}
        for code in ("400", "404", "405", "429", "500"):
            assert code in errors, (where, code)
        for code, response in errors.items():
            assert response.get("description"), (where, code)
            # Every 4xx and the 500 is the envelope (health's 503 is its own status body).
            if code[0] == "4" or code == "500":
                assert _refs_envelope(response, document), (where, code)
        secured = op.get("security", document["security"])
        if secured and secured != [{}]:
            assert "401" in errors and "403" in errors, where
        if method in ("post", "patch", "delete"):
            assert "409" in errors, where
        assert op.get("operationId"), where
        assert op.get("summary") or op.get("description"), where


def test_writes_document_their_request_bodies(document):
    for path, method, op in operations(document):
        if method in ("post", "patch") and "requestBody" in op:
            content = op["requestBody"]["content"]
            # The one upload: a file, as multipart/form-data (imports).
            expected = ["multipart/form-data"] if (method, path) == ("post", "/api/v1/imports") else ["application/json"]
            assert list(content) == expected, (method, path, list(content))


def test_health_needs_no_key(document):
    op = document["paths"]["/api/v1/health"]["get"]
    assert op["tags"] == ["meta"]
    assert op.get("security") in ([], [{}])


def test_whoami_documents_the_quickstart_shape(document):
    op = document["paths"]["/api/v1/whoami"]["get"]
    assert op["tags"] == ["meta"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    ref = schema["$ref"].rsplit("/", 1)[-1]
    props = document["components"]["schemas"][ref]["properties"]
    assert {"organisation_id", "scope"} <= set(props)


def test_list_operations_document_pagination(document):
    for path, method, op in operations(document):
        if method != "get":
            continue
        content = op["responses"].get("200", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = content["application/json"]["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        if set(schema.get("properties", {})) == {"data", "has_more"}:
            names = {p["name"] for p in op.get("parameters", [])}
            assert {"limit", "starting_after", "ending_before"} <= names, path


# --- the reference UI ----------------------------------------------------------------------

def swagger_ui_page(client) -> str:
    """The page and its start-up script, which it loads from a URL of its own (no inline script: CSP)."""
    response = client.get("/developer/api")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    script_url = re.search(r'<script src="(/developer/api\?[^"]*)"', html).group(1).replace("&amp;", "&")
    script = client.get(script_url)
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    return html + script.content.decode()


def test_swagger_ui_is_served_by_the_app_without_a_cdn(anon_client):
    html = swagger_ui_page(anon_client)
    assert "swagger-ui" in html
    assert "/api/v1/openapi.json" in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets), assets
    assert any(a.endswith("swagger-ui.css") for a in assets), assets
    for asset in assets:
        assert not re.match(r"^(https?:)?//", asset), f"external asset {asset}"
    for needle in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "googleapis"):
        assert needle not in html
    for asset in assets:
        if asset.startswith("/static/"):
            fetched = anon_client.get(asset)
            assert fetched.status_code == 200, asset
            body = b"".join(fetched.streaming_content) if fetched.streaming else fetched.content
            assert len(body) > 100, asset


def test_swagger_ui_can_authorize_and_try(anon_client):
    """In Chromium, Authorize then Execute on whoami: tests/hardening/test_deploy_and_csp.py
    (test_browser_swagger_ui_authorize_and_try_it_out, under the production policy, with
    no request leaving the site)."""
    html = swagger_ui_page(anon_client)
    assert '"persistAuthorization": true' in html
    assert '"tryItOutEnabled": true' in html
