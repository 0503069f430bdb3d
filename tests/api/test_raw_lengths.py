"""A string's maxLength counts the characters as sent, before trimming, as the
OpenAPI document says (schemathesis found a padded email over 254 accepted)."""
from __future__ import annotations

import pytest

from tests.conftest import client_for, make_key
from tests.support.api import assert_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field,limit,value", [
    ("email", 254, "a@example.org"),
    ("first_name", 100, "Ann"),
    ("notes", 10000, "x"),
])
def test_padding_counts_toward_the_limit(org, field, limit, value):
    client = client_for(make_key(org, "WRITE"))
    padded = " " * (limit - len(value) + 1) + value
    assert_error(client.post("/api/v1/donors", {"last_name": "Lee", field: padded}, format="json"), 400, "validation_failed", field)
    fits = " " * (limit - len(value)) + value
    response = client.post("/api/v1/donors", {"last_name": "Lee", field: fits}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()[field] == value
