"""The per-day rollup gains the gifts' campaign (a campaign's raised, gifts and weeks read it),
rebuilt from the ledger; donations gain an index for a campaign's distinct donors."""
import django.db.models.deletion
from django.db import migrations, models


def rebuild(apps, schema_editor):
    from donations.rollups import rollup_rows

    Donation, DailyRollup = apps.get_model("donations", "Donation"), apps.get_model("donations", "DailyRollup")
    DailyRollup.objects.all().delete()
    DailyRollup.objects.bulk_create(rollup_rows(Donation.objects.all(), DailyRollup), batch_size=5000)
    # Check the new rows' deferred foreign keys now: PostgreSQL refuses the indexes Django
    # creates at the end of the migration on a table with trigger events pending.
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


class Migration(migrations.Migration):

    dependencies = [
        ("donations", "0012_list_sorting"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="dailyrollup", name="uniq_rollup_key"),
        migrations.AddField(
            model_name="dailyrollup",
            name="campaign",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                    to="donations.campaign"),
        ),
        migrations.AddConstraint(
            model_name="dailyrollup",
            constraint=models.UniqueConstraint(fields=("organisation", "day", "donation_type", "recurring", "campaign"),
                                               name="uniq_rollup_key", nulls_distinct=False),
        ),
        migrations.AddIndex(
            model_name="dailyrollup",
            index=models.Index(condition=models.Q(("campaign__isnull", False)), fields=["campaign", "day"],
                               include=("counted_cents", "gifts"), name="rollup_campaign_day"),
        ),
        migrations.AddIndex(
            model_name="donation",
            index=models.Index(fields=["campaign", "status", "donor"], name="donation_campaign_donors"),
        ),
        migrations.RunPython(rebuild, migrations.RunPython.noop),
    ]
