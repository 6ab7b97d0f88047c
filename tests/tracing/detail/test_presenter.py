import json
from datetime import timedelta
from types import SimpleNamespace

import pytest

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.detail.formatting import attribute_tree, duration_text, text_block
from tracing.detail.presenter import session_detail_get, span_tree, trace_detail_get
from tracing.detail.span_pane import span_pane_build, span_pane_get
from tracing.models import Span

T0 = factories.BASE_TIME


def url(span_id: str) -> str:
    return f"/span/{span_id}/"


def fake_span(span_id: str, parent_id: str | None, offset_ms: int) -> SimpleNamespace:
    return SimpleNamespace(
        span_id=span_id,
        parent_id=parent_id,
        start_time=T0 + timedelta(milliseconds=offset_ms),
        status_code="OK",
    )


def test_span_tree_is_preorder_with_children_in_start_order_and_keeps_orphans_and_cycles():
    spans = [
        fake_span("root", None, 0),
        fake_span("b", "root", 1),
        fake_span("b1", "b", 2),
        fake_span("c", "root", 3),
        fake_span("orphan", "missing", 4),  # its parent never arrived
        fake_span("x", "y", 5),  # x and y are each other's parent
        fake_span("y", "x", 6),
        fake_span("self", "self", 7),
    ]
    tree = span_tree(spans)  # type: ignore[arg-type]
    assert [(s.span_id, depth, kids) for s, depth, kids in tree] == [
        ("root", 0, 2),
        ("b", 1, 1),
        ("b1", 2, 0),
        ("c", 1, 0),
        ("orphan", 0, 0),
        ("self", 0, 0),
        ("x", 0, 1),
        ("y", 1, 1),
    ]


@pytest.mark.parametrize(
    ("ms", "text"),
    [(None, ""), (0.42, "0.42 ms"), (812.3, "812 ms"), (1534, "1.53 s"), (125_000, "2m 5s")],
)
def test_duration_text(ms, text):
    assert duration_text(ms) == text


def test_text_block_pretty_prints_json_and_leaves_other_text_alone():
    block = text_block('{"b": [1, 2], "a": "<script>"}', "application/json")
    assert block is not None and block.is_json
    assert block.text == '{\n  "b": [\n    1,\n    2\n  ],\n  "a": "<script>"\n}'
    # No mime type, but it parses as an object.
    sniffed = text_block(' [{"x": "é"}]')
    assert sniffed is not None and sniffed.is_json and '"x": "é"' in sniffed.text
    assert text_block("not {json", "application/json") == text_block("not {json")
    plain = text_block("42")  # valid JSON, but a bare number is shown as it came
    assert plain is not None and not plain.is_json and plain.text == "42"
    assert text_block(None) is None


def test_attribute_tree_nests_branches_and_summarises_vectors():
    items = attribute_tree(
        {
            "llm": {"model_name": "gpt-4o", "input_messages": [{"message": {"role": "user"}}]},
            "embedding": {"vector": [0.1] * 1536},
            "flag": True,
            "multi": "line one\nline two",
        }
    )
    shape = [(i.kind, i.key, i.value or i.summary, i.is_open) for i in items]
    assert shape == [
        ("open", "llm", "{2}", True),
        ("leaf", "model_name", "gpt-4o", False),
        ("open", "input_messages", "[1]", False),
        ("open", "[0]", "{1}", False),
        ("open", "message", "{1}", False),
        ("leaf", "role", "user", False),
        ("close", "", "", False),
        ("close", "", "", False),
        ("close", "", "", False),
        ("close", "", "", False),
        ("open", "embedding", "{1}", True),
        ("leaf", "vector", "[1536 numbers]", False),
        ("close", "", "", False),
        ("leaf", "flag", "true", False),
        ("leaf", "multi", "line one\nline two", False),
    ]
    assert items[-1].multiline


def _stored(records):
    return factories.ingest(records)


