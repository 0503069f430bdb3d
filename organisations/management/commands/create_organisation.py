from django.core.management.base import BaseCommand, CommandError

from organisations.services import organisation_create
from together.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Onboard an organisation together with its {slug}-sandbox twin."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--slug", required=True)
        parser.add_argument("--owner", help="Email of the first ADMIN (created if unknown).")

    def handle(self, *args, name, slug, owner, **options):
        try:
            org = organisation_create(name=name, slug=slug, owner_email=owner)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created {org.name}: {org.slug} ({org.id}) and {org.sandbox.slug} ({org.sandbox.id})")
