"""OTLP/gRPC trace ingest: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The gRPC twin of ``tracing.views_otlp`` (OTLP/HTTP), and the same ingest behind it
(``tracing.services.otlp_ingest``): the same API key check (``evalhub.auth.ingest_api_key``)
on the metadata ``authorization: Bearer <key>`` or ``api_key``, the same project choice
(``x-project-name`` metadata, else the resource attribute ``openinference.project.name``), the
same limit (``EVALHUB_MAX_BODY_SIZE``, also on a gzip-compressed message once inflated) and OTLP's
partial success. The answer comes once the spans are committed. Status codes: UNAUTHENTICATED
(no valid key), INVALID_ARGUMENT (a message that cannot be read), RESOURCE_EXHAUSTED (too large,
from gRPC itself; or the database is busy, with a ``google.rpc.RetryInfo``), UNAVAILABLE (the
database cannot be reached, with a ``RetryInfo``); exporters retry the last two.

Requests are served by a thread pool; every request starts and ends by closing the thread's
database connection when it is broken or past ``CONN_MAX_AGE``, as Django does around an HTTP
request. Run it with ``manage.py grpc_ingest``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

import grpc
from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, close_old_connections
from django.utils.datastructures import CaseInsensitiveMapping
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from evalhub.auth import ingest_api_key
from evalhub.database import database_busy, retry_after
from tracing.ingest import OtlpDecodeError
from tracing.ingest.otlp import export_response_protobuf
from tracing.services import otlp_ingest

logger = logging.getLogger(__name__)

SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
# Trailing metadata the OpenTelemetry exporters read their back-off from (besides the standard
# ``grpc-status-details-bin``, which carries the same ``RetryInfo`` in a ``google.rpc.Status``).
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


def _abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    *,
    retry_after_seconds: int | None = None,
) -> NoReturn:
    rich = status_pb2.Status(code=code.value[0], message=message)
    extra: tuple[tuple[str, bytes], ...] = ()
    if retry_after_seconds is not None:
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=retry_after_seconds)
        )
        rich.details.add().Pack(retry)
        extra = ((RETRY_INFO_KEY, retry.SerializeToString()),)
    # ``to_status`` puts the rich status in ``grpc-status-details-bin``.
    status = rpc_status.to_status(rich)
    context.abort_with_status(status._replace(trailing_metadata=status.trailing_metadata + extra))
    raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover


class TraceService:
    """``TraceService/Export`` on raw bytes: the request is decoded by ``otlp_ingest`` (as the
    HTTP body is), so a payload that cannot be read is an INVALID_ARGUMENT naming the problem."""

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        close_old_connections()
        started = time.monotonic()
        try:
            return self._export(request, context)
        finally:
            close_old_connections()
            logger.debug("Export from %s took %.0f ms", context.peer(), _ms(started))

    def _export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        headers = CaseInsensitiveMapping(
            {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
        )
        try:
            if ingest_api_key(headers) is None:
                _abort(
                    context,
                    grpc.StatusCode.UNAUTHENTICATED,
                    "a valid API key is required: send 'authorization: Bearer <key>' or "
                    "'api_key' metadata",
                )
            result = otlp_ingest(
                body=request, is_json=False, project_name=headers.get("x-project-name")
            )
        except OtlpDecodeError as exc:
            _abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except DataError as exc:
            logger.warning("OTLP/gRPC batch rejected by the database: %s", exc)
            _abort(
                context,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the database rejected a value in this batch: {exc}",
            )
        except (OperationalError, InterfaceError) as exc:  # evalhub.database.is_database_failure
            busy = database_busy(exc)
            logger.warning("OTLP/gRPC batch not stored: database failure: %s", exc)
            _abort(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED if busy else grpc.StatusCode.UNAVAILABLE,
                f"the database is {'busy' if busy else 'unavailable'}; retry later",
                retry_after_seconds=retry_after(exc),
            )
        if result.rejected:
            logger.info(
                "OTLP/gRPC batch: %d span(s) stored, %d rejected (first: %s)",
                result.inserted,
                len(result.rejected),
                result.rejected[0],
            )
        return export_response_protobuf(result.rejected)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def grpc_server(
    *, host: str, port: int, threads: int, reuse_port: bool = False
) -> tuple[grpc.Server, int]:
    """A started-to-be OTLP/gRPC server bound to ``host:port`` (port 0: a free one) and the
    port it got. ``reuse_port`` lets several processes bind the same port (the kernel spreads
    connections over them); without it a port in use is an error. Call ``start()``."""
    limit: int = settings.EVALHUB_MAX_BODY_SIZE
    options: Sequence[tuple[str, int]] = (
        ("grpc.max_receive_message_length", limit),
        ("grpc.so_reuseport", 1 if reuse_port else 0),
    )
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="otlp-grpc"),
        options=options,
    )
    handler = grpc.unary_unary_rpc_method_handler(TraceService().export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if not bound:
        raise OSError(f"could not listen on {address}")
    return server, bound


__all__ = ["SERVICE", "TraceService", "grpc_server"]
