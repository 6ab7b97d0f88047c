"""OTLP/HTTP trace ingest (``POST /v1/traces``).

Protobuf (``application/x-protobuf``) or OTLP JSON (``application/json``), optionally gzip or
deflate, with a ``Content-Length`` or chunked (``Transfer-Encoding: chunked``, as the Node.js
exporters send). The answer is 200 only once the spans are committed, in the request's format;
invalid spans are left out and counted in its ``partial_success`` (OTLP's partial success),
the valid ones stored. A refused request writes nothing; its body is a ``google.rpc.Status``
(protobuf requests) or JSON ``{"detail", "code", "message"}`` (JSON requests): 400 a payload
that cannot be read, 401 no valid API key, 405 not a POST, 408 a body that stopped arriving,
411 a body of unknown length on a server that cannot read chunked bodies (Django's development
server), 413 too large (as sent or decompressed), 415 content type or encoding, 503 the
database is busy or unavailable (with ``Retry-After``; exporters retry).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from evalhub.core.api_errors import PROTOBUF, error_response
from evalhub.core.database import unavailable_response
from evalhub.identity.auth import ingest_api_key
from tracing.ingest.encoding import (
    BodyTooLargeError,
    UnsupportedEncodingError,
    body_decompress,
    content_codings,
)
from tracing.ingest.otlp import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPES,
    OtlpDecodeError,
    export_response_json,
    export_response_protobuf,
)
from tracing.ingest.receive import otlp_ingest

logger = logging.getLogger(__name__)

_READ_CHUNK = 256 * 1024


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _error(status: int, detail: str, *, protobuf: bool) -> HttpResponse:
    return error_response(status, detail, protobuf=protobuf)


def _read_body(request: HttpRequest, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes; past it ``_Refused(413)`` without reading on."""
    too_large = f"the body is larger than the limit of {limit} bytes"
    raw_length = request.META.get("CONTENT_LENGTH")
    if raw_length not in (None, ""):
        try:
            content_length = int(raw_length)
        except ValueError:
            raise _Refused(400, f"Content-Length {raw_length!r} is not a number") from None
        if content_length < 0:
            raise _Refused(400, "Content-Length is negative")
        if content_length > limit:
            raise _Refused(413, too_large)
        stream = request  # Django bounds it to Content-Length
    elif request.META.get("wsgi.input_terminated"):
        # The server (gunicorn, and others following the WSGI convention) undoes chunked
        # transfer coding and ends the input at the end of the body: read until it ends.
        stream = request.META["wsgi.input"]
    else:
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        raise _Refused(
            411,
            "this server cannot read a chunked body; send a Content-Length, or run EvalHub "
            "under gunicorn (as ./dev run and the production set-up do)"
            if chunked
            else "a Content-Length header is required",
        )
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= limit:
            chunk = stream.read(min(_READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:  # Django wraps it in UnreadablePostError
        if isinstance(exc, TimeoutError) or isinstance(exc.__cause__, TimeoutError):
            raise _Refused(408, "the request body stopped arriving") from None
        raise _Refused(400, f"the request body could not be read: {exc}") from None
    if size > limit:
        raise _Refused(413, too_large)
    return b"".join(chunks)


@csrf_exempt
@transaction.non_atomic_requests  # 200 means committed, even with ATOMIC_REQUESTS on
def otlp_traces(request: HttpRequest) -> HttpResponse:
    content_type = (request.content_type or "").lower()
    is_json = content_type == JSON_CONTENT_TYPE
    protobuf = content_type in PROTOBUF_CONTENT_TYPES
    if request.method != "POST":
        response = _error(
            405, f"method {request.method} is not allowed; POST OTLP spans", protobuf=protobuf
        )
        response["Allow"] = "POST"
        return response
    if ingest_api_key(request.headers) is None:
        return _error(
            401,
            "a valid API key is required: send 'Authorization: Bearer <key>' or 'api_key'",
            protobuf=protobuf,
        )
    if not (is_json or protobuf):
        return _error(
            415,
            f"Content-Type {content_type or '(none)'!r} is not supported; "
            "use application/x-protobuf or application/json",
            protobuf=False,
        )
    content_encoding = request.headers.get("Content-Encoding")
    try:
        content_codings(content_encoding)
    except UnsupportedEncodingError as exc:
        return _error(415, str(exc), protobuf=protobuf)

    limit: int = settings.EVALHUB_MAX_BODY_SIZE
    try:
        body = _read_body(request, limit)
        body = body_decompress(body, content_encoding=content_encoding, max_size=limit)
        result = otlp_ingest(
            body=body, is_json=is_json, project_name=request.headers.get("x-project-name")
        )
    except _Refused as exc:
        return _error(exc.status, exc.detail, protobuf=protobuf)
    except BodyTooLargeError as exc:
        return _error(413, str(exc), protobuf=protobuf)
    except OtlpDecodeError as exc:
        return _error(400, str(exc), protobuf=protobuf)
    except DataError as exc:
        logger.warning("OTLP batch rejected by the database: %s", exc)
        return _error(400, f"the database rejected a value in this batch: {exc}", protobuf=protobuf)
    except (OperationalError, InterfaceError) as exc:  # evalhub.core.database.is_database_failure
        logger.warning("OTLP batch not stored: database failure: %s", exc)
        return unavailable_response(exc, protobuf=protobuf)

    if result.rejected:
        logger.info(
            "OTLP batch: %d span(s) stored, %d rejected (first: %s)",
            result.inserted,
            len(result.rejected),
            result.rejected[0],
        )
    if is_json:
        return HttpResponse(export_response_json(result.rejected), content_type=JSON_CONTENT_TYPE)
    return HttpResponse(export_response_protobuf(result.rejected), content_type=PROTOBUF)
