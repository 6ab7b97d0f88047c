"""The partitioned span table at scale (PostgreSQL): load a project of ``--spans`` spans over
``--days`` days into ``evalhub_bench_partition``, then time a retention pass on it.

    .venv/bin/python bench/partition_bench.py load --spans 10000000 --days 30
    EVALHUB_BENCH_DB=evalhub_bench_partition .venv/bin/python bench/query_bench.py \\
        --spans 10000000 --no-export                      # spans API p50/p95
    EVALHUB_BENCH_DB=evalhub_bench_partition .venv/bin/python bench/browser_bench.py
    .venv/bin/python bench/partition_bench.py retention --keep 15   # destructive

``load`` ingests a base of ``--base`` spans through the ingest service (the retention
benchmark's five-span traces, in requests spread evenly over the days, in project ``bench``),
then copies it inside PostgreSQL until the project holds ``--spans`` spans: one ``INSERT …
SELECT`` over ``generate_series`` makes ``--chunk`` copies of the base's traces and spans (new
trace and span ids; copy ``k`` of a row is ``k`` steps older, the steps filling the time between
the base's requests, so the traces are spread evenly over the days), with the span and trace
tables' secondary indexes set aside and rebuilt once after, the foreign keys' per-row checks
off (the copies are consistent by construction) and ``synchronous_commit`` off. Then it
annotates one root span in 50 at random (``Correctness``, through the annotation service), and
runs ``VACUUM (ANALYZE)``. Loading 10M spans through the ingest path would take hours on the
2-core machine; the copies go through the same partitioned table and end with the same indexes
and constraints.

``retention`` sets the project's limit to ``--keep`` days and runs one retention sweep (the
partitions older than every project's limit are dropped, the rest goes in batches) in a
process of its own; it prints the time, what was removed and the process's peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.payloads import aged_requests  # noqa: E402

DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_partition")
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")

# Copy ``k`` of base trace ``b`` gets id ``b.id + k * stride``: its spans find their trace by
# arithmetic, not by a join, and one statement makes many copies (``generate_series``).
_TRACE_COPY = """
INSERT INTO tracing_trace (id, project_id, trace_id, session_id, root_span_id, root_span_name,
    start_time, end_time, latency_ms, span_count, error_count, prompt_tokens,
    completion_tokens, total_tokens, cost, created_at)
SELECT b.id + k * %(trace_stride)s::int, project_id, md5(trace_id || '-' || k), NULL,
    left(md5(root_span_id || '-' || k), 16), root_span_name,
    start_time - k * %(step)s::interval, end_time - k * %(step)s::interval, latency_ms,
    span_count, error_count, prompt_tokens, completion_tokens, total_tokens, cost, created_at
