"""Error bodies of the API: JSON ``{"detail", "code", "message"}``, or for a protobuf request
(OTLP over HTTP, as the OTLP specification asks) a ``google.rpc.Status``. One home for the shape,
used by the access middleware, the database-failure middleware and the OTLP view."""

from __future__ import annotations

from typing import Final

from django.http import HttpRequest, HttpResponse, JsonResponse
from google.rpc import code_pb2, status_pb2

PROTOBUF: Final = "application/x-protobuf"
PROTOBUF_TYPES: Final = (PROTOBUF, "application/protobuf")
# The google.rpc.Code in an error body, by HTTP status.
RPC_CODES: Final = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    411: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


def is_protobuf_request(request: HttpRequest) -> bool:
    return (request.content_type or "").lower() in PROTOBUF_TYPES


def error_response(status: int, detail: str, *, protobuf: bool = False) -> HttpResponse:
    """The response refusing a request with ``status`` for the reason ``detail``."""
    code = RPC_CODES.get(status, code_pb2.UNKNOWN)
    if protobuf:
        body = status_pb2.Status(code=code, message=detail).SerializeToString()
        return HttpResponse(body, status=status, content_type=PROTOBUF)
    return JsonResponse({"detail": detail, "code": code, "message": detail}, status=status)
