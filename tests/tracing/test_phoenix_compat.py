"""Every public method of ``client.projects``, ``client.spans``, ``client.traces`` and
``client.sessions`` of the real ``arize-phoenix-client``, called against a live server, with
what it returns checked. ``CALLED`` lists the methods this module calls; the first test fails
when the installed client has a public method it does not list, so a new client version cannot
add one unnoticed. docs/phoenix-compat.md is the table of the same."""

from datetime import timedelta

import httpx
import pandas as pd
import pytest
from phoenix.client import Client
from phoenix.client.helpers.spans import uniquify_spans, uniquify_spans_dataframe
from phoenix.client.types.spans import SpanQuery

from annotations.models import Annotation
from tests import factories
from tests.tracing.factories import phoenix_span
from tracing.models import Project, Session, Span

pytestmark = pytest.mark.django_db(transaction=True)

T0 = factories.BASE_TIME

CALLED = {
    "projects": {"create", "delete", "get", "list", "update"},
    "spans": {
        "add_document_annotation",
        "add_span_annotation",
        "add_span_note",
        "delete",
        "get_span_annotations",
        "get_span_annotations_dataframe",
        "get_spans",
        "get_spans_dataframe",
        "log_document_annotations",
        "log_document_annotations_dataframe",
        "log_span_annotations",
        "log_span_annotations_dataframe",
        "log_spans",
        "log_spans_dataframe",
    },
    "traces": {
        "add_trace_annotation",
        "get_traces",
        "log_trace_annotations",
        "log_trace_annotations_dataframe",
    },
    "sessions": {
        "add_session_annotation",
        "bulk_delete",
        "delete",
        "get",
        "get_session_turns",
        "get_sessions_dataframe",
        "list",
        "log_session_annotations",
        "log_session_annotations_dataframe",
    },
}


