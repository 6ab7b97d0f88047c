import csv
import io
import json
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from tests import factories
from tracing.store import export
from tracing.store.export import EXPORT_COLUMNS

pytestmark = pytest.mark.django_db

T0 = factories.BASE_TIME


def _export(client, auth, project="default", **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.get(f"/v1/projects/{project}/spans/export?{query}", headers=auth)


def _body(response) -> bytes:
    assert response.streaming
    return b"".join(response.streaming_content)


@pytest.fixture
def spans(db):
    first = factories.trace(start=T0, session_id="s-1", metadata={"env": "prod"})
    second = factories.trace(start=T0 + timedelta(minutes=1), status_code="ERROR")
    return first + second


def test_jsonl_lines_are_phoenix_spans(client, auth, spans):
    response = _export(client, auth, format="jsonl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert 'filename="spans-default-' in response["Content-Disposition"]
    assert response["Content-Disposition"].endswith('.jsonl"')
    lines = [json.loads(line) for line in _body(response).decode().splitlines()]
    assert len(lines) == 6
    assert {line["context"]["span_id"] for line in lines} == {s.span_id for s in spans}
    llm = next(line for line in lines if line["context"]["span_id"] == spans[2].span_id)
    assert llm["attributes"]["llm.model_name"] == "gpt-4o-mini"
    assert llm["attributes"]["metadata.env"] == "prod"
    assert llm["latency_ms"] == pytest.approx(400)
    assert llm["cost"] > 0


def test_csv_has_flat_columns(client, auth, spans):
    response = _export(client, auth, format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(_body(response).decode())))
    assert len(rows) == 6
    assert tuple(rows[0].keys()) == EXPORT_COLUMNS
    llm = next(row for row in rows if row["context.span_id"] == spans[2].span_id)
    assert llm["context.trace_id"] == spans[2].trace.trace_id
    assert llm["parent_id"] == spans[0].span_id
    assert llm["span_kind"] == "LLM"
    assert llm["model_name"] == "gpt-4o-mini"
    assert (llm["prompt_tokens"], llm["completion_tokens"], llm["total_tokens"]) == (
        "100",
        "20",
        "120",
    )
    assert llm["session_id"] == "s-1"
    assert llm["input"] == "What is the refund policy?"
    assert json.loads(llm["metadata"]) == {"env": "prod"}
    assert json.loads(llm["attributes"])["llm.input_messages.0.message.role"] == "user"
    assert llm["start_time"] == spans[2].start_time.isoformat()


def test_parquet_reads_back(client, auth, spans):
    response = _export(client, auth, format="parquet")
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.parquet"')
    table = pq.read_table(io.BytesIO(_body(response)))
    assert table.num_rows == 6
    assert tuple(table.column_names) == EXPORT_COLUMNS
    rows = table.to_pylist()
    llm = next(row for row in rows if row["context.span_id"] == spans[2].span_id)
    assert llm["start_time"] == spans[2].start_time
    assert llm["total_tokens"] == 120
    assert llm["latency_ms"] == pytest.approx(400)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_with_filter_and_time_window(client, auth, spans, fmt):
    response = _export(
        client,
        auth,
        format=fmt,
        filter="status_code == 'ERROR'",
        start_time=(T0 + timedelta(seconds=30)).isoformat().replace("+", "%2B"),
    )
    assert response.status_code == 200
    body = _body(response)
    if fmt == "jsonl":
        ids = {json.loads(line)["context"]["span_id"] for line in body.decode().splitlines()}
    elif fmt == "csv":
        ids = {row["context.span_id"] for row in csv.DictReader(io.StringIO(body.decode()))}
    else:
        ids = set(pq.read_table(io.BytesIO(body)).column("context.span_id").to_pylist())
    assert ids == {spans[3].span_id, spans[5].span_id}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_is_streamed_a_batch_at_a_time(client, auth, monkeypatch, fmt):
    factories.ingest([factories.span_record(start=T0 + timedelta(seconds=i)) for i in range(10)])
    monkeypatch.setattr(export, "BATCH_SIZE", 3)
    response = _export(client, auth, format=fmt)
    assert response.streaming
    chunks = [chunk for chunk in response.streaming_content if chunk]
    assert len(chunks) >= 4  # 10 rows in batches of 3
    body = b"".join(chunks)
    if fmt == "parquet":
        file = pq.ParquetFile(io.BytesIO(body))
        assert file.metadata.num_rows == 10
        assert file.metadata.num_row_groups == 4
    elif fmt == "csv":
        assert len(list(csv.DictReader(io.StringIO(body.decode())))) == 10
    else:
        assert len(body.decode().splitlines()) == 10


def test_empty_export_is_still_a_valid_file(client, auth):
    factories.project("empty")
    table = pq.read_table(
        io.BytesIO(_body(_export(client, auth, project="empty", format="parquet")))
    )
    assert table.num_rows == 0
    assert tuple(table.column_names) == EXPORT_COLUMNS
    rows = list(
        csv.reader(
            io.StringIO(_body(_export(client, auth, project="empty", format="csv")).decode())
        )
    )
    assert rows == [list(EXPORT_COLUMNS)]


def test_bad_format_filter_and_project(client, auth, spans):
    response = _export(client, auth, format="xlsx")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("format")
    response = _export(client, auth, format="csv", filter="nonsense ==")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("filter")
    response = _export(client, auth, project="ghost")
    assert response.status_code == 404
