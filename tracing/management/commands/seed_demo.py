from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tracing.demo import DEMO_SEED, demo_seed
from tracing.demo.seed import DEFAULT_DAYS, DEFAULT_PROJECT, DEFAULT_TRACES


class Command(BaseCommand):
    help = (
        "Store realistic demo traces (agent and RAG, with sessions, errors and evaluations). "
        "Deterministic and idempotent: running it again adds nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--traces", type=int, default=DEFAULT_TRACES)
        parser.add_argument("--project", default=DEFAULT_PROJECT)
        parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="spread over N days")
        parser.add_argument("--seed", type=int, default=DEMO_SEED)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = demo_seed(
                traces=options["traces"],
                project=options["project"],
                days=options["days"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Project {result.project!r}: {result.traces} traces, {result.spans} spans "
            f"({result.spans_inserted} new), {result.annotations} evaluations and labels."
        )
