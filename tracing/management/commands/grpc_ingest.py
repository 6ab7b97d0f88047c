from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing.ingest.grpc import grpc_server

# Seconds a stopping server gives the requests in flight (gunicorn's graceful_timeout too).
STOP_GRACE_SECONDS = 20


class Command(BaseCommand):
    help = (
        "Serve OTLP/gRPC trace ingest (opentelemetry.proto.collector.trace.v1.TraceService/"
        "Export) on EVALHUB_GRPC_HOST:EVALHUB_GRPC_PORT (127.0.0.1:4317): one process holds the "
        "connections, ingest processes store the spans. SIGTERM or Ctrl-C stops it after the "
        "requests in flight."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=settings.EVALHUB_GRPC_HOST)
        parser.add_argument(
            "--port", type=int, default=settings.EVALHUB_GRPC_PORT, help="0 for a free port"
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=settings.EVALHUB_GRPC_THREADS,
            help="requests served at once",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.EVALHUB_GRPC_PROCESSES,
            help="ingest processes that decode and store the spans (one per core); "
            "0 stores them in the server process",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port, threads, processes = (
            options["host"],
            options["port"],
            options["threads"],
            options["processes"],
        )
        if threads < 1 or processes < 0:
            raise CommandError("--threads must be at least 1 and --processes at least 0")
        try:
            server = grpc_server(host=host, port=port, threads=threads, processes=processes)
        except OSError as exc:
            raise CommandError(
                f"cannot serve OTLP/gRPC on {host}:{port}: {exc} (another process may hold the "
                "port: choose another with EVALHUB_GRPC_PORT or --port)"
            ) from exc
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        self.stdout.write(
            f"OTLP/gRPC listening on {host}:{server.port} ({threads} threads, "
            f"{processes or 'no'} ingest process{'es' if processes != 1 else ''})"
        )
        self.stdout.flush()
        stop.wait()
        self.stdout.write("stopping: finishing the requests in flight")
        self.stdout.flush()
        server.stop(STOP_GRACE_SECONDS)
