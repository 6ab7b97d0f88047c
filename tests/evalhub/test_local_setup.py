from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from evalhub.identity.models import ApiKey
from evalhub.identity.selectors import api_key_authenticate
from evalhub.identity.services import api_key_create
from evalhub.local_setup import INGEST_KEY, local_admin_ensure, local_api_key_ensure

pytestmark = pytest.mark.django_db


def test_the_admin_is_created_once_and_its_password_shown_every_time(tmp_path):
    first = local_admin_ensure(var_dir=tmp_path)
    again = local_admin_ensure(var_dir=tmp_path)

    assert first.created and not again.created
    assert first.password and again.password == first.password
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(first.password)
    stored = tmp_path / "admin_password"
    assert stored.read_text().strip() == first.password
    assert stored.stat().st_mode & 0o777 == 0o600


def test_a_password_changed_by_hand_is_kept_and_not_shown(tmp_path):
    local_admin_ensure(var_dir=tmp_path)
    user = get_user_model().objects.get(username="admin")
    user.set_password("my own password")
    user.save()

    admin = local_admin_ensure(var_dir=tmp_path)

    assert admin.password is None
    user.refresh_from_db()
    assert user.check_password("my own password")


def test_the_api_key_is_created_once_and_replaced_when_revoked(tmp_path):
    first = local_api_key_ensure(var_dir=tmp_path)
    again = local_api_key_ensure(var_dir=tmp_path)

    assert first.created and not again.created and again.raw == first.raw
    key = api_key_authenticate(first.raw)
    assert key is not None and key.scope == "ingest"
    assert ApiKey.objects.count() == 1
    stored = tmp_path / "api_key"
    assert stored.read_text().strip() == first.raw
    assert stored.stat().st_mode & 0o777 == 0o600

    ApiKey.objects.update(revoked_at=timezone.now())
    replaced = local_api_key_ensure(var_dir=tmp_path)
    assert replaced.created and replaced.raw != first.raw
    assert api_key_authenticate(replaced.raw) is not None
    assert stored.read_text().strip() == replaced.raw


def test_a_stored_key_from_before_scopes_is_revoked_and_replaced_by_an_ingest_key(tmp_path):
    """The key ./dev run printed used to be an admin's all-powerful key; apps have it in their
    OTLP headers. It is revoked, and the new one can only ingest."""
    admin = local_admin_ensure(var_dir=tmp_path)
    user = get_user_model().objects.get(username=admin.username)
    old, raw = api_key_create(name="local (./dev run)", scope="admin", user=user)
    (tmp_path / "api_key").write_text(raw + "\n")

    result = local_api_key_ensure(var_dir=tmp_path, spec=INGEST_KEY)

    assert result.created and result.replaced_scope == "admin"
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert api_key_authenticate(raw) is None
    assert api_key_authenticate(result.raw).scope == "ingest"


def test_local_setup_prints_the_same_credentials_on_every_run(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("PORT", "8123")
    first, second = StringIO(), StringIO()
    call_command("local_setup", stdout=first)
    call_command("local_setup", stdout=second)

    password = (tmp_path / "admin_password").read_text().strip()
    key = (tmp_path / "api_key").read_text().strip()
    sdk_key = (tmp_path / "api_key_sdk").read_text().strip()
    assert first.getvalue() == second.getvalue()
    text = first.getvalue()
    assert f"Password:  {password}" in text
    assert "Ingest API key (OTLP only" in text and f"             {key}\n" in text
    assert "SDK API key (write scope" in text and f"             {sdk_key}\n" in text
    assert "http://127.0.0.1:8123/" in text and "/login/" in text
    assert f'OTEL_EXPORTER_OTLP_HEADERS="api_key={key},x-project-name=my-app"' in text
    assert f'Client(base_url="http://127.0.0.1:8123", api_key="{sdk_key}")' in text
    assert api_key_authenticate(key).scope == "ingest"
    assert api_key_authenticate(sdk_key).scope == "write"
