"""``client.spans`` list, log and delete against a live server; errors as typed exceptions."""

import json
from datetime import timedelta

import httpx
import pandas as pd
import pytest
from evalhub_client import (
    AuthenticationError,
    Client,
    EvalHubError,
    NotFoundError,
    SpanDeletePartialResponse,
    SpanList,
    SpanLogError,
    SpansLogResponse,
    ValidationError,
)
from evalhub_client import Span as SpanObject
from evalhub_client.spans import client as sdk_spans

from annotations.models import Annotation
from tests import factories
from tests.sdk.factories import T0, span_frame
from tracing.models import Project, Span


def _by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("context.span_id").reset_index(drop=True)


def test_log_then_list_round_trips_the_frame_exactly(client):
    sent = span_frame(6)
    result = client.spans.log("p", sent)
    assert result == {"total_received": 6, "total_queued": 6, "total_evaluations": 0}

    got = client.spans.list("p").to_df()
    assert set(got.columns) == set(sent.columns)
    pd.testing.assert_frame_equal(_by_id(got)[list(sent.columns)], _by_id(sent))

    # Stored as the server reads OpenInference attributes.
    llm = Span.objects.get(span_id=sent.loc[1, "context.span_id"])
    assert (llm.span_kind, llm.model_name, llm.prompt_tokens) == ("LLM", "gpt-4o-mini", 120)
    assert llm.metadata == {"region": "eu-west", "limits": {"max_tokens": 512}}
    assert llm.parent_id == sent.loc[0, "context.span_id"]
    root = Span.objects.get(span_id=sent.loc[0, "context.span_id"])
    assert root.tags == ["vip", "beta"]
    assert root.output_value == "answer 0"


def test_list_is_newest_first_and_pages(client):
    client.spans.log("p", span_frame(25))
    first = client.spans.list("p", limit=10)
    assert isinstance(first, SpanList)
    assert len(first.data) == 10
    assert first.next_cursor is not None
    assert [len(page.data) for page in first.pages()] == [10, 10, 5]

    everything = list(first)
    names = [span["context"]["span_id"] for span in everything]
    assert len(set(names)) == 25
    starts = [span["start_time"] for span in everything]
    assert starts == sorted(starts, reverse=True)
    assert len(first.to_dicts()) == 10
    assert first.to_dicts(all_pages=True) == everything
    assert json.loads(first.to_json(all_pages=True)) == everything
    frame = first.to_df(all_pages=True)
    assert len(frame) == 25
    assert str(frame["start_time"].dtype).startswith("datetime64")
    assert frame["start_time"].is_monotonic_decreasing


def test_list_filters_and_time_window(client):
    client.spans.log("p", span_frame(9))
    llm = client.spans.list("p", filter="span_kind == 'LLM'").to_df()
    assert list(llm["name"]) == ["llm", "llm", "llm"]
    errors = client.spans.list(
        "p", filter="status_code == 'ERROR' and metadata.region == 'us-east'"
    ).to_df()
    assert list(errors["context.span_id"]) == [f"{9:016x}", f"{3:016x}"]
    window = client.spans.list(
        "p", start_time=T0 + timedelta(seconds=2), end_time=T0 + timedelta(seconds=4)
    ).to_dicts()
    assert [s["name"] for s in window] == ["step-3", "step-2"]
    assert client.spans.list("p", filter="name == 'nothing'").to_df().empty


def test_log_with_evaluations_then_filter_by_them(client):
    frame = span_frame(4)
    frame["eval.correctness.label"] = ["correct", None, "incorrect", None]
    frame["eval.correctness.score"] = [1.0, None, 0.0, float("nan")]
    evals = pd.DataFrame(
        {"eval.tone.label": ["polite"], "eval.tone.explanation": ["says please"]},
        index=pd.Index([frame.loc[1, "context.span_id"]], name="context.span_id"),
    )
    result = client.spans.log("p", frame, evals_dataframe=evals)
    assert result["total_evaluations"] == 3

    correct = client.spans.list("p", filter="eval.correctness.label == 'correct'").to_dicts()
    assert [s["context"]["span_id"] for s in correct] == [frame.loc[0, "context.span_id"]]
    polite = client.spans.list("p", filter="eval.tone.label == 'polite'").to_dicts()
    assert [s["context"]["span_id"] for s in polite] == [frame.loc[1, "context.span_id"]]
    tone = Annotation.objects.get(name="tone")
    assert (tone.annotator_kind, tone.explanation) == ("LLM", "says please")
    # Evaluation columns do not become span attributes.
    assert "attributes.eval.correctness.label" not in client.spans.list("p").to_df().columns