FROM generate_series(%(first)s::int, %(last)s::int) k, tracing_trace b
WHERE b.id <= %(trace_stride)s::int
"""
_SPAN_COPY = """
INSERT INTO tracing_span (id, {columns})
SELECT s.id + k * %(span_stride)s::int, {selected}
FROM generate_series(%(first)s::int, %(last)s::int) k, tracing_span s
WHERE s.id <= %(span_stride)s::int
"""


def _copy_sql(columns: list[str]) -> str:
    replaced = {
        "trace_id": "s.trace_id + k * %(trace_stride)s::int",
        "span_id": "left(md5(s.span_id || '-' || k), 16)",
        "parent_id": "left(md5(s.parent_id || '-' || k), 16)",
        "session_id": "NULL",
        "start_time": "s.start_time - k * %(step)s::interval",
        "end_time": "s.end_time - k * %(step)s::interval",
        "ingested_at": "now()",
    }
    selected = ", ".join(replaced.get(c, f"s.{c}") for c in columns)
    return _SPAN_COPY.format(columns=", ".join(columns), selected=selected)


_TABLES = ("tracing_span", "tracing_trace")


def _aside_file() -> Path:
    return Path("/tmp") / f"{DB}-indexes.json"


def _indexes_set_aside(cursor: Any) -> None:
    """Drop the span and trace tables' indexes but their primary keys for the copies (the
    definitions are kept in a file, so an interrupted load restores them when run again)."""
    if _aside_file().exists():
        return
    aside: dict[str, list[list[str]]] = {"constraints": [], "indexes": []}
    for table in _TABLES:
        cursor.execute(
            "SELECT %s, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u'",
            [table, table],
        )
        aside["constraints"] += cursor.fetchall()
        cursor.execute(
            "SELECT %s, indexname, indexdef FROM pg_indexes WHERE tablename = %s "
            "AND indexname <> %s AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
            [table, table, f"{table}_pkey", table],
        )
        aside["indexes"] += cursor.fetchall()
    _aside_file().write_text(json.dumps(aside))
    for table, name, _ in aside["constraints"]:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for _table, name, _ in aside["indexes"]:
        cursor.execute(f"DROP INDEX {name}")


def _indexes_restore(cursor: Any) -> None:
    if not _aside_file().exists():
        return
    aside = json.loads(_aside_file().read_text())
    began = time.monotonic()
    cursor.execute("SET maintenance_work_mem = '1GB'")
    for table, name, definition in aside["constraints"]:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
    for _table, _name, definition in aside["indexes"]:
        # pg_indexes says "ON ONLY" for a partitioned table: that would build no partition's index.
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
    _aside_file().unlink()
    print(f"indexes rebuilt in {time.monotonic() - began:.0f} s", flush=True)


def _strides(cursor: Any) -> tuple[int, int, int]:
    """The base's largest trace id and span id (copy ``k`` of a row adds ``k`` times them to
    its id) and the number of copies already made. The base is what was ingested: its spans
    have sessions, the copies' spans have none."""
    cursor.execute("SELECT max(id) FROM tracing_span WHERE session_id IS NOT NULL")
    span_stride = cursor.fetchone()[0]
    cursor.execute("SELECT max(trace_id) FROM tracing_span WHERE id <= %s", [span_stride])
    trace_stride = cursor.fetchone()[0]
    cursor.execute("SELECT max(id) FROM tracing_trace")
    copies = (cursor.fetchone()[0] - 1) // trace_stride
    return trace_stride, span_stride, copies


def _annotate(project: Any) -> None:
    """A ``Correctness`` LLM result on one root span in 50, drawn at random (30 %
    ``incorrect``), through the annotation service."""
    from annotations.models import AnnotationSource
    from annotations.store.services import AnnotationInput, annotations_upsert
    from bench.payloads import correctness_result
    from tracing.models import Span

    roots = Span.objects.filter(project=project, parent_id__isnull=True).values_list(
        "span_id", flat=True
    )
    rng = random.Random(3)
    batch: list[AnnotationInput] = []
    for span_id in roots.iterator(20_000):
        if rng.random() >= 0.02:
            continue
        batch.append(correctness_result(span_id, rng.random() > 0.3))
        if len(batch) == 2000:
            annotations_upsert(items=batch, source=AnnotationSource.API, project=project)
            batch = []
    if batch:
        annotations_upsert(items=batch, source=AnnotationSource.API, project=project)


