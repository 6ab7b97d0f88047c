"""The Phoenix server version EvalHub answers as.

Phoenix clients check it: ``arize-phoenix-client`` reads ``GET /arize_phoenix_version`` before
calling routes that need a newer server (sessions from 13.5, span filters from 13.15, trace
filters from 20.8, ...), and the legacy ``px.Client`` compares the
``x-phoenix-server-version`` header of every answer with its own version. EvalHub says the
oldest version whose gated client features of ``client.projects``, ``client.spans``,
``client.traces`` and ``client.sessions`` it all serves (docs/phoenix-compat.md lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from django.http import HttpRequest, HttpResponse

PHOENIX_COMPATIBLE_VERSION: Final = "20.8.0"
VERSION_HEADER: Final = "x-phoenix-server-version"
_API_PREFIXES: Final = ("/v1/", "/arize_phoenix_version")


class PhoenixVersionMiddleware:
    """Adds ``x-phoenix-server-version`` to every answer of the Phoenix-compatible API."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(_API_PREFIXES):
            response[VERSION_HEADER] = PHOENIX_COMPATIBLE_VERSION
        return response
