"""A partial index on the aggregates that carry a cap alert (alert_level <> 'NONE').

The home page's near-cap list, its "past alerts" check, the alert history page
and the obligations page's near-cap count all ask for an organisation's alerting
aggregates. The only index they could use was (organisation_id, alert_level),
and `NOT (alert_level = 'NONE')` is not an index condition. So PostgreSQL read
every aggregate of the organisation and filtered (4,767 rows and 541 heap pages
for none kept on the bench data, 1.5-1.7 ms each, twice per home page), a cost
that grows with the organisation's donors and periods. This index holds only the
alerting rows.

Built CONCURRENTLY (outside a transaction), so writes to the aggregates, which
every gift makes, are not blocked while it builds."""
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("compliance", "0003_obligation_unique_open_only"),
        ("donations", "0019_donor_email_statistics"),
        ("organisations", "0003_stripe_account"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="donoraggregate",
            index=models.Index(condition=models.Q(("alert_level", "NONE"), _negated=True), fields=["organisation", "period_end"],
                               name="aggregate_org_alerting"),
        ),
    ]
