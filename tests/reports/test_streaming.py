"""Streaming against a connection in autocommit, as in production (no test
transaction around it): a client that goes away mid-download cancels the COPY
and leaves the connection usable. In its own module: the other report modules
hold their generated books in a module-wide transaction."""
from __future__ import annotations

import pytest

from reports import writers
from reports.services import report_spec
from tests.reports.conftest import FY_END, FY_START, SYSTEM, D, parse_csv

RANGE = {"from": FY_START.isoformat(), "to": FY_END.isoformat()}


@pytest.mark.django_db(transaction=True)  # autocommit, as in production
def test_a_client_going_away_mid_stream_leaves_the_connection_usable():
    from django.db import connection

    from tests.conftest import make_org
    from tests.reports.conftest import Books, record

    org = make_org("Abort")
    books = Books(org=org, other_org=None, sandbox=org.sandbox)
    from donations import services

    donor = services.donor_create(organisation=org, actor=SYSTEM, first_name="Early", last_name="Leaver")
    for day in range(1, 29):
        record(books, org, donor, 1000 + day, D(2025, 8, day))
    spec = report_spec(organisation=org, name="donations", data=RANGE)
    chunks = writers.csv_chunks(spec, chunk_bytes=256)
    assert next(chunks)
    chunks.close()  # what the WSGI server does when the client disconnects
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM donations_donation WHERE organisation_id = %s", [org.id])
        assert cursor.fetchone()[0] == 28
    # And the next export on the same connection is whole.
    _, rows = parse_csv(b"".join(writers.csv_chunks(spec)))
    assert len(rows) == 28
