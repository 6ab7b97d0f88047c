"""``/v1/evaluations`` in the legacy Phoenix wire format, built here exactly as arize-phoenix ≤ 13
builds it (``Evaluations.to_pyarrow_table`` → one Arrow IPC stream per set, content type
``application/x-pandas-arrow``) and read back as its ``get_evaluations`` reads it. The same
calls through the real legacy client are in ``test_legacy_phoenix_client.py``."""

import json
import uuid
from io import BytesIO

import httpx
import pandas as pd
import pyarrow as pa
import pytest

from annotations.models import Annotation
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def legacy_body(eval_type: str, name: str, dataframe: pd.DataFrame) -> bytes:
    """What ``px.Client().log_evaluations`` posts for one ``<eval_type>(name, dataframe)``."""
    table = pa.Table.from_pandas(dataframe)
    table = table.replace_schema_metadata(
        {
            **(table.schema.metadata or {}),
            b"arize": json.dumps(
                {"eval_id": str(uuid.uuid4()), "eval_name": name, "eval_type": eval_type}
            ).encode("utf-8"),
        }
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_streams(content: bytes) -> list[tuple[dict, pd.DataFrame]]:
    """What ``px.Client().get_evaluations`` reads: Arrow streams one after the other."""
    source = BytesIO(content)
    found = []
    while True:
        try:
            with pa.ipc.open_stream(source) as reader:
                meta = json.loads(reader.schema.metadata[b"arize"])
                found.append((meta, reader.read_pandas()))
        except pa.ArrowInvalid:
            break
    return found


@pytest.fixture
def post(live_server, api_key):
    def send(body: bytes) -> httpx.Response:
        return httpx.post(
            f"{live_server.url}/v1/evaluations",
            content=body,
            headers={
                "Authorization": f"Bearer {api_key}",
                "content-type": "application/x-pandas-arrow",
            },
        )

    return send


def test_span_trace_and_document_evaluations_round_trip(post, live_server, api_key):
    root, retriever, llm = factories.rag_trace(project="legacy")
    spans = pd.DataFrame(
        {"label": ["correct", "incorrect"], "score": [1.0, 0.0], "explanation": ["ok", None]},
        index=pd.Index([llm.span_id, root.span_id], name="context.span_id"),
    )
    traces = pd.DataFrame(
        {"label": ["good"]}, index=pd.Index([root.trace.trace_id], name="trace_id")
    )
    documents = pd.DataFrame(
        {
            "span_id": [retriever.span_id] * 3,
            "position": [0, 1, 2],
            "label": ["relevant", "irrelevant", "irrelevant"],
            "score": [1, 0, 0],
        }
    ).set_index(["span_id", "position"])
    for eval_type, name, frame in (
        ("SpanEvaluations", "Correctness", spans),
        ("TraceEvaluations", "Quality", traces),
        ("DocumentEvaluations", "relevance", documents),
    ):
        response = post(legacy_body(eval_type, name, frame))
        assert response.status_code == 204, response.text
        assert response.headers["x-phoenix-server-version"] == "20.8.0"

    stored = {
        (a.target_kind, a.name, a.span_id or a.trace_id, a.document_position): (a.label, a.score)
        for a in Annotation.objects.all()
    }
    assert stored == {
        ("SPAN", "Correctness", llm.pk, None): ("correct", 1.0),
        ("SPAN", "Correctness", root.pk, None): ("incorrect", 0.0),
        ("TRACE", "Quality", root.trace.pk, None): ("good", None),
        ("DOCUMENT", "relevance", retriever.pk, 0): ("relevant", 1.0),
        ("DOCUMENT", "relevance", retriever.pk, 1): ("irrelevant", 0.0),
        ("DOCUMENT", "relevance", retriever.pk, 2): ("irrelevant", 0.0),
    }
    assert {a.annotator_kind for a in Annotation.objects.all()} == {"LLM"}

    # Logging the same set again updates, it does not duplicate.
    assert post(legacy_body("SpanEvaluations", "Correctness", spans)).status_code == 204
    assert Annotation.objects.filter(name="Correctness").count() == 2

    got = httpx.get(
        f"{live_server.url}/v1/evaluations",
        params={"project_name": "legacy"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/x-pandas-arrow"
    sets = {
        meta["eval_name"]: (meta["eval_type"], frame) for meta, frame in read_streams(got.content)
    }
    assert set(sets) == {"Correctness", "Quality", "relevance"}
    kind, frame = sets["relevance"]
    assert kind == "DocumentEvaluations"
    assert list(frame["document_position"]) == [0, 1, 2]
    assert list(frame["label"]) == ["relevant", "irrelevant", "irrelevant"]
    assert set(frame["context.span_id"]) == {retriever.span_id}
    kind, frame = sets["Quality"]
    assert (kind, list(frame["context.trace_id"])) == ("TraceEvaluations", [root.trace.trace_id])


def test_rows_without_a_result_are_skipped_and_unknown_spans_fail_the_request(post):
    _root, _retriever, llm = factories.rag_trace(project="legacy")
    frame = pd.DataFrame(
        {"label": [None, "yes"], "score": [float("nan"), 1.0]},
        index=pd.Index([llm.span_id, "ffffffffffffffff"], name="span_id"),
    )
    missing = post(legacy_body("SpanEvaluations", "x", frame))
    assert missing.status_code == 404
    assert "ffffffffffffffff" in missing.json()["detail"]
    assert not Annotation.objects.exists()
    only_empty = frame.iloc[:1]
    assert post(legacy_body("SpanEvaluations", "x", only_empty)).status_code == 204
    assert not Annotation.objects.exists()


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not arrow at all", "not an Arrow IPC stream"),
        (b"", "not an Arrow IPC stream"),
    ],
)
def test_bodies_that_are_not_arrow_are_refused(post, body, detail):
    response = post(body)
    assert response.status_code == 422
    assert detail in response.json()["detail"]


def test_tables_without_the_legacy_metadata_or_columns_are_refused(post):
    frame = pd.DataFrame({"label": ["a"]}, index=pd.Index(["00aa"], name="span_id"))
    table = pa.Table.from_pandas(frame)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    no_meta = post(sink.getvalue().to_pybytes())
    assert no_meta.status_code == 422 and "'arize' metadata" in no_meta.json()["detail"]
    wrong_type = post(legacy_body("ModelEvaluations", "x", frame))
    assert wrong_type.status_code == 422 and "eval_type" in wrong_type.json()["detail"]
    no_position = post(legacy_body("DocumentEvaluations", "x", frame))
    assert no_position.status_code == 422
    assert "document position" in no_position.json()["detail"]
    assert not Annotation.objects.exists()


def test_get_with_nothing_is_404_and_needs_a_key(live_server, api_key):
    factories.rag_trace(project="empty")
    headers = {"Authorization": f"Bearer {api_key}"}
    url = f"{live_server.url}/v1/evaluations"
    assert httpx.get(url, params={"project_name": "empty"}, headers=headers).status_code == 404
    assert httpx.get(url, params={"project_name": "nope"}, headers=headers).status_code == 404
    assert httpx.get(url, params={"project_name": "empty"}).status_code == 401
    version = httpx.get(f"{live_server.url}/arize_phoenix_version")
    assert version.text == "20.8.0"
    assert version.headers["x-phoenix-server-version"] == "20.8.0"
