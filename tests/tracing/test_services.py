from datetime import timedelta

import pytest

from annotations.models import Annotation, AnnotatorKind, TargetKind
from tests import factories
from tracing.ingest import SpanRecordError
from tracing.models import ModelPrice, Session, Span, Trace
from tracing.pricing import price_cache_clear
from tracing.services import spans_delete, spans_ingest

pytestmark = pytest.mark.django_db


def test_children_before_parent_keep_the_trace_row_right():
    ModelPrice.objects.update_or_create(
        model_prefix="gpt-4o-mini",
        defaults={"prompt_per_million": "0.15", "completion_per_million": "0.60"},
    )
    price_cache_clear()
    t0 = factories.BASE_TIME
    root = factories.span_record(
        name="agent", kind="AGENT", start=t0, latency_ms=3000, session_id="s1"
    )
    child = factories.span_record(
        trace_id=root.trace_id,
        parent_id=root.span_id,
        name="llm",
        kind="LLM",
        start=t0 + timedelta(seconds=1),
        latency_ms=1000,
        status_code="ERROR",
        attributes=factories.llm_attributes(prompt_tokens=100, completion_tokens=50),
        session_id="s1",
    )
    spans_ingest(records=[child], default_project="p")
    trace = Trace.objects.get(trace_id=root.trace_id)
    assert trace.root_span_id is None
    assert trace.root_span_name == "llm"
    assert (trace.span_count, trace.error_count, trace.total_tokens) == (1, 1, 150)

    spans_ingest(records=[root], default_project="p")
    trace.refresh_from_db()
    assert trace.root_span_id == root.span_id
    assert trace.root_span_name == "agent"
    assert trace.span_count == 2
    assert trace.latency_ms == pytest.approx(3000)
    assert trace.start_time == t0
    assert trace.cost == pytest.approx((100 * 0.15 + 50 * 0.60) / 1e6)
    session = Session.objects.get(session_id="s1")
    assert (session.trace_count, session.span_count, session.total_tokens) == (1, 2, 150)
    assert trace.session == session


def test_a_span_sent_twice_is_stored_once():
    record = factories.span_record()
    first = spans_ingest(records=[record], default_project="p")
    second = spans_ingest(records=[record, record], default_project="p")
    assert (first.inserted, second.inserted, second.duplicates) == (1, 0, 2)
    assert Span.objects.filter(span_id=record.span_id).count() == 1
    assert Trace.objects.get(trace_id=record.trace_id).span_count == 1


def test_an_invalid_record_writes_nothing():
    good = factories.span_record()
    bad = factories.span_record()
    bad.end_time = bad.start_time - timedelta(seconds=1)
    with pytest.raises(SpanRecordError, match="end_time"):
        spans_ingest(records=[good, bad], default_project="p")
    assert Span.objects.count() == 0
    assert Trace.objects.count() == 0


def test_openinference_columns_are_read_from_attributes():
    (span,) = factories.ingest(
        [
            factories.span_record(
                kind="LLM",
                metadata={"region": "us-west"},
                session_id="abc",
                attributes={
                    **factories.llm_attributes(model="gpt-4o"),
                    "user.id": "u1",
                    "tag.tags": ["a", "b"],
                },
            )
        ]
    )
    assert span.span_kind == "LLM"
    assert span.model_name == "gpt-4o"
    assert (span.prompt_tokens, span.completion_tokens, span.total_tokens) == (100, 20, 120)
    assert span.metadata == {"region": "us-west"}
    assert (span.session_key, span.user_id, span.tags) == ("abc", "u1", ["a", "b"])
    assert span.attributes["llm"]["input_messages"][0]["message"]["role"] == "user"
    assert "input" not in span.attributes  # kept in its own column
    assert span.input_value == "question"


def test_delete_removes_annotations_and_keeps_traces_and_sessions_consistent():
    spans = factories.trace(project="p", session_id="sess")
    root, retriever, llm = spans
    Annotation.objects.create(
        project=root.project,
        target_kind=TargetKind.SPAN,
        span=llm,
        name="Correctness",
        annotator_kind=AnnotatorKind.LLM,
        label="correct",
    )
    assert spans_delete(span_ids=[llm.span_id, "unknown"]) == 1
    assert not Annotation.objects.exists()
    trace = Trace.objects.get(pk=root.trace_id)
    assert trace.span_count == 2
    assert spans_delete(span_ids=[root.span_id, retriever.span_id]) == 2
    assert not Trace.objects.exists()
    assert not Session.objects.exists()
