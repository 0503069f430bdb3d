"""seed_bench, run again on data it seeded, gives `make bench` the data it asks for:
rows an earlier run's baseline INSERTed straight into the table (never recorded by a
service) are removed; seeded rows and gifts recorded through the services stay."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection

from donations.management.commands.seed_bench import bench_id
from donations.models import Donation
from donations.services import donation_record
from together.actors import Actor
from together.ids import new_id

pytestmark = pytest.mark.django_db(transaction=True)  # seed_bench VACUUMs: outside a transaction


def test_a_second_seed_removes_what_a_baseline_left_and_keeps_the_rest(org):
    call_command("seed_bench", org=org.slug, donors=5, donations=20, stdout=io.StringIO())
    recorded = donation_record(organisation=org, actor=Actor.system("tests"), donor_id=bench_id("bdr", 1),
                               donation_type="MONETARY", amount_cents=5_000, donation_date=dt.date(2027, 3, 1),
                               payment_method="CHEQUE").id
    left = new_id()
    with connection.cursor() as cursor:  # as bench/records.py's raw INSERT baseline writes
        cursor.execute(
            "INSERT INTO donations_donation (id, organisation_id, donor_id, donation_type, amount_cents, currency, donation_date, "
            "source, status, payment_method, revenue_code, jurisdiction, metadata, refunded_cents, acknowledgement_status, "
            "custom_fields, created_at, updated_at) VALUES (%s, %s, %s, 'MONETARY', 5000, 'AUD', '2027-03-01', 'MANUAL', "
            "'CONFIRMED', 'CHEQUE', 'ADMIN-FUND', 'UNREGULATED', '{}', 0, 'NEEDS_RECEIPT', '{}', now(), now())",
            [left, org.id, bench_id("bdr", 2)],
        )
    out = io.StringIO()
    call_command("seed_bench", org=org.slug, donors=5, donations=20, stdout=out)
    assert "removed 1 left by earlier runs' baselines" in out.getvalue()
    ids = set(Donation.objects.filter(organisation=org).values_list("id", flat=True))
    assert left not in ids
    assert recorded in ids
    assert len(ids) == 21
