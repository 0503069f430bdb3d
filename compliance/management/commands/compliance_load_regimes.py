from django.conf import settings
from django.core.management.base import BaseCommand

from compliance.models import RegimeRule
from compliance.regimes import load_default_rules


class Command(BaseCommand):
    help = "Load the law's regime rules (missing ones only; --replace reloads all, e.g. after moving FEDERAL_REFORM_COMMENCEMENT)."

    def add_arguments(self, parser):
        parser.add_argument("--replace", action="store_true")

    def handle(self, *args, replace, **options):
        created = load_default_rules(RegimeRule, settings.FEDERAL_REFORM_COMMENCEMENT, replace=replace)
        self.stdout.write(f"{created} rule(s) created; commencement {settings.FEDERAL_REFORM_COMMENCEMENT.isoformat()}")
