"""The audit entries' redundant indexes (see "the indexes of the tables every gift
writes" in together/models.py): the organisation's one-column index (audit_object and
audit_org_created lead with it) and the LIKE indexes of the id and the organisation.

Dropped CONCURRENTLY (outside a transaction), so the gifts recorded meanwhile are not
blocked; the migration back builds them again the same way."""
import django.db.models.deletion
from django.db import migrations, models

from together.db import drop_indexes_concurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("organisations", "0003_stripe_account")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="auditentry", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
            ],
            database_operations=[
                drop_indexes_concurrently("organisations_auditentry", {
                    "organisations_auditentry_organisation_id_cba9d85c": "organisation_id",
                    "organisations_auditentry_organisation_id_cba9d85c_like": "organisation_id varchar_pattern_ops",
                    "organisations_auditentry_id_b4fc3ac7_like": "id varchar_pattern_ops",
                }),
            ],
        ),
    ]
