"""The per-day rollup of counted gifts (issue 19); 0013 fills it from the ledger."""
import django.db.models.deletion
from django.db import migrations, models


def backfill(apps, schema_editor):
    """Filled by 0013_rollup_campaign's rebuild (the rollup's rows gained the campaign there):
    donations.rollups.rollup_rows speaks the latest shape only."""


class Migration(migrations.Migration):

    dependencies = [
        ("donations", "0010_crm_tags_sources_employer"),
        ("organisations", "0003_stripe_account"),
    ]

    operations = [
        migrations.CreateModel(
            name="DailyRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField()),
                ("donation_type", models.CharField(max_length=10)),
                ("recurring", models.BooleanField(default=False)),
                ("counted_cents", models.BigIntegerField(default=0)),
                ("gifts", models.IntegerField(default=0)),
                ("organisation", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                   to="organisations.organisation")),
            ],
            options={
                "indexes": [models.Index(fields=["organisation", "day"], include=("donation_type", "recurring", "counted_cents", "gifts"),
                                         name="rollup_org_day")],
                "constraints": [models.UniqueConstraint(fields=("organisation", "day", "donation_type", "recurring"),
                                                        name="uniq_rollup_key")],
            },
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
