"""The tables every gift writes carry no index that serves no read (together.models,
"the indexes of the tables every gift writes"): no LIKE (`varchar_pattern_ops`) index,
and no index whose columns begin another full index of the table. Django adds both
kinds by default (a one-column index to each foreign key, a LIKE index to each varchar
key), so a new foreign key or model field on these tables brings them back unless it
says `db_index=False` or its migration drops them: this test is the reminder. And the
reads those indexes served still find an index, on a table as large as the bench's."""
from __future__ import annotations

import pytest
from django.db import connection, transaction

from donations.models import Donation
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

GIFT_TABLES = ["donations_donation", "donations_donor", "donations_dailyrollup", "compliance_donoraggregate",
               "organisations_auditentry", "webhooks_event", "webhooks_webhookdelivery"]


def _indexes(table: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT i.relname, x.indkey::int2[], x.indpred IS NOT NULL,
                      ARRAY(SELECT o.opcname FROM unnest(x.indclass) c JOIN pg_opclass o ON o.oid = c)
                 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                WHERE x.indrelid = %s::regclass""", [table])
        return [{"name": name, "keys": list(keys), "partial": partial, "opclasses": opclasses}
                for name, keys, partial, opclasses in cursor.fetchall()]


@pytest.mark.parametrize("table", GIFT_TABLES)
def test_no_like_index(table):
    like = [ix["name"] for ix in _indexes(table) if any(o.endswith("_pattern_ops") for o in ix["opclasses"])]
    assert like == [], f"{table}: LIKE indexes nothing reads (ids are opaque): {like}"


@pytest.mark.parametrize("table", GIFT_TABLES)
def test_no_index_that_begins_another(table):
    indexes = _indexes(table)
    covered = [(ix["name"], other["name"]) for ix in indexes for other in indexes
               if ix is not other and not ix["partial"] and not other["partial"]
               and len(other["keys"]) > len(ix["keys"]) and other["keys"][:len(ix["keys"])] == ix["keys"]
               and 0 not in ix["keys"]]
    assert covered == [], f"{table}: indexes whose columns begin another index: {covered}"


def _plan(sql: str, params: list) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("read", ["a donor's gifts", "a campaign's gifts", "an organisation's gifts",
                                  "an event's deliveries"])
def test_the_reads_of_the_dropped_indexes_still_use_an_index(org, read):
    """A donor's or a campaign's gifts (the foreign keys' PROTECT checks ask the same), the
    organisation's gifts, and an event's deliveries (its CASCADE): an index scan each."""
    query = {
        "a donor's gifts": Donation.objects.for_organisation(org).filter(donor_id="d"),
        "a campaign's gifts": Donation.objects.for_organisation(org).filter(campaign_id="c"),
        "an organisation's gifts": Donation.objects.for_organisation(org),
        "an event's deliveries": WebhookDelivery.objects.for_organisation(org).filter(event_id="e"),
    }[read]
    sql, params = query.query.sql_with_params()
    plan = _plan(sql, list(params))
    assert "Index" in plan and "Seq Scan" not in plan, plan
