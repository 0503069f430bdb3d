"""Helpers for the Records tests: records made through the services (the same
path the API takes), and one assertion for the error envelope."""
from __future__ import annotations

import datetime as dt

from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations import services
from together.actors import Actor

SYSTEM = Actor.system("tests")


def make_campaign(organisation, **fields):
    fields.setdefault("name", "Spring appeal")
    return services.campaign_create(organisation=organisation, actor=SYSTEM, **fields)


def record(organisation, donor, **fields):
    fields.setdefault("donation_type", "MONETARY")
    fields.setdefault("amount_cents", 5000)
    fields.setdefault("donation_date", dt.date(2026, 3, 1))
    if fields["donation_type"] == "IN_KIND":
        fields.setdefault("in_kind_category", "GOODS")
        fields.setdefault("in_kind_description", "Printing")
    return services.donation_record(organisation=organisation, actor=SYSTEM, donor_id=donor.id, **fields)


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content[:500]
    return [item["id"] for item in response.json()["data"]]


def count_queries(call) -> int:
    with CaptureQueriesContext(connection) as ctx:
        call()
    return len(ctx.captured_queries)


def post(client, path: str, body: dict | None = None, **extra):
    return client.post(path, body, format="json", **extra)


def patch(client, path: str, body: dict, **extra):
    return client.patch(path, body, format="json", **extra)
