"""Calibration benchmark: agreement metrics over 100,000 paired items.

    .venv/bin/python bench/calibration_bench.py              # the metrics from the pairs
    .venv/bin/python bench/calibration_bench.py --db         # also end to end on PostgreSQL
    .venv/bin/python bench/calibration_bench.py --db --reload

Without ``--db``: 100,000 (person, judge) label pairs over 3 labels, 2 versions and 30 days are
counted and summarised (``calibration_summarize``: per version, per day, every metric with its
intervals) - the median of 7 runs. With ``--db``: 100,000 spans each with a person's label and
a judge's result are loaded once into ``$EVALHUB_BENCH_DB`` (default ``evalhub_calib_bench``)
and ``evaluator_calibration`` - what the API and the pages call: the database counts the pairs
per version, day and labels, then every metric - is timed end to end (the median of 5 runs),
against the agreement page's Python pairing of the same items (once).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.database import ensure_database  # noqa: E402

DB = os.environ.get("EVALHUB_BENCH_DB", "evalhub_calib_bench")
PAIRS = 100_000
LABELS = ("correct", "incorrect", "partial")
START = datetime(2026, 11, 1, tzinfo=UTC)


def _judge(rng: random.Random, human: str) -> str:
    return human if rng.random() < 0.8 else rng.choice(LABELS)


def pure(runs: int = 7) -> tuple[float, float]:
    from evalhub.calibration.selectors import CalibrationPair, calibration_summarize

    rng = random.Random(5)
    pairs = []
    for index in range(PAIRS):
        human = rng.choice(LABELS)
        when = START + timedelta(seconds=index * 30 * 86400 / PAIRS)
        pairs.append(CalibrationPair(1 + index % 2, when, human, _judge(rng, human)))
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = calibration_summarize(pairs, name="Correctness", bucket="day")
        timings.append(time.perf_counter() - started)
    assert result.pairs == PAIRS and len(result.versions[0].buckets) == 30
    return statistics.median(timings), max(timings)


def load() -> None:
    from django.core.management import call_command
    from django.db import connection

    from annotations.store.services import AnnotationInput, annotations_upsert
    from tracing.models import Span
    from tracing.store.records import SpanRecord
    from tracing.store.services import spans_ingest

    call_command("migrate", verbosity=0)
    have = Span.objects.filter(project__name="calibration").count()
    if have >= PAIRS:
        print(f"{have} spans already loaded", flush=True)
        return
    rng = random.Random(5)
    started = time.perf_counter()
    for chunk in range(0, PAIRS, 2000):
        records, items = [], []
        for index in range(chunk, chunk + 2000):
            when = START + timedelta(seconds=index * 30 * 86400 / PAIRS)
            span_id, trace_id = f"{index + 1:016x}", f"{index + 1:032x}"
            records.append(
                SpanRecord(
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_id=None,
                    name="answer",
                    start_time=when,
                    end_time=when + timedelta(milliseconds=300),
                    status_code="OK",
                    status_message="",
                    attributes={"openinference.span.kind": "LLM", "input.value": "q"},
                    events=[],
                    project_name="calibration",
                )
            )
            human = rng.choice(LABELS)
            items.append(
                AnnotationInput("SPAN", span_id, "Correctness", label=human, identifier="ann")
            )
            items.append(
                AnnotationInput(
                    "SPAN",
                    span_id,
                    "Correctness",
                    annotator_kind="LLM",
                    label=_judge(rng, human),
                    metadata={"version": 1 + index % 2},
                )
            )
        spans_ingest(records=records, default_project="calibration")
        annotations_upsert(items=items)
        if chunk % 20000 == 0:
            print(f"  {chunk + 2000} items, {time.perf_counter() - started:.0f}s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def end_to_end(runs: int = 5) -> tuple[float, float]:
    """``evaluator_calibration`` (the database counts the pairs) and, once, the agreement
    page's Python pairing of the same items, for comparison."""
    from evalhub.calibration.selectors import (
        calibration_pairs,
        calibration_summarize,
        evaluator_calibration,
    )
    from tracing.models import Project

    project = Project.objects.get(name="calibration")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        result = evaluator_calibration(project=project, name="Correctness", bucket="day")
        timings.append(time.perf_counter() - started)
        assert result.pairs == PAIRS, result.pairs
    started = time.perf_counter()
    reference = calibration_summarize(
        calibration_pairs(project=project, name="Correctness"), name="Correctness"
    )
    python_pairing = time.perf_counter() - started
    assert reference.counts == result.counts
    return statistics.median(timings), python_pairing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="store_true", help="also end to end on PostgreSQL")
    parser.add_argument("--reload", action="store_true", help="drop and load the data again")
    args = parser.parse_args()
    if args.db:
        os.environ["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{DB}"
        ensure_database(DB, args.reload)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalhub.settings")
    import django

    django.setup()
    median, worst = pure()
    print(
        f"metrics from {PAIRS:,} pairs (2 versions x 30 days): median {median:.3f}s, max {worst:.3f}s"
    )
    if args.db:
        load()
        total, python_pairing = end_to_end()
        print(
            f"evaluator_calibration on PostgreSQL, {PAIRS:,} paired items: median {total:.3f}s "
            f"(the agreement page's Python pairing of the same items: {python_pairing:.1f}s)"
        )


if __name__ == "__main__":
    main()
