from django.core.management.base import BaseCommand, CommandError

from evalhub.providers.crypto import SecretUndecryptable
from evalhub.providers.services import provider_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider API key with the newest encryption secret "
        "(the first of EVALHUB_ENCRYPTION_KEYS, else SECRET_KEY). Run it after adding a new "
        "secret and before removing the old one."
    )

    def handle(self, *args, **options):
        try:
            count = provider_keys_rotate()
        except SecretUndecryptable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"re-encrypted {count} provider key(s)")
