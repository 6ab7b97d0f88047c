from datetime import timedelta

import pytest
from django.utils import timezone

from annotations.models import Annotation, AnnotatorKind, TargetKind
from tests import factories
from tracing.browser.filters import SpanFilterSet
from tracing.browser.selection import ResultSize, result_size
from tracing.browser.selectors import browse_spans
from tracing.browser.services import spans_delete_result
from tracing.models import ModelPrice, Project, Session, Span, Trace
from tracing.store import services
from tracing.store.pricing import price_cache_clear
from tracing.store.services import (
    sessions_recompute,
    spans_delete,
    spans_ingest,
    traces_recompute,
)

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


def test_invalid_records_are_left_out_with_a_reason_and_the_others_stored():
    good = factories.span_record()
    bad = factories.span_record()
    bad.end_time = bad.start_time - timedelta(seconds=1)
    result = spans_ingest(records=[good, bad], default_project="p")
    assert (result.received, result.inserted) == (2, 1)
    [rejected] = result.rejected
    assert (rejected.span_id, rejected.trace_id) == (bad.span_id, bad.trace_id)
    assert "end_time is before start_time" in rejected.reason
    assert list(Span.objects.values_list("span_id", flat=True)) == [good.span_id]
    # The bad span's trace is not created.
    assert list(Trace.objects.values_list("trace_id", flat=True)) == [good.trace_id]


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


def _snapshot() -> tuple[list[tuple], list[tuple]]:
    traces = list(
        Trace.objects.order_by("trace_id").values_list(
            "trace_id", "start_time", "end_time", "span_count", "error_count", "prompt_tokens",
            "completion_tokens", "total_tokens", "root_span_id", "root_span_name", "session__session_id",
        )
    )  # fmt: skip
    trace_floats = list(Trace.objects.order_by("trace_id").values_list("latency_ms", "cost"))
    sessions = list(
        Session.objects.order_by("session_id").values_list(
            "session_id", "start_time", "end_time", "trace_count", "span_count", "error_count",
            "total_tokens",
        )
    )  # fmt: skip
    rounded = [(round(a, 6), round(b, 9)) for a, b in trace_floats]
    return [(*t, *f) for t, f in zip(traces, rounded, strict=True)], sessions


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_rows_kept_at_ingest_equal_a_full_recount_whatever_the_arrival_order(seed):
    import random

    rng = random.Random(seed)
    records = []
    for index in range(12):
        t0 = factories.BASE_TIME + timedelta(seconds=index * 10)
        session = f"s{index % 4}" if index % 5 else None
        root = factories.span_record(
            name=f"root{index}",
            kind="AGENT",
            start=t0,
            latency_ms=900,
            session_id=session,
            status_code=rng.choice(["OK", "ERROR"]),
        )
        records.append(root)
        for child in range(rng.randrange(1, 5)):
            records.append(factories.span_record(
                trace_id=root.trace_id, parent_id=root.span_id, name=f"child{child}", kind="LLM",
                start=t0 + timedelta(milliseconds=rng.randrange(-50, 800)), latency_ms=rng.randrange(5, 400),
                attributes=factories.llm_attributes(prompt_tokens=rng.randrange(1, 99)),
                session_id=session, status_code=rng.choice(["OK", "OK", "ERROR"]),
            ))  # fmt: skip
    rng.shuffle(records)
    while records:
        size = rng.randrange(1, 9)
        batch, records = records[:size], records[size:]
        if rng.random() < 0.3:
            batch = batch + batch[:1]  # a duplicate in the same request
        spans_ingest(records=batch, default_project="p")
    kept = _snapshot()
    traces_recompute(Trace.objects.values_list("pk", flat=True))
    sessions_recompute(Session.objects.values_list("pk", flat=True))
    assert _snapshot() == kept
    assert Trace.objects.filter(root_span_id__isnull=True).count() == 0


# --- deleting a whole filtered result ---------------------------------------------------------


def _matching(tab: str, data: dict) -> object:
    project = factories.project("p")
    return SpanFilterSet(
        data, queryset=browse_spans(project=project, tab=tab), project=project, tab=tab
    ).qs


