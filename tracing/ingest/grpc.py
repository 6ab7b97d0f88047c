"""OTLP/gRPC trace ingest: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The gRPC twin of ``tracing.ingest.http`` (OTLP/HTTP), and the same ingest behind it
(``tracing.ingest.receive.otlp_ingest``): the same API key check (``evalhub.identity.auth.ingest_api_key``)
on the metadata ``authorization: Bearer <key>`` or ``api_key``, the same project choice
(``x-project-name`` metadata, else the resource attribute ``openinference.project.name``), the
same limit (``EVALHUB_MAX_BODY_SIZE``, also on a gzip-compressed message once inflated) and OTLP's
partial success. The answer comes once the spans are committed. Status codes: UNAUTHENTICATED
(no valid key), INVALID_ARGUMENT (a message that cannot be read), RESOURCE_EXHAUSTED (too large,
from gRPC itself; or the database is busy, with a ``google.rpc.RetryInfo``), UNAVAILABLE (the
database cannot be reached, or an ingest process died, with a ``RetryInfo``); exporters retry
the last two.

How it runs (``manage.py grpc_ingest``): one server process holds every connection (gRPC's
C core does the network work) and a pool of threads waits on the requests; each request is
stored by ``export_outcome`` in one of ``processes`` ingest processes, whichever is free, so
decoding and storing spread over the cores whatever the number of client connections (a gRPC
client sends everything over one). With ``processes=0`` the server's own threads store the
spans (the tests, on an in-memory database). Either way every request starts and ends by closing
its thread's database connection when it is broken or past ``CONN_MAX_AGE``, as Django does
around an HTTP request.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import NoReturn

import grpc
from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, close_old_connections
from django.utils.datastructures import CaseInsensitiveMapping
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from evalhub.core.database import RETRY_AFTER_UNAVAILABLE, database_busy, retry_after
from evalhub.identity.auth import ingest_api_key
from tracing.ingest.grpc_process import ingest_process_start
from tracing.ingest.otlp import OtlpDecodeError, export_response_protobuf
from tracing.ingest.receive import otlp_ingest

logger = logging.getLogger(__name__)

SERVICE = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
# Trailing metadata the OpenTelemetry exporters read their back-off from (besides the standard
# ``grpc-status-details-bin``, which carries the same ``RetryInfo`` in a ``google.rpc.Status``).
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"
# Requests an ingest process serves before it is replaced by a fresh one (as gunicorn's
# max_requests), so a slow leak in a dependency cannot grow without bound.
TASKS_PER_PROCESS = 2000


@dataclass(frozen=True, slots=True)
class ExportOutcome:
    """What an export came to, small enough to travel back from an ingest process: the
    response bytes when ``code`` is OK, else the status, its message and a retry delay."""

    code: grpc.StatusCode
    message: str = ""
    response: bytes = b""
    retry_after: int | None = None


def export_outcome(body: bytes, metadata: Mapping[str, str]) -> ExportOutcome:
    """Check the key in ``metadata`` and store the spans of ``body`` (a serialized
    ``ExportTraceServiceRequest``): the whole of one ``Export`` but the network."""
    close_old_connections()
    try:
        return _export_outcome(body, CaseInsensitiveMapping(dict(metadata)))
    finally:
        close_old_connections()


def _export_outcome(body: bytes, headers: Mapping[str, str]) -> ExportOutcome:
    try:
        if ingest_api_key(headers) is None:
            return ExportOutcome(
                grpc.StatusCode.UNAUTHENTICATED,
                "a valid API key is required: send 'authorization: Bearer <key>' or "
                "'api_key' metadata",
            )
        result = otlp_ingest(body=body, is_json=False, project_name=headers.get("x-project-name"))
    except OtlpDecodeError as exc:
        return ExportOutcome(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    except DataError as exc:
        logger.warning("OTLP/gRPC batch rejected by the database: %s", exc)
        return ExportOutcome(
            grpc.StatusCode.INVALID_ARGUMENT, f"the database rejected a value in this batch: {exc}"
        )
    except (OperationalError, InterfaceError) as exc:  # evalhub.core.database.is_database_failure
        busy = database_busy(exc)
        logger.warning("OTLP/gRPC batch not stored: database failure: %s", exc)
        return ExportOutcome(
            grpc.StatusCode.RESOURCE_EXHAUSTED if busy else grpc.StatusCode.UNAVAILABLE,
            f"the database is {'busy' if busy else 'unavailable'}; retry later",
            retry_after=retry_after(exc),
        )
    if result.rejected:
        logger.info(
            "OTLP/gRPC batch: %d span(s) stored, %d rejected (first: %s)",
            result.inserted,
            len(result.rejected),
            result.rejected[0],
        )
    return ExportOutcome(grpc.StatusCode.OK, response=export_response_protobuf(result.rejected))


def _abort(context: grpc.ServicerContext, outcome: ExportOutcome) -> NoReturn:
    rich = status_pb2.Status(code=outcome.code.value[0], message=outcome.message)
    extra: tuple[tuple[str, bytes], ...] = ()
    if outcome.retry_after is not None:
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=outcome.retry_after)
        )
        rich.details.add().Pack(retry)
        extra = ((RETRY_INFO_KEY, retry.SerializeToString()),)
    # ``to_status`` puts the rich status in ``grpc-status-details-bin``.
    status = rpc_status.to_status(rich)
    context.abort_with_status(status._replace(trailing_metadata=status.trailing_metadata + extra))
    raise AssertionError("abort_with_status returns only by raising")  # pragma: no cover


class IngestPool:
    """``processes`` ingest processes (started fresh, never forked from the gRPC server), with a
    new pool when one died: the requests it held fail with UNAVAILABLE and are sent again."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._lock = threading.Lock()
        self._executor = self._new()
        # Broken pools are kept: collecting one while its manager thread still cleans up can
        # deadlock that thread (CPython 3.12's weakref callback), and the exit then hangs.
        self._broken: list[ProcessPoolExecutor] = []

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=ingest_process_start,
            max_tasks_per_child=TASKS_PER_PROCESS,
        )

    def run(self, body: bytes, metadata: dict[str, str]) -> ExportOutcome:
        with self._lock:
            executor = self._executor
        try:
            return executor.submit(export_outcome, body, metadata).result()
        except BrokenProcessPool:
            logger.error("an OTLP/gRPC ingest process died; starting new ones")
            with self._lock:
                if self._executor is executor:
                    self._broken.append(executor)
                    self._executor = self._new()
            return ExportOutcome(
                grpc.StatusCode.UNAVAILABLE,
                "the ingest process handling this request stopped; retry",
                retry_after=RETRY_AFTER_UNAVAILABLE,
            )

    def shutdown(self) -> None:
        with self._lock:
            self._executor.shutdown(wait=True, cancel_futures=False)