@pytest.mark.django_db
def test_llm_span_pane_reads_messages_parameters_tools_and_tokens():
    attrs = {
        **factories.llm_attributes(model="gpt-4o", prompt_tokens=120, completion_tokens=30),
        "llm.provider": "openai",
        "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_tokens": 512}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You are helpful.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.contents.0.message_content.type": "text",
        "llm.input_messages.1.message.contents.0.message_content.text": "What is in this image?",
        "llm.input_messages.1.message.contents.1.message_content.image.image.url": "https://x/y.png",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": None,
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_order",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": 7}',
        "llm.tools.0.tool.json_schema": json.dumps(
            {"type": "function", "function": {"name": "get_order"}}
        ),
    }
    [span] = _stored([factories.span_record(kind="LLM", attributes=attrs)])
    pane = span_pane_build(span=span, url=url(span.span_id), annotations=[])

    assert pane.model == "gpt-4o" and pane.provider == "openai"
    assert [(m.role, m.content, m.parts) for m in pane.input_messages] == [
        ("system", "You are helpful.", []),
        ("user", "", ["What is in this image?", "[image] https://x/y.png"]),
    ]
    [output] = pane.output_messages
    assert output.role == "assistant" and output.content == ""
    [call] = output.tool_calls
    assert (call.id, call.name, call.arguments) == ("call_1", "get_order", '{\n  "id": 7\n}')
    assert pane.invocation_parameters == '{\n  "temperature": 0.2,\n  "max_tokens": 512\n}'
    assert [name for name, _schema in pane.tools] == ["get_order"]
    assert (span.prompt_tokens, span.completion_tokens, span.total_tokens) == (120, 30, 150)
    assert pane.has_llm and pane.io_collapsed


@pytest.mark.django_db
def test_retriever_reranker_embedding_and_tool_panes():
    docs = {
        "retrieval.documents.0.document.id": "kb-1",
        "retrieval.documents.0.document.content": "Reset the hub.",
        "retrieval.documents.0.document.score": 0.91234,
        "retrieval.documents.0.document.metadata": json.dumps({"title": "Reset"}),
        "retrieval.documents.1.document.id": "kb-2",
        "retrieval.documents.1.document.content": "Wi-Fi.",
    }
    reranker = {
        "reranker.query": "reset?",
        "reranker.top_k": 1,
        "reranker.model_name": "rerank-english-v3.0",
        "reranker.input_documents.0.document.id": "kb-2",
        "reranker.input_documents.1.document.id": "kb-1",
        "reranker.output_documents.0.document.id": "kb-1",
        "reranker.output_documents.0.document.score": 0.99,
    }
    embedding = {
        "embedding.model_name": "text-embedding-3-small",
        "embedding.embeddings.0.embedding.text": "reset?",
        "embedding.embeddings.0.embedding.vector": [0.01] * 64,
    }
    tool = {
        "tool.name": "get_order",
        "tool.description": "Look up an order",
        "tool.parameters": json.dumps({"type": "object"}),
    }
    spans = _stored(
        [
            factories.span_record(kind="RETRIEVER", attributes=docs, start=T0),
            factories.span_record(
                kind="RERANKER", attributes=reranker, start=T0 + timedelta(seconds=1)
            ),
            factories.span_record(
                kind="EMBEDDING", attributes=embedding, start=T0 + timedelta(seconds=2)
            ),
            factories.span_record(
                kind="TOOL",
                attributes=tool,
                input_value='{"order_id": "A-1"}',
                output_value='{"status": "shipped"}',
                start=T0 + timedelta(seconds=3),
            ),
        ]
    )
    retriever, rerank, embed, tool_span = (
        span_pane_build(span=s, url=url(s.span_id), annotations=[]) for s in spans
    )
    assert [(d.id, d.content, d.score) for d in retriever.documents] == [
        ("kb-1", "Reset the hub.", "0.9123"),
        ("kb-2", "Wi-Fi.", ""),
    ]
    assert retriever.documents[0].metadata == '{\n  "title": "Reset"\n}'
    assert rerank.reranker_query == "reset?" and rerank.reranker_top_k == "1"
    assert [d.id for d in rerank.reranker_input] == ["kb-2", "kb-1"]
    assert [(d.id, d.score) for d in rerank.reranker_output] == [("kb-1", "0.9900")]
    assert rerank.model == "rerank-english-v3.0"
    [vector] = embed.embeddings
    assert (vector.text, vector.dimension) == ("reset?", 64)
    assert embed.model == "text-embedding-3-small"
    assert any(i.value == "[64 numbers]" for i in embed.attributes)  # no huge vector printed
    assert tool_span.tool_name == "get_order" and tool_span.tool_description == "Look up an order"
    assert tool_span.tool_parameters == '{\n  "type": "object"\n}'
    assert tool_span.input is not None and tool_span.input.text == '{\n  "order_id": "A-1"\n}'
    assert tool_span.output is not None and tool_span.output.is_json


