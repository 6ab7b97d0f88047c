"""End to end with the real ``arize-phoenix-client`` against a live server."""

from datetime import timedelta

import httpx
import pytest
from phoenix.client import Client
from phoenix.client.exceptions import SpanCreationError
from phoenix.client.helpers.spans import (
    dataframe_to_spans,
    uniquify_spans,
    uniquify_spans_dataframe,
)

from tests import factories
from tests.tracing.factories import phoenix_span
from tracing.models import Span

pytestmark = pytest.mark.django_db(transaction=True)

T0 = factories.BASE_TIME


@pytest.fixture
def phoenix(live_server, api_key) -> Client:
    return Client(base_url=live_server.url, api_key=api_key)


def _agent_trace(project_marker: str = "") -> list[dict]:
    root = phoenix_span(
        name=f"agent{project_marker}",
        span_kind="AGENT",
        latency_ms=900,
        attributes={
            "input.value": "What is the refund policy?",
            "output.value": "30 days",
            "session.id": "s-1",
        },
    )
    trace_id, root_id = root["context"]["trace_id"], root["context"]["span_id"]
    retriever = phoenix_span(
        trace_id=trace_id,
        parent_id=root_id,
        name="retrieve",
        span_kind="RETRIEVER",
        start=T0 + timedelta(milliseconds=10),
        attributes={
            "input.value": "refund policy",
            "retrieval.documents.0.document.content": "Refunds within 30 days.",
            "retrieval.documents.0.document.score": 0.9,
            "retrieval.documents.1.document.content": "Shipping is free.",
            "retrieval.documents.1.document.score": 0.2,
        },
    )
    llm = phoenix_span(
        trace_id=trace_id,
        parent_id=root_id,
        name="llm",
        span_kind="LLM",
        start=T0 + timedelta(milliseconds=100),
        latency_ms=700,
        status_code="ERROR",
        attributes={
            "input.value": "What is the refund policy?",
            "output.value": "30 days",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 100,
            "llm.token_count.completion": 20,
            "user.id": "u-7",
            "metadata": '{"tier": "gold"}',
        },
    )
    return [root, retriever, llm]


def test_projects(phoenix):
    created = phoenix.projects.create(name="client-project", description="made by the client")
    assert created["name"] == "client-project"
    assert phoenix.projects.get(project_id=created["id"]) == created
    assert (
        phoenix.projects.get(project_name="client-project")["description"] == "made by the client"
    )
    updated = phoenix.projects.update(project_name="client-project", description="changed")
    assert updated["description"] == "changed"
    for i in range(3):
        phoenix.projects.create(name=f"extra-{i}")
    names = {p["name"] for p in phoenix.projects.list()}
    assert {"client-project", "extra-0", "extra-1", "extra-2"} <= names
    assert [p["name"] for p in phoenix.projects.list(name_contains="EXTRA-1")] == ["extra-1"]
    with pytest.raises(httpx.HTTPStatusError) as conflict:
        phoenix.projects.create(name="client-project")
    assert conflict.value.response.status_code == 409
    phoenix.projects.delete(project_name="client-project")
    with pytest.raises(httpx.HTTPStatusError) as missing:
        phoenix.projects.get(project_name="client-project")
    assert missing.value.response.status_code == 404


