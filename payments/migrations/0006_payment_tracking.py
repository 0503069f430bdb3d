# Issue 19: where the donor came from, carried onto the recorded donations.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("payments", "0005_recurring_plan_failing_since"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="tracking",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
