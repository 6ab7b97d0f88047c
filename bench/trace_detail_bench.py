"""Trace page benchmark on PostgreSQL: one trace of 1,000 spans.

    .venv/bin/python bench/trace_detail_bench.py            # 30 renders, then the database is dropped
    .venv/bin/python bench/trace_detail_bench.py --runs 50 --keep

Creates the scratch database ``evalhub_bench_detail``, migrates it, stores a 1,000-span agent
trace (nested 3 levels deep, LLM spans with messages, retrievers with documents, tools, some
errors with stack traces, evaluations on the LLM spans), then renders the trace page through
the whole Django stack (in-process test client, logged in: routing, session auth, selectors,
template) and prints p50/p95; the htmx span pane is timed the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB = "evalhub_bench_detail"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

TRACE_ID = "bench" + "0" * 27
SPANS = 1000


def database_create() -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB}"')


def database_drop() -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')


def _records(start: datetime) -> list:
    """Root agent → 90 steps (CHAIN) → 10 children each (LLM / RETRIEVER / TOOL), 1,000 spans."""
    from tracing.store.records import SpanRecord

    records = []
    counter = iter(range(1, 10_000))

    def span_id() -> str:
        return f"{next(counter):016x}"

    def record(name: str, kind: str, parent: str | None, at: float, ms: float, **attrs):
        failed = attrs.pop("_failed", False)
        return SpanRecord(
            trace_id=TRACE_ID,
            span_id=span_id(),
            parent_id=parent,
            name=name,
            start_time=start + timedelta(milliseconds=at),
            end_time=start + timedelta(milliseconds=at + ms),
            status_code="ERROR" if failed else "OK",
            status_message="TimeoutError: upstream did not answer" if failed else "",
            attributes={"openinference.span.kind": kind, "session.id": "bench-session", **attrs},
            events=[
                {
                    "name": "exception",
                    "timestamp": (start + timedelta(milliseconds=at + ms)).isoformat(),
                    "attributes": {
                        "exception.type": "TimeoutError",
                        "exception.message": "upstream did not answer",
                        "exception.stacktrace": "Traceback (most recent call last):\n"
                        + '  File "/app/tools.py", line 12, in call\n' * 8
                        + "TimeoutError: upstream did not answer",
                    },
                }
            ]
            if failed
            else [],
            project_name="bench",
        )

    question = "How do I reset my hub and keep my schedules? " * 4
    root = record(
        "support_agent",
        "AGENT",
        None,
        0,
        90 * 120 + 10,
        **{"input.value": question, "output.value": "Hold the reset button. " * 20},
    )
    records.append(root)
    for step in range(90):
        at = 5 + step * 120
        chain = record(f"step {step}", "CHAIN", root.span_id, at, 115, **{"input.value": question})
        records.append(chain)
        for child in range(10):
            child_at = at + 1 + child * 11
            kind = ("LLM", "RETRIEVER", "TOOL")[child % 3]
            if kind == "LLM":
                attrs = {
                    "llm.model_name": "gpt-4o",
                    "llm.invocation_parameters": json.dumps({"temperature": 0.2}),
                    "llm.token_count.prompt": 900,
                    "llm.token_count.completion": 120,
                    "input.value": json.dumps(
                        {"messages": [{"role": "user", "content": question}]}
                    ),
                    "input.mime_type": "application/json",
                    "output.value": "You can reset it. " * 30,
                }
                for m, role in enumerate(("system", "user", "assistant", "user")):
                    attrs[f"llm.input_messages.{m}.message.role"] = role
                    attrs[f"llm.input_messages.{m}.message.content"] = question * 3
                attrs["llm.output_messages.0.message.role"] = "assistant"
                attrs["llm.output_messages.0.message.content"] = "You can reset it. " * 30
            elif kind == "RETRIEVER":
                attrs = {"input.value": question}
                for d in range(5):
                    attrs[f"retrieval.documents.{d}.document.id"] = f"kb-{d}"
                    attrs[f"retrieval.documents.{d}.document.content"] = "Reset the hub. " * 25
                    attrs[f"retrieval.documents.{d}.document.score"] = 0.9 - d / 10
            else:
                attrs = {
                    "tool.name": "lookup_order",
                    "input.value": json.dumps({"order": step}),
                    "output.value": json.dumps({"status": "shipped", "items": list(range(20))}),
                    "_failed": step % 30 == 7 and child == 2,
                }
            records.append(
                record(f"{kind.lower()} {step}.{child}", kind, chain.span_id, child_at, 10, **attrs)
            )
    assert len(records) == SPANS - 9, len(records)
    # Nine more direct children of the root make it exactly 1,000.
    for extra in range(9):
        records.append(record(f"cleanup {extra}", "TOOL", root.span_id, 90 * 120 + extra, 1))
    return records


def load() -> None:
    from django.core.management import call_command
    from django.db import connection

    from annotations.store.services import AnnotationInput, annotations_upsert
    from tracing.models import Span
    from tracing.store.services import spans_ingest

    call_command("migrate", verbosity=0)
    records = _records(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    spans_ingest(records=records)
    llm_ids = Span.objects.filter(span_kind="LLM").values_list("span_id", flat=True)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=span_id,
                name="Correctness",
                annotator_kind="LLM",
                label="correct",
                score=1.0,
                explanation="Matches the documents.",
            )
            for span_id in llm_ids
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _percentiles(timings: list[float]) -> tuple[float, float]:
    ordered = sorted(timings)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


def measure(runs: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from tracing.models import Span, Trace

    user = get_user_model().objects.create_user(username="bench", password="bench")
    client = Client()
    client.force_login(user)
    trace = Trace.objects.get(trace_id=TRACE_ID)
    assert trace.span_count == SPANS, trace.span_count
    page = reverse("detail:trace", kwargs={"project": "bench", "trace_id": TRACE_ID})
    llm = Span.objects.filter(trace=trace, span_kind="LLM").order_by("start_time")[200]
    pane = reverse(
        "detail:span_pane",
        kwargs={"project": "bench", "trace_id": TRACE_ID, "span_id": llm.span_id},
    )
    for label, url, headers in (
        ("trace page, 1,000 spans", page, {}),
        ("span pane (htmx, LLM span)", pane, {"HX-Request": "true"}),
    ):
        timings = []
        size = 0
        for attempt in range(runs + 3):  # 3 warm-up renders: template compile, connection
            started = time.perf_counter()
            response = client.get(url, headers=headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, response.status_code
            size = len(response.content)
            if attempt >= 3:
                timings.append(elapsed)
        p50, p95 = _percentiles(timings)
        print(
            f"{label:30} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   ({runs} runs, {size / 1024:.0f} KiB)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()

    database_create()
    import django

    django.setup()
    try:
        started = time.perf_counter()
        load()
        print(f"loaded 1,000 spans in {time.perf_counter() - started:.1f}s", flush=True)
        measure(args.runs)
    finally:
        if not args.keep:
            database_drop()


if __name__ == "__main__":
    main()
