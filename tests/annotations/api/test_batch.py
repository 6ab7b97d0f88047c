import json
from datetime import UTC, datetime

import pytest

from annotations.models import Annotation
from tests import factories

pytestmark = pytest.mark.django_db

BATCH = "/v1/projects/{}/span_annotations/batch"
RECORDS = "/v1/projects/{}/evaluations/records"


def post(client, url, body, auth):
    payload = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, payload, content_type="application/json", headers=auth)


def stored(**filters):
    return {
        (a.name, a.identifier): (a.label, a.score, a.explanation, a.annotator_kind)
        for a in Annotation.objects.filter(**filters)
    }


# --- span annotations in bulk ------------------------------------------------------------------


def test_batch_writes_several_named_annotations_per_span(client, auth):
    root, retriever, llm = factories.trace(project="p")
    body = {
        "data": [
            {
                "span_id": llm.span_id,
                "annotations": [
                    {"name": "correctness", "label": "correct", "score": 1, "text": "ok"},
                    {
                        "name": "tone",
                        "label": "polite",
                        "annotator_kind": "LLM",
                        "metadata": {"judge": "gpt"},
                    },
                    {"name": "tone", "score": 0.2, "identifier": "second-opinion"},
                ],
            },
            {"span_id": root.span_id, "annotations": [{"name": "correctness", "score": 0.0}]},
        ]
    }
    response = post(client, BATCH.format("p"), body, auth)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert [record["span_id"] for record in data] == [llm.span_id, root.span_id]
    assert [(a["name"], a["identifier"]) for a in data[0]["annotations"]] == [
        ("correctness", ""),
        ("tone", ""),
        ("tone", "second-opinion"),
    ]
    assert stored(span=llm) == {
        ("correctness", ""): ("correct", 1.0, "ok", "HUMAN"),
        ("tone", ""): ("polite", None, None, "LLM"),
        ("tone", "second-opinion"): (None, 0.2, None, "HUMAN"),
    }
    assert Annotation.objects.get(span=llm, name="tone", identifier="").metadata == {"judge": "gpt"}
    assert stored(span=root) == {("correctness", ""): (None, 0.0, None, "HUMAN")}
    assert stored(span=retriever) == {}
    ids = {int(a["id"]) for record in data for a in record["annotations"]}
    assert ids == set(Annotation.objects.values_list("pk", flat=True))

    # Posting again updates in place.
    body["data"][0]["annotations"][0]["label"] = "incorrect"
    assert post(client, BATCH.format("p"), body, auth).status_code == 200
    assert Annotation.objects.count() == 4
    assert stored(span=llm)[("correctness", "")][0] == "incorrect"


def test_batch_rejects_unknown_span_ids_and_writes_nothing(client, auth):
    spans = factories.trace(project="p")
    elsewhere = factories.trace(project="other")[0]
    body = {
        "data": [
            {"span_id": spans[0].span_id, "annotations": [{"name": "q", "label": "good"}]},
            {"span_id": "feedfacefeedface", "annotations": [{"name": "q", "label": "bad"}]},
            {"span_id": elsewhere.span_id, "annotations": [{"name": "q", "label": "bad"}]},
        ]
    }
    response = post(client, BATCH.format("p"), body, auth)
    assert response.status_code == 404
    assert response.json()["missing_ids"] == ["feedfacefeedface", elsewhere.span_id]
    assert "feedfacefeedface" in response.json()["detail"]
    assert Annotation.objects.count() == 0


