import json
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection

from annotations.models import Annotation
from tests import factories
from tests.tracing.factories import phoenix_span
from tracing.models import Span, Trace

pytestmark = pytest.mark.django_db

T0 = factories.BASE_TIME


def _get(client, auth, project="default", **params):
    query = urlencode(params, doseq=True)
    return client.get(f"/v1/projects/{project}/spans?{query}", headers=auth)


def _log(client, auth, body, project="default"):
    return client.post(
        f"/v1/projects/{project}/spans", body, content_type="application/json", headers=auth
    )


def _spans_at(count, *, project="default", step_s=1, start=T0):
    records = [
        factories.span_record(name=f"s{i}", start=start + timedelta(seconds=i * step_s))
        for i in range(count)
    ]
    return factories.ingest(records, project=project)


# --- list -------------------------------------------------------------------------------------


def test_list_returns_phoenix_spans_with_flat_attributes(client, auth):
    root, _retriever, llm = factories.trace(metadata={"user": {"tier": "gold"}})
    response = _get(client, auth)
    assert response.status_code == 200
    body = response.json()
    assert body["next_cursor"] is None
    assert [s["name"] for s in body["data"]] == ["llm", "retrieve", "agent"]
    span = body["data"][0]
    assert span["id"] == str(llm.pk)
    assert span["context"] == {"trace_id": llm.trace.trace_id, "span_id": llm.span_id}
    assert span["parent_id"] == root.span_id
    assert span["span_kind"] == "LLM"
    assert span["status_code"] == "OK"
    assert span["start_time"] == llm.start_time.isoformat()
    assert span["end_time"] == llm.end_time.isoformat()
    attributes = span["attributes"]
    assert attributes["input.value"] == "What is the refund policy?"
    assert attributes["output.value"] == "Refunds are accepted within 30 days."
    assert attributes["llm.model_name"] == "gpt-4o-mini"
    assert attributes["llm.token_count.prompt"] == 100
    assert attributes["llm.input_messages.0.message.role"] == "user"
    assert attributes["metadata.user.tier"] == "gold"
    documents = body["data"][1]["attributes"]
    assert documents["retrieval.documents.0.document.score"] == 0.91
    assert body["data"][2]["parent_id"] is None


def test_newest_first_and_pages_with_a_cursor(client, auth):
    spans = _spans_at(7)
    first = _get(client, auth, limit=3).json()
    assert [s["name"] for s in first["data"]] == ["s6", "s5", "s4"]
    second = _get(client, auth, limit=3, cursor=first["next_cursor"]).json()
    assert [s["name"] for s in second["data"]] == ["s3", "s2", "s1"]
    third = _get(client, auth, limit=3, cursor=second["next_cursor"]).json()
    assert [s["name"] for s in third["data"]] == ["s0"]
    assert third["next_cursor"] is None
    assert len(spans) == 7


