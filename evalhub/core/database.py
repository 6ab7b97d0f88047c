"""When the database fails: a 503 with ``Retry-After`` that clients retry, never a 500.

OTLP exporters retry 503 (and 429) and drop a batch on any other error, so an outage of the
database must never reach them as a 500. ``DatabaseFailureMiddleware`` (first in ``MIDDLEWARE``)
answers 503 on the API and health routes (JSON; a ``google.rpc.Status`` to protobuf requests) whenever the database or a connection to it fails
at any point of the request — in the view, or before it (session, authentication and role
middleware query too). ``database_busy`` tells a busy database (locks, too many connections:
retry soon) from one that cannot be reached; the gRPC receiver maps them to RESOURCE_EXHAUSTED
and UNAVAILABLE.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, Final

from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from evalhub.core.api_errors import error_response, is_protobuf_request

logger = logging.getLogger(__name__)

RETRY_AFTER_BUSY: Final = 1
RETRY_AFTER_UNAVAILABLE: Final = 5
# Routes answered in JSON, where a database failure becomes a 503.
JSON_PREFIXES: Final = ("/v1/", "/healthz")
# SQLSTATE classes and codes of a database that works but is busy: serialization failure and
# deadlock (40), insufficient resources such as too many connections (53), lock not available
# (55P03), statement timeout (57014).
_BUSY_SQLSTATES: Final = ("40", "53", "55P03", "57014")
_FAILURE_ATTR: Final = "_evalhub_database_failure"


def is_database_failure(exc: BaseException | None) -> bool:
    """Whether ``exc`` is the database failing (not a bad query): Django's
    ``OperationalError`` or ``InterfaceError``."""
    return isinstance(exc, OperationalError | InterfaceError)


def database_busy(exc: BaseException) -> bool:
    """Whether a database failure is the database being busy (it answers, but cannot serve this
    now) rather than unreachable or broken."""
    cause = exc.__cause__ or exc
    sqlstate = getattr(cause, "sqlstate", None) or ""
    if sqlstate.startswith(_BUSY_SQLSTATES):
        return True
    text = str(cause).lower()
    return "database is locked" in text or "database is busy" in text  # SQLite


def retry_after(exc: BaseException) -> int:
    """Seconds a client should wait before sending again."""
    return RETRY_AFTER_BUSY if database_busy(exc) else RETRY_AFTER_UNAVAILABLE


def unavailable_response(exc: BaseException, *, protobuf: bool = False) -> HttpResponse:
    """503 with ``Retry-After``: JSON ``{"detail", "code", "message"}``, or for a protobuf
    request (OTLP) a ``google.rpc.Status`` (UNAVAILABLE) carrying a ``RetryInfo``."""
    seconds = retry_after(exc)
    detail = f"the database is {'busy' if database_busy(exc) else 'unavailable'}; retry later"
    if protobuf:
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=detail)
        status.details.add().Pack(
            error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds))
        )
        response: HttpResponse = HttpResponse(
            status.SerializeToString(), status=503, content_type="application/x-protobuf"
        )
    else:
        response = error_response(503, detail)
    response["Retry-After"] = str(seconds)
    return response


def _json_route(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _note_failure(sender: Any, request: HttpRequest | None = None, **kwargs: Any) -> None:
    # Sent while Django turns an exception raised anywhere in the request into a 500.
    exc = sys.exc_info()[1]
    if request is not None and is_database_failure(exc):
        setattr(request, _FAILURE_ATTR, exc)


got_request_exception.connect(_note_failure, dispatch_uid="evalhub.core.database.failure")


class DatabaseFailureMiddleware:
    """First in ``MIDDLEWARE``. On the API and health routes, a database failure in the view
    (``process_exception``) or in any middleware after this one (Django has already made it a
    500, noted by ``got_request_exception``) becomes ``unavailable_response``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        failure = getattr(request, _FAILURE_ATTR, None)
        if failure is not None and response.status_code == 500 and _json_route(request):
            return unavailable_response(failure, protobuf=is_protobuf_request(request))
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not (is_database_failure(exception) and _json_route(request)):
            return None
        logger.warning("%s %s: database failure: %s", request.method, request.path, exception)
        return unavailable_response(exception, protobuf=is_protobuf_request(request))


__all__ = [
    "RETRY_AFTER_BUSY",
    "RETRY_AFTER_UNAVAILABLE",
    "DatabaseFailureMiddleware",
    "database_busy",
    "is_database_failure",
    "retry_after",
    "unavailable_response",
]
