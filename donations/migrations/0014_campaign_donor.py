"""A donor's counted gifts per campaign (a campaign's distinct donors are its rows), filled from the ledger."""
import django.db.models.deletion
from django.db import migrations, models


def fill(apps, schema_editor):
    from donations.rollups import campaign_donor_rows

    Donation, CampaignDonor = apps.get_model("donations", "Donation"), apps.get_model("donations", "CampaignDonor")
    CampaignDonor.objects.bulk_create(campaign_donor_rows(Donation.objects.all(), CampaignDonor), batch_size=5000)
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no trigger events pending for the indexes after


class Migration(migrations.Migration):

    dependencies = [
        ("donations", "0013_rollup_campaign"),
    ]

    operations = [
        migrations.CreateModel(
            name="CampaignDonor",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("counted_cents", models.BigIntegerField(default=0)),
                ("gifts", models.IntegerField(default=0)),
                ("campaign", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="donations.campaign")),
                ("donor", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="donations.donor")),
                ("organisation", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                                   to="organisations.organisation")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("campaign", "donor"), name="uniq_campaign_donor")],
            },
        ),
        # 0013's index for counting a campaign's donors over its gifts: CampaignDonor's rows count them now.
        migrations.RemoveIndex(model_name="donation", name="donation_campaign_donors"),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
