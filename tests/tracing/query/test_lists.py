"""Span pages read from the results a filter asks for (``tracing.query.lists``)."""

from __future__ import annotations

import importlib
import random
from datetime import timedelta

import pytest
from django.db import connection

from annotations.models import Annotation
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span
from tracing.query.lists import results_lead, span_list, span_queryset

T0 = factories.BASE_TIME

FILTERS = [
    "eval.Correctness.label = 'incorrect'",
    "eval.Correctness.label = 'incorrect' and span_kind = 'LLM'",
    "span_kind = 'LLM' and eval.Correctness.score >= 0.5",
    "eval.Correctness.label != 'correct'",
    "eval.Correctness.label IN ('incorrect', 'partial') and latency_ms > 50",
    "eval.Correctness IS NOT NULL",
    "annotation.Correctness.label = 'incorrect'",
    "eval.Correctness.explanation contains 'why'",
    "(latency_ms > 50 and eval.Correctness.label = 'incorrect') and span_kind = 'LLM'",
]


def _pages(project, filter_expr: str, limit: int) -> list[int]:
    seen, cursor = [], None
    while True:
        page = span_list(project=project, cursor=cursor, limit=limit, filter_expr=filter_expr)
        seen += [span.pk for span in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def _store(seed: int) -> None:
    """Spans in a few traces with many equal start times, results of one name by judges (two
    identifiers on some spans) and by people, and the same name in another project."""
    rng = random.Random(seed)
    records = []
    for index in range(90):
        trace = f"{index // 6:032x}"
        records.append(
            factories.span_record(
                trace_id=trace,
                span_id=f"{index + 1:016x}",
                parent_id=None if index % 6 == 0 else f"{index - index % 6 + 1:016x}",
                kind=rng.choice(["LLM", "CHAIN"]),
                start=T0 + timedelta(seconds=index // 5),
                latency_ms=rng.choice([10, 100]),
            )
        )
    factories.ingest(records)
    other = [factories.span_record(start=T0 + timedelta(seconds=i)) for i in range(10)]
    factories.ingest(other, project="other")
    items = []
    for record in records + other:
        for identifier in ("", "second") if rng.random() < 0.2 else ("",):
            if rng.random() < 0.6:
                label = rng.choice(["correct", "correct", "incorrect", "partial"])
                items.append(
                    AnnotationInput(
                        "SPAN",
                        record.span_id,
                        "Correctness",
                        annotator_kind=rng.choice(["LLM", "CODE"]),
                        label=label,
                        score=1.0 if label == "correct" else 0.0,
                        explanation=rng.choice([None, "because why not"]),
                        identifier=identifier,
                    )
                )
        if rng.random() < 0.3:
            items.append(
                AnnotationInput(
                    "SPAN",
                    record.span_id,
                    "Correctness",
                    label=rng.choice(["correct", "incorrect"]),
                )
            )
    annotations_upsert(items=items)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
def test_a_result_filter_reads_the_same_pages_as_the_plain_filter(seed):
    _store(seed)
    project = factories.project()
    for filter_expr in FILTERS:
        assert results_lead(project, filter_expr) is not None, filter_expr
        expected = list(
            span_queryset(project=project, filter_expr=filter_expr).values_list("pk", flat=True)
        )
        assert expected, filter_expr
        for limit in (1, 4, 7, 1000):
            assert _pages(project, filter_expr, limit) == expected, (filter_expr, limit)


@pytest.mark.django_db
def test_the_lead_reads_only_the_project_and_keeps_the_other_parameters():
    _store(3)
    project = factories.project()
    filter_expr = "eval.Correctness.label = 'incorrect'"
    window = {"start_time": T0 + timedelta(seconds=4), "end_time": T0 + timedelta(seconds=12)}
    expected = list(
        span_queryset(project=project, filter_expr=filter_expr, **window).values_list(
            "pk", flat=True
        )
    )
    page = span_list(project=project, limit=1000, filter_expr=filter_expr, **window)
    assert [span.pk for span in page.items] == expected
    assert {span.project_id for span in page.items} == {project.pk}


@pytest.mark.django_db
def test_a_trace_result_of_the_same_name_reads_every_span_as_before():
    """A root span stands for its trace's results: they have no span start to order by, so
    the page is read the plain way and the root span is found."""
    root = factories.span_record(span_id="a" * 16, start=T0)
    child = factories.span_record(
        trace_id=root.trace_id, parent_id=root.span_id, start=T0 + timedelta(seconds=1)
    )
    factories.ingest([root, child])
    annotations_upsert(
        items=[
            AnnotationInput(
                "TRACE", root.trace_id, "Correctness", annotator_kind="LLM", label="incorrect"
            ),
            AnnotationInput(
                "SPAN", child.span_id, "Correctness", annotator_kind="LLM", label="incorrect"
            ),
        ]
    )
    project = factories.project()
    filter_expr = "eval.Correctness.label = 'incorrect'"
    assert results_lead(project, filter_expr) is None
    page = span_list(project=project, filter_expr=filter_expr)
    assert [span.span_id for span in page.items] == [child.span_id, root.span_id]


@pytest.mark.django_db
def test_filters_without_a_required_result_are_not_led():
    factories.ingest([factories.span_record()])
    project = factories.project()
    for filter_expr in (
        "",
        "span_kind = 'LLM'",
        "eval.Correctness.label IS NULL",
        "not eval.Correctness.label = 'x'",
        "eval.Correctness.label = 'x' or span_kind = 'LLM'",
        "trace_eval.Correctness.label = 'x'",
    ):
        assert results_lead(project, filter_expr) is None, filter_expr


class _Editor:
    """What the migration's function uses of a schema editor (SQLite's cannot be opened inside
    the test's transaction)."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql)


@pytest.mark.django_db
def test_results_keep_their_span_start_and_the_migration_copies_it():
    span = factories.ingest([factories.span_record(start=T0 + timedelta(minutes=3))])[0]
    written = annotations_upsert(
        items=[
            AnnotationInput("SPAN", span.span_id, "Q", annotator_kind="LLM", label="a"),
            AnnotationInput("TRACE", span.trace.trace_id, "Q", annotator_kind="LLM", label="a"),
        ]
    )
    assert [a.span_start_time for a in written] == [span.start_time, None]
    Annotation.objects.update(span_start_time=None)
    migration = importlib.import_module("annotations.migrations.0014_annotation_span_start_time")
    migration.copy_span_start_times(None, _Editor())
    stored = dict(Annotation.objects.values_list("target_kind", "span_start_time"))
    assert stored == {"SPAN": Span.objects.get(pk=span.pk).start_time, "TRACE": None}
