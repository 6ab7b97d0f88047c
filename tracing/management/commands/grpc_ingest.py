from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.supervisor import ProcessSpec, Supervisor
from tracing.grpc_otlp import grpc_server

# Seconds a stopping server gives the requests in flight (gunicorn's graceful_timeout too).
STOP_GRACE_SECONDS = 20


class Command(BaseCommand):
    help = (
        "Serve OTLP/gRPC trace ingest (opentelemetry.proto.collector.trace.v1.TraceService/"
        "Export) on EVALHUB_GRPC_HOST:EVALHUB_GRPC_PORT (127.0.0.1:4317), with a thread pool; "
        "SIGTERM or Ctrl-C stops it after the requests in flight."
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
            help="requests served at once by each process",
        )
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.EVALHUB_GRPC_PROCESSES,
            help="processes sharing the port (SO_REUSEPORT), e.g. one per core",
        )
        parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["threads"] < 1 or options["processes"] < 1:
            raise CommandError("--threads and --processes must be at least 1")
        if options["processes"] > 1:
            self._supervise(options)
        else:
            self._serve(options)

    def _serve(self, options: dict[str, Any]) -> None:
        host, threads = options["host"], options["threads"]
        try:
            server, port = grpc_server(
                host=host, port=options["port"], threads=threads, reuse_port=options["reuse_port"]
            )
        except (OSError, RuntimeError) as exc:
            raise CommandError(
                f"cannot serve OTLP/gRPC on {host}:{options['port']}: {exc} (another process "
                "may hold the port: choose another with EVALHUB_GRPC_PORT or --port)"
            ) from exc
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        server.start()
        self.stdout.write(f"OTLP/gRPC listening on {host}:{port} ({threads} threads)")
        self.stdout.flush()
        stop.wait()
        self.stdout.write("stopping: finishing the requests in flight")
        server.stop(grace=STOP_GRACE_SECONDS).wait()

    def _supervise(self, options: dict[str, Any]) -> None:
        if options["port"] == 0:
            raise CommandError("--processes > 1 needs a fixed --port")
        argv = [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "grpc_ingest",
            "--host",
            options["host"],
            "--port",
            str(options["port"]),
            "--threads",
            str(options["threads"]),
            "--processes",
            "1",
            "--reuse-port",
        ]
        specs = [ProcessSpec(f"grpc-{n}", argv) for n in range(1, options["processes"] + 1)]
        code = Supervisor(specs, cwd=settings.BASE_DIR, stream=sys.stdout).run()
        if code:
            raise CommandError(f"a process exited with code {code}", returncode=code)
