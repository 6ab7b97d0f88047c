from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.urls import reverse

from evalhub.core.env import env_int, env_str
from evalhub.local_setup import (
    ADMIN_SECRET_FILE,
    INGEST_KEY,
    SDK_KEY,
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
        "Make sure the local admin user and API keys exist (created once, kept under var/) and "
        "print how to log in, send traces and use the SDK. Used by ./dev run."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        var_dir = settings.VAR_DIR
        admin = local_admin_ensure(var_dir=var_dir)
        ingest = local_api_key_ensure(var_dir=var_dir, spec=INGEST_KEY)
        sdk = local_api_key_ensure(var_dir=var_dir, spec=SDK_KEY)
        raw_key, sdk_key = ingest.raw, sdk.raw
        base = _base_url()
        password = (
            f"{admin.password}   (kept in {var_dir / ADMIN_SECRET_FILE})"
            if admin.password
            else "(changed since it was generated; reset it with: "
            "./dev manage changepassword admin)"
        )
        replaced = ""
        if ingest.replaced_scope:
            replaced = (
                f"\n  Note: the key kept in {var_dir / INGEST_KEY.file} had the "
                f"{ingest.replaced_scope!r} scope;\n  it was revoked and replaced by an "
                "ingest-only key. Update your apps' OTLP headers.\n"
            )
        rule = "─" * 78
        self.stdout.write(
            f"""{rule}
EvalHub: {base}/

  Log in:    {base}{_login_path()}
  Username:  {admin.username}
  Password:  {password}

  Ingest API key (OTLP only; put it in your apps' exporter headers):
             {raw_key}
             (kept in {var_dir / INGEST_KEY.file})
  SDK API key (write scope: read, log, annotate, evaluate; for the Python SDK
  and the Phoenix client — keep it out of app configs):
             {sdk_key}
             (kept in {var_dir / SDK_KEY.file})
  More keys, with a scope and an expiry: {base}/settings/api-keys/
{replaced}
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

Read and annotate with the Phoenix client (or evalhub_client.Client):

  from phoenix.client import Client
  client = Client(base_url="{base}", api_key="{sdk_key}")

Stop with Ctrl-C.
{rule}"""
        )