def test_log_spans_and_read_them_back(phoenix):
    phoenix.projects.create(name="p")
    spans = _agent_trace()
    result = phoenix.spans.log_spans(project_identifier="p", spans=spans)
    assert result["total_received"] == 3
    assert result["total_queued"] == 3

    listed = phoenix.spans.get_spans(project_identifier="p")
    assert [s["name"] for s in listed] == ["llm", "retrieve", "agent"]
    llm = listed[0]
    assert llm["context"] == spans[2]["context"]
    assert llm["parent_id"] == spans[0]["context"]["span_id"]
    assert llm["status_code"] == "ERROR"
    assert llm["attributes"]["llm.model_name"] == "gpt-4o-mini"
    assert llm["attributes"]["metadata.tier"] == "gold"

    # Every filter the client offers.
    trace_id = spans[0]["context"]["trace_id"]
    assert len(phoenix.spans.get_spans(project_identifier="p", trace_ids=[trace_id])) == 3
    assert [
        s["name"]
        for s in phoenix.spans.get_spans(
            project_identifier="p", span_ids=[spans[1]["context"]["span_id"]]
        )
    ] == ["retrieve"]
    assert [
        s["name"] for s in phoenix.spans.get_spans(project_identifier="p", parent_id="null")
    ] == ["agent"]
    assert [
        s["name"] for s in phoenix.spans.get_spans(project_identifier="p", span_kind="LLM")
    ] == ["llm"]
    assert [
        s["name"] for s in phoenix.spans.get_spans(project_identifier="p", status_code=["ERROR"])
    ] == ["llm"]
    assert [
        s["name"]
        for s in phoenix.spans.get_spans(project_identifier="p", name=["retrieve", "agent"])
    ] == ["retrieve", "agent"]
    by_attr = phoenix.spans.get_spans(
        project_identifier="p", attributes={"llm.token_count.prompt": 100, "user.id": "u-7"}
    )
    assert [s["name"] for s in by_attr] == ["llm"]
    assert (
        phoenix.spans.get_spans(
            project_identifier="p", attributes={"llm.token_count.prompt": "100"}
        )
        == []
    )
    window = phoenix.spans.get_spans(
        project_identifier="p",
        start_time=T0 + timedelta(milliseconds=50),
        end_time=T0 + timedelta(seconds=1),
    )
    assert [s["name"] for s in window] == ["llm"]
    # The project id works wherever the name does.
    project_id = phoenix.projects.get(project_name="p")["id"]
    assert len(phoenix.spans.get_spans(project_identifier=project_id, limit=2)) == 2


def test_get_spans_pages_through_the_client(phoenix):
    factories.ingest(
        [factories.span_record(start=T0 + timedelta(seconds=i)) for i in range(250)], project="big"
    )
    spans = phoenix.spans.get_spans(project_identifier="big", limit=240)
    assert len(spans) == 240
    assert len({s["context"]["span_id"] for s in spans}) == 240


def test_log_spans_rejects_duplicates_and_invalid_spans(phoenix):
    phoenix.projects.create(name="p")
    spans = _agent_trace()
    phoenix.spans.log_spans(project_identifier="p", spans=spans)
    with pytest.raises(SpanCreationError) as duplicate:
        phoenix.spans.log_spans(project_identifier="p", spans=spans[:1])
    assert duplicate.value.total_duplicates == 1
    assert duplicate.value.duplicate_spans[0]["span_id"] == spans[0]["context"]["span_id"]

    fresh = uniquify_spans(_agent_trace())
    fresh[1]["start_time"] = "not a time"
    with pytest.raises(SpanCreationError) as invalid:
        phoenix.spans.log_spans(project_identifier="p", spans=fresh)
    assert invalid.value.total_invalid == 1
    assert invalid.value.invalid_spans[0]["span_id"] == fresh[1]["context"]["span_id"]
    assert "start_time" in invalid.value.invalid_spans[0]["error"]
    assert Span.objects.count() == 3


def test_spans_dataframe_round_trip(phoenix):
    phoenix.projects.create(name="p")
    spans = _agent_trace()
    phoenix.spans.log_spans(project_identifier="p", spans=spans)

    df = phoenix.spans.get_spans_dataframe(project_identifier="p")
    assert len(df) == 3
    assert df.index.name == "context.span_id"
    llm = df.loc[spans[2]["context"]["span_id"]]
    assert llm["name"] == "llm"
    assert llm["span_kind"] == "LLM"
    assert llm["context.trace_id"] == spans[2]["context"]["trace_id"]
    assert llm["attributes.llm.model_name"] == "gpt-4o-mini"
    assert llm["attributes.input.value"] == "What is the refund policy?"
    assert str(df["start_time"].dtype).startswith("datetime64")

    # The frame converts back to spans that the server accepts again (as new spans).
    again = uniquify_spans(dataframe_to_spans(df))
    result = phoenix.spans.log_spans(project_identifier="p", spans=again)
    assert result["total_queued"] == 3
    copied = Span.objects.get(
        span_id=next(s for s in again if s["name"] == "llm")["context"]["span_id"]
    )
    assert (copied.model_name, copied.prompt_tokens, copied.metadata) == (
        "gpt-4o-mini",
        100,
        {"tier": "gold"},
    )
    result = phoenix.spans.log_spans_dataframe(
        project_identifier="p", spans_dataframe=uniquify_spans_dataframe(df)
    )
    assert result["total_queued"] == 3
    assert Span.objects.filter(project__name="p").count() == 9


