from django.core.management.base import BaseCommand, CommandError

from together.demo import load_demo
from together.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Create the demo organisation (Riverbank Action), its users and API keys, plus whatever "
        "other apps' demo steps add. Idempotent: prints the same logins and keys every run."
    )

    def handle(self, *args, **options):
        try:
            load_demo(stdout=self.stdout)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
