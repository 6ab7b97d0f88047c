"""Monitors benchmark on PostgreSQL: 1,000,000 spans (200,000 five-span traces over the last 7
days) and 200,000 judge evaluations; 100 monitors of every metric, condition and window size.

    .venv/bin/python bench/monitors_bench.py            # loads the data once, then measures
    .venv/bin/python bench/monitors_bench.py --reload   # drop and load again

Measures (docs/benchmarks.md):
1. one monitor check — the metric over the latest closed window (per segment), judged against
   the threshold or against the baseline window a day earlier, read from the check made of it
   (steady state) — p50/p95 per window size and per metric, 3 rounds over the 100 monitors;
2. the real path for a window that just closed: ``monitor_check`` for all 100 monitors one
   after the other in one process (check rows written, state machine run), wall time;
3. the "would have fired" preview (120 windows over 30 days) of three monitors;
4. the join of a window's spans to their results, bounded by the window's span id range (as
   the checks run it) against unbounded (as before), interleaved so both see the same load;
5. the automations' sweep (beat, every minute) in the steady state: ten rules, nothing lost
   since their last sweep, so each reads the project's recent results and finds nothing.

The data is written with SQL (``generate_series``) rather than through ingest: this measures
the monitors, not the ingest path (``bench/ingest_bench.py`` does that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402

DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_monitors_bench")
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")

TRACES = 200_000
SPAN_SECONDS = 7 * 86400 / TRACES  # one trace every ~3 s over 7 days


LOAD_SQL = [
    """INSERT INTO tracing_project (id, name, description, created_at, updated_at)
       VALUES (1, 'bench', '', now(), now())""",
    # 200k traces, newest first, one every ~3 s over the last 7 days.
    f"""INSERT INTO tracing_trace (id, project_id, trace_id, root_span_id, root_span_name,
         start_time, end_time, latency_ms, span_count, error_count, prompt_tokens,
         completion_tokens, total_tokens, cost, created_at)
       SELECT g, 1, lpad(to_hex(g), 32, '0'), lpad(to_hex(g * 8), 16, '0'), 'agent',
         now() - g * interval '{SPAN_SECONDS} seconds',
         now() - g * interval '{SPAN_SECONDS} seconds' + interval '1 second', 1000, 5, 0,
         0, 0, 0, 0, now()
       FROM generate_series(1, {TRACES}) AS g""",
    # 5 spans a trace: AGENT root, RETRIEVER, two LLM calls (4 models, 2 tiers), TOOL.
    """INSERT INTO tracing_span (project_id, trace_id, span_id, parent_id, name, span_kind,
         status_code, status_message, start_time, end_time, latency_ms, attributes, events,
         input_value, input_mime_type, output_value, output_mime_type, model_name,
         prompt_tokens, completion_tokens, total_tokens, cost, session_id_text, user_id,
         metadata, tags, ingested_at)
       SELECT 1, t.id, lpad(to_hex(t.id * 8 + k), 16, '0'),
         CASE WHEN k = 0 THEN NULL ELSE t.root_span_id END,
         (ARRAY['agent', 'retrieve', 'llm', 'llm', 'tool'])[k + 1],
         (ARRAY['AGENT', 'RETRIEVER', 'LLM', 'LLM', 'TOOL'])[k + 1],
         CASE WHEN random() < 0.03 THEN 'ERROR' ELSE 'OK' END, '',
         t.start_time + k * interval '10 milliseconds',
         t.start_time + k * interval '10 milliseconds' + interval '1 second',
         (random() * random() * 4000)::float, '{}'::jsonb, '[]'::jsonb,
         'question', '', 'answer', '',
         CASE WHEN k IN (2, 3) THEN (ARRAY['gpt-4o', 'gpt-4o-mini', 'claude', 'llama'])[1 + t.id % 4]
              ELSE '' END,
         CASE WHEN k IN (2, 3) THEN 500 END, CASE WHEN k IN (2, 3) THEN 80 END,
         CASE WHEN k IN (2, 3) THEN 580 END, CASE WHEN k IN (2, 3) THEN 0.0012 END,
         '', '',
         jsonb_build_object('tier', CASE WHEN t.id % 5 = 0 THEN 'enterprise' ELSE 'free' END),
         '[]'::jsonb, t.start_time
       FROM tracing_trace t CROSS JOIN generate_series(0, 4) AS k""",
    # 200k evaluations: the first LLM call of each trace, judged 'incorrect' 10 % of the time
    # (llama 25 %), score 0 or 1.
    """INSERT INTO annotations_annotation (project_id, target_kind, span_id, name,
         annotator_kind, label, score, explanation, metadata, identifier, source, created_at,
         updated_at, span_start_time)
       SELECT 1, 'SPAN', s.id, 'correctness', 'LLM', v.label,
         CASE WHEN v.label = 'incorrect' THEN 0.0 ELSE 1.0 END, NULL, '{}'::jsonb, '', 'TASK',
         now(), now(), s.start_time
       FROM tracing_span s
       CROSS JOIN LATERAL (SELECT CASE WHEN random() < (CASE WHEN s.model_name = 'llama'
           THEN 0.25 ELSE 0.10 END) THEN 'incorrect' ELSE 'correct' END AS label) v
       WHERE s.span_kind = 'LLM' AND right(s.span_id, 1) IN ('2', 'a')""",
    "SELECT setval(pg_get_serial_sequence('tracing_trace', 'id'), 200000)",
    "SELECT setval(pg_get_serial_sequence('tracing_project', 'id'), 1)",
    # What autovacuum does soon after a load: statistics and the visibility map (index-only
    # scans of the span indexes need it).
    "VACUUM ANALYZE",
]


def load() -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    began = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in LOAD_SQL:
            cursor.execute(statement)
    print(f"loaded in {time.perf_counter() - began:.0f} s")


def monitors() -> list:
    from evalhub.monitors.models import Monitor
    from evalhub.monitors.services import MonitorInput, monitor_create
    from tracing.models import Project

    Monitor.objects.all().delete()
    project = Project.objects.get(name="bench")
    hour, day = 3600, 86400
    kinds = [
        dict(metric="eval_label_rate", result_name="correctness", label="incorrect",
             condition="threshold", threshold=0.2, consecutive=3),
        dict(metric="eval_label_rate", result_name="correctness", label="incorrect",
             condition="baseline", min_effect=0.05, filter="span_kind = 'LLM'"),
        dict(metric="eval_mean_score", result_name="correctness", condition="baseline",
             direction="below", min_effect=0.05),
        dict(metric="eval_label_rate", result_name="correctness", label="incorrect",
             condition="threshold", threshold=0.2, segment_field="model_name"),
        dict(metric="error_rate", condition="threshold", threshold=0.05,
             filter="metadata.tier = 'enterprise'"),
        dict(metric="latency_p95", condition="threshold", threshold=3000,
             filter="span_kind = 'LLM'"),
        dict(metric="latency_p99", condition="threshold", threshold=3900),
        dict(metric="tokens", condition="threshold", threshold=10**7),
        dict(metric="cost", condition="threshold", threshold=100.0),
        dict(metric="span_count", condition="threshold", direction="below", threshold=100),
    ]  # fmt: skip
    windows = [hour] * 6 + [15 * 60] * 2 + [6 * hour, day]  # 60 % 1h, 20 % 15m, 10 % 6h, 10 % 1d
    made = []
    for index in range(100):
        fields = dict(kinds[index % len(kinds)])
        window = windows[(index // len(kinds)) % len(windows)]
        made.append(
            monitor_create(
                project=project,
                data=MonitorInput(
                    name=f"monitor {index:03d}",
                    window_seconds=window,
                    frequency_seconds=300,
                    delay_seconds=0,
                    min_samples=30,
                    **fields,
                ),
            )
        )
    return made


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure() -> None:
    from django.db import reset_queries
    from django.utils import timezone

    from evalhub.monitors.checks import (
        monitor_check,
        monitor_evaluate_window,
        monitor_preview,
        window_end_floor,
    )
    from evalhub.monitors.models import Monitor
    from evalhub.monitors.services import MonitorInput
    from tracing.models import Project, Span

    print(f"spans {Span.objects.count():,}; evaluations {_evaluations():,}")
    made = monitors()
    end = window_end_floor(timezone.now(), 300)
    # Steady state: the windows a day earlier were checked (their counts stored), so a
    # baseline monitor reads its baseline instead of computing it again.
    day = timedelta(days=1)
    Monitor.objects.update(
        created_at=end - 2 * day, checked_through=end - day - timedelta(seconds=300)
    )
    for monitor in made:
        monitor_check(monitor_id=monitor.pk, now=end - day + timedelta(seconds=1))
    made = list(Monitor.objects.select_related("project").order_by("name"))
    by_window: dict[int, list[float]] = {}
    by_metric: dict[str, list[float]] = {}
    every: list[float] = []
    for _round in range(3):
        for monitor in made:
            began = time.perf_counter()
            monitor_evaluate_window(monitor, end)
            took = (time.perf_counter() - began) * 1000
            by_window.setdefault(monitor.window_seconds, []).append(took)
            kind = f"{monitor.metric}/{monitor.condition}" + (
                "/segment" if monitor.segment_field else ""
            )
            by_metric.setdefault(kind, []).append(took)
            every.append(took)
            reset_queries()
    print("one check (ms): window, n, p50, p95, max")
    for window, values in sorted(by_window.items()):
        print(f"  {window:>6} s  {len(values):>3}  {statistics.median(values):7.1f}  "
              f"{percentile(values, 0.95):7.1f}  {max(values):7.1f}")  # fmt: skip
    print("one check (ms) by metric: n, p50, p95, max")
    for kind, values in sorted(by_metric.items()):
        print(f"  {kind:<40} {len(values):>3}  {statistics.median(values):7.1f}  "
              f"{percentile(values, 0.95):7.1f}  {max(values):7.1f}")  # fmt: skip
    print(f"  all      {len(every):>3}  {statistics.median(every):7.1f}  "
          f"{percentile(every, 0.95):7.1f}  {max(every):7.1f}")  # fmt: skip

    # The real path: each monitor has exactly the window that just closed to check.
    Monitor.objects.update(
        created_at=end - timedelta(days=30), checked_through=end - timedelta(seconds=300)
    )
    began = time.perf_counter()
    written = 0
    for monitor in made:
        written += len(monitor_check(monitor_id=monitor.pk, now=end + timedelta(seconds=1)))
    total = time.perf_counter() - began
    print(f"monitor_check of all 100 monitors, one process: {total:.1f} s ({written} checks)")

    project = Project.objects.get(name="bench")
    for label, fields in (
        ("label rate, 1h, threshold", dict(metric="eval_label_rate", result_name="correctness",
                                           label="incorrect", condition="threshold",
                                           threshold=0.2, window_seconds=3600)),
        ("mean score, 1h, baseline", dict(metric="eval_mean_score", result_name="correctness",
                                          condition="baseline", window_seconds=3600)),
        ("p95 latency, 6h, LLM", dict(metric="latency_p95", condition="threshold",
                                      threshold=3000, window_seconds=21600,
                                      filter="span_kind = 'LLM'")),
    ):  # fmt: skip
        began = time.perf_counter()
        preview = monitor_preview(
            project=project, data=MonitorInput(name="p", frequency_seconds=300, **fields)
        )
        print(f"preview {label}: {time.perf_counter() - began:.2f} s "
              f"({len(preview.points)} windows)")  # fmt: skip


def join_shapes() -> None:
    """Label rate over a window, the results' join bounded by the window's span ids (the
    checks' way) and unbounded (the bound made vacuous: the plan they had before), one after
    the other 10 times, p50/p95 in ms."""
    from django.db.models import Count, Max, Q
    from django.utils import timezone

    from annotations.models import AnnotatorKind
    from evalhub.monitors.metrics import _result_rows, span_id_bounds, window_spans
    from tracing.models import Span
    from tracing.query import compile_filter

    # The hour before the newest span (the data may have been loaded a while ago).
    newest = Span.objects.filter(project_id=1).aggregate(last=Max("start_time"))["last"]
    end = (newest or timezone.now()).replace(minute=0, second=0, microsecond=0)
    kinds = (AnnotatorKind.LLM, AnnotatorKind.CODE)
    print("label rate, bounded join vs unbounded (ms): window, p50 / p95 each")
    for window in (3600, 86400):
        start = end - timedelta(seconds=window)
        taken: dict[str, list[float]] = {"bounded": [], "unbounded": []}
        for _round in range(10):
            for shape in taken:
                began = time.perf_counter()
                spans = window_spans(project=1, filter_q=Q(), start=start, end=end)
                if shape == "bounded":
                    bounds = span_id_bounds(project=1, start=start, end=end)
                else:
                    bounds = (0, 2**63 - 1)
                assert bounds is not None
                _result_rows(spans, kinds=kinds, name="correctness", label="incorrect",
                             mean=False, segment=None, bounds=bounds)  # fmt: skip
                taken[shape].append((time.perf_counter() - began) * 1000)
        cells = "   ".join(
            f"{shape} {statistics.median(v):6.1f} / {percentile(v, 0.95):6.1f}"
            for shape, v in taken.items()
        )
        print(f"  {window:>6} s   {cells}")
    print("error rate of metadata.tier = 'enterprise', 1 day, spans read by id range or not (ms)")
    start = end - timedelta(days=1)
    tier = compile_filter("metadata.tier = 'enterprise'")
    taken = {"id range": [], "no range": []}
    for _round in range(10):
        for shape in taken:
            began = time.perf_counter()
            spans = window_spans(project=1, filter_q=tier, start=start, end=end)
            if shape == "id range":
                low, high = span_id_bounds(project=1, start=start, end=end) or (0, 0)
                spans = spans.filter(id__gte=low, id__lte=high)
            spans.aggregate(n=Count("id"), hits=Count("id", filter=Q(status_code="ERROR")))
            taken[shape].append((time.perf_counter() - began) * 1000)
    print("   ".join(
        f"  {shape} {statistics.median(v):6.1f} / {percentile(v, 0.95):6.1f}"
        for shape, v in taken.items()
    ))  # fmt: skip


def sweep() -> None:
    """``automations_sweep`` over ten enabled rules of the project, 5 rounds, ms."""
    from django.conf import settings
    from django.utils import timezone

    from evalhub.monitors.automations import AutomationInput, automation_create, automations_sweep
    from evalhub.monitors.models import Automation
    from tracing.models import Project

    Automation.objects.all().delete()
    project = Project.objects.get(name="bench")
    for index in range(10):
        automation_create(
            project=project,
            data=AutomationInput(name=f"rule {index}", action="tag", tag=f"t{index}",
                                 filter="eval.correctness.label = 'incorrect'"),
        )  # fmt: skip
    grace = timedelta(seconds=settings.EVALHUB_AUTOMATIONS_SWEEP_GRACE_SECONDS)
    taken = []
    for _round in range(5):
        began = time.perf_counter()
        acted = automations_sweep(now=timezone.now() + grace)
        taken.append((time.perf_counter() - began) * 1000)
        assert acted == 0
    print(f"automations sweep, 10 rules, nothing lost (ms): p50 {statistics.median(taken):.1f}, "
          f"max {max(taken):.1f}")  # fmt: skip
    Automation.objects.all().delete()


def _evaluations() -> int:
    from annotations.models import Annotation

    return Annotation.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reload", action="store_true")
    args = parser.parse_args()
    fresh = ensure_database(DB, args.reload)
    import django

    django.setup()
    if fresh:
        load()
    else:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # a database loaded by an older checkout
    measure()
    join_shapes()
    sweep()


if __name__ == "__main__":
    main()
