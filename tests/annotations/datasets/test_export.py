"""Dataset downloads: CSV, JSONL and Parquet read back and compared with the examples."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pyarrow.parquet as pq
import pytest
from django.urls import reverse

from annotations.datasets import export as dataset_export
from annotations.datasets.export import EXPORT_COLUMNS, dataset_export_stream
from annotations.datasets.models import Dataset
from annotations.datasets.services import dataset_create
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories

pytestmark = pytest.mark.django_db

TRICKY = 'Line one,\nline "two" — ünïcode ✓'


@pytest.fixture
def staff(client, django_user_model):  # type: ignore[no-untyped-def]
    user = django_user_model.objects.create_user(username="ana", password="pw", is_staff=True)
    client.force_login(user)
    return client


@pytest.fixture
def dataset(db) -> Dataset:
    first = factories.trace(
        project="shop",
        input_value=TRICKY,
        output_value="answer, with comma",
        metadata={"reference": "expected ✓", "nested": {"k": [1, 2]}},
    )
    second = factories.trace(project="shop", input_value="plain", output_value="")
    third = factories.span_record(input_value=None, output_value=None, project_name="shop")
    (third_span,) = factories.ingest([third], project="shop")
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=first[0].span_id,
                name="correctness",
                label="correct",
                score=1.0,
                explanation='matches, "exactly"',
            )
        ]
    )
    return dataset_create(
        name="golden set/v1", spans=[first[0].pk, second[0].pk, third_span.pk]
    ).dataset


def _expected(dataset: Dataset) -> list[dict]:
    """The examples as every format must carry them (labels and metadata as objects)."""
    return [
        {
            "id": e.pk,
            "input": e.input,
            "output": e.output,
            "expected_output": e.expected_output,
            "labels": e.labels,
            "metadata": e.metadata,
            "span_id": e.source_span_id,
            "trace_id": e.source_trace_id,
            "project": e.source_project,
            "created_at": e.created_at,
        }
        for e in dataset.examples.order_by("id")
    ]


def _download(client, dataset: Dataset, export_format: str):  # type: ignore[no-untyped-def]
    response = client.get(
        reverse("annotations:dataset-download", args=[dataset.pk]), {"format": export_format}
    )
    assert response.status_code == 200
    assert response.streaming
    return response, b"".join(response.streaming_content)


def test_csv_reads_back(staff, dataset):
    response, body = _download(staff, dataset, "csv")
    assert response["Content-Type"].startswith("text/csv")
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="golden_set_v1-')
    assert disposition.endswith('.csv"')
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    expected = _expected(dataset)
    assert len(rows) == len(expected) == 3
    for row, want in zip(rows, expected, strict=True):
        assert int(row["id"]) == want["id"]
        # CSV has no null: an absent input is an empty cell.
        for column in ("input", "output", "expected_output"):
            assert row[column] == (want[column] or "")
        assert json.loads(row["labels"]) == want["labels"]
        assert json.loads(row["metadata"]) == want["metadata"]
        assert (row["span_id"], row["trace_id"], row["project"]) == (
            want["span_id"],
            want["trace_id"],
            want["project"],
        )
        assert datetime.fromisoformat(row["created_at"]) == want["created_at"]
    assert rows[0]["input"] == TRICKY
    assert json.loads(rows[0]["labels"])["correctness"]["explanation"] == 'matches, "exactly"'
    assert rows[0]["expected_output"] == "expected ✓"


def test_jsonl_reads_back(staff, dataset):
    response, body = _download(staff, dataset, "jsonl")
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in body.decode().splitlines()]
    expected = _expected(dataset)
    for want in expected:
        want["created_at"] = want["created_at"].isoformat()
    assert lines == expected
    assert lines[2]["input"] is None


def test_parquet_reads_back(staff, dataset):
    response, body = _download(staff, dataset, "parquet")
    assert response["Content-Disposition"].endswith('.parquet"')
    table = pq.read_table(io.BytesIO(body))
    assert tuple(table.column_names) == EXPORT_COLUMNS
    rows = table.to_pylist()
    expected = _expected(dataset)
    for row in rows:
        row["labels"] = json.loads(row["labels"])
        row["metadata"] = json.loads(row["metadata"])
    assert rows == expected


def test_big_datasets_stream_in_batches(dataset):
    """One chunk per batch: memory is bounded by the batch, whatever the size."""
    for export_format in ("csv", "jsonl"):
        chunks = list(dataset_export_stream(dataset, export_format=export_format, batch_size=1))
        assert len(chunks) == 3
    chunks = list(dataset_export_stream(dataset, export_format="parquet", batch_size=1))
    assert len(chunks) >= 3
    table = pq.read_table(io.BytesIO(b"".join(chunks)))
    assert table.num_rows == 3 and table.to_batches()[0].num_rows == 1
    assert pq.ParquetFile(io.BytesIO(b"".join(chunks))).metadata.num_row_groups == 3


def test_batches_follow_the_keyset(monkeypatch, dataset):
    monkeypatch.setattr(dataset_export, "EXPORT_BATCH_SIZE", 2)
    lines = b"".join(dataset_export_stream(dataset, export_format="jsonl")).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [e["id"] for e in _expected(dataset)]


def test_an_empty_dataset_downloads_as_empty_files(staff):
    empty = dataset_create(name="empty").dataset
    assert _download(staff, empty, "csv")[1].decode().splitlines() == [",".join(EXPORT_COLUMNS)]
    assert _download(staff, empty, "jsonl")[1] == b""
    table = pq.read_table(io.BytesIO(_download(staff, empty, "parquet")[1]))
    assert table.num_rows == 0 and tuple(table.column_names) == EXPORT_COLUMNS


def test_unknown_format_is_refused(staff, dataset):
    url = reverse("annotations:dataset-download", args=[dataset.pk])
    response = staff.get(url, {"format": "xlsx"})
    assert response.status_code == 400
    assert response.content.decode() == "format must be one of jsonl, csv, parquet"
    with pytest.raises(ValueError, match="format must be one of"):
        dataset_export_stream(dataset, export_format="xlsx")