@pytest.mark.django_db
def test_exceptions_and_other_events_are_separated():
    trace_back = 'Traceback (most recent call last):\n  File "a.py", line 1\nTimeoutError: slow'
    [span] = _stored(
        [
            factories.span_record(
                status_code="ERROR",
                status_message="TimeoutError: slow",
                events=[
                    {
                        "name": "exception",
                        "timestamp": T0.isoformat(),
                        "attributes": {
                            "exception.type": "TimeoutError",
                            "exception.message": "slow",
                            "exception.stacktrace": trace_back,
                        },
                    },
                    {
                        "name": "retry",
                        "timestamp": T0.isoformat(),
                        "attributes": {"attempt": 2, "backoff": {"ms": 100}},
                    },
                ],
            )
        ]
    )
    pane = span_pane_build(span=span, url="", annotations=[])
    assert pane.is_error
    [exc] = pane.exceptions
    assert (exc.type, exc.message, exc.stacktrace) == ("TimeoutError", "slow", trace_back)
    assert pane.status_message == ""  # the exception already says it
    [event] = pane.events
    assert event.name == "retry" and event.attributes == [("attempt", "2"), ("backoff.ms", "100")]


def _annotate(span: Span, name: str, kind: str, label: str, score: float, project) -> None:
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=span.span_id,
                name=name,
                annotator_kind=kind,
                label=label,
                score=score,
                explanation=f"{name} because",
            )
        ],
        project=project,
    )


@pytest.mark.django_db
def test_trace_detail_builds_the_waterfall_errors_and_evaluations(django_assert_num_queries):
    trace_id = factories.next_hex(32)
    root = factories.span_record(trace_id=trace_id, name="root", start=T0, latency_ms=1000)
    chain = factories.span_record(
        trace_id=trace_id,
        parent_id=root.span_id,
        name="chain",
        start=T0 + timedelta(milliseconds=100),
        latency_ms=500,
    )
    failing = factories.span_record(
        trace_id=trace_id,
        parent_id=chain.span_id,
        name="tool",
        kind="TOOL",
        status_code="ERROR",
        start=T0 + timedelta(milliseconds=250),
        latency_ms=250,
    )
    late = factories.span_record(
        trace_id=trace_id,
        parent_id=root.span_id,
        name="llm",
        kind="LLM",
        start=T0 + timedelta(milliseconds=700),
        latency_ms=200,
        attributes=factories.llm_attributes(),
    )
    spans = factories.ingest([late, failing, root, chain])  # arrival order does not matter
    by_name = {s.name: s for s in spans}
    project = by_name["root"].project
    _annotate(by_name["llm"], "Correctness", "LLM", "correct", 1.0, project)
    _annotate(by_name["llm"], "Quality", "HUMAN", "good", 1.0, project)

    # trace, tree, selected span, every span's results, trace annotations, selected span's
    with django_assert_num_queries(6):
        detail = trace_detail_get(
            project_name="default", trace_id=trace_id, span_id=late.span_id, span_url=url
        )
    assert detail is not None
    rows = [
        (r.name, r.depth, r.child_count, r.bar_style, r.is_error, r.has_error_below)
        for r in detail.rows
    ]
    assert rows == [
        ("root", 0, 2, "left:0.000%;width:100.000%", False, True),
        ("chain", 1, 1, "left:10.000%;width:50.000%", False, True),
        ("tool", 2, 0, "left:25.000%;width:25.000%", True, False),
        ("llm", 1, 0, "left:70.000%;width:20.000%", False, False),
    ]
    assert detail.rows[3].url == f"/span/{late.span_id}/"
    assert detail.rows[3].evaluation_count == 2
    assert detail.rows[3].evaluation_summary == "Correctness: correct, Quality: good"
    assert detail.error_count == 1 and detail.duration == "1.00 s"
    pane = detail.selected
    assert pane.span.span_id == late.span_id and pane.span.attributes  # loaded fully
    assert [a.name for a in pane.evaluations] == ["Correctness"]
    assert [a.name for a in pane.annotations] == ["Quality"]

    # Without a span, the root is selected.
    default = trace_detail_get(
        project_name="default", trace_id=trace_id, span_id=None, span_url=url
    )
    assert default is not None and default.selected.span.name == "root"

    # The same span as an htmx pane.
    alone = span_pane_get(
        project_name="default", trace_id=trace_id, span_id=late.span_id, span_url=url
    )
    assert alone is not None and [a.label for a in alone.evaluations] == ["correct"]


