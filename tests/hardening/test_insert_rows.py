"""together.db.insert_rows: the rows bulk_create would write, many of them as
UNNEST of one array per column (a parameter per column, not per value: a batch of
250 gifts as VALUES was 12,000 placeholders for psycopg to parse on every run)."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from donations.models import Donation
from donations.services import donation_record, donations_record_many
from tests.support.api import make_donor
from together.actors import Actor
from together.db import UNNEST_FROM_ROWS

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("tests")


def _gift(donor, **fields):
    return {"donor_id": donor.id, "donation_type": "MONETARY", "amount_cents": 1234, "donation_date": dt.date(2026, 3, 1),
            "payment_method": "CHEQUE"} | fields


def _stored(donation: Donation) -> dict:
    names = [f.attname for f in Donation._meta.concrete_fields]
    return Donation.objects.filter(pk=donation.pk).values(*names).get()


def _in_memory(donation: Donation) -> dict:
    return {f.attname: getattr(donation, f.attname) for f in Donation._meta.concrete_fields}


def _gift_insert(captured) -> tuple[str, int]:
    """How the one statement that wrote the gifts gave its rows (it may carry other writes
    as CTEs): ("UNNEST", arrays) or ("VALUES", rows)."""
    (statement,) = [q["sql"] for q in captured.captured_queries if "INTO donations_donation " in q["sql"]]
    rows = re.search(r"INSERT INTO donations_donation \([^)]*\) (?:SELECT \* FROM UNNEST\(((?:\(\$\d+\)::[a-z ]+\[\](?:, )?)+)\)"
                     r"|VALUES ((?:\([^()]*\)(?:, )?)+))", statement)
    assert rows is not None, statement[:2000]
    if rows.group(1):
        return "UNNEST", rows.group(1).count("($")
    return "VALUES", rows.group(2).count("(")


def test_several_rows_go_as_one_unnest_and_are_stored_as_built(org):
    donor, other = make_donor(org), make_donor(org)
    gifts = [_gift(donor, metadata={"k": "v", "other": "é"}, notes="quote ' and é"),
             _gift(other, donation_type="IN_KIND", in_kind_category="GOODS", in_kind_description="chairs", amount_cents=50_000,
                   payment_method=None),
             _gift(donor, reference=None, external_id="ext-1")]
    gifts += [_gift(other, amount_cents=100 + n) for n in range(UNNEST_FROM_ROWS - len(gifts))]
    with CaptureQueriesContext(connection) as captured:
        results = donations_record_many(organisation=org, actor=SYSTEM, gifts=gifts)
    assert [r.error for r in results] == [None] * UNNEST_FROM_ROWS
    assert _gift_insert(captured) == ("UNNEST", len([f for f in Donation._meta.concrete_fields if not f.generated]))
    for result in results:
        assert _stored(result.donation) == _in_memory(result.donation)


def test_a_few_rows_go_as_values(org):
    donor = make_donor(org)
    with CaptureQueriesContext(connection) as captured:
        results = donations_record_many(organisation=org, actor=SYSTEM, gifts=[_gift(donor)] * (UNNEST_FROM_ROWS - 1))
    assert _gift_insert(captured) == ("VALUES", UNNEST_FROM_ROWS - 1)
    assert [_stored(r.donation) for r in results] == [_in_memory(r.donation) for r in results]


def test_one_row_goes_as_values(org):
    donor = make_donor(org)
    with CaptureQueriesContext(connection) as captured:
        donation = donation_record(organisation=org, actor=SYSTEM, **_gift(donor, metadata={"a": "1"}))
    assert _gift_insert(captured) == ("VALUES", 1)
    assert _stored(donation) == _in_memory(donation)