def test_spans_dataframe_with_queries(phoenix):
    from phoenix.client.types.spans import SpanQuery

    phoenix.projects.create(name="p")
    spans = _agent_trace()
    phoenix.spans.log_spans(project_identifier="p", spans=spans)

    llm_only = phoenix.spans.get_spans_dataframe(
        project_identifier="p", query=SpanQuery().where("span_kind == 'LLM'")
    )
    assert list(llm_only["name"]) == ["llm"]

    roots = phoenix.spans.get_spans_dataframe(project_identifier="p", root_spans_only=True)
    assert list(roots["name"]) == ["agent"]

    selected = phoenix.spans.get_spans_dataframe(
        project_identifier="p",
        query=SpanQuery()
        .where("parent_id is None")
        .select("trace_id", "input.value")
        .rename(**{"input.value": "question"})
        .with_index("trace_id"),
    )
    assert list(selected.columns) == ["question"]
    assert selected.index.name == "context.trace_id"
    assert selected.loc[spans[0]["context"]["trace_id"], "question"] == "What is the refund policy?"

    docs = phoenix.spans.get_spans_dataframe(
        project_identifier="p",
        query=SpanQuery()
        .where("span_kind == 'RETRIEVER'")
        .explode("retrieval.documents", content="document.content", score="document.score"),
    )
    assert list(docs.index.names) == ["context.span_id", "document_position"]
    assert list(docs["content"]) == ["Refunds within 30 days.", "Shipping is free."]
    assert list(docs["score"]) == [0.9, 0.2]

    joined = phoenix.spans.get_spans_dataframe(
        project_identifier="p",
        query=SpanQuery()
        .where("span_kind == 'RETRIEVER'")
        .concat("retrieval.documents", context="document.content")
        .with_index("trace_id"),
    )
    assert joined.iloc[0]["context"] == "Refunds within 30 days.\n\nShipping is free."

    window = phoenix.spans.get_spans_dataframe(
        project_identifier="p",
        start_time=T0 + timedelta(milliseconds=50),
        end_time=T0 + timedelta(seconds=1),
        limit=10,
    )
    assert list(window["name"]) == ["llm"]
    empty = phoenix.spans.get_spans_dataframe(
        project_identifier="p", query=SpanQuery().where("name == 'nothing'")
    )
    assert empty.empty

    with pytest.raises(httpx.HTTPStatusError) as bad:
        phoenix.spans.get_spans_dataframe(
            project_identifier="p", query=SpanQuery().where("latncy > 3")
        )
    assert bad.value.response.status_code == 400
    assert "latncy" in bad.value.response.json()["detail"]


def test_traces(phoenix):
    phoenix.projects.create(name="p")
    first = _agent_trace()
    second = uniquify_spans(_agent_trace())
    for span in second:
        span["start_time"] = span["start_time"].replace("12:00", "13:00")
        span["end_time"] = span["end_time"].replace("12:00", "13:00")
    phoenix.spans.log_spans(project_identifier="p", spans=first + second)

    traces = phoenix.traces.get_traces(project_identifier="p")
    assert [t["trace_id"] for t in traces] == [
        second[0]["context"]["trace_id"],
        first[0]["context"]["trace_id"],
    ]
    assert traces[0]["token_count_total"] == 120
    assert "spans" not in traces[0]

    with_spans = phoenix.traces.get_traces(
        project_identifier="p", include_spans=True, order="asc", limit=1
    )
    assert len(with_spans) == 1
    assert {s["span_id"] for s in with_spans[0]["spans"]} == {
        s["context"]["span_id"] for s in first
    }

    assert len(phoenix.traces.get_traces(project_identifier="p", error=True)) == 2
    assert phoenix.traces.get_traces(project_identifier="p", error=False) == []
    assert (
        len(phoenix.traces.get_traces(project_identifier="p", session_id="s-1", min_latency_ms=100))
        == 2
    )
    assert phoenix.traces.get_traces(project_identifier="p", max_latency_ms=10) == []
    by_latency = phoenix.traces.get_traces(
        project_identifier="p", sort="latency_ms", start_time=T0 + timedelta(minutes=30)
    )
    assert [t["trace_id"] for t in by_latency] == [second[0]["context"]["trace_id"]]