def test_delete_result_removes_whole_traces_in_batches_with_their_annotations():
    t0 = factories.BASE_TIME
    failed = [
        factories.trace(project="p", start=t0 + timedelta(minutes=i), status_code="ERROR")
        for i in range(5)
    ]
    kept = factories.trace(project="p", start=t0, session_id="chat")
    Annotation.objects.create(
        project=failed[0][0].project,
        target_kind=TargetKind.SPAN,
        span=failed[0][2],
        name="Correctness",
        annotator_kind=AnnotatorKind.LLM,
        label="incorrect",
    )
    project = factories.project("p")
    now = timezone.now()
    spans = _matching("traces", {"status": ["ERROR"]})
    assert result_size(project=project, tab="traces", spans=spans, as_of=now) == ResultSize(5, 15)

    done = spans_delete_result(project=project, tab="traces", spans=spans, as_of=now, batch_units=2)

    assert done == ResultSize(rows=5, spans=15)
    assert set(Span.objects.values_list("span_id", flat=True)) == {s.span_id for s in kept}
    assert list(Trace.objects.values_list("pk", flat=True)) == [kept[0].trace_id]
    assert not Annotation.objects.exists()
    assert Session.objects.get().span_count == 3


def test_delete_result_keeps_spans_that_arrived_after_the_count():
    t0 = factories.BASE_TIME
    old = factories.trace(project="p", start=t0, status_code="ERROR")
    project = factories.project("p")
    as_of = timezone.now()
    late = factories.trace(project="p", start=t0 + timedelta(minutes=1), status_code="ERROR")
    Span.objects.filter(pk__in=[s.pk for s in late]).update(
        ingested_at=as_of + timedelta(seconds=1)
    )
    spans = _matching("spans", {"status": ["ERROR"]})
    assert result_size(project=project, tab="spans", spans=spans, as_of=as_of) == ResultSize(2, 2)

    assert spans_delete_result(project=project, tab="spans", spans=spans, as_of=as_of).spans == 2

    left = set(Span.objects.values_list("span_id", flat=True))
    assert left == {old[1].span_id} | {s.span_id for s in late}
    assert Trace.objects.get(pk=old[0].trace_id).span_count == 1


def test_delete_result_commits_each_batch_and_a_second_run_deletes_the_rest(monkeypatch):
    t0 = factories.BASE_TIME
    for index in range(4):
        factories.trace(project="p", start=t0 + timedelta(minutes=index), session_id=f"s{index}")
    project = factories.project("p")
    as_of = timezone.now()
    real = services.spans_delete_rows
    calls = []

    def failing_second_batch(query):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(query)

    monkeypatch.setattr(services, "spans_delete_rows", failing_second_batch)
    spans = _matching("sessions", {})
    with pytest.raises(RuntimeError):
        spans_delete_result(
            project=project, tab="sessions", spans=spans, as_of=as_of, batch_units=1
        )
    # The first batch (one whole session) stayed deleted; the failed one rolled back whole.
    assert Session.objects.count() == 3 and Span.objects.count() == 9

    monkeypatch.setattr(services, "spans_delete_rows", real)
    again = spans_delete_result(project=project, tab="sessions", spans=spans, as_of=as_of)
    assert again == ResultSize(rows=3, spans=9)
    assert not Span.objects.exists() and not Session.objects.exists()
    assert spans_delete_result(project=project, tab="sessions", spans=spans, as_of=as_of) == (
        ResultSize(0, 0)
    )


def test_a_trace_whose_spans_name_two_projects_stays_in_one_with_a_warning(caplog):
    """The trace's first stored span decides; later spans naming another project join it."""
    root = factories.span_record(name="root", project_name="alpha")
    child = factories.span_record(
        trace_id=root.trace_id, parent_id=root.span_id, name="child", project_name="beta"
    )
    late = factories.span_record(
        trace_id=root.trace_id, parent_id=root.span_id, name="late", project_name="gamma"
    )
    with caplog.at_level("WARNING", logger="tracing.store.services"):
        spans_ingest(records=[root, child])
        spans_ingest(records=[late])

    assert set(Span.objects.values_list("project__name", flat=True)) == {"alpha"}
    assert Trace.objects.get(trace_id=root.trace_id).project.name == "alpha"
    assert not Project.objects.filter(name__in=["beta", "gamma"]).exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"trace {root.trace_id}: span {child.span_id} names project 'beta' but the trace is in "
        "project 'alpha'; its spans are stored in 'alpha'",
        f"trace {root.trace_id}: span {late.span_id} names project 'gamma' but the trace is in "
        "project 'alpha'; its spans are stored in 'alpha'",
    ]