def test_batch_looks_spans_up_within_a_time_window(client, auth):
    early = factories.trace(project="p", start=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))[0]
    inside = factories.trace(project="p", start=datetime(2026, 4, 1, tzinfo=UTC))[0]
    late = factories.trace(project="p", start=datetime(2026, 5, 1, tzinfo=UTC))[0]

    def batch(*spans, **window):
        records = [
            {"span_id": s.span_id, "annotations": [{"name": "q", "score": 1}]} for s in spans
        ]
        return post(client, BATCH.format("p"), {"data": records, **window}, auth)

    # Start inclusive, end exclusive; times without a zone are UTC.
    window = {"start_time": "2026-04-01T00:00:00", "end_time": "2026-05-01T00:00:00+00:00"}
    response = batch(early, inside, late, **window)
    assert response.status_code == 404
    assert response.json()["missing_ids"] == [early.span_id, late.span_id]
    assert "2026-04-01 00:00:00+00:00" in response.json()["detail"]
    assert Annotation.objects.count() == 0

    assert batch(inside, **window).status_code == 200
    assert batch(late, start_time="2026-04-30T00:00:00Z").status_code == 200
    assert batch(early, end_time="2026-04-01T00:00:00Z").status_code == 200
    assert batch(early, late).status_code == 200  # no window: any time
    assert Annotation.objects.count() == 3

    reversed_window = batch(
        inside, start_time="2026-05-01T00:00:00Z", end_time=window["start_time"]
    )
    assert reversed_window.status_code == 422
    assert reversed_window.json()["detail"] == "end_time: must be after start_time"
    bad_time = batch(inside, start_time="yesterday")
    assert bad_time.status_code == 422
    assert "start_time" in bad_time.json()["detail"]


def test_batch_limits_and_validation(client, auth):
    span = factories.trace(project="p")[0]
    record = {"span_id": span.span_id, "annotations": [{"name": "q", "label": "x"}]}
    too_many = post(client, BATCH.format("p"), {"data": [record] * 1001}, auth)
    assert too_many.status_code == 422
    assert "1000" in too_many.json()["detail"]

    empty_result = post(
        client, BATCH.format("p"), {"data": [{**record, "annotations": [{"name": "q"}]}]}, auth
    )
    assert empty_result.status_code == 422
    assert empty_result.json()["detail"].startswith("data[0].annotations[0].result")

    conflict = post(
        client,
        BATCH.format("p"),
        {"data": [{**record, "annotations": [{"name": "q", "text": "a", "explanation": "b"}]}]},
        auth,
    )
    assert conflict.status_code == 422
    assert "text" in conflict.json()["detail"]

    bad_kind = post(
        client,
        BATCH.format("p"),
        {"data": [{**record, "annotations": [{"name": "q", "label": "x", "annotator_kind": "X"}]}]},
        auth,
    )
    assert bad_kind.status_code == 422
    assert "annotator_kind" in bad_kind.json()["detail"]

    assert post(client, BATCH.format("nope"), {"data": [record]}, auth).status_code == 404
    assert post(client, BATCH.format("p"), {"data": [record]}, {}).status_code == 401
    assert Annotation.objects.count() == 0


def test_batch_route_is_documented(client, auth):
    schema = client.get("/openapi.json", headers=auth).json()
    batch = schema["paths"]["/v1/projects/{project}/span_annotations/batch"]["post"]
    assert "1,000" in batch["summary"]
    records = schema["paths"]["/v1/projects/{project}/evaluations/records"]["post"]
    assert "eval.<name>" in records["summary"]


# --- dataframe-shaped records --------------------------------------------------------------------


