"""evalhub.core.streams: the CSV, JSONL and Parquet encoders of every download."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalhub.core.streams import download_response, export_stream

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])
BATCHES = [[{"id": 1, "text": 'a, "quoted"\nline'}], [{"id": 2, "text": "é"}]]


def _encode(export_format, batches=BATCHES):
    return list(
        export_stream(
            iter(batches),
            export_format=export_format,
            jsonl=lambda row: {**row, "kind": "json"},
            csv_row=dict,
            schema=SCHEMA,
            parquet_row=dict,
        )
    )


def test_csv_has_the_header_with_the_first_batch_and_a_chunk_per_batch():
    chunks = _encode("csv")
    assert len(chunks) == 2
    assert b"".join(chunks).decode() == 'id,text\n1,"a, ""quoted""\nline"\n2,é\n'
    assert _encode("csv", []) == [b"id,text\n"]


def test_jsonl_is_a_line_per_row_in_the_rows_own_shape():
    lines = b"".join(_encode("jsonl")).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": 1, "text": 'a, "quoted"\nline', "kind": "json"},
        {"id": 2, "text": "é", "kind": "json"},
    ]


def test_parquet_has_a_row_group_per_batch():
    body = b"".join(_encode("parquet"))
    assert pq.read_table(io.BytesIO(body)).to_pylist() == [row for b in BATCHES for row in b]
    assert pq.ParquetFile(io.BytesIO(body)).metadata.num_row_groups == 2


def test_another_format_is_refused():
    with pytest.raises(ValueError, match="format must be one of jsonl, csv, parquet"):
        _encode("xml")


def test_the_download_names_its_file_with_the_formats_extension():
    response = download_response([b"x"], export_format="csv", filename="spans-é")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''spans-%C3%A9.csv"
    assert b"".join(response.streaming_content) == b"x"
