"""The HTTP transport: base URL, API key, JSON bodies and error answers → exceptions."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from evalhub_client.errors import (
    AuthenticationError,
    EvalHubError,
    NotFoundError,
    RunRejectedError,
    ServerError,
    SpanLogError,
    ValidationError,
)

Params = Mapping[str, str | int | float | bool | None]


def path_segment(value: object) -> str:
    """A name or id as one URL path segment, as the server reads it: ``~`` is written ``~~``,
    ``/`` ``~s``, and a value of dots only (``.``, ``..``) ``~d`` per dot — servers decode
    ``%2F`` and browsers drop dot segments, so neither can be sent as it is — then the rest is
    percent-encoded (``team/app`` → ``team~sapp``)."""
    text = str(value).replace("~", "~~").replace("/", "~s")
    if text and set(text) == {"."}:
        text = "~d" * len(text)
    return quote(text, safe="~")


def project_path(project: str) -> str:
    """The API path of the project of this name."""
    return f"/v1/projects/{path_segment(project)}"


def json_default(value: Any) -> Any:
    """numpy scalars and arrays, pandas timestamps and dates → JSON values."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return tolist()
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(payload: Any) -> bytes:
    """JSON text without NaN or infinities (which JSON cannot carry)."""
    return json.dumps(payload, default=json_default, allow_nan=False, ensure_ascii=False).encode()


def error_for(response: httpx.Response) -> EvalHubError:
    """The exception for an error answer, with the server's ``detail``."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        detail = response.text.strip() or response.reason_phrase
    status = response.status_code
    if status in (401, 403):
        return AuthenticationError(detail, status_code=status, body=body)
    if status == 404:
        return NotFoundError(detail, status_code=status, body=body)
    if status in (400, 409) and isinstance(body, dict) and isinstance(body.get("code"), str):
        return RunRejectedError(detail, status_code=status, body=body)
    if status == 400 and isinstance(body, dict) and "invalid_spans" in body:
        return SpanLogError(str(body.get("error") or detail), status_code=status, body=body)
    if status in (400, 422):
        return ValidationError(detail, status_code=status, body=body)
    if status >= 500:
        return ServerError(detail, status_code=status, body=body)
    return EvalHubError(detail, status_code=status, body=body)


def query_params(params: Params) -> dict[str, str | int | float | bool]:
    """Leave out ``None``; NaN is refused early rather than sent as text."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number")
        out[key] = value
    return out


class Transport:
    """One ``httpx.Client`` with the base URL and the API key; raises ``EvalHubError``s."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        http_client: httpx.Client | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "evalhub-client/0.1"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url.rstrip("/")
        self._owns_client = http_client is None
        self._client = http_client or httpx.Client(timeout=timeout)
        self._client.base_url = httpx.URL(self.base_url)
        self._client.headers.update(headers)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def request(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> Any:
        """The JSON answer (``None`` when there is no body); an error answer raises."""
        return self.send(method, path, params=params, json=json)[1]

    def pages(self, path: str, *, params: Params | None = None, limit: int = 1000) -> Iterator[Any]:
        """The rows of a paged list (``GET``), following ``next_cursor`` to the last page,
        ``limit`` rows a request."""
        cursor = None
        while True:
            body = self.request(
                "GET", path, params={"limit": limit, **(params or {}), "cursor": cursor}
            )
            yield from body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                return

    def send(
        self, method: str, path: str, *, params: Params | None = None, json: Any = None
    ) -> tuple[int, Any]:
        """The HTTP status and the JSON answer; an error answer raises."""
        content = dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            response = self._client.request(
                method,
                path,
                params=query_params(params or {}),
                content=content,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise EvalHubError(f"cannot reach {self.base_url}: {exc}") from exc
        if response.is_error:
            raise error_for(response)
        if response.status_code == 204 or not response.content:
            return response.status_code, None
        return response.status_code, response.json()

    @contextmanager
    def stream(self, path: str, *, params: Params | None = None) -> Iterator[httpx.Response]:
        """A streamed GET; an error answer is read and raised before anything is yielded."""
        try:
            with self._client.stream("GET", path, params=query_params(params or {})) as response:
                if response.is_error:
                    response.read()
                    raise error_for(response)
                yield response
        except httpx.TransportError as exc:
            raise EvalHubError(f"cannot reach {self.base_url}: {exc}") from exc
