"""Trace browser benchmark on PostgreSQL: the traces page of the ``bench`` project (1,000,000
spans in ``evalhub_bench_query``, loaded by ``bench/query_bench.py``) and the Projects page,
read only.

    .venv/bin/python bench/browser_bench.py [--runs 30]

Renders the first page of ``/projects/bench/traces/`` through the whole Django stack (test
client logged in with ``force_login``: routing, auth, session, filters, keyset query, badges,
template), without and with a filter, sorted by latency, tokens and cost, and the Projects page
(its default range, the last 7 days, and all time), and prints p50 and p95 in milliseconds. The database is
left as it was: the benchmark user and its login session are written in a transaction that is
rolled back at the end.
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
DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_bench_query")  # another name: parallel checkouts
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

TRACES = "/projects/bench/traces/"
SPANS = "/projects/bench/spans/"
CASES: dict[str, tuple[str, dict[str, str]]] = {
    "no filter": (TRACES, {}),
    "filter: status_code = 'ERROR'": (TRACES, {"q": "status_code = 'ERROR'"}),
    "filter: latency_ms > 1000": (TRACES, {"q": "latency_ms > 1000"}),
    "quick filter: status ERROR, last 30 days": (TRACES, {"status": "ERROR", "range": "30d"}),
    "sorted by latency (slowest first)": (TRACES, {"sort": "latency"}),
    "sorted by tokens (most first)": (TRACES, {"sort": "tokens"}),
    "sorted by cost (highest first)": (TRACES, {"sort": "cost"}),
    "sorted by cost, ascending": (TRACES, {"sort": "cost", "order": "asc"}),
    # A trace matches when any of its spans does (these match child spans).
    "any span: span_kind = 'LLM' AND latency_ms > 1000": (
        TRACES,
        {"q": "span_kind = 'LLM' AND latency_ms > 1000"},
    ),
    "any span: eval.Correctness.label = 'incorrect'": (
        TRACES,
        {"q": "eval.Correctness.label = 'incorrect'"},
    ),
    "any span: metadata.region = 'us-west'": (TRACES, {"q": "metadata.region = 'us-west'"}),
    "any span, sorted by latency: span_kind = 'LLM'": (
        TRACES,
        {"q": "span_kind = 'LLM'", "sort": "latency"},
    ),
    # Few or no traces match: each page searches a bounded window of traces.
    "rare: latency_ms > 5000": (TRACES, {"q": "latency_ms > 5000"}),
    "none: eval.Correctness.label = 'unknown'": (
        TRACES,
        {"q": "eval.Correctness.label = 'unknown'"},
    ),
    "none: quick filter 'has no evaluation'": (TRACES, {"evaluated": "no"}),
    "root span only: span_kind = 'AGENT' AND latency_ms > 1000": (
        TRACES,
        {"q": "span_kind = 'AGENT' AND latency_ms > 1000", "root": "1"},
    ),
    "Spans tab: no filter": (SPANS, {}),
    "Spans tab: eval.Correctness.label = 'incorrect'": (
        SPANS,
        {"q": "eval.Correctness.label = 'incorrect'"},
    ),
    "Spans tab: span_kind = 'LLM' AND latency_ms > 1000": (
        SPANS,
        {"q": "span_kind = 'LLM' AND latency_ms > 1000"},
    ),
    "Projects page (last 7 days)": ("/projects/", {}),
    "Projects page (all time: range=custom)": ("/projects/", {"range": "custom"}),
}
BUDGET_MS = 150.0


def measure(runs: int) -> list[tuple[str, float, float, int, bool]]:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create(username="browser-bench-rolled-back", is_staff=True)
    client = Client()
    client.force_login(user)
    results = []
    for label, (path, params) in CASES.items():
        url = path + (f"?{urlencode(params)}" if params else "")
        timings: list[float] = []
        rows = 0
        cut = False
        for attempt in range(runs + 3):
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.content[:300]
            if attempt >= 3:  # warm-up
                timings.append(elapsed)
            rows = response.content.count(b"<tr data-key=")
            # The any-span search window ended the page before it was full.
            cut = b"data-searched=" in response.content
        timings.sort()
        p50 = statistics.median(timings)
        p95 = timings[max(0, round(0.95 * len(timings)) - 1)]
        results.append((label, p50, p95, rows, cut))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    args = parser.parse_args()
    if args.only:
        for label in [label for label in CASES if args.only not in label]:
            del CASES[label]
    import django

    django.setup()
    from django.db import transaction

    from tracing.models import Span

    spans = Span.objects.filter(project__name="bench").count()
    print(f"{DB}: {spans:,} spans in project bench; {args.runs} runs each", flush=True)
    with transaction.atomic():
        results = measure(args.runs)
        transaction.set_rollback(True)  # read only: drop the user and session again
    for label, p50, p95, rows, cut in results:
        verdict = "ok" if p95 <= BUDGET_MS else f"over the {BUDGET_MS:.0f} ms budget"
        window = " (search window ended the page)" if cut else ""
        print(
            f"  {label:<60} rows={rows:<4} p50={p50:7.1f} ms  p95={p95:7.1f} ms  {verdict}{window}"
        )


if __name__ == "__main__":
    main()
