"""The served document states what the generated clients rely on; each check
names the operations that break it, so a failure reads as a to-do list.
(The client tests in this directory prove the same points the way integrators
meet them; these pin down every operation, not just the quickstart's.)"""
from __future__ import annotations

import inspect
import re

import pytest
from django.urls import resolve

from webhooks.events import ALL_EVENT_TYPES

pytestmark = pytest.mark.contract

METHODS = ("get", "post", "put", "patch", "delete")


def each_operation(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item, item[method]


def resolved(document, ref_or_obj):
    """Follow a local `$ref` (components/...), also through a one-member `allOf`
    (drf-spectacular's way of adding a description to a reference)."""
    while isinstance(ref_or_obj, dict):
        if "$ref" in ref_or_obj:
            node = document
            for part in ref_or_obj["$ref"].lstrip("#/").split("/"):
                node = node[part]
            ref_or_obj = node
        elif len(ref_or_obj.get("allOf", [])) == 1 and "properties" not in ref_or_obj:
            ref_or_obj = ref_or_obj["allOf"][0]
        else:
            break
    return ref_or_obj


def parameters(document, item, operation):
    params = {}
    for p in item.get("parameters", []) + operation.get("parameters", []):
        p = resolved(document, p)
        params[(p["in"], p["name"])] = p
    return params


def test_every_write_takes_a_per_call_idempotency_key(served_document):
    missing = []
    for method, path, item, operation in each_operation(served_document):
        if method not in ("post", "patch"):
            continue
        param = parameters(served_document, item, operation).get(("header", "Idempotency-Key"))
        if param is None or resolved(served_document, param.get("schema", {})).get("type") != "string" or param.get("required"):
            missing.append(f"{method.upper()} {path}")
    assert not missing, f"no optional string Idempotency-Key header parameter on: {missing}"


def test_no_operation_is_described_by_a_base_class_docstring(served_document):
    """drf-spectacular falls back to the view's docstring, inherited from a base
    class when the view has none: internal notes would become the reference."""
    leaks = []
    for method, path, _item, operation in each_operation(served_document):
        match = resolve(re.sub(r"\{[^}]+\}", "cm3abcde0001abc123xyz456", path))
        view = getattr(match.func, "cls", None) or getattr(match.func, "view_class", None)
        assert view is not None, f"{path}: no view class"
        description = operation.get("description") or ""
        if not description.strip():
            leaks.append(f"{method.upper()} {path}: no description")
        for base in view.__mro__[1:]:
            doc = inspect.getdoc(base)
            first = doc.strip().splitlines()[0].strip() if doc else ""
            if len(first) > 12 and first in description:
                leaks.append(f"{method.upper()} {path}: {base.__module__}.{base.__qualname__}: {first!r}")
    assert not leaks, "operations without a description of their own:\n" + "\n".join(leaks)


def test_operation_ids_are_unique_and_tags_declared(served_document):
    declared = [t["name"] for t in served_document.get("tags", [])]
    ids, problems = {}, []
    for method, path, _item, operation in each_operation(served_document):
        op_id = operation.get("operationId")
        if not op_id:
            problems.append(f"{method.upper()} {path}: no operationId")
        elif op_id in ids:
            problems.append(f"{method.upper()} {path}: operationId {op_id} also on {ids[op_id]}")
        else:
            ids[op_id] = f"{method.upper()} {path}"
        tags = operation.get("tags") or []
        if len(tags) != 1 or tags[0] not in declared:
            problems.append(f"{method.upper()} {path}: tags {tags} (one declared tag expected)")
        if not (operation.get("summary") or "").strip():
            problems.append(f"{method.upper()} {path}: no summary")
    assert not problems, "\n".join(problems)


def test_limit_is_bounded_like_the_server(served_document):
    wrong = []
    for method, path, item, operation in each_operation(served_document):
        limit = parameters(served_document, item, operation).get(("query", "limit"))
        if limit is not None:
            schema = resolved(served_document, limit.get("schema", {}))
            if (schema.get("type"), schema.get("minimum"), schema.get("maximum")) != ("integer", 1, 100):
                wrong.append(f"{method.upper()} {path}: {schema}")
    assert not wrong, "limit must be an integer from 1 to 100:\n" + "\n".join(wrong)


def test_response_headers_are_declared(served_document):
    """x-request-id on every response; RateLimit-* on every authenticated
    success; Idempotent-Replayed on every POST/PATCH success."""
    global_security = served_document.get("security", [])
    missing = []
    for method, path, _item, operation in each_operation(served_document):
        authenticated = bool(operation.get("security", global_security)) and any(
            bool(s) for s in operation.get("security", global_security)
        )
        for status, response in operation["responses"].items():
            headers = resolved(served_document, response).get("headers", {})
            wanted = ["x-request-id"]
            if status.startswith("2") and authenticated:
                wanted += ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"]
            if status.startswith("2") and method in ("post", "patch"):
                wanted.append("Idempotent-Replayed")
            if status == "429":
                wanted.append("Retry-After")
            absent = [h for h in wanted if h not in headers]
            if absent:
                missing.append(f"{method.upper()} {path} {status}: {absent}")
    assert not missing, f"{len(missing)} responses lack headers:\n" + "\n".join(missing[:40])


def test_donation_carries_jurisdiction(served_document):
    donation = served_document["components"]["schemas"]["Donation"]
    assert "jurisdiction" in donation.get("properties", {}), sorted(donation.get("properties", {}))
    assert "jurisdiction" in donation.get("required", [])


def test_error_detail_declares_existing_id(served_document):
    envelope = resolved(served_document, served_document["components"]["schemas"]["ErrorEnvelope"])
    detail = resolved(served_document, envelope["properties"]["error"])
    assert "existing_id" in detail.get("properties", {}), sorted(detail.get("properties", {}))


def has_properties(document, schema) -> bool:
    schema = resolved(document, schema)
    return bool(schema.get("properties")) or any(has_properties(document, m) for m in schema.get("allOf", []))


def test_every_webhook_event_type_has_a_typed_payload(served_document):
    webhooks = served_document.get("webhooks", {})
    problems = [f"{t}: not in webhooks" for t in ALL_EVENT_TYPES if t not in webhooks]
    for event_type, item in webhooks.items():
        body = resolved(served_document, (item.get("post") or {}).get("requestBody", {}))
        schema = resolved(served_document, body.get("content", {}).get("application/json", {}).get("schema", {}))
        data = resolved(served_document, schema.get("properties", {}).get("data", {}))
        variants = [resolved(served_document, v) for v in data.get("oneOf", data.get("anyOf", [data]))]
        if not variants or not all(has_properties(served_document, v) for v in variants):
            problems.append(f"{event_type}: data has no declared properties")
        type_schema = resolved(served_document, schema.get("properties", {}).get("type", {}))
        if type_schema.get("const") != event_type and type_schema.get("enum") != [event_type]:
            problems.append(f"{event_type}: type is not the constant {event_type!r}: {type_schema}")
    assert not problems, "\n".join(problems)