def test_records_write_evaluations_and_annotations_on_spans_traces_and_sessions(client, auth):
    root, _, llm = factories.trace(project="p", session_id="s-1")
    records = [
        {
            "context.span_id": llm.span_id,
            "context.trace_id": llm.trace.trace_id,
            "eval.Correctness.label": "correct",
            "eval.Correctness.score": 1,
            "eval.Correctness.explanation": "matches the policy",
            "eval.Q&A relevance.score": 0.5,
            "annotation.Quality.label": "good",
            "annotation.Quality.text": "nice answer",
            "trace_eval.Goal.label": "achieved",
        },
        {
            "context.span_id": root.span_id,
            "eval.Correctness.label": None,
            "eval.Correctness.score": float("nan"),
            "session_id": "s-1",
            "session_eval.Frustration.score": 0.1,
        },
    ]
    # Python's json writes NaN as the bare token, which pandas-produced JSON also does.
    response = post(client, RECORDS.format("p"), json.dumps({"records": records}), auth)
    assert response.status_code == 200, response.content
    assert response.json() == {"records": 2, "annotations": 5}
    assert stored(span=llm) == {
        ("Correctness", ""): ("correct", 1.0, "matches the policy", "LLM"),
        ("Q&A relevance", ""): (None, 0.5, None, "LLM"),
        ("Quality", ""): ("good", None, "nice answer", "HUMAN"),
    }
    assert stored(span=root) == {}  # only nulls: nothing given
    assert stored(trace=llm.trace) == {("Goal", ""): ("achieved", None, None, "LLM")}
    assert stored(session__session_id="s-1") == {("Frustration", ""): (None, 0.1, None, "LLM")}

    # A later record updates what it gives and keeps the rest.
    response = post(
        client,
        RECORDS.format("p"),
        {"records": [{"context.span_id": llm.span_id, "eval.Correctness.score": 0.25}]},
        auth,
    )
    assert response.json() == {"records": 1, "annotations": 1}
    assert stored(span=llm)[("Correctness", "")] == ("correct", 0.25, "matches the policy", "LLM")

    # The evaluations are what the filter language sees.
    listed = client.get(
        "/v1/projects/p/spans", {"filter": "eval.Correctness.score < 0.5"}, headers=auth
    ).json()["data"]
    assert [span["context"]["span_id"] for span in listed] == [llm.span_id]


def test_records_with_unknown_targets_write_nothing(client, auth):
    span = factories.trace(project="p")[0]
    other = factories.trace(project="other")[0]
    records = [
        {"context.span_id": span.span_id, "eval.c.label": "x"},
        {"context.span_id": "0000000000000bad", "eval.c.label": "x"},
        {"context.trace_id": other.trace.trace_id, "trace_eval.c.score": 1},
    ]
    response = post(client, RECORDS.format("p"), {"records": records}, auth)
    assert response.status_code == 404
    assert response.json()["missing_ids"] == ["0000000000000bad", other.trace.trace_id]
    assert Annotation.objects.count() == 0


@pytest.mark.parametrize(
    ("record", "detail"),
    [
        ({"context.span_id": "S", "eval.c.lable": "x"}, "column 'eval.c.lable': unknown field"),
        ({"context.span_id": "S", "evl.c.label": "x"}, "column 'evl.c.label': unknown column"),
        ({"context.span_id": "S", "input": "x"}, "column 'input': unknown column"),
        ({"context.span_id": "S", "eval..label": "x"}, "column 'eval..label': the evaluation"),
        ({"context.span_id": "S", "eval.c.score": "high"}, "records[0].eval.c.score: must be a"),
        ({"context.span_id": "S", "eval.c.label": 3}, "records[0].eval.c.label: must be a string"),
        ({"eval.c.label": "x"}, "records[0].eval.c.label: needs a context.span_id"),
        ({"context.span_id": 5, "eval.c.label": "x"}, "records[0].context.span_id: must be"),
        (
            {"context.span_id": "S", "annotation.c.text": "a", "annotation.c.explanation": "b"},
            "records[0].annotation.c.explanation: conflicts with annotation.c.text",
        ),
        ({"context.span_id": "S", "eval.c.label": "x" * 300}, "records[0].eval.c.label: is long"),
    ],
)
def test_records_name_the_bad_column(client, auth, record, detail):
    span = factories.trace(project="p")[0]
    record = {k: (span.span_id if v == "S" else v) for k, v in record.items()}
    response = post(client, RECORDS.format("p"), {"records": [record]}, auth)
    assert response.status_code == 422, response.content
    assert response.json()["detail"].startswith(detail), response.json()["detail"]
    assert Annotation.objects.count() == 0


def test_records_limit(client, auth):
    span = factories.trace(project="p")[0]
    record = {"context.span_id": span.span_id, "eval.c.label": "x"}
    response = post(client, RECORDS.format("p"), {"records": [record] * 1001}, auth)
    assert response.status_code == 422
    assert "records" in response.json()["detail"]
    ok = post(client, RECORDS.format("p"), {"records": [record] * 1000}, auth)
    assert ok.json() == {"records": 1000, "annotations": 1}
    assert Annotation.objects.count() == 1
