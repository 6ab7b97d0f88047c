"""The Phoenix query forms of the filter language: ``parent_id is None`` and ``parent_span``,
``in [...]``, ``'X' in evals``, cumulative token counts, ``trace_annotations[...]`` and
arithmetic. Each is run on a fixed set of spans and must match exactly the expected ones."""

from __future__ import annotations

import pytest

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span
from tracing.query import FilterError, compile_filter

pytestmark = pytest.mark.django_db


@pytest.fixture
def spans() -> dict[str, Span]:
    """Two RAG traces (``a``, ``b``: rag → retrieve, llm with 100 + 20 tokens) and an orphan
    LLM span whose parent was never stored (30 + 5 tokens)."""
    a = factories.rag_trace(project="q")
    b = factories.rag_trace(project="q")
    orphan_record = factories.span_record(
        parent_id="00000000deadbeef",
        name="orphan",
        kind="LLM",
        latency_ms=40,
        attributes=factories.llm_attributes(prompt_tokens=30, completion_tokens=5),
    )
    (orphan,) = factories.ingest([orphan_record], project="q")
    named = {f"a.{s.name}": s for s in a} | {f"b.{s.name}": s for s in b} | {"orphan": orphan}
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="DOCUMENT",
                target_id=named["a.retrieve"].span_id,
                document_position=0,
                name="relevance",
                annotator_kind="LLM",
                label="relevant",
            ),
            AnnotationInput(
                target_kind="SPAN",
                target_id=named["b.llm"].span_id,
                name="tone",
                annotator_kind="HUMAN",
                label="polite",
            ),
            AnnotationInput(
                target_kind="TRACE",
                target_id=named["b.rag"].trace.trace_id,
                name="quality",
                annotator_kind="HUMAN",
                label="good",
            ),
            AnnotationInput(
                target_kind="TRACE",
                target_id=named["a.rag"].trace.trace_id,
                name="quality",
                annotator_kind="LLM",
                label="bad",
            ),
        ]
    )
    return named


def matching(spans: dict[str, Span], text: str) -> set[str]:
    pks = set(Span.objects.filter(compile_filter(text)).values_list("pk", flat=True))
    return {name for name, span in spans.items() if span.pk in pks}


ROOTS = {"a.rag", "b.rag"}
LLMS = {"a.llm", "b.llm", "orphan"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parent_id is None", ROOTS),
        ("parent_id == None", ROOTS),
        ("None == parent_id", ROOTS),
        ("parent_id is not None", {"a.retrieve", "a.llm", "b.retrieve", "b.llm", "orphan"}),
        ("parent_span is None", ROOTS | {"orphan"}),
        ("parent_span is not None", {"a.retrieve", "a.llm", "b.retrieve", "b.llm"}),
        ("span_kind in ['LLM', 'RETRIEVER']", LLMS | {"a.retrieve", "b.retrieve"}),
        ("span_kind not in ['LLM', 'RETRIEVER',]", ROOTS),
        ("name in ['orphan']", {"orphan"}),
        ("'relevance' in evals", {"a.retrieve"}),
        ("'relevance' not in evals and span_kind == 'RETRIEVER'", {"b.retrieve"}),
        ("'tone' in annotations", {"b.llm"}),
        ("'tone' in evals", set()),
        ("cumulative_token_count.total > 100", {"a.rag", "a.llm", "b.rag", "b.llm"}),
        ("cumulative_llm_token_count_total > 100", {"a.rag", "a.llm", "b.rag", "b.llm"}),
        ("cumulative_token_count.total == 0", {"a.retrieve", "b.retrieve"}),
        ("cumulative_token_count.total < 50", {"a.retrieve", "b.retrieve", "orphan"}),
        ("cumulative_token_count.completion == 20", {"a.rag", "a.llm", "b.rag", "b.llm"}),
        ("trace_annotations['quality'].label == 'good'", {"b.rag", "b.retrieve", "b.llm"}),
        ("trace_evals['quality'].label == 'bad'", {"a.rag", "a.retrieve", "a.llm"}),
        ("'quality' in trace_annotations", {"b.rag", "b.retrieve", "b.llm"}),
        ("llm.token_count.prompt + llm.token_count.completion > 100", {"a.llm", "b.llm"}),
        ("llm.token_count.total - llm.token_count.prompt == 5", {"orphan"}),
        ("latency_ms > 0.5 * 1000", {"a.rag", "a.llm", "b.rag", "b.llm"}),
        ("2 * latency_ms + 10 < 110", {"orphan"}),
        ("latency_ms / 0 > 1", set()),
        ("latency_ms / llm.token_count.completion > 100", set()),
        ("latency_ms / llm.token_count.completion == 8", {"orphan"}),
        ("latency_ms != latency_ms", set()),
        ("not (latency_ms - 40 == 0)", ROOTS | {"a.retrieve", "b.retrieve", "a.llm", "b.llm"}),
        ("1000 > latency_ms and span_kind == 'LLM'", LLMS),
    ],
)
def test_phoenix_forms(spans: dict[str, Span], text: str, expected: set[str]) -> None:
    assert matching(spans, text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name + 1 > 2", "name cannot be used in arithmetic"),
        ("1 > 2", "a comparison needs a field"),
        ("latency_ms - 'a' > 1", "'a' is not a number"),
        ("evals > 3", "evals needs an annotation name"),
        ("3 in evals", "evals holds names"),
        ("parent_span == 'x'", "= does not apply to parent_span"),
        ("cumulative_token_count.total contains 'x'", "CONTAINS does not apply"),
        ("latency_ms + null > 1", "null cannot be used in arithmetic"),
    ],
)
def test_phoenix_form_errors(text: str, message: str) -> None:
    with pytest.raises(FilterError) as error:
        compile_filter(text)
    assert message in str(error.value)


def test_cumulative_counts_stop_on_a_cycle_in_bad_data() -> None:
    trace_id = factories.next_hex(32)
    first, second = factories.next_hex(16), factories.next_hex(16)
    records = [
        factories.span_record(
            trace_id=trace_id,
            span_id=first,
            parent_id=second,
            kind="LLM",
            attributes=factories.llm_attributes(),
        ),
        factories.span_record(trace_id=trace_id, span_id=second, parent_id=first, kind="LLM"),
    ]
    factories.ingest(records, project="loop")
    found = Span.objects.filter(compile_filter("cumulative_token_count.total > 0"))
    assert set(found.values_list("span_id", flat=True)) == {first, second}
