"""The single-machine set-up behind ``./dev run``: an admin user and an API key made once.

The generated password and raw key are kept under ``var/`` (mode 0600), so every later run can
print them again; only the key's hash is in the database, as for any other key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from evalhub.selectors import api_key_authenticate
from evalhub.services import api_key_create

ADMIN_USERNAME = "admin"
API_KEY_NAME = "local (./dev run)"
ADMIN_SECRET_FILE = "admin_password"  # noqa: S105 - a file name
API_KEY_FILE = "api_key"


@dataclass(frozen=True, slots=True)
class LocalAdmin:
    username: str
    password: str | None  # None: the password was set by hand, so it is not ours to show
    created: bool


def _read_secret(path: Path) -> str | None:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    return value or None


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(value + "\n")


@transaction.atomic
def local_admin_ensure(*, var_dir: Path, username: str = ADMIN_USERNAME) -> LocalAdmin:
    """The admin superuser, created with a generated password on the first run.

    A password changed since then (in the admin, or with ``changepassword``) is left alone and
    not shown.
    """
    user_model = get_user_model()
    path = var_dir / ADMIN_SECRET_FILE
    stored = _read_secret(path)
    user = user_model.objects.filter(username=username).first()
    if user is None:
        password = stored or secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        if stored != password:
            _write_secret(path, password)
        return LocalAdmin(username=username, password=password, created=True)
    if stored and user.check_password(stored):
        return LocalAdmin(username=username, password=stored, created=False)
    return LocalAdmin(username=username, password=None, created=False)


def local_api_key_ensure(*, var_dir: Path) -> tuple[str, bool]:
    """The local API key (raw) and whether it was just created.

    A new key is made when none was stored yet or the stored one was revoked or deleted.
    """
    path = var_dir / API_KEY_FILE
    stored = _read_secret(path)
    if stored and api_key_authenticate(stored) is not None:
        return stored, False
    admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
    _key, raw = api_key_create(name=API_KEY_NAME, user=admin)
    _write_secret(path, raw)
    return raw, True
