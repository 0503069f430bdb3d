"""Query budgets of the API's hot paths (issue 15), through the real HTTP stack
with a real key, so they cannot creep back. Each row: a name, how to set the
world up, the request, its expected status and the most queries it may run
(the key lookup, the transaction's BEGIN/COMMIT and savepoints included)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import client_for, make_key
from tests.support.api import make_donor
from together.actors import Actor

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


def _whoami(org):
    """A READ key used once: remembered by this process, its last-used mark set."""
    client = client_for(make_key(org, "READ"))
    assert client.get("/api/v1/whoami").status_code == 200
    return client, "get", "/api/v1/whoami", None, 200


def _whoami_first_use(org):
    """A key never used: read once (key and organisation in one query), its use recorded."""
    return client_for(make_key(org, "READ")), "get", "/api/v1/whoami", None, 200


def _gifts(org, n: int = 12):
    from donations.services import donation_record

    donor = make_donor(org)
    return [donation_record(organisation=org, actor=SYSTEM, donor_id=donor.id, donation_type="MONETARY", amount_cents=1000 + i,
                            donation_date=dt.date(2026, 3, 1), payment_method="CHEQUE").id for i in range(n)]


def _donations_page(org):
    client, *_ = _whoami(org)
    _gifts(org)
    return client, "get", "/api/v1/donations?limit=100", None, 200


def _donations_deep_page(org):
    client, *_ = _whoami(org)
    _gifts(org)
    cursor = client.get("/api/v1/donations?limit=5").json()["data"][-1]["id"]
    return client, "get", f"/api/v1/donations?limit=100&starting_after={cursor}", None, 200


# (name, setup(org) -> (client, method, path, body, status), max queries)
BUDGETS = [
    ("GET /api/v1/whoami", _whoami, 0),
    ("GET /api/v1/whoami, the key's first use", _whoami_first_use, 2),
    ("GET /api/v1/donations?limit=100", _donations_page, 1),
    ("GET /api/v1/donations?limit=100&starting_after=...", _donations_deep_page, 1),
]


@pytest.mark.parametrize("name,setup,budget", BUDGETS, ids=[row[0] for row in BUDGETS])
def test_query_budget(org, settings, name, setup, budget):
    settings.RATE_LIMIT_ENABLED = False  # a Redis bucket, not a query: its own tests
    client, method, path, body, status = setup(org)
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, body, format="json")
    assert response.status_code == status, response.content[:500]
    listing = "\n".join(f"{i + 1:>2}. {q['sql'][:300]}" for i, q in enumerate(captured.captured_queries))
    assert len(captured) <= budget, f"{name}: {len(captured)} queries > {budget}:\n{listing}"
