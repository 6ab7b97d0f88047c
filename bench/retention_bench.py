"""Retention benchmark on PostgreSQL: a project with ``--days`` days of traces (the ingest
benchmark's five-span traces, spread evenly over the days, 2 % of them with an annotation),
then one retention pass keeping the last ``--keep`` days.

    .venv/bin/python bench/retention_bench.py --spans 500000 --days 30 --keep 15

Reports the ingest rate, the pass's time, spans deleted per second, and the pass's peak memory
(it runs in a process of its own: VmHWM of that process).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.payloads import aged_requests  # noqa: E402

DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_retention")  # parallel checkouts
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")


def load(args: argparse.Namespace) -> None:
    ensure_database(DB, reload=True)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from annotations.models import AnnotationSource
    from annotations.store.services import AnnotationInput, annotations_upsert
    from tracing.ingest.otlp import spans_from_otlp_protobuf
    from tracing.models import Project, Span
    from tracing.store.services import spans_ingest

    call_command("migrate", verbosity=0)
    print(f"ingesting {args.spans} spans over {args.days} days…", flush=True)
    began = time.monotonic()
    for body in aged_requests(args.spans, args.days, run="k"):
        spans_ingest(records=spans_from_otlp_protobuf(body, project_name="bench").records)
    took = time.monotonic() - began
    print(f"ingest: {args.spans / took:,.0f} spans/s ({took:.1f} s)", flush=True)
    project = Project.objects.get(name="bench")
    roots = Span.objects.filter(project=project, parent_id__isnull=True).values_list(
        "span_id", flat=True
    )
    chosen = [s for i, s in enumerate(roots.iterator(10_000)) if i % 50 == 0]
    for start in range(0, len(chosen), 1000):
        annotations_upsert(
            items=[
                AnnotationInput(target_kind="SPAN", target_id=s, name="ok", label="yes")
                for s in chosen[start : start + 1000]
            ],
            source=AnnotationSource.API,
            project=project,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{len(chosen)} annotations", flush=True)


def apply(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from evalhub.retention.services import retention_apply
    from tracing.models import Project, Span

    project = Project.objects.get(name="bench")
    before = Span.objects.filter(project=project).count()
    began = time.monotonic()
    sweep = retention_apply(project=project, days=args.keep)
    took = time.monotonic() - began
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"retention, keep {args.keep} of {args.days} days: {before:,} spans → "
        f"{before - sweep.spans:,}; deleted {sweep.traces:,} traces, {sweep.spans:,} spans, "
        f"{sweep.annotations:,} annotations in {took:.1f} s ({sweep.spans / took:,.0f} spans/s); "
        f"peak memory of the pass's process {hwm:.0f} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("mode", nargs="?", default="all", choices=["all", "apply"])
    parser.add_argument("--spans", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--keep", type=int, default=15)
    args = parser.parse_args()
    if args.mode == "apply":
        apply(args)
        return
    load(args)
    subprocess.run(
        [sys.executable, __file__, "apply", "--days", str(args.days), "--keep", str(args.keep)],
        check=True,
    )


if __name__ == "__main__":
    main()
