"""Query budgets of the API's hot paths (issue 15), through the real HTTP stack
with a real key, so they cannot creep back. Each row: a name, how to set the
world up, the request, its expected status and the most queries it may run
(the key lookup, the transaction's BEGIN/COMMIT and savepoints included)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from compliance.services import revenue_code_create
from donations.models import Donation
from organisations.models import AuditEntry
from tests.conftest import client_for, make_key
from tests.support.api import make_donor
from together.actors import Actor
from webhooks.models import Event, WebhookDelivery, WebhookEndpoint

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_key_generation")]

SYSTEM = Actor.system("tests")


def _create_with_compliance(org):
    """A WRITE key, a FEDERAL revenue code (a cap and a threshold in force from
    2027), a donor with an earlier gift under it, and an endpoint taking every
    event: the create checks the cap, rebuilds the aggregate, writes the audit
    entry, the event and a delivery."""
    revenue_code_create(organisation=org, actor=SYSTEM, code="FED-1", jurisdiction="FEDERAL")
    WebhookEndpoint.objects.create(organisation=org, url="https://hooks.example.com/in", enabled_events=["*"], secret="wh_x")
    donor = make_donor(org)
    client = client_for(make_key(org, "WRITE"))
    body = {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 120_000, "donation_date": "2027-03-01",
            "payment_method": "CHEQUE", "revenue_code": "FED-1", "reference": "  chq 1  ",
            "metadata": {"campaign_channel": "post", "z": "1", "aa": "2", "é": "3"}}
    assert client.post("/api/v1/donations", body, format="json").status_code == 201  # warm: the key's last-used marker
    return client, "post", "/api/v1/donations", body | {"donation_date": "2027-03-02"}, 201


def _create_below_threshold(org):
    """As _create_with_compliance, a gift under the disclosure threshold (no obligation to
    change): its writes go as one statement (together.db.write_batch)."""
    client, method, path, body, status = _create_with_compliance(org)
    donor = make_donor(org)
    small = body | {"donor_id": donor.id, "amount_cents": 5_000}
    assert client.post(path, small | {"donation_date": "2027-03-01"}, format="json").status_code == 201  # its aggregate
    return client, method, path, small, status


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
    ("POST /api/v1/donations, compliance on", _create_with_compliance, 10),
    # Lock, ledger, rules, the writes as one statement; the test's savepoint and its release.
    ("POST /api/v1/donations, compliance on, under the threshold", _create_below_threshold, 6),
]


@pytest.mark.parametrize("name,setup,budget", BUDGETS, ids=[row[0] for row in BUDGETS])
def test_query_budget(org, settings, name, setup, budget):
    settings.RATE_LIMIT_ENABLED = False  # a Redis bucket, not a query: its own tests
    client, method, path, body, status = setup(org)
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(path, body, format="json")
    assert response.status_code == status, response.content[:500]
    queries = [q["sql"] for q in captured.captured_queries]
    listing = "\n".join(f"{i + 1:>2}. {sql[:300]}" for i, sql in enumerate(queries))
    # Everything the request runs counts, the dashboard's rollup deltas (donations.rollups) included.
    assert len(queries) <= budget, f"{name}: {len(queries)} queries > {budget}:\n{listing}"


def test_create_under_budget_keeps_its_effects(org, settings):
    """The lean create still writes everything the single path writes: the gift,
    its audit entry, the event with the rendered gift, a delivery per endpoint,
    the aggregate."""
    settings.RATE_LIMIT_ENABLED = False
    client, method, path, body, _ = _create_with_compliance(org)
    response = client.post(path, body, format="json")
    gift = response.json()
    # Rendered from the instance, not re-read: byte for byte what a re-read renders (jsonb's key order included).
    from donations.selectors import donation_snapshot
    from together.api.renderers import dumps

    assert response.content == dumps(donation_snapshot(donation_id=gift["id"]))
    assert Donation.objects.filter(pk=gift["id"], jurisdiction="FEDERAL").exists()
    entry = AuditEntry.objects.get(organisation=org, action="donation.created", object_id=gift["id"])
    assert entry.after == gift
    event = Event.objects.get(organisation=org, type="donation.created", data__id=gift["id"])
    assert event.data == gift
    assert WebhookDelivery.objects.filter(event=event).count() == 1
    from compliance.models import DonorAggregate

    aggregate = DonorAggregate.objects.get(donor_id=gift["donor_id"], jurisdiction="FEDERAL")
    assert (aggregate.total_cents, aggregate.donations_count) == (240_000, 2)


def test_a_busy_connection_runs_the_creates_own_statements_prepared(org, settings):
    """After a few creates on one connection, PostgreSQL runs the create's own
    statements (together/db.py) prepared: parsed and planned once. They still
    count, and the query log still shows each one's text."""
    settings.RATE_LIMIT_ENABLED = False
    client, method, path, body, _ = _create_with_compliance(org)
    threshold = connection.connection.prepare_threshold
    assert threshold == settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 5
    # The first gift of the year creates the donor's aggregate and the disclosure obligation, the
    # next ones change them: the writes' statements (a text for each shape) have run `threshold`
    # times after these.
    for day in range(2, 3 + 2 * threshold):
        assert client.post(path, body | {"donation_date": f"2027-03-{day:02d}"}, format="json").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert client.post(path, body | {"donation_date": "2027-03-20"}, format="json").status_code == 201
    assert all(q["sql"] for q in captured.captured_queries)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    for table in ("donations_donor", "compliance_compliancesettings", "compliance_donoraggregate",
                  "donations_dailyrollup", "organisations_auditentry", "donations_donation"):
        assert any(table in statement for statement in prepared), f"no prepared statement on {table}: {prepared}"
    # The writes went together (together.db.write_batch): the gift, the donor's totals, the
    # rollup, the aggregate, the audit entry with its event, as two statements, the obligation's
    # update (the ORM's) between them.
    writes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("WITH w0 AS (")]
    assert len(writes) == 2
    for part in ("INSERT INTO donations_donation", "UPDATE donations_donor", "INSERT INTO donations_dailyrollup",
                 "UPDATE compliance_donoraggregate", "INSERT INTO organisations_auditentry"):
        assert part in " ".join(writes)
    # Django's own statements are bound on the client and never prepared.
    for _ in range(threshold + 1):
        list(Donation.objects.filter(organisation=org, amount_cents=-7))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        assert not any('"donations_donation"."amount_cents" = ' in row[0] for row in cursor.fetchall())



