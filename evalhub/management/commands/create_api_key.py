from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from evalhub.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--user", help="username the key acts for")

    def handle(self, *args, name: str, user: str | None = None, **options):
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"no user named {user!r}")
        try:
            _key, raw = api_key_create(name=name, user=owner)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(raw)
