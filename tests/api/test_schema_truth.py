"""Issue 14: the served OpenAPI document is the whole truth, for every operation,
parameter, header, body and event; generically, so that an endpoint or an event
type added later is held to the same rules. Where a rule is about what the
server really does (a rendered object's keys, an event's payload, an error's
fields, a refused filter), the test asks the server."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.support.api import assert_error, seed_campaign, seed_donation, make_donor
from tests.support.openapi import operations, served_document

pytestmark = pytest.mark.django_db

DOC_URI = "urn:together:openapi"


@pytest.fixture(scope="module")
def document():
    return served_document()


def component(document, ref_or_schema):
    if isinstance(ref_or_schema, dict) and "$ref" not in ref_or_schema and len(ref_or_schema.get("allOf", [])) == 1:
        ref_or_schema = ref_or_schema["allOf"][0]  # a $ref with a description beside it
    ref = ref_or_schema["$ref"] if isinstance(ref_or_schema, dict) else ref_or_schema
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def _absolute(node):
    """`node` with every `#/...` reference made absolute (DOC_URI): new dicts and lists."""
    if isinstance(node, dict):
        return {k: (DOC_URI + v if k == "$ref" and isinstance(v, str) and v.startswith("#/") else _absolute(v))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v) for v in node]
    return node


_registries: dict[int, tuple[dict, Registry]] = {}


def _registry(document) -> Registry:
    """The document as a reference registry, built once per document (rebuilt for every
    example, it was 27 s of this file's 47)."""
    cached = _registries.get(id(document))
    if cached is None or cached[0] is not document:
        cached = (document, Registry().with_resource(
            DOC_URI, Resource.from_contents(_absolute(document), default_specification=DRAFT202012)))
        _registries[id(document)] = cached
    return cached[1]


def validator_for(document, schema):
    """A JSON Schema 2020-12 validator whose `#/components/...` refs resolve in the document."""
    return Draft202012Validator(_absolute(schema), registry=_registry(document))


def assert_valid(document, schema, instance, where):
    errors = sorted(validator_for(document, schema).iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, (where, [f"{list(e.path)}: {e.message}" for e in errors[:5]])


def json_body(op):
    return op.get("requestBody", {}).get("content", {}).get("application/json")


# --- 1. Idempotency-Key ---------------------------------------------------------------------

def test_every_post_and_patch_declares_idempotency_key(document):
    writes = [(p, m, op) for p, m, op in operations(document) if m in ("post", "patch")]
    assert len(writes) >= 27
    for path, method, op in writes:
        params = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(params) == 1, (method, path)
        assert params[0]["schema"]["type"] == "string" and params[0]["schema"]["maxLength"] == 255, (method, path)
        assert params[0]["required"] is False
        assert params[0].get("description")


def test_an_idempotency_key_the_schema_allows_is_accepted(write_client, org, document):
    """The declared header is the one the server honours: a replay answers the stored body."""
    example = next(p for p in document["paths"]["/api/v1/donors"]["post"]["parameters"] if p["name"] == "Idempotency-Key")["example"]
    first = write_client.post("/api/v1/donors", {"email": "idem@example.org"}, format="json", HTTP_IDEMPOTENCY_KEY=example)
    again = write_client.post("/api/v1/donors", {"email": "idem@example.org"}, format="json", HTTP_IDEMPOTENCY_KEY=example)
    assert first.status_code == 201 and again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


# --- 2/3. descriptions ----------------------------------------------------------------------

def test_every_operation_has_a_real_description_and_summary(document):
    from together.api.schema import base_docstrings

    internal = base_docstrings()
    fragments = [doc.split("\n")[0] for doc in internal]
    for path, method, op in operations(document):
        where = f"{method.upper()} {path}"
        description = op.get("description", "")
        assert op.get("summary"), where
        assert len(description) >= 40, (where, description)
        assert description not in internal, where
        for fragment in fragments:
            assert fragment not in description, (where, fragment)
        assert "Subclasses set" not in description, where
        # It says which key it needs.
        assert any(t in description for t in ("WRITE key", "READ key", "Any key", "No key needed")), where


def test_nothing_in_the_document_is_left_undescribed(document):
    for path, method, op in operations(document):
        where = f"{method.upper()} {path}"
        for param in op.get("parameters", []):
            assert param.get("description"), (where, param["name"])
        for code, response in op["responses"].items():
            assert response.get("description"), (where, code)
    for name, schema in document["components"]["schemas"].items():
        for prop, sub in schema.get("properties", {}).items():
            assert sub.get("description"), (name, prop)
    for name, header in document["components"]["headers"].items():
        assert header.get("description"), name



def test_a_shared_property_name_is_described_for_its_own_object(document):
    """`data` and `error` mean different things in a page, an event, a position, an
    error and a webhook attempt; each object gets its own wording."""
    schemas = document["components"]["schemas"]
    assert "attempt" not in schemas["ErrorEnvelope"]["properties"]["error"]["description"]
    for name, schema in schemas.items():
        data = schema.get("properties", {}).get("data", {})
        if "description" in data and not name.endswith("List"):
            assert "page" not in data["description"], name

# --- 4. parameters --------------------------------------------------------------------------

def test_query_parameters_say_what_the_server_accepts(document):
    for path, method, op in operations(document):
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            schema = param["schema"]
            where = (method, path, param["name"])
            assert "null" not in str(schema.get("type")), where
            if param["name"] == "limit":
                assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 100), where
            if schema.get("type") == "string" and "enum" not in schema and "format" not in schema and "pattern" not in schema:
                assert schema.get("minLength", 0) >= 1, where  # an empty value is a 400


def test_an_empty_string_filter_is_refused_as_the_schema_says(read_client):
    response = read_client.get("/api/v1/donors?email=")
    assert_error(response, 400, "invalid_request", param="email")


def test_report_filters_are_typed_like_the_list_endpoints(document):
    def params(path):
        return {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}

    compared = 0
    for path, item in document["paths"].items():
        if not path.startswith("/api/v1/reports/"):
            continue
        # Each report filters with the FilterSet of its list endpoint.
        listed = params("/api/v1/campaigns" if path.endswith("campaign-summary") else "/api/v1/donations")
        for param in item["get"]["parameters"]:
            if param["name"] in listed and param["name"] not in ("from", "to"):
                assert param["schema"] == listed[param["name"]], (path, param["name"])
                compared += 1
    assert compared >= 5
    jurisdiction = next(p for p in document["paths"]["/api/v1/reports/disclosure-return"]["get"]["parameters"] if p["name"] == "jurisdiction")
    assert set(jurisdiction["schema"]["enum"]) == {"FEDERAL", "NSW", "VIC", "QLD", "SA", "WA", "TAS", "ACT", "NT"}


def test_nested_donation_lists_do_not_offer_the_contradictory_filter(document, read_client, org):
    for path, name in (("/api/v1/donors/{id}/donations", "donor_id"), ("/api/v1/campaigns/{id}/donations", "campaign_id")):
        names = {p["name"] for p in document["paths"][path]["get"]["parameters"]}
        assert name not in names and "status" in names, path
    donor, other = make_donor(org), make_donor(org)
    campaign = seed_campaign(org)
    seed_donation(org, donor, campaign_id=campaign.id)
    assert_error(read_client.get(f"/api/v1/donors/{donor.id}/donations?donor_id={other.id}"), 400, "invalid_request", param="donor_id")
    assert_error(read_client.get(f"/api/v1/campaigns/{campaign.id}/donations?campaign_id=x"), 400, "invalid_request", param="campaign_id")
    assert len(read_client.get(f"/api/v1/donors/{donor.id}/donations").json()["data"]) == 1


# --- 5. the donation body -------------------------------------------------------------------

def test_donation_create_body_is_a_oneof_on_donation_type(document, write_client, org):
    op = document["paths"]["/api/v1/donations"]["post"]
    schema = component(document, json_body(op)["schema"])
    assert schema["discriminator"]["propertyName"] == "donation_type"
    assert set(schema["discriminator"]["mapping"]) == {"MONETARY", "IN_KIND"}
    in_kind = component(document, schema["discriminator"]["mapping"]["IN_KIND"])
    monetary = component(document, schema["discriminator"]["mapping"]["MONETARY"])
    assert {"in_kind_category", "in_kind_description"} <= set(in_kind["required"])
    assert "payment_method" not in in_kind["properties"]
    assert not {p for p in monetary["properties"] if p.startswith("in_kind")}
    donor = make_donor(org)
    body = {"$ref": json_body(op)["schema"]["$ref"]}
    refused = [
        {"donor_id": donor.id, "donation_type": "IN_KIND", "amount_cents": 100, "donation_date": "2026-03-01",
         "in_kind_description": "Printing"},
        {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 100, "donation_date": "2026-03-01",
         "in_kind_category": "SERVICES"},
    ]
    for payload in refused:
        assert list(validator_for(document, body).iter_errors(payload)), payload  # the types refuse it...
        assert write_client.post("/api/v1/donations", payload, format="json").status_code == 400  # ...as the server does
    accepted = {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 100, "donation_date": "2026-03-01"}
    assert_valid(document, body, accepted, "monetary")
    assert write_client.post("/api/v1/donations", accepted, format="json").status_code == 201


def test_request_bodies_are_required_and_closed(document):
    for path, method, op in operations(document):
        if "requestBody" not in op:
            continue
        assert op["requestBody"]["required"] is True, (method, path)
        body = json_body(op) or op["requestBody"]["content"].get("multipart/form-data")  # the imports upload
        schema = body["schema"]
        target = component(document, schema) if "$ref" in schema or "allOf" in schema else schema
        for variant in [component(document, v) for v in target.get("oneOf", [])] or [target]:
            assert variant.get("additionalProperties") is False, (method, path)


# --- 6. response headers --------------------------------------------------------------------

def test_every_response_declares_its_headers(document):
    for path, method, op in operations(document):
        keyed = op.get("security", document["security"]) not in ([], [{}])
        for code, response in op["responses"].items():
            where = (method, path, code)
            headers = response.get("headers", {})
            assert "x-request-id" in headers, where
            if code in ("429", "503"):
                assert "Retry-After" in headers, where
            if method in ("post", "patch") and code.startswith("2"):
                assert "Idempotent-Replayed" in headers, where
            if keyed and code.startswith("2"):
                assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers), where
    for name in ("XRequestId", "RateLimitLimit", "RateLimitRemaining", "RateLimitReset", "RetryAfter", "IdempotentReplayed"):
        assert name in document["components"]["headers"], name


