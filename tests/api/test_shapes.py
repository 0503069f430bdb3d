"""One spelling of each shape (issue 20, point 7).

Every serializer linked with `@shape(...)` to the tuple its renderer or service
uses declares exactly those fields; and what the API sends for each resource
is exactly what the served OpenAPI document declares for it."""
from __future__ import annotations

import pytest

from tests.support.api import make_donor, seed_campaign, seed_donation
from tests.support.openapi import served_document
from together.api.fields import SHAPES


def _apps_loaded():
    import django.urls

    django.urls.get_resolver().url_patterns  # noqa: B018 - imports every API module, so their @shape run


def test_every_linked_serializer_declares_exactly_its_renderers_keys():
    _apps_loaded()
    assert {cls.__name__ for cls, _ in SHAPES} >= {"DonorSerializer", "DonorInputBase", "DonationSerializer", "CampaignSerializer"}
    for cls, names in SHAPES:
        declared = set(cls().fields)
        assert declared == set(names), (cls.__name__, "documented, not rendered:", declared - set(names),
                                        "rendered, not documented:", set(names) - declared)
        assert len(names) == len(set(names)), cls.__name__


def test_the_shape_check_sees_a_difference():
    from rest_framework import serializers

    class Two(serializers.Serializer):
        a = serializers.CharField()
        b = serializers.CharField()

    assert set(Two().fields) != {"a"}


@pytest.fixture(scope="module")
def document(django_db_blocker):
    with django_db_blocker.unblock():
        return served_document()


def _detail_routes():
    """Every `GET /api/v1/<resources>/{id}` of the route matrix: one per resource."""
    from tests.api.test_route_matrix import ROUTES

    return [row for row in ROUTES if row.method == "GET" and row.path.endswith("}") and row.status == 200]


def _component(document, path: str) -> str:
    ref = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def _documented_path(document, path: str) -> str:
    """The document's spelling of a matrix path (`{donor}` there is `{id}` here)."""
    import re

    pattern = re.sub(r"\\{[^}]+\\}", "{[^}]+}", re.escape(path))
    found = [p for p in document["paths"] if re.fullmatch(pattern, p)]
    assert len(found) == 1, (path, found)
    return found[0]


def test_every_resource_is_covered():
    paths = {row.path.split("/{")[0] for row in _detail_routes()}
    assert {"/api/v1/donors", "/api/v1/donations", "/api/v1/campaigns", "/api/v1/events", "/api/v1/webhook-endpoints",
            "/api/v1/revenue-codes", "/api/v1/recommendation-sets"} <= paths


@pytest.mark.django_db
@pytest.mark.parametrize("row", _detail_routes(), ids=lambda row: row.path)
def test_the_rendered_keys_are_the_documented_properties(document, read_client, write_client, org, row):
    from tests.api.test_route_matrix import Seeds

    ids = Seeds(org)
    client = write_client if row.scope == "WRITE" else read_client  # imports are read with a WRITE key
    response = client.get(row.path.format_map(ids))
    assert response.status_code == 200, response.content[:300]
    schema = document["components"]["schemas"][_component(document, _documented_path(document, row.path))]
    declared = set(schema["properties"])
    sent = set(response.json())
    # Expandable relations are declared but sent only on request (expand[]).
    assert sent <= declared, ("sent, not documented:", sent - declared)
    assert declared - sent <= {"donor", "campaign"}, ("documented, not sent:", declared - sent)