def test_log_naive_times_are_utc_and_strings_are_accepted(client):
    frame = span_frame(1)
    frame["start_time"] = [T0.replace(tzinfo=None)]
    frame["end_time"] = [(T0 + timedelta(seconds=1)).isoformat()]
    client.spans.log("p", frame)
    span = Span.objects.get()
    assert span.start_time == T0
    assert span.latency_ms == 1000


def test_log_rejects_duplicates_and_invalid_spans(client):
    frame = span_frame(2)
    client.spans.log("p", frame)
    with pytest.raises(SpanLogError) as duplicate:
        client.spans.log("p", frame)
    assert [d["span_id"] for d in duplicate.value.duplicate_spans] == list(frame["context.span_id"])
    assert duplicate.value.status_code == 400

    bad = span_frame(1, first=100)
    bad["end_time"] = [T0 - timedelta(seconds=1)]
    with pytest.raises(SpanLogError) as invalid:
        client.spans.log("p", bad)
    assert "end_time is before start_time" in invalid.value.invalid_spans[0]["error"]
    with pytest.raises(ValueError, match=r"context\.trace_id"):
        client.spans.log("p", span_frame(1).drop(columns=["context.trace_id"]))
    assert Span.objects.count() == 2


def test_errors_are_typed_and_carry_the_servers_detail(client, live_server):
    client.spans.log("p", span_frame(1))
    with pytest.raises(ValidationError) as bad_filter:
        client.spans.list("p", filter="latncy_ms > 3")
    assert "did you mean 'latency_ms'" in bad_filter.value.detail
    assert bad_filter.value.status_code == 400

    with pytest.raises(NotFoundError) as missing:
        client.spans.list("nope")
    assert missing.value.detail == "project 'nope' not found"
    assert missing.value.missing_ids == []

    with (
        Client(base_url=live_server.url, api_key="wrong") as anonymous,
        pytest.raises(AuthenticationError) as denied,
    ):
        anonymous.spans.list("p")
    assert "API key" in denied.value.detail
    assert isinstance(denied.value, EvalHubError)

    with (
        Client(base_url="http://127.0.0.1:9", api_key="x") as nowhere,
        pytest.raises(EvalHubError, match="cannot reach"),
    ):
        nowhere.spans.list("p")


def test_client_reads_the_environment(live_server, transactional_db, monkeypatch):
    factories.trace(project="p")
    monkeypatch.setenv("EVALHUB_BASE_URL", live_server.url)
    monkeypatch.setenv("EVALHUB_API_KEY", factories.api_key())
    with Client() as client:
        assert len(client.spans.list("p").data) == 3


def test_delete(client):
    frame = span_frame(5)
    client.spans.log("p", frame)
    ids = list(frame["context.span_id"])
    assert client.spans.delete("p", [ids[1], ids[2], "0000000000000bad"]) is None
    factories.project("other")
    assert client.spans.delete("other", ids) is None  # none of them is there: nothing to do
    remaining = {s["context"]["span_id"] for s in client.spans.list("p")}
    assert remaining == {ids[0], ids[3], ids[4]}


def test_large_frames_go_in_batches(client, monkeypatch):
    monkeypatch.setattr(sdk_spans, "MAX_BATCH", 2)
    client.spans.log("p", span_frame(1, first=50))  # a span stored before
    frame = span_frame(5)
    frame["eval.quality.score"] = [0.1, None, 0.3, None, 0.5]
    evals = pd.DataFrame({"context.span_id": [f"{50:016x}"], "eval.quality.label": ["old"]})
    result = client.spans.log("p", frame, evals_dataframe=evals)
    assert result == {"total_received": 5, "total_queued": 5, "total_evaluations": 4}
    scores = dict(Annotation.objects.values_list("span__span_id", "score"))
    assert scores == {f"{1:016x}": 0.1, f"{3:016x}": 0.3, f"{5:016x}": 0.5, f"{50:016x}": None}

    ids = list(frame["context.span_id"])
    records = pd.DataFrame({"context.span_id": ids, "eval.quality.label": list("abcde")})
    assert client.spans.update_evaluations("p", records).annotations == 5
    written = client.spans.annotate_spans(
        "p",
        annotations=[{"span_id": i, "name": "seen", "label": "yes"} for i in ids],
        start_time=T0,
    )
    assert [w["span_id"] for w in written] == ids
    metadata = pd.DataFrame({"context.span_id": ids, "attributes.metadata.batch": range(5)})
    assert client.spans.update_metadata("p", metadata).spans_updated == 5
    assert [len(page.data) for page in client.spans.list("p", limit=2).pages()] == [2, 2, 2]
    assert client.spans.delete("p", ids) is None
    assert not Span.objects.filter(span_id__in=ids).exists()


