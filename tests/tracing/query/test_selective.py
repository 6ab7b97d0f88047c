"""Pages of spans found from the annotations' side (``tracing.query.selective``): the same rows
in the same order, page after page, as the walk by time that reads every span."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from annotations.models import Annotation
from tests import factories
from tracing.models import Project, Span
from tracing.query import compile_filter, lists, selective

pytestmark = pytest.mark.django_db

FILTERS = [
    "eval.Correctness.label = 'incorrect'",
    "eval.Correctness.label = 'incorrect' and span_kind = 'LLM'",
    "span_kind = 'AGENT' and eval.Correctness.label = 'incorrect'",
    "eval.Correctness.label != 'correct' and latency_ms > 0",
    "'Correctness' in evals",
    "eval.Correctness.score >= 0.5",
    "eval.Correctness IS NOT NULL and eval.Tone.label = 'rude'",
    "trace_eval.Correctness.label = 'incorrect'",
    "annotation.Correctness.label = 'incorrect'",
]
# No condition every match must meet: these walk the spans whatever the annotations.
UNDRIVEN = [
    "eval.Correctness.label = 'incorrect' or span_kind = 'RETRIEVER'",
    "not eval.Correctness.label = 'correct'",
    "eval.Correctness IS NULL",
    "'Correctness' not in evals",
    "span_kind = 'LLM'",
]


@pytest.fixture
def project() -> Project:
    """30 traces, every third pair starting at the same time (the id breaks the tie), some in
    sessions; Correctness results on LLM spans, on one trace and on one session, a person's
    label, and a Tone result."""
    traces = []
    for index in range(30):
        start = factories.BASE_TIME - timedelta(minutes=index - index % 3)
        session = f"s{index % 4}" if index % 2 else None
        traces.append(factories.trace(start=start, session_id=session))
    project = traces[0][0].project

    def result(
        kind: str,
        label: str,
        score: float,
        name: str = "Correctness",
        annotator: str = "LLM",
        **target: Any,
    ) -> None:
        Annotation.objects.create(
            project=project,
            name=name,
            annotator_kind=annotator,
            label=label,
            score=score,
            target_kind=kind,
            **target,
        )

    for index, (agent, _retriever, llm) in enumerate(traces):
        if index % 3 == 0:
            wrong = index % 2 == 0
            result("SPAN", "incorrect" if wrong else "correct", 0.0 if wrong else 1.0, span=llm)
        if index % 5 == 0:
            result("SPAN", "rude", 0.0, span=agent, name="Tone")
    result("TRACE", "incorrect", 0.0, trace=traces[7][0].trace)
    result("SESSION", "incorrect", 0.0, session=traces[1][0].session)
    result("SPAN", "incorrect", 0.0, span=traces[4][2], annotator="HUMAN")
    result("SPAN", "correct", 1.0, span=traces[8][1], annotator="CODE")
    return project


def _pages(project: Project, text: str, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    cursor = None
    while True:
        page = lists.span_list(project=project, filter_expr=text, cursor=cursor, limit=limit)
        pages.append([span.pk for span in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def _expected(project: Project, text: str) -> list[int]:
    return list(
        Span.objects.filter(compile_filter(text), project=project)
        .order_by("-start_time", "-id")
        .values_list("pk", flat=True)
    )


@pytest.mark.parametrize("text", FILTERS + UNDRIVEN)
@pytest.mark.parametrize("limit", [1, 4, 50])
def test_pages_are_the_same_from_the_annotations_side(
    project: Project, text: str, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    driven = _pages(project, text, limit)
    monkeypatch.setattr(lists, "spans_found_by", lambda _text: None)
    walked = _pages(project, text, limit)
    assert driven == walked
    expected = _expected(project, text)
    assert [pk for page in walked for pk in page] == expected
    assert expected  # every filter here finds spans


@pytest.mark.parametrize("text", FILTERS)
def test_a_selective_condition_names_the_spans(project: Project, text: str) -> None:
    found = selective.spans_found_by(text)
    assert found is not None
    matching = Span.objects.filter(compile_filter(text), project=project)
    assert set(matching.values_list("pk", flat=True)) <= set(
        Span.objects.filter(found).values_list("pk", flat=True)
    )


@pytest.mark.parametrize("text", [*UNDRIVEN, "", None])
def test_no_condition_to_drive_by(project: Project, text: str | None) -> None:
    assert selective.spans_found_by(text) is None


def test_too_many_matches_walk_the_spans(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "eval.Correctness.label = 'incorrect'"
    matches = Annotation.objects.filter(
        name="Correctness", label="incorrect", annotator_kind__in=["LLM", "CODE"]
    ).count()
    assert selective.spans_found_by(text, limit=matches) is not None
    assert selective.spans_found_by(text, limit=matches - 1) is None
    # Over the limit, the next selective condition of the AND is used.
    both = "eval.Correctness.label = 'incorrect' and eval.Tone.label = 'rude'"
    tone = Span.objects.filter(selective.spans_found_by(both, limit=matches - 1))
    assert set(tone.values_list("pk", flat=True)) == set(
        Annotation.objects.filter(name="Tone").values_list("span_id", flat=True)
    )
    monkeypatch.setattr(selective, "SELECTIVE_MAX", matches - 1)
    assert [pk for page in _pages(project, both, 2) for pk in page] == _expected(project, both)


def test_no_matching_annotation_is_an_empty_page(project: Project) -> None:
    text = "eval.Correctness.label = 'unknown'"
    assert Span.objects.filter(selective.spans_found_by(text)).count() == 0
    assert _pages(project, text, 10) == [[]]


def test_other_projects_spans_are_not_listed(project: Project) -> None:
    other = factories.trace(project="other")
    Annotation.objects.create(
        project=other[0].project,
        target_kind="SPAN",
        span=other[2],
        name="Correctness",
        annotator_kind="LLM",
        label="incorrect",
    )
    text = "eval.Correctness.label = 'incorrect'"
    listed = {pk for page in _pages(project, text, 5) for pk in page}
    assert other[2].pk not in listed
    assert listed == set(
        Span.objects.filter(compile_filter(text), project=project).values_list("pk", flat=True)
    )