def test_pagination_while_spans_arrive_neither_repeats_nor_misses(client, auth):
    # Several spans share a start time, so the id breaks ties in the cursor.
    records = [
        factories.span_record(name=f"old{i}", start=T0 + timedelta(seconds=i // 3))
        for i in range(10)
    ]
    factories.ingest(records)
    seen: list[str] = []
    page = _get(client, auth, limit=4).json()
    seen += [s["context"]["span_id"] for s in page["data"]]
    # New spans arrive: newer ones, and one with the same start time as the page's last row.
    factories.ingest([factories.span_record(name="newer", start=T0 + timedelta(hours=1))])
    factories.ingest([factories.span_record(name="tie", start=T0 + timedelta(seconds=2))])
    while page["next_cursor"]:
        page = _get(client, auth, limit=4, cursor=page["next_cursor"]).json()
        seen += [s["context"]["span_id"] for s in page["data"]]
    old_ids = {r.span_id for r in records}
    assert len(seen) == len(set(seen))
    assert old_ids <= set(seen)
    assert "newer" not in {Span.objects.get(span_id=s).name for s in seen}


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_bad_limit_is_422_naming_limit(client, auth, limit):
    factories.project("default")
    response = _get(client, auth, limit=limit)
    assert response.status_code == 422
    assert "limit" in response.json()["detail"]


def test_limit_of_1000_is_accepted(client, auth):
    factories.project("default")
    assert _get(client, auth, limit=1000).status_code == 200


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJwcm9qZWN0IiwxXQ"])
def test_bad_cursor_is_400(client, auth, cursor):
    factories.project("default")
    response = _get(client, auth, cursor=cursor)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("cursor")


def test_bad_time_is_422_naming_the_field(client, auth):
    factories.project("default")
    response = _get(client, auth, start_time="yesterday")
    assert response.status_code == 422
    assert "start_time" in response.json()["detail"]


def test_unknown_project_is_404(client, auth):
    response = _get(client, auth, project="missing")
    assert response.status_code == 404
    assert "'missing'" in response.json()["detail"]


def test_time_window_is_inclusive_start_exclusive_end(client, auth):
    _spans_at(5)
    body = _get(
        client,
        auth,
        start_time=(T0 + timedelta(seconds=1)).isoformat(),
        end_time=(T0 + timedelta(seconds=3)).isoformat(),
    ).json()
    assert [s["name"] for s in body["data"]] == ["s2", "s1"]


def test_filters_by_ids_parent_name_kind_and_status(client, auth):
    root, retriever, llm = factories.trace()
    other = factories.trace(status_code="ERROR")

    def names(**params):
        response = _get(client, auth, **params)
        assert response.status_code == 200, response.content
        return sorted(s["name"] for s in response.json()["data"])

    assert names(trace_id=[root.trace.trace_id]) == ["agent", "llm", "retrieve"]
    assert names(span_id=[llm.span_id, retriever.span_id]) == ["llm", "retrieve"]
    assert names(parent_id="null") == ["agent", "agent"]
    assert names(parent_id=root.span_id) == ["llm", "retrieve"]
    assert names(name=["llm", "retrieve"], trace_id=[other[0].trace.trace_id]) == [
        "llm",
        "retrieve",
    ]
    assert names(span_kind=["RETRIEVER"]) == ["retrieve", "retrieve"]
    assert names(status_code=["ERROR"]) == ["agent", "llm"]
    assert names(status_code=["ERROR", "OK"]) == sorted(
        ["agent", "llm", "agent", "llm", "retrieve", "retrieve"]
    )


def test_attribute_filter_is_typed(client, auth):
    factories.ingest(
        [
            factories.span_record(name="num", attributes={"user.n": 5, "flag": True}),
            factories.span_record(name="text", attributes={"user.n": "5", "flag": "true"}),
            factories.span_record(name="meta", metadata={"tier": "gold", "n": 2}),
        ]
    )

    def names(*attribute):
        response = _get(client, auth, attribute=list(attribute))
        assert response.status_code == 200, response.content
        return sorted(s["name"] for s in response.json()["data"])

    assert names("user.n:5") == ["num"]
    assert names('user.n:"5"') == ["text"]
    assert "num" in names("flag:true")
    if connection.vendor == "postgresql":  # SQLite's JSON functions read true as "true"
        assert names("flag:true") == ["num"]
        assert names('flag:"true"') == ["text"]
    assert names("metadata.tier:gold") == ["meta"]
    assert names("metadata.n:2") == ["meta"]
    assert names("input.value:question") == ["meta", "num", "text"]
    assert names("input.value:question", "user.n:5") == ["num"]
    assert names("openinference.span.kind:CHAIN", "metadata.tier:silver") == []


def test_attribute_key_that_looks_like_a_lookup_is_a_key(client, auth):
    factories.ingest([factories.span_record(name="odd", attributes={"tag.contains": "x"})])
    assert [s["name"] for s in _get(client, auth, attribute="tag.contains:x").json()["data"]] == [
        "odd"
    ]
    assert _get(client, auth, attribute="tag.contains:y").json()["data"] == []


@pytest.mark.parametrize("attribute", ["novalue", ":x", "a..b:1"])
def test_bad_attribute_is_400(client, auth, attribute):
    factories.project("default")
    response = _get(client, auth, attribute=attribute)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("attribute")


def test_filter_language(client, auth):
    factories.trace(llm_latency_ms=2000)
    factories.trace(llm_latency_ms=100)
    response = _get(client, auth, filter="span_kind == 'LLM' and latency_ms > 1000")
    assert response.status_code == 200, response.content
    assert [s["span_kind"] for s in response.json()["data"]] == ["LLM"]
    assert response.json()["data"][0]["attributes"]["llm.model_name"] == "gpt-4o-mini"


def test_bad_filter_is_400_with_message_and_position(client, auth):
    factories.project("default")
    response = _get(client, auth, filter="latncy_ms > 5")
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("filter:")
    assert "latncy_ms" in detail
    assert "column 1" in detail


def test_filter_text_is_never_sql(client, auth):
    _spans_at(2)
    response = _get(client, auth, filter="name == 'x'' OR 1=1 --'")
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["data"] == []
    assert Span.objects.count() == 2


def test_list_does_not_query_per_span(client, auth, django_assert_max_num_queries):
    _spans_at(30)
    with django_assert_max_num_queries(6):
        response = _get(client, auth, limit=30)
    assert len(response.json()["data"]) == 30


# --- bulk log ---------------------------------------------------------------------------------


def test_log_spans_stores_them_in_the_project(client, auth):
    factories.project("p")
    root = phoenix_span(name="agent", span_kind="AGENT", latency_ms=500)
    child = phoenix_span(
        trace_id=root["context"]["trace_id"],
        parent_id=root["context"]["span_id"],
        name="llm",
        span_kind="LLM",
        start=T0 + timedelta(milliseconds=10),
        attributes={
            "input.value": "hi",
            "output.value": "hello",
            "llm.model_name": "gpt-4o-mini",
            "llm.token_count.prompt": 10,
            "llm.token_count.completion": 5,
            "metadata": json.dumps({"env": "prod"}),
        },
        events=[
            {
                "name": "exception",
                "timestamp": T0.isoformat(),
                "attributes": {"exception.message": "boom"},
            }
        ],
    )
    response = _log(client, auth, {"data": [root, child]}, project="p")
    assert response.status_code == 200, response.content
    assert response.json() == {"total_received": 2, "total_queued": 2, "total_evaluations": 0}
    stored = Span.objects.get(span_id=child["context"]["span_id"])
    assert stored.project.name == "p"
    assert stored.span_kind == "LLM"
    assert stored.parent_id == root["context"]["span_id"]
    assert (stored.input_value, stored.output_value) == ("hi", "hello")
    assert stored.total_tokens == 15
    assert stored.metadata == {"env": "prod"}
    assert stored.events[0]["attributes"] == {"exception.message": "boom"}
    trace = Trace.objects.get(trace_id=root["context"]["trace_id"])
    assert trace.span_count == 2
    assert trace.root_span_id == root["context"]["span_id"]

    # And it reads back in the same shape.
    listed = _get(client, auth, project="p", span_id=[child["context"]["span_id"]]).json()["data"][
        0
    ]
    assert listed["attributes"]["metadata.env"] == "prod"
    assert listed["attributes"]["llm.token_count.prompt"] == 10
    assert listed["events"][0]["name"] == "exception"


def test_log_spans_with_evaluations(client, auth):
    factories.project("p")
    span = phoenix_span(name="llm", span_kind="LLM")
    body = {
        "data": [span],
        "evaluations": [
            {
                "span_id": span["context"]["span_id"],
                "name": "correctness",
                "label": "correct",
                "score": 1,
                "explanation": "matches",
            },
            {
                "trace_id": span["context"]["trace_id"],
                "name": "helpful",
                "score": 0.5,
                "annotator_kind": "HUMAN",
            },
        ],
    }
    response = _log(client, auth, body, project="p")
    assert response.status_code == 200, response.content
    assert response.json()["total_evaluations"] == 2
    on_span = Annotation.objects.get(name="correctness")
    assert on_span.span.span_id == span["context"]["span_id"]
    assert (on_span.label, on_span.score, on_span.annotator_kind) == ("correct", 1.0, "LLM")
    on_trace = Annotation.objects.get(name="helpful")
    assert on_trace.trace.trace_id == span["context"]["trace_id"]
    assert on_trace.annotator_kind == "HUMAN"


def test_evaluation_of_an_unknown_span_rejects_everything(client, auth):
    factories.project("p")
    span = phoenix_span()
    body = {
        "data": [span],
        "evaluations": [{"span_id": "ffffffffffffffff", "name": "q", "label": "x"}],
    }
    response = _log(client, auth, body, project="p")
    assert response.status_code == 400
    assert "ffffffffffffffff" in response.json()["detail"]
    assert not Span.objects.exists()
    assert not Annotation.objects.exists()


def test_duplicates_in_batch_and_in_store_reject_the_batch(client, auth):
    factories.project("p")
    stored = phoenix_span(name="stored")
    assert _log(client, auth, {"data": [stored]}, project="p").status_code == 200
    fresh = phoenix_span(name="fresh")
    twice = phoenix_span(name="twice")
    response = _log(client, auth, {"data": [fresh, twice, twice, stored]}, project="p")
    assert response.status_code == 400
    body = response.json()
    assert body["total_duplicates"] == 2
    assert {d["span_id"] for d in body["duplicate_spans"]} == {
        twice["context"]["span_id"],
        stored["context"]["span_id"],
    }
    assert json.loads(body["detail"])["total_duplicates"] == 2
    assert set(Span.objects.values_list("name", flat=True)) == {"stored"}


def test_an_invalid_span_rejects_the_batch_and_names_it(client, auth):
    factories.project("p")
    good = phoenix_span(name="good")
    no_tz = phoenix_span(name="naive")
    no_tz["start_time"] = "2026-11-20T12:00:00"
    backwards = phoenix_span(name="backwards")
    backwards["end_time"] = "2020-01-01T00:00:00+00:00"
    missing_context = {"name": "x", "start_time": T0.isoformat(), "end_time": T0.isoformat()}
    bad_status = phoenix_span(name="bad-status", status_code="FINE")
    response = _log(
        client, auth, {"data": [good, no_tz, backwards, missing_context, bad_status]}, project="p"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["total_invalid"] == 4
    errors = {i["span_id"]: i["error"] for i in body["invalid_spans"]}
    assert "time zone" in errors[no_tz["context"]["span_id"]]
    assert "data.1" in errors[no_tz["context"]["span_id"]]
    assert "end_time" in errors[backwards["context"]["span_id"]]
    assert "context" in errors["#3"]
    assert "status_code" in errors[bad_status["context"]["span_id"]]
    assert "invalid span" in json.loads(body["detail"])["error"]
    assert not Span.objects.exists()


def test_a_span_of_a_trace_in_another_project_is_invalid(client, auth):
    factories.project("p")
    other = factories.trace(project="other")
    span = phoenix_span(trace_id=other[0].trace.trace_id)
    response = _log(client, auth, {"data": [span]}, project="p")
    assert response.status_code == 400
    assert "other" in response.json()["invalid_spans"][0]["error"]
    assert Span.objects.count() == 3


def test_log_to_unknown_project_is_404(client, auth):
    response = _log(client, auth, {"data": [phoenix_span()]}, project="nope")
    assert response.status_code == 404
    assert not Span.objects.exists()


# --- POST /v1/spans (the data frame query) ----------------------------------------------------


def test_span_query_answers_a_multipart_table(client, auth):
    factories.trace(project="p")
    response = client.post(
        "/v1/spans?project_name=p",
        {"queries": [{"filter": {"condition": "span_kind == 'LLM'"}}], "limit": 10},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("multipart/mixed; boundary=")
    text = response.content.decode()
    table = json.loads(text.split("\r\n\r\n", 1)[1].rsplit("\r\n--", 1)[0])
    assert len(table["data"]) == 1
    names = [f["name"].split("_", 1)[1] for f in table["schema"]["fields"]]
    assert "attributes.llm.model_name" in names
    assert "context.span_id" in names


def test_span_query_bad_condition_is_400(client, auth):
    factories.project("p")
    response = client.post(
        "/v1/spans?project_name=p",
        {"queries": [{"filter": {"condition": "span_kind ==="}}]},
        content_type="application/json",
        headers=auth,
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("queries.0.filter.condition")
