import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Q, Sum

from annotations.models import Annotation
from tracing.demo import demo_generate, demo_seed
from tracing.models import Project, Session, Span, Trace

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SPAN_FIELDS = (
    "span_id",
    "trace__trace_id",
    "parent_id",
    "name",
    "span_kind",
    "status_code",
    "status_message",
    "start_time",
    "end_time",
    "attributes",
    "events",
    "input_value",
    "output_value",
    "model_name",
    "prompt_tokens",
    "completion_tokens",
    "session_key",
    "user_id",
    "metadata",
    "tags",
)


def _stored(project: str) -> list[dict]:
    return list(Span.objects.filter(project__name=project).order_by("span_id").values(*SPAN_FIELDS))


def _annotations(project: str) -> list[tuple]:
    return sorted(
        Annotation.objects.filter(project__name=project).values_list(
            "span__span_id", "name", "annotator_kind", "label", "score", "explanation"
        )
    )


def test_generating_twice_gives_the_same_records():
    first = demo_generate(traces=60, project="demo", days=7, now=NOW)
    second = demo_generate(traces=60, project="demo", days=7, now=NOW)
    assert [t.records for t in first] == [t.records for t in second]
    assert [t.annotations for t in first] == [t.annotations for t in second]
    # A longer run starts with the same traces; another project gets its own ids.
    longer = demo_generate(traces=80, project="demo", days=7, now=NOW)
    assert [t.records for t in longer[:50]] == [t.records for t in first[:50]]
    other = demo_generate(traces=60, project="other", days=7, now=NOW)
    ids = {r.span_id for t in first for r in t.records}
    assert ids.isdisjoint({r.span_id for t in other for r in t.records})


@pytest.mark.django_db
def test_two_seedings_store_the_same_span_ids_and_content():
    demo_seed(traces=40, project="demo", now=NOW)
    spans, annotations = _stored("demo"), _annotations("demo")
    assert len(spans) > 150 and annotations

    Project.objects.filter(name="demo").delete()
    assert not Span.objects.exists()
    demo_seed(traces=40, project="demo", now=NOW)
    assert _stored("demo") == spans
    assert _annotations("demo") == annotations


@pytest.mark.django_db
def test_seeding_again_adds_nothing_and_changes_nothing():
    first = demo_seed(traces=40, project="demo", now=NOW)
    spans, annotations = _stored("demo"), _annotations("demo")
    traces = list(Trace.objects.order_by("trace_id").values())
    sessions = list(Session.objects.order_by("session_id").values())

    second = demo_seed(traces=40, project="demo", now=NOW + timedelta(days=2))

    assert first.spans_inserted == first.spans == len(spans)
    assert second.spans_inserted == 0
    assert _stored("demo") == spans
    assert _annotations("demo") == annotations
    assert Annotation.objects.count() == len(annotations) == second.annotations
    assert list(Trace.objects.order_by("trace_id").values()) == traces
    assert list(Session.objects.order_by("session_id").values()) == sessions


