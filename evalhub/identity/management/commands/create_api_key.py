from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from evalhub.identity.models import ApiKeyScope
from evalhub.identity.services import ApiKeyInvalid, api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key and print it (only its hash is stored). The scope defaults to "
        "'ingest' (OTLP only); a key of a user never does more than the user's role allows."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--user", help="username the key acts for (default: no user)")
        parser.add_argument(
            "--scope",
            choices=ApiKeyScope.values,
            default=ApiKeyScope.INGEST,
            help="ingest (OTLP only, the default), read, write or admin",
        )
        parser.add_argument(
            "--expires", help="when it stops working: a date (YYYY-MM-DD, UTC) or an ISO time"
        )

    def handle(self, *args, name: str, user=None, scope: str, expires=None, **options):
        owner = None
        if user:
            owner = get_user_model().objects.filter(username=user).first()
            if owner is None:
                raise CommandError(f"no user named {user!r}")
        expires_at = _expiry(expires) if expires else None
        try:
            _key, raw = api_key_create(name=name, scope=scope, user=owner, expires_at=expires_at)
        except ApiKeyInvalid as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(raw)


def _expiry(text: str):
    from datetime import UTC, datetime, time

    moment = parse_datetime(text)
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    day = parse_date(text)
    if day is None:
        raise CommandError(f"--expires: {text!r} is not a date (YYYY-MM-DD) or an ISO time")
    return datetime.combine(day, time.min, tzinfo=UTC)