def test_list_response_objects(client):
    sent = span_frame(3)
    client.spans.log("p", sent)
    resp = client.spans.list(project="p", limit=2, space="ignored", space_id="ignored")

    # Span objects: every field as an attribute, nested ones too, and the Arize SDK's names.
    span = resp.spans[0]
    assert isinstance(span, SpanObject)
    assert (span.span_id, span.name, span.kind) == (
        sent.loc[2, "context.span_id"],
        "step-2",
        "CHAIN",
    )
    assert span.context.trace_id == span.trace_id == "a" * 32
    assert span.parent_id == sent.loc[0, "context.span_id"]
    assert span.start_time == T0 + timedelta(seconds=2)
    assert (span.status_code, span.status_message) == ("ERROR", "boom")
    assert span.attributes["input.value"] == "question 2"
    assert span.attributes["metadata.region"] == "us-east"
    assert span.events == []
    assert span.id == str(Span.objects.get(span_id=span.span_id).pk)
    # Field introspection, and conversions.
    assert {"id", "name", "context", "span_kind", "start_time", "attributes"} <= set(
        type(span).model_fields
    )
    assert span.to_dict() == resp.data[0]
    assert json.loads(span.to_json()) == resp.data[0]
    assert span.model_dump()["context"] == {"trace_id": "a" * 32, "span_id": span.span_id}

    # The page and the way on.
    assert set(SpanList.model_fields) == {"spans", "pagination"}
    assert resp.pagination.has_more is True
    assert resp.to_dict() == {
        "spans": resp.data,
        "pagination": {"next_cursor": resp.next_cursor, "has_more": True},
    }
    last = client.spans.list(project="p", limit=2, cursor=resp.pagination.next_cursor)
    assert [s.name for s in resp.spans + last.spans] == ["step-2", "llm", "step-0"]
    assert last.pagination.to_dict() == {"has_more": False}
    assert json.loads(resp.model_dump_json())["pagination"]["has_more"] is True
    assert len(resp.to_df(all_pages=True)) == 3


def test_log_returns_the_status_code_and_the_totals(client):
    response = client.spans.log(project_name="p", dataframe=span_frame(2), space_id="ignored")
    assert isinstance(response, SpansLogResponse)
    assert (response.status_code, response.ok) == (200, True)
    assert response == {"total_received": 2, "total_queued": 2, "total_evaluations": 0}
    assert response.total_queued == 2


def test_delete_takes_the_ids_the_listing_gives(client):
    client.spans.log("p", span_frame(3))
    first, second, third = client.spans.list("p").spans
    assert client.spans.delete(project="p", span_ids=[first.id, second.span_id], space="x") is None
    assert [s.span_id for s in client.spans.list("p").spans] == [third.span_id]
    with pytest.raises(ValueError, match="must not be empty"):
        client.spans.delete("p", [])


class DropsSecondDelete(httpx.HTTPTransport):
    """A network that fails to connect for the second span delete request (the server is
    real; only that connection is refused)."""

    def __init__(self) -> None:
        super().__init__()
        self.deletes = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/spans/delete"):
            self.deletes += 1
            if self.deletes == 2:
                raise httpx.ConnectError("connection refused", request=request)
        return super().handle_request(request)


def test_delete_reports_a_partial_deletion(live_server, transactional_db, monkeypatch):
    monkeypatch.setattr(sdk_spans, "MAX_BATCH", 2)
    transport = DropsSecondDelete()
    with (
        httpx.Client(transport=transport) as http,
        Client(base_url=live_server.url, api_key=factories.api_key(), http_client=http) as client,
    ):
        frame = span_frame(5)
        client.spans.log("p", frame)
        ids = list(frame["context.span_id"])
        partial = client.spans.delete("p", ids)
        assert isinstance(partial, SpanDeletePartialResponse)
        assert partial.deleted_span_ids == ids[:2]
        assert "cannot reach" in (partial.detail or "")
        assert set(Span.objects.values_list("span_id", flat=True)) == set(ids[2:])

        assert client.spans.delete("p", ids) is None  # retrying completes it
        assert not Span.objects.exists()

        transport.deletes = 1  # the first request of a call fails: nothing was deleted
        client.spans.log("p", span_frame(1, first=10))
        with pytest.raises(EvalHubError, match="cannot reach"):
            client.spans.delete("p", [f"{10:016x}"])
        assert Span.objects.count() == 1


@pytest.mark.parametrize("name", ["team/app", "..", "a~b %2F ü 🚀", "q?x#y"])
def test_any_project_name_works_even_with_slashes_and_dots(client, name):
    sent = span_frame(2)
    client.spans.log(name, sent)
    assert Project.objects.filter(name=name).exists()
    got = client.spans.list(name).to_df()
    assert sorted(got["context.span_id"]) == sorted(sent["context.span_id"])
