"""positive_data_acceptance, made deterministic for the query parameters of
every list and report: the extremes the document allows are sent one at a
time and must be accepted (an integer at its minimum and maximum, or 0 and
2**31 when the document gives no bound; a plain string at its shortest allowed
length: the empty string unless minLength or the pattern forbids it; a
vertical tab unless the pattern forbids it). A bound the server
enforces but the document does not state fails here on every run, not only
when the fuzzer happens to draw it."""
from __future__ import annotations

import re

import pytest

from tests.conftest import client_for, make_key, make_org

pytestmark = pytest.mark.contract

CURSORS = {"starting_after", "ending_before"}  # an id of the list: its existence is data, not schema


def resolved(document, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def allows(schema: dict, text: str) -> bool:
    if len(text) < schema.get("minLength", 0) or len(text) > schema.get("maxLength", len(text)):
        return False
    return "pattern" not in schema or re.search(schema["pattern"], text) is not None


def extremes(schema: dict) -> list:
    kind = schema.get("type")
    if "enum" in schema or "const" in schema or "format" in schema:
        return []
    if kind == "integer":
        low = schema.get("minimum", 0)
        high = schema.get("maximum", 2**31)
        return [low, high]
    if kind == "string":
        # The shortest value the schema allows ("" unless minLength or the pattern
        # forbids it), and a control character if the pattern lets one through.
        short = "x" * max(1, schema.get("minLength", 0))
        shortest = [text for text in ("", short) if allows(schema, text)][:1]
        return shortest + [text for text in (short + "\x0b",) if allows(schema, text)]
    return []


def test_every_query_value_the_document_allows_is_accepted(served_document, db, settings):
    settings.RATE_LIMIT_BURST = 1_000_000
    settings.RATE_LIMIT_RATE = 1_000_000
    client = client_for(make_key(make_org("Bounds"), "WRITE"))
    refused = []
    for path, item in served_document["paths"].items():
        operation = item.get("get")
        if operation is None or "{" in path:
            continue
        for param in operation.get("parameters", []):
            param = resolved(served_document, param)
            if param["in"] != "query" or param["name"] in CURSORS or param.get("required"):
                continue
            for value in extremes(resolved(served_document, param.get("schema", {}))):
                response = client.get(path, {param["name"]: value})
                if response.status_code >= 400:
                    refused.append(f"GET {path}?{param['name']}={value!r}: {response.status_code} {response.content[:200]!r}")
    assert not refused, "values the document allows, refused by the server:\n" + "\n".join(refused)
