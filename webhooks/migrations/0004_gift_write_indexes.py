"""The events' and deliveries' redundant indexes (see "the indexes of the tables every
gift writes" in together/models.py): the one-column indexes of the organisation (the
event_org_* and delivery_endpoint_created indexes lead with it) and of a delivery's
event (uniq_delivery_event_endpoint leads with it), and the LIKE indexes of the ids
and foreign keys. A delivery's endpoint keeps its one-column index: its only other
index is partial.

Dropped CONCURRENTLY (outside a transaction), so the gifts recorded meanwhile are not
blocked; the migration back builds them again the same way."""
import django.db.models.deletion
from django.db import migrations, models

from together.db import drop_indexes_concurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("webhooks", "0003_attempt_fast_id")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="event", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
                migrations.AlterField(model_name="webhookdelivery", name="event",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.event')),
                migrations.AlterField(model_name="webhookdelivery", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
            ],
            database_operations=[
                drop_indexes_concurrently("webhooks_event", {
                    "webhooks_event_organisation_id_c4f45270": "organisation_id",
                    "webhooks_event_organisation_id_c4f45270_like": "organisation_id varchar_pattern_ops",
                    "webhooks_event_id_136b0861_like": "id varchar_pattern_ops",
                }),
                drop_indexes_concurrently("webhooks_webhookdelivery", {
                    "webhooks_webhookdelivery_organisation_id_e9bd4c15": "organisation_id",
                    "webhooks_webhookdelivery_organisation_id_e9bd4c15_like": "organisation_id varchar_pattern_ops",
                    "webhooks_webhookdelivery_event_id_48da21e7": "event_id",
                    "webhooks_webhookdelivery_event_id_48da21e7_like": "event_id varchar_pattern_ops",
                    "webhooks_webhookdelivery_endpoint_id_d5bfb5c8_like": "endpoint_id varchar_pattern_ops",
                    "webhooks_webhookdelivery_id_c864ad1c_like": "id varchar_pattern_ops",
                }),
            ],
        ),
    ]