def load(args: argparse.Namespace) -> None:
    ensure_database(DB, args.reload)
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from tracing.ingest.otlp import spans_from_otlp_protobuf
    from tracing.models import Project, Span
    from tracing.partitions import partitions, partitions_ensure
    from tracing.store.services import spans_ingest

    call_command("migrate", verbosity=0)
    # The partitions of the days to load (beat creates them from today on).
    partitions_ensure(ahead=args.days // 7 + 6, now=timezone.now() - timedelta(days=args.days + 7))
    partitions_ensure()
    began = time.monotonic()
    if not Span.objects.exists():
        for body in aged_requests(args.base, args.days, run="p"):
            spans_ingest(records=spans_from_otlp_protobuf(body, project_name="bench").records)
        took = time.monotonic() - began
        print(f"base: {args.base:,} spans ingested, {args.base / took:,.0f} spans/s", flush=True)
    with connection.cursor() as cursor:
        trace_stride, span_stride, done = _strides(cursor)
        cursor.execute("SELECT count(*) FROM tracing_span WHERE id <= %s", [span_stride])
        base_spans = cursor.fetchone()[0]
        copies = -(-args.spans // base_spans) - 1
        # The base's requests are ``days / requests`` apart; copy ``k`` is ``k`` steps older, so
        # the copies fill the gaps and the project's traces are spread evenly over the days.
        requests = max(base_spans // 5000, 1)
        step = timedelta(days=args.days) / requests / (copies + 1)
        columns = [str(f.column) for f in Span._meta.concrete_fields if not f.primary_key]
        sql = _copy_sql(columns)
        if done < copies:
            _indexes_set_aside(cursor)
        # The copies are consistent by construction (a copy's spans point at the copy of
        # their trace): the foreign keys' per-row triggers are skipped while they are made.
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        started = time.monotonic()
        for first in range(done + 1, copies + 1, args.chunk):
            params = {
                "step": step,
                "first": first,
                "last": min(first + args.chunk - 1, copies),
                "trace_stride": trace_stride,
                "span_stride": span_stride,
            }
            with transaction.atomic():
                cursor.execute(_TRACE_COPY, params)
                cursor.execute(sql, params)
            have = base_spans * (params["last"] + 1)
            copied = base_spans * (params["last"] - done)
            rate = copied / (time.monotonic() - started)
            print(f"  {have:,} spans ({rate:,.0f} spans/s copied)", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
        if done < copies:
            print(f"copies made in {time.monotonic() - started:.0f} s", flush=True)
        for table, sequence in (
            ("tracing_trace", "tracing_trace_id_seq"),
            ("tracing_span", "tracing_span_id_seq"),
        ):
            cursor.execute(f"SELECT setval('{sequence}', (SELECT max(id) FROM {table}))")
        _indexes_restore(cursor)
        # Statistics of the copied rows before the annotation service looks spans up: without
        # them the planner takes the partitions for empty and the look-ups crawl.
        cursor.execute("ANALYZE tracing_span, tracing_trace")
    project = Project.objects.get(name="bench")
    if not project.annotations.exists():
        annotating = time.monotonic()
        _annotate(project)
        print(f"annotated in {time.monotonic() - annotating:.0f} s", flush=True)
    vacuuming = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) tracing_span, tracing_trace, annotations_annotation")
        cursor.execute("ANALYZE")
    print(f"vacuumed and analyzed in {time.monotonic() - vacuuming:.0f} s", flush=True)
    print(
        f"loaded {Span.objects.count():,} spans, {project.annotations.count():,} annotations, "
        f"{len(partitions())} partitions, in {time.monotonic() - began:.0f} s",
        flush=True,
    )


def retention(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.db import connection

    from evalhub.retention.services import retention_policy_set, retention_sweep
    from tracing.models import Project, Span
    from tracing.partitions import partitions

    project = Project.objects.get(name="bench")
    for other in Project.objects.exclude(pk=project.pk):
        retention_policy_set(project=other, days=args.keep)
    retention_policy_set(project=project, days=args.keep)
    before = Span.objects.filter(project=project).count()
    parts = len(partitions())
    began = time.monotonic()
    sweeps = retention_sweep()
    took = time.monotonic() - began
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sweep = next(s for s in sweeps if s.project_id == project.pk)
    with connection.cursor() as cursor:
        # The partitioned table itself holds nothing: sum its partitions.
        cursor.execute(
            "SELECT pg_size_pretty(coalesce(sum(pg_total_relation_size(inhrelid)), 0)) "
            "FROM pg_inherits WHERE inhparent = 'tracing_span'::regclass"
        )
        size = cursor.fetchone()[0]
    print(
        f"retention, keep {args.keep} days: {before:,} spans → {before - sweep.spans:,}; "
        f"partitions dropped: {sweep.partitions or 'none'} ({parts} → {len(partitions())}); "
        f"deleted {sweep.traces:,} traces, {sweep.spans:,} spans, {sweep.annotations:,} "
        f"annotations in {took:.1f} s ({sweep.spans / took:,.0f} spans/s); peak memory of "
        f"the pass's process {hwm:.0f} MiB; span table now {size}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["load", "retention"])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--base", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", type=int, default=15)
    parser.add_argument("--chunk", type=int, default=10, help="copies made by one statement")
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    if args.mode == "load":
        load(args)
    else:
        retention(args)


if __name__ == "__main__":
    main()
