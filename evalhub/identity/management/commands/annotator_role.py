"""``manage.py annotator_role alice bob [--revoke]``: grant (or take) the annotator role."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.identity.roles import annotator_role_grant, annotator_role_revoke


class Command(BaseCommand):
    help = (
        "Give users the annotator role: they see only their labeling queues and label items. "
        "--revoke takes it back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("usernames", nargs="+")
        parser.add_argument("--revoke", action="store_true", help="take the role back")

    def handle(
        self, *args: Any, usernames: list[str], revoke: bool = False, **options: Any
    ) -> None:
        user_model = get_user_model()
        users = []
        for username in usernames:
            user = user_model._default_manager.filter(
                **{user_model.USERNAME_FIELD: username}
            ).first()
            if user is None:
                raise CommandError(f"no user named {username!r}")
            users.append(user)
        for user in users:
            if revoke:
                changed = annotator_role_revoke(user=user)
                verb = "is no longer an annotator" if changed else "was not an annotator"
            else:
                changed = annotator_role_grant(user=user)
                verb = "is now an annotator" if changed else "already was an annotator"
            self.stdout.write(f"{user.get_username()} {verb}")