@pytest.mark.parametrize("rows", [1, 2, 7, 8])
def test_the_aggregates_update_tells_a_generic_plan_how_many_rows_it_changes(org, rows):
    """A prepared statement is planned once (a generic plan) only when PostgreSQL finds that
    plan no dearer than planning each run. A gift's batched write updated its one or two
    aggregates from `unnest` of array parameters, which a generic plan takes for 10 rows: on
    the bench's 1M gifts, ten index scans against one made the generic plan dearer, and the
    whole write was planned afresh on every create. A VALUES list (under 8 rows) says how
    many it holds; from 8, one array per column (a batch's many donors)."""
    import psycopg
    from psycopg._queries import _query2pg_nocache

    from compliance.services import AggregateWrites, _aggregates_update

    sql = _aggregates_update(rows)
    assert ("unnest(" in sql) == (rows >= 8)
    text, *_ = _query2pg_nocache(sql.encode(), "utf-8")
    values = [dt.datetime(2027, 3, 1, tzinfo=dt.timezone.utc)]
    row = ["agg_missing", "FEDERAL", dt.date(2027, 6, 30), 1, 1, 0, 1, "NONE"]
    assert len(row) == 1 + len(AggregateWrites.COLUMNS)
    values += [list(column) for column in zip(*[row] * rows)] if rows >= 8 else row * rows
    with connection.cursor() as cursor:
        cursor.execute("PREPARE aggregates_update AS " + text.decode())
        try:
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            literal = psycopg.ClientCursor(connection.connection).mogrify(
                "EXPLAIN EXECUTE aggregates_update(" + ", ".join(["%s"] * len(values)) + ")", values)
            cursor.execute(literal)
            plan = [line for (line,) in cursor.fetchall()]
        finally:
            cursor.execute("DEALLOCATE aggregates_update")
    assert plan[0].startswith("Update on compliance_donoraggregate"), plan
    estimated = int(re.search(r"rows=(\d+)", plan[1]).group(1))  # the rows the update is fed
    assert estimated == (rows if rows < 8 else 10), "\n".join(plan)
