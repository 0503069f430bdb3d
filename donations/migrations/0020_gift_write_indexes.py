"""The donations', donors' and daily rollups' redundant indexes (see "the indexes of
the tables every gift writes" in together/models.py): the one-column indexes of the
organisation (every donation_org_*, donor_org_* and rollup_org_day index leads with
it), of a donation's donor (donation_donor_status, donation_donor_jur_date) and of its
campaign (donation_campaign_status), and the LIKE indexes of the ids and foreign
keys. A donation's recurring plan, a donor's employer and a rollup's campaign keep
their one-column indexes: no other full index leads with them.

Measured on the bench data (1M gifts, 200k donors) before the change, through
auto_explain over 200 creates each, alternating with and without these indexes: the
gift's one write statement took a median 1.05-1.16 ms with them and 0.93-0.97 ms
without; the donation's insert 0.28-0.29 ms and 0.19-0.23 ms. They were 125 MB of
the donation table's indexes.

Dropped CONCURRENTLY (outside a transaction), so the gifts recorded meanwhile are not
blocked; the migration back builds them again the same way."""
import django.db.models.deletion
from django.db import migrations, models

from together.db import drop_indexes_concurrently


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("donations", "0019_donor_email_statistics")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name="dailyrollup", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
                migrations.AlterField(model_name="donation", name="campaign",
                                      field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='donations', to='donations.campaign')),
                migrations.AlterField(model_name="donation", name="donor",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='donations', to='donations.donor')),
                migrations.AlterField(model_name="donation", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
                migrations.AlterField(model_name="donor", name="organisation",
                                      field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='organisations.organisation')),
            ],
            database_operations=[
                drop_indexes_concurrently("donations_donation", {
                    "donations_donation_organisation_id_a9103572": "organisation_id",
                    "donations_donation_organisation_id_a9103572_like": "organisation_id varchar_pattern_ops",
                    "donations_donation_donor_id_25b1f2bc": "donor_id",
                    "donations_donation_donor_id_25b1f2bc_like": "donor_id varchar_pattern_ops",
                    "donations_donation_campaign_id_6ee594d5": "campaign_id",
                    "donations_donation_campaign_id_6ee594d5_like": "campaign_id varchar_pattern_ops",
                    "donations_donation_recurring_plan_id_4c6e51d1_like": "recurring_plan_id varchar_pattern_ops",
                    "donations_donation_id_489dc7e4_like": "id varchar_pattern_ops",
                }),
                drop_indexes_concurrently("donations_donor", {
                    "donations_donor_organisation_id_a2079d12": "organisation_id",
                    "donations_donor_organisation_id_a2079d12_like": "organisation_id varchar_pattern_ops",
                    "donations_donor_employer_id_8f8aa426_like": "employer_id varchar_pattern_ops",
                    "donations_donor_id_9c4aae46_like": "id varchar_pattern_ops",
                }),
                drop_indexes_concurrently("donations_dailyrollup", {
                    "donations_dailyrollup_organisation_id_fe1b0997": "organisation_id",
                    "donations_dailyrollup_organisation_id_fe1b0997_like": "organisation_id varchar_pattern_ops",
                    "donations_dailyrollup_campaign_id_5dca1918_like": "campaign_id varchar_pattern_ops",
                }),
            ],
        ),
    ]
