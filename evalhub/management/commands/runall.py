from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalhub.supervisor import Supervisor, evalhub_processes


class Command(BaseCommand):
    help = (
        "Run the web server (gunicorn), the OTLP/gRPC receiver (grpc_ingest), a Celery worker "
        "and Celery beat together, with their output prefixed; Ctrl-C stops them all. For one "
        "machine; see the README for production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--worker-concurrency", type=int, default=2, help="Celery worker processes"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["worker_concurrency"] < 1:
            raise CommandError("--worker-concurrency must be at least 1")
        specs = evalhub_processes(
            python=sys.executable,
            base_dir=settings.BASE_DIR,
            worker_concurrency=options["worker_concurrency"],
            queues=("celery", settings.EVALHUB_SANDBOX_QUEUE),
        )
        code = Supervisor(specs, cwd=settings.BASE_DIR, stream=sys.stdout).run()
        if code:
            raise CommandError(f"a process exited with code {code}", returncode=code)
