"""The partitioned span table at scale (PostgreSQL): load a project of ``--spans`` spans over
``--days`` days into ``evalhub_bench_partition``, then time a retention pass on it.

    .venv/bin/python bench/partition_bench.py load --spans 10000000 --days 30
    EVALHUB_BENCH_DB=evalhub_bench_partition .venv/bin/python bench/query_bench.py \\
        --spans 10000000 --no-export                      # spans API p50/p95
    EVALHUB_BENCH_DB=evalhub_bench_partition .venv/bin/python bench/browser_bench.py
    .venv/bin/python bench/partition_bench.py retention --keep 15   # destructive

``load`` ingests a base of ``--base`` spans through the ingest service (the retention
benchmark's five-span traces, spread evenly over the days, in project ``bench``), then copies
it inside PostgreSQL (``INSERT … SELECT``, new trace and span ids, each copy a few seconds
later) until the project holds ``--spans`` spans, and annotates 2 % of the root spans
(``Correctness``). Loading 10M spans through the ingest path would take hours on the 2-core
machine; the copies go through the same partitioned table, indexes and constraints.

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

_TRACE_COPY = """
INSERT INTO tracing_trace (project_id, trace_id, session_id, root_span_id, root_span_name,
    start_time, end_time, latency_ms, span_count, error_count, prompt_tokens,
    completion_tokens, total_tokens, cost, created_at)
SELECT project_id, md5(trace_id || %(k)s), NULL, left(md5(root_span_id || %(k)s), 16),
    root_span_name, start_time + %(shift)s, end_time + %(shift)s, latency_ms, span_count,
    error_count, prompt_tokens, completion_tokens, total_tokens, cost, created_at
FROM tracing_trace WHERE id <= %(traces)s
"""
_SPAN_COPY = """
INSERT INTO tracing_span ({columns})
SELECT {selected}
FROM tracing_span s JOIN tracing_trace b ON b.id = s.trace_id
JOIN tracing_trace t ON t.trace_id = md5(b.trace_id || %(k)s)
WHERE s.id <= %(spans)s
"""


def _copy_sql(columns: list[str]) -> str:
    replaced = {
        "trace_id": "t.id",
        "span_id": "left(md5(s.span_id || %(k)s), 16)",
        "parent_id": "left(md5(s.parent_id || %(k)s), 16)",
        "session_id": "NULL",
        "start_time": "s.start_time + %(shift)s",
        "end_time": "s.end_time + %(shift)s",
        "ingested_at": "now()",
    }
    selected = ", ".join(replaced.get(c, f"s.{c}") for c in columns)
    return _SPAN_COPY.format(columns=", ".join(columns), selected=selected)


def _aside_file() -> Path:
    return Path("/tmp") / f"{DB}-indexes.json"


def _indexes_set_aside(cursor: Any) -> None:
    """Drop the span table's indexes but its primary key for the copies (the definitions are
    kept in a file, so an interrupted load restores them when run again)."""
    if _aside_file().exists():
        return
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'tracing_span'::regclass AND contype = 'u'"
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'tracing_span' "
        "AND indexname <> 'tracing_span_pkey' AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'tracing_span'::regclass)"
    )
    indexes = cursor.fetchall()
    _aside_file().write_text(json.dumps({"constraints": constraints, "indexes": indexes}))
    for name, _ in constraints:
        cursor.execute(f"ALTER TABLE tracing_span DROP CONSTRAINT {name}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")


def _indexes_restore(cursor: Any) -> None:
    if not _aside_file().exists():
        return
    aside = json.loads(_aside_file().read_text())
    began = time.monotonic()
    cursor.execute("SET maintenance_work_mem = '256MB'")
    for name, definition in aside["constraints"]:
        cursor.execute(f"ALTER TABLE tracing_span ADD CONSTRAINT {name} {definition}")
    for _name, definition in aside["indexes"]:
        # pg_indexes says "ON ONLY" for a partitioned table: that would build no partition's index.
        cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
    _aside_file().unlink()
    print(f"indexes rebuilt in {time.monotonic() - began:.0f} s", flush=True)


def load(args: argparse.Namespace) -> None:
    ensure_database(DB, args.reload)
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from annotations.models import AnnotationSource
    from annotations.store.services import AnnotationInput, annotations_upsert
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
        # The base: the first ``--base`` spans and their traces (the copies come after).
        cursor.execute("SELECT id FROM tracing_span ORDER BY id OFFSET %s LIMIT 1", [args.base - 1])
        span_top = cursor.fetchone()[0]
        cursor.execute("SELECT max(trace_id) FROM tracing_span WHERE id <= %s", [span_top])
        trace_top = cursor.fetchone()[0]
        columns = [f.column for f in Span._meta.concrete_fields if not f.primary_key]
        sql = _copy_sql(columns)
        have = Span.objects.count()
        if have < args.spans:
            _indexes_set_aside(cursor)
            cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT count(*) FROM tracing_trace WHERE id <= %s", [trace_top])
        base_traces = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tracing_trace")
        copy = cursor.fetchone()[0] // base_traces
        started = time.monotonic()
        while have < args.spans:
            params = {
                "k": f"-{copy}",
                "shift": timedelta(seconds=5 * copy),
                "traces": trace_top,
                "spans": span_top,
            }
            with transaction.atomic():
                cursor.execute(_TRACE_COPY, params)
                cursor.execute(sql, params)
                have += cursor.rowcount
            copy += 1
            rate = (have - args.base) / (time.monotonic() - started)
            print(f"  {have:,} spans ({rate:,.0f} spans/s copied)", flush=True)
        _indexes_restore(cursor)
    project = Project.objects.get(name="bench")
    roots = Span.objects.filter(project=project, parent_id__isnull=True).values_list(
        "span_id", flat=True
    )
    if not project.annotations.exists():
        rng = random.Random(3)
        batch: list[AnnotationInput] = []
        for index, span_id in enumerate(roots.iterator(20_000)):
            if index % 50:
                continue
            correct = rng.random() > 0.3
            batch.append(
                AnnotationInput(
                    target_kind="SPAN",
                    target_id=span_id,
                    name="Correctness",
                    annotator_kind="LLM",
                    label="correct" if correct else "incorrect",
                    score=1.0 if correct else 0.0,
                )
            )
            if len(batch) == 2000:
                annotations_upsert(items=batch, source=AnnotationSource.API, project=project)
                batch = []
        if batch:
            annotations_upsert(items=batch, source=AnnotationSource.API, project=project)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
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
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('tracing_span'))")
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
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    if args.mode == "load":
        load(args)
    else:
        retention(args)


if __name__ == "__main__":
    main()
