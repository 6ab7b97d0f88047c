"""A dataset's examples streamed as CSV, JSONL or Parquet, one keyset batch at a time.

The approach of ``tracing.store.export``: rows are read with ``.values()`` in keyset batches
(``dataset_example_rows_batched``) and each batch is encoded and yielded before the next is
read, so memory is bounded by one batch whatever the size of the dataset; Parquet gets one row
group per batch against a schema fixed up front.

Every format has the columns of ``EXPORT_COLUMNS``. In JSONL ``labels`` and ``metadata`` are
objects; in CSV and Parquet they are JSON text.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

import pyarrow as pa

from annotations.datasets.models import Dataset
from annotations.datasets.selectors import EXPORT_BATCH_SIZE, dataset_example_rows_batched
from evalhub.core.streams import FORMATS, export_stream, json_text

PARQUET_SCHEMA: Final = pa.schema(
    [
        ("id", pa.int64()),
        ("input", pa.string()),
        ("output", pa.string()),
        ("expected_output", pa.string()),
        ("labels", pa.string()),
        ("metadata", pa.string()),
        ("span_id", pa.string()),
        ("trace_id", pa.string()),
        ("project", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
    ]
)
EXPORT_COLUMNS: Final = tuple(PARQUET_SCHEMA.names)


def example_record(row: dict[str, Any]) -> dict[str, Any]:
    """A ``.values()`` example row → the export columns (``labels`` and ``metadata`` as
    objects, ``created_at`` a ``datetime``)."""
    return {
        "id": row["id"],
        "input": row["input"],
        "output": row["output"],
        "expected_output": row["expected_output"],
        "labels": row["labels"] or {},
        "metadata": row["metadata"] or {},
        "span_id": row["source_span_id"],
        "trace_id": row["source_trace_id"],
        "project": row["source_project"],
        "created_at": row["created_at"],
    }


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    record = example_record(row)
    record["labels"] = json_text(record["labels"])
    record["metadata"] = json_text(record["metadata"])
    return record


def _jsonl_row(row: dict[str, Any]) -> dict[str, Any]:
    record = example_record(row)
    record["created_at"] = record["created_at"].isoformat()
    return record


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = _flat(row)
    flat["created_at"] = flat["created_at"].isoformat()
    return flat


def dataset_export_stream(
    dataset: Dataset, *, export_format: str, batch_size: int | None = None
) -> Iterator[bytes]:
    """A dataset's examples, in the order they were added, encoded as ``export_format``
    (``csv``, ``jsonl`` or ``parquet``), a batch per chunk."""
    if export_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    return export_stream(
        dataset_example_rows_batched(dataset=dataset, batch_size=batch_size or EXPORT_BATCH_SIZE),
        export_format=export_format,
        jsonl=_jsonl_row,
        csv_row=_csv_row,
        schema=PARQUET_SCHEMA,
        parquet_row=_flat,
    )


__all__ = [
    "EXPORT_COLUMNS",
    "FORMATS",
    "PARQUET_SCHEMA",
    "dataset_export_stream",
    "example_record",
]