@pytest.mark.django_db
def test_the_demo_has_every_kind_of_trace_a_user_looks_for():
    demo_seed(traces=150, project="demo", days=7, now=NOW)
    spans = Span.objects.filter(project__name="demo")

    kinds = Counter(spans.values_list("span_kind", flat=True))
    assert set(kinds) == {
        "AGENT",
        "CHAIN",
        "LLM",
        "TOOL",
        "EMBEDDING",
        "RETRIEVER",
        "RERANKER",
        "PROMPT",
    }
    roots = Counter(spans.filter(parent_id=None).values_list("span_kind", flat=True))
    assert roots["AGENT"] > 40 and roots["CHAIN"] > 40

    # Errors: some traces (not most), each error span with a status message and an exception.
    traces = Trace.objects.filter(project__name="demo")
    failed = traces.filter(error_count__gt=0).count()
    assert 3 <= failed <= 30
    for span in spans.filter(status_code="ERROR"):
        assert span.status_message
        [event] = span.events
        assert event["name"] == "exception"
        assert {"exception.type", "exception.message", "exception.stacktrace"} <= set(
            event["attributes"]
        )

    # Multi-turn sessions of 2-6 traces, each from one user.
    sessions = Session.objects.filter(project__name="demo")
    assert sessions.count() >= 10
    assert {s.trace_count for s in sessions} <= {2, 3, 4, 5, 6}
    for session in sessions:
        assert spans.filter(session=session).values("user_id").distinct().count() == 1

    # LLM spans carry the OpenInference fields the UI shows.
    llm = spans.filter(span_kind="LLM", status_code="OK")
    assert set(llm.values_list("model_name", flat=True)) >= {"gpt-4o", "gpt-4o-mini"}
    assert any(m.startswith("claude-3-5-sonnet") for m in llm.values_list("model_name", flat=True))
    sample = llm.first()
    assert sample.attributes["llm"]["input_messages"][0]["message"]["role"] == "system"
    assert json.loads(sample.attributes["llm"]["invocation_parameters"])["max_tokens"] > 0
    assert sample.prompt_tokens > 0 and sample.completion_tokens > 0
    assert sample.input_mime_type == "application/json"
    tool = spans.filter(span_kind="TOOL", status_code="OK").first()
    assert tool.attributes["tool"]["name"] == tool.name
    assert json.loads(tool.input_value) is not None
    retriever = spans.filter(span_kind="RETRIEVER", status_code="OK").first()
    docs = retriever.attributes["retrieval"]["documents"]
    assert len(docs) >= 4 and {"id", "content", "score"} <= set(docs[0]["document"])
    embedding = spans.filter(span_kind="EMBEDDING").first()
    assert embedding.model_name == "text-embedding-3-small"

    root = spans.filter(parent_id=None).first()
    assert set(root.metadata) == {"region", "plan", "app_version", "channel"}
    assert root.metadata["region"] in {"us-west", "us-east", "eu-west"}
    assert "support" in root.tags and root.user_id.startswith("user-")

    # Recent, spread over the days asked for, with slow ones among them.
    assert spans.filter(start_time__lt=NOW - timedelta(days=7)).count() == 0
    assert spans.filter(end_time__gt=NOW).count() == 0
    assert traces.filter(start_time__lt=NOW - timedelta(days=4)).exists()
    assert traces.filter(start_time__gt=NOW - timedelta(days=2)).exists()
    assert traces.filter(latency_ms__gt=1000).count() > 20
    assert traces.filter(latency_ms__gt=5000).exists()
    assert traces.filter(latency_ms__lt=1000).exists()

    # Evaluations: LLM-judged correctness and hallucination, human quality labels.
    labels = Counter(Annotation.objects.values_list("name", "annotator_kind", "label"))
    assert labels[("Correctness", "LLM", "correct")] > labels[("Correctness", "LLM", "incorrect")]
    assert labels[("Correctness", "LLM", "incorrect")] > 0
    assert labels[("Hallucination", "LLM", "factual")] > 0
    assert labels[("Hallucination", "LLM", "hallucinated")] > 0
    assert labels[("Quality", "HUMAN", "good")] > 0
    hallucination_targets = Annotation.objects.filter(name="Hallucination")
    assert not hallucination_targets.exclude(
        span__span_kind="LLM", span__trace__root_span_name="answer_question"
    ).exists()
    assert not Annotation.objects.filter(name="Quality", span__parent_id__isnull=False).exists()


@pytest.mark.django_db
def test_every_trace_row_agrees_with_its_spans():
    demo_seed(traces=80, project="demo", now=NOW)
    traces = Trace.objects.filter(project__name="demo").annotate(
        spans_n=Count("spans"),
        errors_n=Count("spans", filter=Q(spans__status_code="ERROR")),
        tokens=Sum("spans__total_tokens"),
    )
    assert traces.count() == 80
    for trace in traces:
        assert trace.span_count == trace.spans_n
        assert trace.error_count == trace.errors_n
        assert trace.total_tokens == (trace.tokens or 0)
        [root] = trace.spans.filter(parent_id=None)
        assert trace.root_span_id == root.span_id
        assert trace.start_time == root.start_time and trace.end_time == root.end_time
        # Every child hangs off the root and lies within it.
        for child in trace.spans.exclude(pk=root.pk):
            assert child.parent_id == root.span_id
            assert root.start_time <= child.start_time <= child.end_time <= root.end_time
        assert (root.status_code == "ERROR") == (trace.error_count > 0)


@pytest.mark.django_db
def test_seed_demo_command_reports_and_rejects_bad_arguments():
    out = StringIO()
    call_command("seed_demo", "--traces", "12", "--project", "shop", "--days", "2", stdout=out)
    assert "'shop': 12 traces" in out.getvalue()
    assert Trace.objects.filter(project__name="shop").count() == 12

    out = StringIO()
    call_command("seed_demo", "--traces", "12", "--project", "shop", "--days", "2", stdout=out)
    assert "(0 new)" in out.getvalue()

    with pytest.raises(CommandError, match="traces must be at least 1"):
        call_command("seed_demo", "--traces", "0")
    with pytest.raises(CommandError, match="project must not be empty"):
        call_command("seed_demo", "--project", " ")