class TraceService:
    """``TraceService/Export`` on raw bytes: the request is decoded by ``otlp_ingest`` (as the
    HTTP body is), so a payload that cannot be read is an INVALID_ARGUMENT naming the problem."""

    def __init__(self, pool: IngestPool | None) -> None:
        self.pool = pool

    def export(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        if self.pool is None:
            outcome = export_outcome(request, metadata)
        else:
            outcome = self.pool.run(request, metadata)
        if outcome.code != grpc.StatusCode.OK:
            _abort(context, outcome)
        return outcome.response


class OtlpGrpcServer:
    """The gRPC server and its ingest pool; ``start()``, then ``stop(grace)``."""

    def __init__(self, server: grpc.Server, port: int, pool: IngestPool | None) -> None:
        self.server = server
        self.port = port
        self.pool = pool

    def start(self) -> None:
        self.server.start()

    def stop(self, grace: float | None = None) -> None:
        """Stop taking requests, finish those in flight (at most ``grace`` seconds), then stop
        the ingest processes."""
        self.server.stop(grace).wait()
        if self.pool is not None:
            self.pool.shutdown()


def grpc_server(*, host: str, port: int, threads: int, processes: int = 0) -> OtlpGrpcServer:
    """An OTLP/gRPC server bound to ``host:port`` (port 0: a free one, see ``.port``), serving
    ``threads`` requests at once, stored by ``processes`` ingest processes (0: by the server's
    threads). A port in use is an ``OSError``. Call ``start()``."""
    limit: int = settings.EVALHUB_MAX_BODY_SIZE
    options: Sequence[tuple[str, int]] = (
        ("grpc.max_receive_message_length", limit),
        ("grpc.so_reuseport", 0),
    )
    executor: Executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="otlp-grpc")
    server = grpc.server(executor, options=options)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"could not listen on {address}: {exc}") from None
    if not bound:
        raise OSError(f"could not listen on {address}")
    pool = IngestPool(processes) if processes > 0 else None
    handler = grpc.unary_unary_rpc_method_handler(TraceService(pool).export)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    return OtlpGrpcServer(server, bound, pool)


__all__ = [
    "SERVICE",
    "ExportOutcome",
    "IngestPool",
    "OtlpGrpcServer",
    "TraceService",
    "export_outcome",
    "grpc_server",
]
