from django.core.management.base import BaseCommand, CommandError

from organisations.models import Organisation
from organisations.services import api_key_create
from together.actors import Actor
from together.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create an API key and print its plaintext once."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Slug of the live organisation.")
        parser.add_argument("--scope", required=True, choices=["READ", "WRITE"])
        parser.add_argument("--name", required=True)
        parser.add_argument("--sandbox", action="store_true", help="Create the key on the {slug}-sandbox twin.")

    def handle(self, *args, org, scope, name, sandbox, **options):
        organisation = Organisation.objects.filter(slug=org, is_sandbox=False).first()
        if organisation is None:
            raise CommandError(f"No live organisation with slug '{org}'.")
        if sandbox:
            organisation = organisation.sandbox
        try:
            created = api_key_create(organisation=organisation, actor=Actor.system("manage.py create_api_key"), name=name, scope=scope)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(created.plaintext)
