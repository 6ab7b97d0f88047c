"""Query benchmark on PostgreSQL: 1,000,000 spans (200,000 traces), 200,000 evaluations.

    .venv/bin/python bench/query_bench.py            # loads the data once, then measures
    .venv/bin/python bench/query_bench.py --reload   # drop and load again

Times the first page (50) of ``GET /v1/projects/bench/spans`` through the whole Django stack
(in-process test client: routing, auth, filter compile, query, serialization), p50 and p95, and
the peak memory of a process that streams all spans to Parquet.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402
from bench.loading import spans_load  # noqa: E402

DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_query")  # another name: parallel checkouts
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

QUERIES = {
    "no filter": "",
    "span_kind = 'LLM' AND latency_ms > 1000": "span_kind = 'LLM' AND latency_ms > 1000",
    "metadata.region = 'us-west'": "metadata.region = 'us-west'",
    "eval.Correctness.label = 'incorrect'": "eval.Correctness.label = 'incorrect'",
}


def load(spans: int) -> None:
    from django.db import connection

    from annotations.store.services import AnnotationInput, annotations_upsert
    from bench.payloads import correctness_result
    from tracing.models import Span

    started = time.perf_counter()
    if not spans_load(spans, run="q"):
        return
    rng = random.Random(3)
    answers = Span.objects.filter(project__name="bench", name="answer").values_list(
        "span_id", flat=True
    )
    batch: list[AnnotationInput] = []
    for span_id in answers.iterator(chunk_size=5000):
        batch.append(correctness_result(span_id, rng.random() > 0.3, explained=True))
        if len(batch) == 1000:
            annotations_upsert(items=batch)
            batch = []
    if batch:
        annotations_upsert(items=batch)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"loaded in {time.perf_counter() - started:.0f}s", flush=True)


def measure(runs: int) -> list[tuple[str, float, float, int]]:
    from django.test import Client

    from evalhub.identity.services import api_key_create

    _key, raw = api_key_create(name="query-bench", scope="read")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    results = []
    for label, expr in QUERIES.items():
        params = {"limit": 50} | ({"filter": expr} if expr else {})
        url = f"/v1/projects/bench/spans?{urlencode(params)}"
        timings = []
        rows = 0
        for attempt in range(runs + 5):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.content[:300]
            rows = len(response.json()["data"])
            if attempt >= 5:
                timings.append(elapsed)
        timings.sort()
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results.append((label, statistics.median(timings), p95, rows))
    return results


def export_memory() -> tuple[int, float, int]:
    script = ROOT / "bench" / "export_memory.py"
    out = subprocess.run(
        [sys.executable, str(script)],
        env=os.environ.copy(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), float(out[1]), int(out[2])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--load-only", action="store_true", help="load the data, measure nothing")
    parser.add_argument(
        "--no-export", action="store_true", help="skip the Parquet export (at 10M spans: long)"
    )
    args = parser.parse_args()
    ensure_database(DB, args.reload)
    import django

    django.setup()
    load(args.spans)
    if args.load_only:
        return
    print("| query | p50 ms | p95 ms | rows |\n|---|---|---|---|")
    for label, p50, p95, rows in measure(args.runs):
        print(f"| `{label}` | {p50:.1f} | {p95:.1f} | {rows} |", flush=True)
    if args.no_export:
        return
    rss_kib, seconds, size = export_memory()
    print(
        f"Parquet export of all spans: {seconds:.0f} s, {size / 1e6:.0f} MB file, peak RSS {rss_kib / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