@pytest.mark.django_db
def test_trace_detail_is_none_for_unknown_project_trace_or_span():
    [root, *_] = factories.trace(project="shop")
    trace_id = root.trace.trace_id
    assert trace_detail_get(project_name="shop", trace_id=trace_id, span_id=None, span_url=url)
    for project, trace, span in [
        ("nope", trace_id, None),
        ("shop", "f" * 32, None),
        ("shop", trace_id, "0" * 16),
    ]:
        assert (
            trace_detail_get(project_name=project, trace_id=trace, span_id=span, span_url=url)
            is None
        )
    factories.project("other")
    assert (
        trace_detail_get(project_name="other", trace_id=trace_id, span_id=None, span_url=url)
        is None
    )
    other_trace = factories.trace(project="shop")[0]
    # A span of another trace is not found through this trace.
    assert (
        span_pane_get(
            project_name="shop", trace_id=trace_id, span_id=other_trace.span_id, span_url=url
        )
        is None
    )


@pytest.mark.django_db
def test_session_detail_orders_turns_with_root_input_output_and_evaluations():
    second = factories.trace(
        session_id="conv-1",
        start=T0 + timedelta(minutes=5),
        input_value="And for bulbs?",
        output_value="Bulbs too.",
    )
    first = factories.trace(
        session_id="conv-1",
        start=T0,
        input_value='{"question": "Refunds?"}',
        output_value="Within 30 days.",
        status_code="ERROR",
    )
    factories.trace(session_id="other")
    project = first[0].project
    _annotate(second[2], "Correctness", "LLM", "incorrect", 0.0, project)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="TRACE",
                target_id=first[0].trace.trace_id,
                name="Resolved",
                annotator_kind="CODE",
                label="no",
            ),
            AnnotationInput(
                target_kind="SESSION",
                target_id="conv-1",
                name="Frustration",
                annotator_kind="LLM",
                label="low",
                score=0.1,
            ),
        ],
        project=project,
    )

    detail = session_detail_get(project_name="default", session_id="conv-1")
    assert detail is not None
    assert [t.trace.trace_id for t in detail.turns] == [
        first[0].trace.trace_id,
        second[0].trace.trace_id,
    ]
    one, two = detail.turns
    assert (
        one.input is not None and one.input.is_json and '"question": "Refunds?"' in one.input.text
    )
    assert one.output is not None and one.output.text == "Within 30 days."
    assert one.is_error and [a.name for a in one.evaluations] == ["Resolved"]
    assert two.input is not None and two.input.text == "And for bulbs?"
    assert [(a.name, a.label) for a in two.evaluations] == [("Correctness", "incorrect")]
    assert [a.name for a in detail.evaluations] == ["Frustration"]
    assert detail.duration  # first start to last end
    assert session_detail_get(project_name="default", session_id="missing") is None
    assert session_detail_get(project_name="nope", session_id="conv-1") is None
