"""A run's "View traces" on PostgreSQL: the trace browser filtered by ``task_run = <id>``.

    .venv/bin/python bench/run_items_bench.py [--spans 1000000] [--runs 30] [--reload]

Loads ``--spans`` spans (a fifth of them traces) into ``evalhub_bench_runs`` once (the same
generator as ``bench/query_bench.py``), then makes three completed runs of a task — 72 spans, 72
traces and 20 sessions spread over the project's whole history, the oldest included, as a
backfill evaluates them — and times the first page of the Spans, Traces and Sessions tabs
filtered by ``task_run = <id>`` over all time, and of the run page's items list, through the
whole Django stack (test client, logged in). Prints p50 and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.loading import spans_load  # noqa: E402

DB = "evalhub_bench_runs"
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

ITEMS = {"span": 72, "trace": 72, "session": 20}
TABS = {"span": "spans", "trace": "traces", "session": "sessions"}


def load(spans: int) -> None:
    spans_load(spans, run="r")


def runs() -> dict[str, int]:
    """The three runs (made once): granularity → run id."""
    from evalhub.evaluators.services import evaluator_create
    from evalhub.tasks.models import RunKind, RunStatus, Task, TaskRun, TaskRunItem
    from evalhub.tasks.services import TaskEvaluatorInput, TaskInput, task_create
    from tracing.models import Project, Session, Span, Trace

    project = Project.objects.get(name="bench")
    made = {}
    for granularity, count in ITEMS.items():
        name = f"bench {granularity}s"
        task = Task.objects.filter(project=project, name=name).first()
        if task is None:
            evaluator = evaluator_create(
                name=f"bench-{granularity}",
                config={
                    "kind": "CODE",
                    "check": "contains_keywords",
                    "params": {"keywords": ["a"]},
                },
            )
            task = task_create(
                data=TaskInput(
                    name=name,
                    project=project,
                    evaluators=[TaskEvaluatorInput(evaluator=evaluator)],
                    granularity=granularity,
                    continuous=False,
                )
            )
        run = task.runs.first()
        if run is None:
            run = TaskRun.objects.create(
                task=task,
                project=project,
                kind=RunKind.BACKFILL,
                status=RunStatus.COMPLETED,
                planned=True,
            )
            model, key = {
                "span": (Span, "span_id"),
                "trace": (Trace, "trace_id"),
                "session": (Session, "session_id"),
            }[granularity]
            rows = model.objects.filter(project=project)
            total = rows.count()
            step = max(total // count, 1)
            chosen = list(
                rows.order_by("start_time", "id").values_list("pk", key, "start_time")[::step]
            )[:count]
            TaskRunItem.objects.bulk_create(
                TaskRunItem(
                    run=run,
                    dedupe_task=task,
                    target_kind=granularity,
                    target_pk=pk,
                    target_key=ident,
                    start_time=start,
                    status="done",
                    results=[{"evaluator": f"bench-{granularity}", "label": "contains"}],
                )
                for pk, ident, start in chosen
            )
        made[granularity] = run.pk
    return made


def measure(run_ids: dict[str, int], repeat: int) -> list[tuple[str, float, float, int]]:
    import re

    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.test import Client

    results = []
    with transaction.atomic():
        user = get_user_model().objects.create(username="runs-bench-rolled-back")
        client = Client()
        client.force_login(user)
        cases = {
            f"{TABS[g]} tab, task_run = {run_id} ({ITEMS[g]} {g}s)": (
                f"/projects/bench/{TABS[g]}/?{urlencode({'q': f'task_run = {run_id}', 'range': 'all'})}"
            )
            for g, run_id in run_ids.items()
        }
        cases["traces tab, no filter, all time (for comparison)"] = (
            "/projects/bench/traces/?range=all"
        )
        cases[f"run page with its items (run {run_ids['trace']})"] = f"/runs/{run_ids['trace']}/"
        for label, url in cases.items():
            timings = []
            rows = 0
            for attempt in range(repeat + 3):
                started = time.perf_counter()
                response = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 200, (url, response.status_code)
                if attempt >= 3:
                    timings.append(elapsed)
                body = response.content.decode()
                rows = len(set(re.findall(r'(?:name="selected" value|data-item)="([^"]+)"', body)))
            timings.sort()
            p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
            results.append((label, statistics.median(timings), p95, rows))
        transaction.set_rollback(True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    ensure_database(DB, args.reload)
    import django

    django.setup()
    load(args.spans)
    run_ids = runs()
    print(f"{'case':<60} {'p50 ms':>8} {'p95 ms':>8} {'rows':>6}")
    for label, p50, p95, rows in measure(run_ids, args.runs):
        print(f"{label:<60} {p50:>8.1f} {p95:>8.1f} {rows:>6}")


if __name__ == "__main__":
    main()