@pytest.fixture
def px(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def _public(resource: object) -> set[str]:
    return {
        name
        for name in dir(resource)
        if not name.startswith("_") and callable(getattr(resource, name))
    }


def test_this_module_calls_every_public_method():
    client = Client(base_url="http://127.0.0.1:9")
    for resource, called in CALLED.items():
        assert _public(getattr(client, resource)) == called, resource


def test_projects(px):
    created = px.projects.create(name="compat", description="first")
    assert created == {"id": created["id"], "name": "compat", "description": "first"}
    assert px.projects.get(project_name="compat") == created
    assert px.projects.get(project_id=created["id"]) == created
    assert "compat" in [p["name"] for p in px.projects.list()]
    assert [p["name"] for p in px.projects.list(name_contains="comp")] == ["compat"]
    updated = px.projects.update(project_name="compat", description="second")
    assert updated["description"] == "second"
    px.projects.delete(project_name="compat")
    assert not Project.objects.filter(name="compat").exists()
    with pytest.raises(httpx.HTTPStatusError) as missing:
        px.projects.get(project_name="compat")
    assert missing.value.response.status_code == 404


def test_spans_log_read_and_delete(px):
    root = phoenix_span(name="root", span_kind="CHAIN", attributes={"input.value": "hi"})
    trace_id, root_id = root["context"]["trace_id"], root["context"]["span_id"]
    child = phoenix_span(
        trace_id=trace_id,
        parent_id=root_id,
        name="child",
        span_kind="LLM",
        start=T0 + timedelta(milliseconds=5),
        attributes={"llm.token_count.prompt": 7, "llm.token_count.completion": 3},
    )
    px.projects.create(name="compat")
    logged = px.spans.log_spans(project_identifier="compat", spans=[root, child])
    assert (logged["total_received"], logged["total_queued"]) == (2, 2)

    listed = px.spans.get_spans(project_identifier="compat")
    assert {s["name"] for s in listed} == {"root", "child"}
    roots = px.spans.get_spans(project_identifier="compat", parent_id="null")
    assert [s["context"]["span_id"] for s in roots] == [root_id]
    assert [
        s["name"] for s in px.spans.get_spans(project_identifier="compat", span_kind="LLM")
    ] == ["child"]

    frame = px.spans.get_spans_dataframe(project_identifier="compat")
    assert frame.index.name == "context.span_id"
    assert sorted(frame["context.span_id"]) == sorted(frame.index)  # both index and column
    queried = px.spans.get_spans_dataframe(
        project_identifier="compat",
        query=SpanQuery().where("cumulative_token_count.total == 10").select("name"),
    )
    assert sorted(queried["name"]) == ["child", "root"]

    again = px.spans.log_spans_dataframe(
        project_identifier="compat", spans_dataframe=uniquify_spans_dataframe(frame)
    )
    assert again["total_queued"] == 2
    assert (
        px.spans.log_spans(project_identifier="compat", spans=uniquify_spans([root]))[
            "total_queued"
        ]
        == 1
    )

    # delete takes the span_id and the id get_spans gives.
    listed_child = next(s for s in listed if s["name"] == "child")
    px.spans.delete(span_identifier=listed_child["id"])
    px.spans.delete(span_identifier=root_id)
    assert not Span.objects.filter(span_id__in=[root_id, child["context"]["span_id"]]).exists()


def test_span_and_document_annotations(px):
    _root, retriever, llm = factories.rag_trace(project="compat")
    one = px.spans.add_span_annotation(
        span_id=llm.span_id, annotation_name="tone", label="polite", sync=True
    )
    assert one["id"]
    many = px.spans.log_span_annotations(
        span_annotations=[
            {
                "span_id": llm.span_id,
                "name": "Correctness",
                "annotator_kind": "LLM",
                "result": {"label": "correct", "score": 1.0},
            }
        ],
        sync=True,
    )
    assert len(many) == 1
    from_frame = px.spans.log_span_annotations_dataframe(
        dataframe=pd.DataFrame({"span_id": [retriever.span_id], "score": [0.4]}),
        annotation_name="recall",
        annotator_kind="CODE",
        sync=True,
    )
    assert len(from_frame) == 1
    note = px.spans.add_span_note(span_id=llm.span_id, note="looks fine")
    assert Annotation.objects.get(pk=int(note["id"])).explanation == "looks fine"

    listed = px.spans.get_span_annotations(
        span_ids=[llm.span_id, retriever.span_id], project_identifier="compat"
    )
    assert {a["name"] for a in listed} == {"tone", "Correctness", "recall"}  # notes left out
    spans_frame = px.spans.get_spans_dataframe(project_identifier="compat")
    annotations_frame = px.spans.get_span_annotations_dataframe(
        spans_dataframe=spans_frame, project_identifier="compat"
    )
    assert set(annotations_frame["annotation_name"]) == {"tone", "Correctness", "recall"}
    assert annotations_frame.loc[retriever.span_id, "result.score"] == 0.4

    doc = px.spans.add_document_annotation(
        span_id=retriever.span_id,
        document_position=0,
        annotation_name="relevance",
        annotator_kind="LLM",
        label="relevant",
        sync=True,
    )
    docs = px.spans.log_document_annotations(
        document_annotations=[
            {
                "span_id": retriever.span_id,
                "document_position": 1,
                "name": "relevance",
                "annotator_kind": "LLM",
                "result": {"label": "irrelevant"},
            }
        ],
        sync=True,
    )
    docs_frame = px.spans.log_document_annotations_dataframe(
        dataframe=pd.DataFrame(
            {"span_id": [retriever.span_id], "document_position": [2], "label": ["irrelevant"]}
        ),
        annotation_name="relevance",
        annotator_kind="LLM",
        sync=True,
    )
    assert doc["id"] and len(docs) == 1 and len(docs_frame) == 1
    assert sorted(
        Annotation.objects.filter(target_kind="DOCUMENT").values_list("document_position", "label")
    ) == [(0, "relevant"), (1, "irrelevant"), (2, "irrelevant")]


def test_traces(px):
    root, _, _ = factories.rag_trace(project="compat", start=T0)
    later, _, _ = factories.rag_trace(project="compat", start=T0 + timedelta(minutes=1))
    traces = px.traces.get_traces(project_identifier="compat", include_spans=True)
    assert [t["trace_id"] for t in traces] == [later.trace.trace_id, root.trace.trace_id]
    assert len(traces[0]["spans"]) == 3
    slow = px.traces.get_traces(project_identifier="compat", min_latency_ms=10_000)
    assert slow == []

    one = px.traces.add_trace_annotation(
        trace_id=root.trace.trace_id, annotation_name="quality", label="good", sync=True
    )
    many = px.traces.log_trace_annotations(
        trace_annotations=[
            {
                "trace_id": later.trace.trace_id,
                "name": "quality",
                "annotator_kind": "HUMAN",
                "result": {"label": "bad"},
            }
        ],
        sync=True,
    )
    framed = px.traces.log_trace_annotations_dataframe(
        dataframe=pd.DataFrame({"trace_id": [root.trace.trace_id], "score": [0.9]}),
        annotation_name="helpfulness",
        annotator_kind="LLM",
        sync=True,
    )
    assert one["id"] and len(many) == 1 and len(framed) == 1
    assert sorted(
        Annotation.objects.filter(target_kind="TRACE").values_list("name", "label", "score")
    ) == [("helpfulness", None, 0.9), ("quality", "bad", None), ("quality", "good", None)]


def test_sessions(px):
    for n in range(2):
        factories.trace(
            project="compat",
            session_id="chat-1",
            start=T0 + timedelta(minutes=n),
            input_value=f"q{n}",
            output_value=f"a{n}",
        )
    factories.trace(project="compat", session_id="chat-2", start=T0 + timedelta(hours=1))
    factories.trace(project="compat", session_id="chat-3", start=T0 + timedelta(hours=2))

    sessions = px.sessions.list(project_name="compat")
    assert [s["session_id"] for s in sessions] == ["chat-3", "chat-2", "chat-1"]
    chat1 = px.sessions.get(session_id="chat-1")
    assert len(chat1["traces"]) == 2
    assert px.sessions.get(session_id=chat1["id"]) == chat1
    turns = px.sessions.get_session_turns(session_id="chat-1")
    assert [(t["input"]["value"], t["output"]["value"]) for t in turns] == [
        ("q0", "a0"),
        ("q1", "a1"),
    ]
    frame = px.sessions.get_sessions_dataframe(project_name="compat")
    assert dict(zip(frame["session_id"], frame["num_traces"], strict=True)) == {
        "chat-1": 2,
        "chat-2": 1,
        "chat-3": 1,
    }

    one = px.sessions.add_session_annotation(
        session_id="chat-1", annotation_name="csat", score=4, sync=True
    )
    many = px.sessions.log_session_annotations(
        session_annotations=[
            {
                "session_id": "chat-2",
                "name": "csat",
                "annotator_kind": "HUMAN",
                "result": {"score": 2},
            }
        ],
        sync=True,
    )
    framed = px.sessions.log_session_annotations_dataframe(
        dataframe=pd.DataFrame({"label": ["resolved"]}, index=["chat-3"]),
        annotation_name="outcome",
        annotator_kind="LLM",
        sync=True,
    )
    assert one["id"] and len(many) == 1 and len(framed) == 1
    assert Annotation.objects.filter(target_kind="SESSION").count() == 3

    px.sessions.delete(session_id="chat-1")
    px.sessions.bulk_delete(session_ids=["chat-2", sessions[0]["id"]])
    assert not Session.objects.exists()
    assert not Span.objects.filter(project__name="compat").exists()
    assert not Annotation.objects.filter(target_kind="SESSION").exists()
