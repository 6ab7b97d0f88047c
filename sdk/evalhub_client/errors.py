"""Errors the server answers with, as exceptions carrying its ``detail``."""

from __future__ import annotations

from typing import Any


class EvalHubError(Exception):
    """Any error answer from EvalHub (or a failure to reach it).

    ``detail`` is the server's message, ``status_code`` the HTTP status (``None`` when the
    server could not be reached) and ``body`` the whole JSON answer, when there was one.
    ``field`` names the invalid field and ``code`` says why a run was refused, when the server
    says so (else ``None``).
    """

    def __init__(self, detail: str, *, status_code: int | None = None, body: Any = None) -> None:
        super().__init__(detail if status_code is None else f"{status_code}: {detail}")
        self.detail = detail
        self.status_code = status_code
        self.body = body
        known = body if isinstance(body, dict) else {}
        self.field: str | None = known.get("field") if isinstance(known.get("field"), str) else None
        self.code: str | None = known.get("code") if isinstance(known.get("code"), str) else None


class AuthenticationError(EvalHubError):
    """401 or 403: the API key is missing, wrong or not allowed."""


class NotFoundError(EvalHubError):
    """404: the project, or some of the spans, traces or sessions named, do not exist.

    ``missing_ids`` lists every unknown id when the server names them (batch annotations and
    evaluation records); it is empty for a missing project.
    """

    def __init__(self, detail: str, *, status_code: int | None = 404, body: Any = None) -> None:
        super().__init__(detail, status_code=status_code, body=body)
        ids = body.get("missing_ids") if isinstance(body, dict) else None
        self.missing_ids: list[str] = [str(i) for i in ids] if isinstance(ids, list) else []


class ValidationError(EvalHubError):
    """400 or 422: the request was refused as invalid (a bad filter, column, value...)."""


class SpanLogError(ValidationError):
    """A span batch that was refused as a whole: its invalid and duplicate spans."""

    def __init__(self, detail: str, *, status_code: int | None = 400, body: Any = None) -> None:
        super().__init__(detail, status_code=status_code, body=body)
        body = body if isinstance(body, dict) else {}
        self.invalid_spans: list[dict[str, str]] = list(body.get("invalid_spans") or [])
        self.duplicate_spans: list[dict[str, str]] = list(body.get("duplicate_spans") or [])


class RunRejectedError(EvalHubError):
    """400 or 409: a run could not start (or be cancelled). ``code`` says why, e.g.
    ``task_paused``, ``invalid_range``, ``range_in_future``, ``invalid_max_spans``,
    ``provider_missing``, ``not_active``; ``detail`` says it for people."""


class ServerError(EvalHubError):
    """5xx: the server failed; retrying later may help."""


__all__ = [
    "AuthenticationError",
    "EvalHubError",
    "NotFoundError",
    "RunRejectedError",
    "ServerError",
    "SpanLogError",
    "ValidationError",
]
