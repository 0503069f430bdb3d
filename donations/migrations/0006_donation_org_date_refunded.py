# The covering index of period totals also holds refunded_cents: a counted gift
# counts amount_cents - refunded_cents (compliance.rules.COUNTED_CENTS).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('donations', '0005_card_payment_fields'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='donation',
            name='donation_org_date',
        ),
        migrations.AddIndex(
            model_name='donation',
            index=models.Index(fields=['organisation', 'donation_date'], include=('status', 'donation_type', 'amount_cents', 'refunded_cents'), name='donation_org_date'),
        ),
    ]
