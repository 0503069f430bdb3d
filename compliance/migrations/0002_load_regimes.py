from django.conf import settings
from django.db import migrations


def load(apps, schema_editor):
    from compliance.regimes import load_default_rules

    load_default_rules(apps.get_model("compliance", "RegimeRule"), settings.FEDERAL_REFORM_COMMENCEMENT)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
