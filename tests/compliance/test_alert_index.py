"""The near-cap lists (home page, alert history, obligations page) read the alerting
aggregates through their partial index (compliance 0004), not every aggregate of
the organisation: with the sequential scan off, as on a large table, each of their
statements on compliance_donoraggregate uses `aggregate_org_alerting`."""
from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from compliance.selectors import compliance_alerts, near_cap_history

pytestmark = pytest.mark.django_db


def _plans(call) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        call()
    statements = [q["sql"] for q in ctx.captured_queries if 'FROM "compliance_donoraggregate"' in q["sql"]
                  and "alert_level" in q["sql"]]
    assert statements, "no read of the alerting aggregates"
    plans = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in statements:
            cursor.execute("EXPLAIN " + sql)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


@pytest.mark.parametrize("page", ["home", "history"])
def test_the_near_cap_lists_read_the_alerting_index(org, page):
    today = timezone.localdate()
    call = {"home": lambda: compliance_alerts(organisation=org, today=today),
            "history": lambda: near_cap_history(organisation=org, today=today)}[page]
    for plan in _plans(call):
        assert "aggregate_org_alerting" in plan, plan
