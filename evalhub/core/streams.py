"""File downloads streamed as JSONL, CSV or Parquet, one batch of rows at a time, and the
response that sends them. Span exports and dataset exports both encode through here.

Memory is bounded by one batch: each batch is encoded and yielded before the next is read.
Parquet gets one row group per batch, written into a small buffer that is yielded and emptied
after each batch, against a schema fixed up front.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq
from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header

Row = dict[str, Any]
Batches = Iterable[list[Row]]

FORMATS: Final = {
    "jsonl": ("application/x-ndjson", "jsonl"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
}
"""Export format → (content type, file extension)."""


def json_text(value: Any) -> str:
    """Compact JSON text (values JSON has no type for as their ``str``)."""
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def jsonl_stream(batches: Batches, *, record: Callable[[Row], Row]) -> Iterator[bytes]:
    """One JSON object per line, ``record`` making each row's object."""
    for rows in batches:
        lines = [json_text(record(row)) for row in rows]
        yield ("\n".join(lines) + "\n").encode() if lines else b""


def csv_stream(
    batches: Batches, *, columns: Sequence[str], record: Callable[[Row], Row]
) -> Iterator[bytes]:
    """A header of ``columns`` (with the first batch), then a line per row, ``record`` making
    each row's cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for rows in batches:
        for row in rows:
            writer.writerow(record(row))
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate(0)
    if buffer.tell():  # no rows: the header alone
        yield buffer.getvalue().encode()


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
    batches: Batches, *, schema: pa.Schema, record: Callable[[Row], Row]
) -> Iterator[bytes]:
    """Parquet bytes as they are written: one row group per batch, ``record`` making each row
    fit ``schema``. Memory holds one batch, not the file."""
    sink = _ChunkSink()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    try:
        for rows in batches:
            table = pa.Table.from_pylist([record(row) for row in rows], schema=schema)
            writer.write_table(table, row_group_size=len(rows))
            chunk = sink.take()
            if chunk:
                yield chunk
    finally:
        writer.close()
    yield sink.take()


def export_stream(
    batches: Batches,
    *,
    export_format: str,
    jsonl: Callable[[Row], Row],
    csv_row: Callable[[Row], Row],
    schema: pa.Schema,
    parquet_row: Callable[[Row], Row],
) -> Iterator[bytes]:
    """``batches`` encoded as ``export_format`` (a key of ``FORMATS``), each format's row
    made by its function; ``ValueError`` for another format."""
    if export_format == "jsonl":
        return jsonl_stream(batches, record=jsonl)
    if export_format == "csv":
        return csv_stream(batches, columns=schema.names, record=csv_row)
    if export_format == "parquet":
        return parquet_stream(batches, schema=schema, record=parquet_row)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def download_response(
    chunks: Iterable[bytes], *, export_format: str, filename: str
) -> StreamingHttpResponse:
    """A streamed file download of ``chunks`` in ``export_format``; the extension is added to
    ``filename``."""
    content_type, extension = FORMATS[export_format]
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"{filename}.{extension}")
    return response
