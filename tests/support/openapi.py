"""The served OpenAPI document, walked the same way by every test that reads it."""
from __future__ import annotations

METHODS = ("get", "post", "patch", "put", "delete")


def served_document() -> dict:
    """GET /api/v1/openapi.json through the whole stack (no key needed)."""
    from django.test import Client

    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/") and "json" in response["Content-Type"]
    return response.json()


def operations(document: dict):
    """(path, method, operation) for every operation of the document."""
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]
