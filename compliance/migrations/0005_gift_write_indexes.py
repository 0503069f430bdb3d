"""The aggregates' redundant indexes (see "the indexes of the tables every gift
writes" in together/models.py): the one-column indexes of the organisation (the
aggregate_org_* indexes lead with it) and of the donor (uniq_aggregate leads with it),
and the LIKE indexes of the id and those foreign keys.

Dropped CONCURRENTLY (outside a transaction), so the gifts recorded meanwhile are not
blocked; the migration back builds them again the same way."""
import django.db.models.deletion
from django.db import migrations, models

from together.db import drop_indexes_concurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("compliance", "0004_aggregate_alerting_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="donoraggregate", name="donor",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='compliance_aggregates', to='donations.donor')),
                migrations.AlterField(model_name="donoraggregate", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
            ],
            database_operations=[
                drop_indexes_concurrently("compliance_donoraggregate", {
                    "compliance_donoraggregate_organisation_id_ee576333": "organisation_id",
                    "compliance_donoraggregate_organisation_id_ee576333_like": "organisation_id varchar_pattern_ops",
                    "compliance_donoraggregate_donor_id_150027e4": "donor_id",
                    "compliance_donoraggregate_donor_id_150027e4_like": "donor_id varchar_pattern_ops",
                    "compliance_donoraggregate_id_b7cd1d04_like": "id varchar_pattern_ops",
                }),
            ],
        ),
    ]
