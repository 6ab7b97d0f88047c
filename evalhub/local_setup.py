"""The single-machine set-up behind ``./dev run``: an admin user and two API keys, made once.

The ingest key (``var/api_key``, scope ``ingest``) is the one to put in instrumented apps' OTLP
headers: it can send spans and nothing else. The SDK key (``var/api_key_sdk``, scope ``write``)
is for the Python SDK and the Phoenix client (read, log, annotate, evaluate). The generated
password and raw keys are kept under ``var/`` (mode 0600), so every later run can print them
again; only the keys' hashes are in the database, as for any other key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from evalhub.identity.models import ApiKeyScope
from evalhub.identity.selectors import api_key_authenticate, api_key_find
from evalhub.identity.services import api_key_create, api_key_revoke

ADMIN_USERNAME = "admin"
ADMIN_SECRET_FILE = "admin_password"  # noqa: S105 - a file name


@dataclass(frozen=True, slots=True)
class LocalKey:
    file: str
    name: str
    scope: str


INGEST_KEY = LocalKey("api_key", "local ingest (./dev run)", ApiKeyScope.INGEST)
SDK_KEY = LocalKey("api_key_sdk", "local SDK (./dev run)", ApiKeyScope.WRITE)
API_KEY_FILE = INGEST_KEY.file


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


@dataclass(frozen=True, slots=True)
class LocalKeyResult:
    raw: str
    created: bool
    replaced_scope: str | None  # the scope of a stored key replaced because it was not ``scope``


@transaction.atomic
def local_api_key_ensure(*, var_dir: Path, spec: LocalKey = INGEST_KEY) -> LocalKeyResult:
    """The local key ``spec`` (raw) and whether it was just made.

    A new key is made when none was stored yet, the stored one was revoked or deleted, or it has
    another scope than ``spec.scope`` (a key from before scopes existed was an admin key: it is
    revoked, so an app config that leaks it no longer gives admin power).
    """
    path = var_dir / spec.file
    stored = _read_secret(path)
    live = api_key_authenticate(stored) if stored else None
    if live is not None and live.scope == spec.scope:
        return LocalKeyResult(raw=stored or "", created=False, replaced_scope=None)
    replaced_scope = None
    if live is not None:
        replaced_scope = live.scope
        api_key_revoke(key=live)
    elif stored and (old := api_key_find(stored)) is not None and old.revoked_at is None:
        api_key_revoke(key=old)  # expired or its user deactivated
    admin = get_user_model().objects.filter(username=ADMIN_USERNAME).first()
    _key, raw = api_key_create(name=spec.name, scope=spec.scope, user=admin)
    _write_secret(path, raw)
    return LocalKeyResult(raw=raw, created=True, replaced_scope=replaced_scope)