def test_declared_headers_are_sent(read_client, document):
    response = read_client.get("/api/v1/donors")
    assert re.match(document["components"]["headers"]["XRequestId"]["schema"]["pattern"], response["x-request-id"])
    for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"):
        assert int(response[name]) >= 0, name


# --- 7. events ------------------------------------------------------------------------------

def reference_event_types() -> set[str]:
    """The event types of the public reference (webhooks.md), when it is at hand."""
    path = Path(__file__).resolve().parents[3] / "shared" / "reference" / "webhooks.md"  # beside the repository
    if not path.exists():
        return {"donor.created", "introduction.created", "introduction.viewed", "introduction.accepted",
                "introduction.linked", "introduction.expired", "introduction.revoked", "recipient_org_account_link.created"}
    section = path.read_text().split("## Event types known", 1)[1].split("##", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", section, re.M))


def test_every_event_type_has_a_webhook_with_a_typed_payload(document):
    from webhooks.events import ALL_EVENT_TYPES

    webhooks = document["webhooks"]
    expected = reference_event_types() | set(ALL_EVENT_TYPES)
    assert len(expected) >= 27
    assert set(webhooks) == expected
    for event_type, item in webhooks.items():
        op = item["post"]
        assert op["operationId"] and op["description"] and op["tags"] == ["webhooks"], event_type
        assert {p["name"] for p in op["parameters"]} >= {"webhook-id", "webhook-timestamp", "webhook-signature"}
        event = component(document, op["requestBody"]["content"]["application/json"]["schema"])
        assert event["properties"]["type"]["enum"] == [event_type]
        assert set(event["required"]) == {"type", "occurred_at", "organisation_id", "data"}
        payload = component(document, event["properties"]["data"])
        assert payload.get("properties") or payload.get("allOf"), event_type
    data = document["components"]["schemas"]["Event"]["properties"]["data"]
    assert data.get("anyOf"), "Event.data is typed"


def test_events_the_server_records_match_their_declared_payloads(write_client, org, document):
    """Make events through the API, then check each one's `data` against the webhook payload of its type."""
    donor = write_client.post("/api/v1/donors", {"email": "ev@example.org", "first_name": "Eve"}, format="json").json()
    write_client.patch(f"/api/v1/donors/{donor['id']}", {"last_name": "Ng"}, format="json")
    campaign = write_client.post("/api/v1/campaigns", {"name": "Events"}, format="json").json()
    donation = write_client.post("/api/v1/donations", {
        "donor_id": donor["id"], "donation_type": "MONETARY", "amount_cents": 500, "donation_date": "2026-03-01",
        "campaign_id": campaign["id"]}, format="json").json()
    write_client.post(f"/api/v1/donations/{donation['id']}/void", {"reason": "Twice"}, format="json")
    write_client.post(f"/api/v1/campaigns/{campaign['id']}/archive", format="json")
    spare = write_client.post("/api/v1/donors", {"email": "gone@example.org"}, format="json").json()
    write_client.delete(f"/api/v1/donors/{spare['id']}")
    events = write_client.get("/api/v1/events?limit=100").json()["data"]
    seen = set()
    for event in events:
        webhook = document["webhooks"][event["type"]]["post"]
        schema = webhook["requestBody"]["content"]["application/json"]["schema"]
        body = {k: event[k] for k in ("type", "occurred_at", "organisation_id", "data")}
        assert_valid(document, schema, body, event["type"])
        assert_valid(document, {"$ref": "#/components/schemas/Event"}, event, event["type"])
        seen.add(event["type"])
    assert {"donor.created", "donor.updated", "donor.deleted", "campaign.created", "campaign.archived",
            "donation.created", "donation.voided"} <= seen, seen


# --- 8. errors ------------------------------------------------------------------------------

def test_error_detail_declares_every_field_the_server_sends(document, write_client):
    detail = document["components"]["schemas"]["ErrorDetail"]["properties"]
    assert {"existing_id", "reason", "remaining_cents", "param"} <= set(detail)
    first = write_client.post("/api/v1/donors", {"email": "dup@example.org"}, format="json").json()
    conflict = write_client.post("/api/v1/donors", {"email": "dup@example.org"}, format="json")
    error = assert_error(conflict, 409, "conflict", param="email")
    assert error["existing_id"] == first["id"]
    assert set(error) <= set(detail)
    assert_valid(document, {"$ref": "#/components/schemas/ErrorEnvelope"}, conflict.json(), "409")


# --- 9. names, tags, examples ---------------------------------------------------------------

def test_list_operations_are_named_list(document):
    for path, method, op in operations(document):
        schema = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        is_list = "$ref" in schema and set(component(document, schema).get("properties", {})) == {"data", "has_more"}
        if is_list and method == "get":
            assert op["operationId"].endswith("_list"), (path, op["operationId"])
        assert not (is_list and op["operationId"].endswith("_retrieve")), path
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_tags_follow_the_resource(document):
    for path, method, op in operations(document):
        if path.startswith("/api/v1/campaigns"):
            assert op["tags"] == ["campaigns"], path
        if path.startswith("/api/v1/reports/"):
            assert op["tags"] == ["reports"], path
        if path.startswith("/api/v1/donations"):
            assert op["tags"] == ["donations"], path


QUICKSTART_DONATION = {
    "donor_id": "cm3abcde0001abc123xyz456",
    "donation_type": "IN_KIND",
    "amount_cents": 420000,
    "donation_date": "2027-03-15",
    "in_kind_category": "SERVICES",
    "in_kind_description": "Pro bono legal advice on candidate eligibility",
}
QUICKSTART_SET = {
    "name": "Climate distribution - March 2026",
    "amount_mode": "FIXED",
    "allocations": [{"recipient_org_account_link_id": "cm3lnk...", "amount_cents": 25000}],
}


def test_every_body_and_json_response_has_valid_examples(document):
    checked = 0
    for path, method, op in operations(document):
        media = []
        if json_body(op):
            media.append(("request", json_body(op)))
        for code, response in op["responses"].items():
            content = response.get("content", {}).get("application/json")
            if content and (code.startswith("2") or "ErrorEnvelope" not in str(content["schema"])):
                media.append((code, content))
        for what, content in media:
            examples = content.get("examples") or {}
            assert examples, (method, path, what)
            for name, example in examples.items():
                assert example.get("summary"), (method, path, what, name)
                assert_valid(document, content["schema"], example["value"], (method, path, what, name))
                checked += 1
    assert checked >= 75
    for event_type, item in document["webhooks"].items():
        content = item["post"]["requestBody"]["content"]["application/json"]
        for example in content["examples"].values():
            assert_valid(document, content["schema"], example["value"], event_type)
            assert example["value"]["type"] == event_type


def test_the_quickstart_requests_are_examples_verbatim(document):
    def values(path):
        return [e["value"] for e in json_body(document["paths"][path]["post"])["examples"].values()]

    assert QUICKSTART_DONATION in values("/api/v1/donations")
    assert QUICKSTART_SET in values("/api/v1/recommendation-sets")
    donors = {p["name"]: p.get("example") for p in document["paths"]["/api/v1/donors"]["get"]["parameters"]}
    assert (donors["limit"], donors["email"], donors["created_at[gte]"]) == (5, "alice@example.com", "2026-01-01")


# --- the declared objects are the rendered ones -----------------------------------------------

@pytest.mark.parametrize("path,component_name", [
    ("/api/v1/donations/{donation}", "Donation"),
    ("/api/v1/donors/{donor}", "Donor"),
    ("/api/v1/campaigns/{campaign}", "Campaign"),
    ("/api/v1/campaigns/{campaign}/sources", "CampaignSources"),
])
def test_declared_properties_equal_the_rendered_keys(document, read_client, org, path, component_name):
    donor = make_donor(org)
    campaign = seed_campaign(org)
    donation = seed_donation(org, donor, campaign_id=campaign.id)
    url = path.format(donation=donation.id, donor=donor.id, campaign=campaign.id)
    body = read_client.get(url).json()
    schema = document["components"]["schemas"][component_name]
    declared = set(schema["properties"])
    expandable = {"donor", "campaign"} if component_name == "Donation" else set()
    assert set(body) == declared - expandable, (set(body) ^ (declared - expandable))
    assert_valid(document, {"$ref": f"#/components/schemas/{component_name}"}, body, component_name)
    if component_name == "Donation":
        assert set(schema["required"]) == declared - expandable
        expanded = read_client.get(url + "?expand[]=donor&expand[]=campaign").json()
        assert set(expanded) == declared
        assert_valid(document, {"$ref": "#/components/schemas/Donation"}, expanded, "expanded")


def test_base_docstrings_are_found(document):
    """The guard above compares with the real docstrings of the machinery."""
    from together.api.schema import base_docstrings
    from together.api.views import OrganisationViewSet

    assert inspect.getdoc(OrganisationViewSet) in base_docstrings()


# --- /developer/api renders them -------------------------------------------------------------

@pytest.mark.slow
def test_reference_ui_renders_descriptions_and_examples(transactional_db, live_server, tmp_path):
    import os

    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            page.goto(live_server.url + "/developer/api")
            operation = page.locator("#operations-donations-donations_create")
            operation.locator(".opblock-summary").click()
            description = operation.locator(".opblock-description-wrapper").first
            description.wait_for(timeout=15000)
            assert "Records an offline monetary gift" in description.inner_text()
            body = operation.locator(".opblock-section-request-body")
            body.locator("text=Pro bono legal advice on candidate eligibility").first.wait_for(timeout=15000)
            assert "Idempotency-Key" in operation.inner_text()
            operation.screenshot(path=str(tmp_path / "developer-api.png"))
            if os.environ.get("SCREENSHOT_DIR"):  # to look at it
                operation.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "developer-api.png"))
            responses = operation.locator(".responses-wrapper")
            responses.locator("text=cm3don0001abc123xyz45678").first.wait_for(timeout=15000)
            responses.locator("text=x-request-id").first.wait_for(timeout=15000)
            listing = page.locator("#operations-donors-donors_list")
            listing.locator(".opblock-summary").click()
            listing.locator(".opblock-description-wrapper").first.wait_for(timeout=15000)
            assert "newest first" in listing.inner_text()
        finally:
            browser.close()


def test_every_error_response_shows_the_codes_of_its_own_status(document):
    """A 429's example is `rate_limited`, not a copied `not_found`."""
    from together.exceptions import ERROR_CODES

    for path, method, op in operations(document):
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/json", {})
            if "ErrorEnvelope" not in str(media.get("schema")):
                continue
            examples = media.get("examples")
            assert examples, (method, path, status)
            for example in examples.values():
                code = example["value"]["error"]["code"]
                assert str(ERROR_CODES[code][0]) == status, (method, path, status, code)
