from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse

from evalhub.env import env_int, env_str
from evalhub.local_setup import (
    ADMIN_SECRET_FILE,
    API_KEY_FILE,
    local_admin_ensure,
    local_api_key_ensure,
)


def _base_url() -> str:
    host = env_str("HOST", "127.0.0.1") or "127.0.0.1"
    port = env_int("PORT", 8000, minimum=1)
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a bind address, shown as the local one
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _grpc_url() -> str:
    host = settings.EVALHUB_GRPC_HOST
    if host in ("0.0.0.0", "::"):  # noqa: S104 - a bind address, shown as the local one
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.EVALHUB_GRPC_PORT}"


def _login_path() -> str:
    """The app's login page once it has one, else the admin's."""
    try:
        get_template("registration/login.html")
    except TemplateDoesNotExist:
        return reverse("admin:login")
    return reverse("login")


class Command(BaseCommand):
    help = (
        "Make sure the local admin user and API key exist (created once, kept under var/) and "
        "print how to log in and send traces. Used by ./dev run."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        var_dir = settings.VAR_DIR
        admin = local_admin_ensure(var_dir=var_dir)
        raw_key, _created = local_api_key_ensure(var_dir=var_dir)
        base = _base_url()
        password = (
            f"{admin.password}   (kept in {var_dir / ADMIN_SECRET_FILE})"
            if admin.password
            else "(changed since it was generated; reset it with: "
            "./dev manage changepassword admin)"
        )
        rule = "─" * 78
        self.stdout.write(
            f"""{rule}
EvalHub: {base}/

  Log in:    {base}{_login_path()}
  Username:  {admin.username}
  Password:  {password}
  API key:   {raw_key}
             (kept in {var_dir / API_KEY_FILE})

Send traces from an OpenTelemetry / OpenInference app (project "my-app"):

  export OTEL_EXPORTER_OTLP_ENDPOINT={base}
  export OTEL_EXPORTER_OTLP_HEADERS="api_key={raw_key},x-project-name=my-app"

or in Python with arize-phoenix-otel:

  from phoenix.otel import register
  register(
      endpoint="{base}/v1/traces",
      headers={{"api_key": "{raw_key}"}},
      project_name="my-app",
      auto_instrument=True,
  )

or over OTLP/gRPC (Phoenix's default, Node and Go SDKs, collectors):

  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
  export OTEL_EXPORTER_OTLP_ENDPOINT={_grpc_url()}

Stop with Ctrl-C.
{rule}"""
        )
