"""Span exports streamed as JSONL, CSV or Parquet, one keyset batch of rows at a time.

Memory is bounded by one batch whatever the number of spans: rows are read with ``.values()``
in keyset batches (``tracing.store.selectors.span_rows_batched``) and encoded by
``evalhub.core.streams``, a batch at a time.

JSONL lines are spans in Phoenix's shape (as returned by ``GET /v1/projects/{p}/spans``, so
they can be logged again) plus ``latency_ms`` and ``cost``. CSV and Parquet have flat columns
(``EXPORT_COLUMNS``); ``metadata`` and ``attributes`` are JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pyarrow as pa
from django.db.models import QuerySet

from evalhub.core.streams import FORMATS, export_stream, json_text
from tracing.models import Span
from tracing.store.records import flatten
from tracing.store.rows import span_to_phoenix
from tracing.store.selectors import span_rows_batched

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
        "metadata": json_text(row["metadata"] or {}),
        "attributes": json_text(flatten(row["attributes"] or {})),
    }


def _jsonl_row(row: dict[str, Any]) -> dict[str, Any]:
    span = span_to_phoenix(row)
    span["latency_ms"] = row["latency_ms"]
    span["cost"] = row["cost"]
    return span


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = flat_row(row)
    flat["start_time"] = flat["start_time"].isoformat()
    flat["end_time"] = flat["end_time"].isoformat()
    return flat


def span_export_stream(
    query: QuerySet[Span], *, export_format: str, batch_size: int | None = None
) -> Iterator[bytes]:
    """The spans of a newest-first query encoded as ``export_format``, a batch per chunk."""
    if export_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return export_stream(
        span_rows_batched(query, batch_size=batch_size or BATCH_SIZE),
        export_format=export_format,
        jsonl=_jsonl_row,
        csv_row=_csv_row,
        schema=PARQUET_SCHEMA,
        parquet_row=flat_row,
    )


__all__ = ["EXPORT_COLUMNS", "FORMATS", "PARQUET_SCHEMA", "flat_row", "span_export_stream"]
