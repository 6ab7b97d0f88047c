"""API key authentication for every /v1 route (ingestion included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest
from ninja.security import APIKeyHeader

from evalhub.models import ApiKey
from evalhub.selectors import api_key_authenticate, api_key_from_headers


def request_api_key(request: HttpRequest) -> ApiKey | None:
    """The API key a request carries (``Authorization: Bearer`` or ``api_key``), if valid."""
    key = api_key_authenticate(api_key_from_headers(request.headers))
    if key is not None:
        request.api_key = key  # type: ignore[attr-defined]
    return key


def ingest_api_key(headers: Mapping[str, str]) -> ApiKey | None:
    """The valid API key that may send spans, from request headers or gRPC metadata (a
    case-insensitive mapping): ``Authorization: Bearer <key>`` or ``api_key``. The one check
    for both OTLP transports, HTTP (``tracing.views_otlp``) and gRPC (``tracing.grpc_otlp``)."""
    return api_key_authenticate(api_key_from_headers(headers))


class ApiKeyAuth(APIKeyHeader):
    """Accepts ``Authorization: Bearer <key>`` or ``api_key: <key>``; also a logged-in browser."""

    param_name = "api_key"
    openapi_scheme = "bearer"

    def __call__(self, request: HttpRequest) -> Any:
        key = request_api_key(request)
        if key is not None:
            return key
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user
        return None

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:  # pragma: no cover
        return request_api_key(request)
