"""``client.spans``' exports: a project's spans streamed to a JSONL, CSV or Parquet file, or
into a DataFrame, never held whole in memory."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from evalhub_client._http import Params, Transport, project_path

TimeLike = datetime | str | None
ExportFormat = Literal["jsonl", "csv", "parquet"]

CHUNK_SIZE = 1 << 20
"""Bytes read at a time from an export."""
DF_BATCH_ROWS = 10_000
"""Rows converted to pandas at a time when an export becomes a DataFrame."""


def time_param(value: TimeLike) -> str | None:
    """A time as a query parameter: ISO 8601 for a datetime, text as given."""
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


class SpanExports:
    """The export calls of ``client.spans`` (``Spans``)."""

    _http: Transport

    def export_to_file(
        self,
        project_name: str,
        path: str | os.PathLike[str],
        *,
        format: ExportFormat = "parquet",
        start_time: TimeLike = None,
        end_time: TimeLike = None,
        filter: str | None = None,
        progress: bool | None = None,
        space_id: str | None = None,
        space: str | None = None,
    ) -> Path:
        """Stream the project's spans (newest first) to ``path`` as JSONL, CSV or Parquet.

        The answer is written as it arrives, so memory stays small whatever the size; the file
        appears only when the export is complete. ``progress`` shows a progress bar (by
        default when the output is a terminal).
        """
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        params: Params = {
            "format": format,
            "filter": filter,
            "start_time": time_param(start_time),
            "end_time": time_param(end_time),
        }
        try:
            with (
                self._http.stream(
                    f"{project_path(project_name)}/spans/export", params=params
                ) as response,
                partial.open("wb") as out,
                tqdm(
                    total=int(response.headers["Content-Length"])
                    if "Content-Length" in response.headers
                    else None,
                    unit="B",
                    unit_scale=True,
                    desc=f"export {project_name}",
                    disable=None if progress is None else not progress,
                ) as bar,
            ):
                for chunk in response.iter_bytes(CHUNK_SIZE):
                    out.write(chunk)
                    bar.update(len(chunk))
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        return target

    def export_to_parquet(
        self,
        project_name: str,
        start_time: TimeLike = None,
        end_time: TimeLike = None,
        filter: str | None = None,
        *,
        path: str | os.PathLike[str],
        progress: bool | None = None,
        space_id: str | None = None,
        space: str | None = None,
    ) -> Path:
        """Stream the project's spans to a Parquet file at ``path`` (see ``export_to_file``);
        ``space_id`` / ``space`` are ignored."""
        return self.export_to_file(
            project_name,
            path,
            format="parquet",
            start_time=start_time,
            end_time=end_time,
            filter=filter,
            progress=progress,
        )

    def export_to_df(
        self,
        project_name: str,
        start_time: TimeLike = None,
        end_time: TimeLike = None,
        filter: str | None = None,
        *,
        progress: bool | None = None,
        space_id: str | None = None,
        space: str | None = None,
    ) -> pd.DataFrame:
        """The project's spans (newest first) as a DataFrame of the export columns
        (``space_id`` / ``space`` are ignored).

        The export is streamed as Parquet into a temporary file and converted a batch of rows
        at a time, so the download is never held in memory next to the frame. Columns:
        ``context.span_id``, ``context.trace_id``, ``parent_id``, ``name``, ``span_kind``,
        ``status_code``, ``status_message``, ``start_time``, ``end_time`` (UTC), ``latency_ms``,
        ``input``, ``output``, ``model_name``, token counts, ``cost``, ``session_id``,
        ``user_id``, and ``metadata`` and ``attributes`` as dicts (attributes with flat dotted
        keys).
        """
        with tempfile.TemporaryDirectory(prefix="evalhub-export-") as directory:
            path = self.export_to_parquet(
                project_name,
                start_time,
                end_time,
                filter,
                path=Path(directory) / "spans.parquet",
                progress=progress,
            )
            with pq.ParquetFile(path) as parquet:
                parts = []
                for batch in parquet.iter_batches(batch_size=DF_BATCH_ROWS):
                    part = batch.to_pandas()
                    for column in ("metadata", "attributes"):
                        part[column] = part[column].map(json.loads, na_action="ignore")
                    parts.append(part)
                if not parts:
                    empty = parquet.schema_arrow.empty_table().to_pandas()
                    return empty.astype({"metadata": object, "attributes": object})
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
