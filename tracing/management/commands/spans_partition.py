"""``manage.py spans_partition [--batch 100000]``: convert the span table into the partitioned
table (PostgreSQL) with the site up, ahead of the release whose migration
(``tracing.0007_span_partitions``) would otherwise do it in one transaction.

Rows are copied in committed id ranges; the last step (rows added meanwhile, name swap) holds
writes back for a moment. Pause retention while it runs (spans deleted during the copy would
come back). Running it again, or the migration after it, does nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from tracing.partitions import partition_days, partitions, span_table_partition


class Command(BaseCommand):
    help = "Convert tracing_span into a table partitioned by start_time (PostgreSQL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=100_000, help="rows per copy step")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("the span table is partitioned on PostgreSQL only")
        if partition_days() <= 0:
            raise CommandError("EVALHUB_SPAN_PARTITION_DAYS is 0: partitioning is off")
        if options["batch"] < 1:
            raise CommandError("--batch: must be 1 or more")
        done = span_table_partition(
            batch=options["batch"], in_transactions=True, progress=self.stdout.write
        )
        if not done:
            self.stdout.write(
                f"tracing_span is partitioned already ({len(partitions())} partitions)"
            )
