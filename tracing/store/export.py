"""Span exports streamed as JSONL, CSV or Parquet, one keyset batch of rows at a time.

Memory is bounded by one batch whatever the number of spans: rows are read with ``.values()``
in keyset batches (``tracing.store.selectors.span_rows_batched``) and each batch is encoded and
yielded before the next is read. Parquet gets one row group per batch, written into a small
buffer that is yielded and emptied after each batch, against a schema fixed up front.

JSONL lines are spans in Phoenix's shape (as returned by ``GET /v1/projects/{p}/spans``, so
they can be logged again) plus ``latency_ms`` and ``cost``. CSV and Parquet have flat columns
(``EXPORT_COLUMNS``); ``metadata`` and ``attributes`` are JSON text.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import QuerySet

from tracing.models import Span
from tracing.store.records import flatten
from tracing.store.rows import span_to_phoenix
from tracing.store.selectors import span_rows_batched

FORMATS: Final = {
    "jsonl": ("application/x-ndjson", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}

BATCH_SIZE = 2000
"""Rows read, encoded and yielded at a time."""

_TIMESTAMP = pa.timestamp("us", tz="UTC")
PARQUET_SCHEMA: Final = pa.schema(
    [
        ("context.span_id", pa.string()),
        ("context.trace_id", pa.string()),
        ("parent_id", pa.string()),
        ("name", pa.string()),
        ("span_kind", pa.string()),
        ("status_code", pa.string()),
        ("status_message", pa.string()),
        ("start_time", _TIMESTAMP),
        ("end_time", _TIMESTAMP),
        ("latency_ms", pa.float64()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("model_name", pa.string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("cost", pa.float64()),
        ("session_id", pa.string()),
        ("user_id", pa.string()),
        ("metadata", pa.string()),
        ("attributes", pa.string()),
    ]
)
EXPORT_COLUMNS: Final = tuple(PARQUET_SCHEMA.names)


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``.values()`` span row → the flat export columns (times stay ``datetime``)."""
    return {
        "context.span_id": row["span_id"],
        "context.trace_id": row["trace__trace_id"],
        "parent_id": row["parent_id"],
        "name": row["name"],
        "span_kind": row["span_kind"],
        "status_code": row["status_code"],
        "status_message": row["status_message"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "latency_ms": row["latency_ms"],
        "input": row["input_value"],
        "output": row["output_value"],
        "model_name": row["model_name"],
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "total_tokens": row["total_tokens"],
        "cost": row["cost"],
        "session_id": row["session_key"],
        "user_id": row["user_id"],
        "metadata": _json(row["metadata"] or {}),
        "attributes": _json(flatten(row["attributes"] or {})),
    }


def _jsonl(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    for rows in batches:
        lines = []
        for row in rows:
            span = span_to_phoenix(row)
            span["latency_ms"] = row["latency_ms"]
            span["cost"] = row["cost"]
            lines.append(_json(span))
        yield ("\n".join(lines) + "\n").encode()


def _csv(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate(0)
    for rows in batches:
        for row in rows:
            flat = flat_row(row)
            flat["start_time"] = flat["start_time"].isoformat()
            flat["end_time"] = flat["end_time"].isoformat()
            writer.writerow(flat)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate(0)


class _ChunkSink(io.RawIOBase):
    """A write-only file that keeps what is written until ``take()``."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def parquet_stream(
    batches: Iterable[list[dict[str, Any]]],
    *,
    schema: pa.Schema,
    flatten_row: Callable[[dict[str, Any]], dict[str, Any]],
) -> Iterator[bytes]:
    """Parquet bytes as they are written: one row group per batch, ``flatten_row`` making each
    row fit ``schema``. Memory holds one batch, not the file."""
    sink = _ChunkSink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for rows in batches:
            table = pa.Table.from_pylist([flatten_row(row) for row in rows], schema=schema)
            writer.write_table(table, row_group_size=len(rows))
            chunk = sink.take()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.take()


def _parquet(batches: Iterable[list[dict[str, Any]]]) -> Iterator[bytes]:
    return parquet_stream(batches, schema=PARQUET_SCHEMA, flatten_row=flat_row)


def span_export_stream(
    query: QuerySet[Span], *, export_format: str, batch_size: int | None = None
) -> Iterator[bytes]:
    """The spans of a newest-first query encoded as ``export_format``, a batch per chunk."""
    if export_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    batches = span_rows_batched(query, batch_size=batch_size or BATCH_SIZE)
    if export_format == "jsonl":
        return _jsonl(batches)
    if export_format == "csv":
        return _csv(batches)
    return _parquet(batches)


__all__ = ["EXPORT_COLUMNS", "FORMATS", "PARQUET_SCHEMA", "flat_row", "span_export_stream"]
