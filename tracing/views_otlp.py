"""OTLP/HTTP trace ingest (``POST /v1/traces``).

Protobuf (``application/x-protobuf``) or OTLP JSON (``application/json``), optionally gzip or
deflate. The answer is 200 only once the spans are committed; a rejected request writes nothing.
Errors are JSON ``{"detail": ...}``: 400 bad payload or span, 401 no valid API key, 405 not a
POST, 411 no Content-Length (chunked bodies are not read by WSGI), 413 too large (as sent or
decompressed), 415 content type or encoding, 503 database busy (the exporter retries).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from evalhub.auth import request_api_key
from tracing.ingest import (
    BodyTooLargeError,
    OtlpDecodeError,
    SpanRecordError,
    UnsupportedEncodingError,
    body_decompress,
    spans_from_otlp_json,
    spans_from_otlp_protobuf,
)
from tracing.ingest.otlp import (
    JSON_CONTENT_TYPE,
    PROTOBUF_CONTENT_TYPES,
    content_codings,
    export_response_json,
    export_response_protobuf,
)
from tracing.services import spans_ingest

logger = logging.getLogger(__name__)


def _error(status: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=status)


@csrf_exempt
@transaction.non_atomic_requests  # 200 means committed, even with ATOMIC_REQUESTS on
def otlp_traces(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = _error(405, f"method {request.method} is not allowed; POST OTLP spans")
        response["Allow"] = "POST"
        return response
    if request_api_key(request) is None:
        return _error(
            401, "a valid API key is required: send 'Authorization: Bearer <key>' or 'api_key'"
        )

    content_type = (request.content_type or "").lower()
    is_json = content_type == JSON_CONTENT_TYPE
    if not is_json and content_type not in PROTOBUF_CONTENT_TYPES:
        return _error(
            415,
            f"Content-Type {content_type or '(none)'!r} is not supported; "
            "use application/x-protobuf or application/json",
        )
    content_encoding = request.headers.get("Content-Encoding")
    try:
        content_codings(content_encoding)
    except UnsupportedEncodingError as exc:
        return _error(415, str(exc))

    limit: int = settings.EVALHUB_MAX_BODY_SIZE
    try:
        content_length = int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return _error(411, "a Content-Length header is required")
    if content_length < 0:
        return _error(400, "Content-Length is negative")
    too_large = f"the body is larger than the limit of {limit} bytes"
    if content_length > limit:
        return _error(413, too_large)
    try:
        body = request.read(limit + 1)
    except RequestDataTooBig:
        return _error(413, too_large)
    if len(body) > limit:
        return _error(413, too_large)

    project_name = request.headers.get("x-project-name")
    try:
        body = body_decompress(body, content_encoding=content_encoding, max_size=limit)
        decode = spans_from_otlp_json if is_json else spans_from_otlp_protobuf
        records = decode(body, project_name=project_name)
        spans_ingest(records=records, default_project=project_name)
    except BodyTooLargeError as exc:
        return _error(413, str(exc))
    except (OtlpDecodeError, SpanRecordError) as exc:
        return _error(400, str(exc))
    except DataError as exc:
        logger.warning("OTLP batch rejected by the database: %s", exc)
        return _error(400, f"the database rejected a value in this batch: {exc}")
    except OperationalError:
        logger.exception("OTLP batch not stored: database unavailable")
        response = _error(503, "the database is busy or unavailable; retry later")
        response["Retry-After"] = "1"
        return response

    if is_json:
        return HttpResponse(export_response_json(), content_type=JSON_CONTENT_TYPE)
    return HttpResponse(export_response_protobuf(), content_type="application/x-protobuf")
