"""``client.spans``: list, log, annotate, evaluate, patch metadata, delete and export spans."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from evalhub_client import frames
from evalhub_client._http import Params, Transport, path_segment
from evalhub_client.errors import EvalHubError, NotFoundError

Record = dict[str, Any]
Records = list[Record]
TimeLike = datetime | str | None
ExportFormat = Literal["jsonl", "csv", "parquet"]

MAX_BATCH = 1000
"""Spans, records or ids sent per request (the server's limit per request)."""
CHUNK_SIZE = 1 << 20
"""Bytes read at a time from an export."""
DF_BATCH_ROWS = 10_000
"""Rows converted to pandas at a time when an export becomes a DataFrame."""


def _time_param(value: TimeLike) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _chunks[T](items: Sequence[T]) -> Iterator[Sequence[T]]:
    size = MAX_BATCH
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _project_path(project: str) -> str:
    return f"/v1/projects/{path_segment(project)}"


class SpanList:
    """One page of spans, newest first, and the way to the next pages.

    ``data`` holds this page's spans (dicts in the API's shape) and ``next_cursor`` the cursor
    of the next page (``None`` on the last). Iterating yields every span of this page and of
    all later pages, fetched as needed; ``pages()`` yields the pages themselves. ``to_dicts``,
    ``to_json`` and ``to_df`` convert this page, or every page with ``all_pages=True``.
    """

    def __init__(
        self,
        spans: Spans,
        project: str,
        params: dict[str, Any],
        data: Records,
        next_cursor: str | None,
    ) -> None:
        self._spans = spans
        self._project = project
        self._params = params
        self.data = data
        self.next_cursor = next_cursor

    def __repr__(self) -> str:
        return f"<SpanList {len(self.data)} spans, next_cursor={self.next_cursor!r}>"

    def next_page(self) -> SpanList | None:
        if self.next_cursor is None:
            return None
        return self._spans._page(self._project, {**self._params, "cursor": self.next_cursor})

    def pages(self) -> Iterator[SpanList]:
        page: SpanList | None = self
        while page is not None:
            yield page
            page = page.next_page()

    def __iter__(self) -> Iterator[Record]:
        for page in self.pages():
            yield from page.data

    def to_dicts(self, *, all_pages: bool = False) -> Records:
        return list(self) if all_pages else list(self.data)

    def to_json(self, *, all_pages: bool = False, indent: int | None = None) -> str:
        return json.dumps(self.to_dicts(all_pages=all_pages), indent=indent, ensure_ascii=False)

    def to_df(self, *, all_pages: bool = False) -> pd.DataFrame:
        """A span frame (see ``evalhub_client.frames``), the same shape ``Spans.log`` takes."""
        return frames.spans_frame(self.to_dicts(all_pages=all_pages))


@dataclass
class MetadataUpdateResult:
    spans_processed: int = 0
    spans_updated: int = 0
    spans_failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)


class Spans:
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    # --- reading ---------------------------------------------------------------------------

    def _page(self, project: str, params: dict[str, Any]) -> SpanList:
        body = self._http.request("GET", f"{_project_path(project)}/spans", params=params)
        return SpanList(self, project, params, body["data"], body.get("next_cursor"))

    def list(
        self,
        project: str,
        start_time: TimeLike = None,
        end_time: TimeLike = None,
        filter: str | None = None,
        limit: int = 100,
    ) -> SpanList:
        """The project's spans, newest first, ``limit`` (≤ 1000) per page.

        ``start_time`` is inclusive and ``end_time`` exclusive (times without a zone are UTC);
        ``filter`` is a filter-language expression such as
        ``"span_kind == 'LLM' and eval.correctness.label == 'correct'"``.
        """
        params: dict[str, Any] = {
            "start_time": _time_param(start_time),
            "end_time": _time_param(end_time),
            "filter": filter,
            "limit": limit,
        }
        return self._page(project, params)

    # --- writing ---------------------------------------------------------------------------

    def log(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        evals_dataframe: pd.DataFrame | None = None,
    ) -> dict[str, int]:
        """Store the spans of a span frame, and evaluations of them.

        ``dataframe`` has ``context.span_id``, ``context.trace_id``, ``name``, ``start_time``,
        ``end_time`` and optionally ``parent_id``, ``span_kind``, ``status_code``,
        ``status_message``, ``events`` and ``attributes.<key>`` columns (cells may hold lists
        and dicts; null cells are left out). ``eval.<name>.label|score|explanation`` columns,
        in ``dataframe`` or in ``evals_dataframe`` (with ``context.span_id`` as a column or the
        index), are stored as LLM evaluations of the spans.

        The project is created when it does not exist. Spans are sent 1,000 at a time; each request is all or nothing (``SpanLogError`` lists
        invalid and duplicate spans). Returns the totals received, stored and evaluations.
        """
        rows = frames.frame_records(dataframe)
        columns = [str(c) for c in dataframe.columns] + [str(n) for n in dataframe.index.names]
        evaluations = frames.evaluations_of(rows, frames.eval_columns(columns))
        if evals_dataframe is not None:
            eval_rows = frames.frame_records(evals_dataframe)
            eval_names = [str(c) for c in evals_dataframe.columns]
            evaluations += frames.evaluations_of(eval_rows, frames.eval_columns(eval_names))
        spans = [frames.span_of(row) for row in rows]

        by_span: dict[str, Records] = {}
        for evaluation in evaluations:
            by_span.setdefault(str(evaluation["span_id"]), []).append(evaluation)
        totals = {"total_received": 0, "total_queued": 0, "total_evaluations": 0}
        if spans:
            self._project_ensure(project_name)
        batches = list(_chunks(spans)) or [[]]
        for position, batch in enumerate(batches):
            batch_evaluations = [
                e for span in batch for e in by_span.pop(span["context"]["span_id"], [])
            ]
            if position == len(batches) - 1:  # evaluations of spans stored before
                batch_evaluations += [e for rest in by_span.values() for e in rest]
            if not batch and not batch_evaluations:
                continue
            body = self._http.request(
                "POST",
                f"{_project_path(project_name)}/spans",
                json={"data": list(batch), "evaluations": batch_evaluations},
            )
            for key in totals:
                totals[key] += int(body.get(key, 0))
        return totals

    def _project_ensure(self, project_name: str) -> None:
        """Create the project when it does not exist yet (as OTLP ingest does)."""
        try:
            self._http.request("GET", _project_path(project_name))
        except NotFoundError:
            try:
                self._http.request("POST", "/v1/projects", json={"name": project_name})
            except EvalHubError as exc:
                if exc.status_code != 409:  # created meanwhile by someone else
                    raise

    def annotate_spans(self, project: str, annotations: Sequence[Mapping[str, Any]]) -> Records:
        """Create or update annotations on spans of ``project``.

        Each item is ``{"span_id": ..., "annotations": [{"name", "label", "score", "text" (or
        "explanation"), "annotator_kind" (HUMAN by default), "identifier", "metadata"}]}``, or
        one flat annotation ``{"span_id", "name", ...}``. Sent 1,000 spans at a time, each
        request all or nothing; unknown span ids raise ``NotFoundError`` whose
        ``missing_ids`` lists them. Returns, per span, the annotations written (with ids).
        """
        records: dict[str, Record] = {}
        for item in annotations:
            item = frames.native(dict(item))
            span_id = item.get("span_id")
            if not isinstance(span_id, str):
                raise ValueError(f"every annotation needs a span_id: {item!r}")
            record = records.setdefault(span_id, {"span_id": span_id, "annotations": []})
            if "annotations" in item:
                record["annotations"].extend(item["annotations"])
            else:
                annotation = {k: v for k, v in item.items() if k != "span_id" and v is not None}
                record["annotations"].append(annotation)
        written: Records = []
        for batch in _chunks(list(records.values())):
            body = self._http.request(
                "POST",
                f"{_project_path(project)}/span_annotations/batch",
                json={"data": list(batch)},
            )
            written.extend(body["data"])
        return written

    def _records(
        self, project_name: str, dataframe: pd.DataFrame, prefixes: tuple[str, ...]
    ) -> dict[str, int]:
        rows = frames.frame_records(dataframe)
        if not rows:
            return {"records": 0, "annotations": 0}
        columns = [c for c in rows[0] if c in frames.ID_COLUMNS or c.startswith(prefixes)]
        if not any(c.startswith(prefixes) for c in columns):
            raise ValueError(f"no columns starting with {', '.join(prefixes)}")
        totals = {"records": 0, "annotations": 0}
        for batch in _chunks(rows):
            body = self._http.request(
                "POST",
                f"{_project_path(project_name)}/evaluations/records",
                json={"records": [{c: row[c] for c in columns} for row in batch]},
            )
            totals["records"] += body["records"]
            totals["annotations"] += body["annotations"]
        return totals

    def update_evaluations(self, project_name: str, dataframe: pd.DataFrame) -> dict[str, int]:
        """Write LLM evaluations from ``eval.<name>.label|score|explanation`` columns (spans by
        ``context.span_id``), ``trace_eval.<name>.…`` (``context.trace_id``) and
        ``session_eval.<name>.…`` (``session_id``). Null cells leave stored values as they
        are; other columns are ignored. 1,000 rows per request, each all or nothing (unknown
        targets raise ``NotFoundError`` listing them, bad columns ``ValidationError``)."""
        return self._records(project_name, dataframe, frames.EVALUATION_PREFIXES)

    def update_annotations(self, project_name: str, dataframe: pd.DataFrame) -> dict[str, int]:
        """Like ``update_evaluations``, for human annotations: ``annotation.<name>.label|
        score|text`` columns (and ``trace_annotation.…``, ``session_annotation.…``)."""
        return self._records(project_name, dataframe, frames.ANNOTATION_PREFIXES)

    def update_metadata(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        patch_document_column_name: str = "patch_document",
    ) -> MetadataUpdateResult:
        """Merge metadata into spans (by ``context.span_id``).

        ``attributes.metadata.<field>`` columns set that field: text stays text, numbers stay
        numbers, booleans become "True"/"False", null becomes JSON null (the key is kept), dicts
        and lists become JSON text. A patch document column (a dict or JSON text) is merged
        last, so it wins on conflicts. Spans that cannot be patched come back in ``errors``;
        the others are updated.
        """
        rows = frames.frame_records(dataframe)
        patches = []
        for row in rows:
            span_id = row.get(frames.SPAN_ID, row.get("span_id"))
            if frames.is_null(span_id):
                raise ValueError(f"every row needs a {frames.SPAN_ID}")
            patches.append(
                {
                    "span_id": str(span_id),
                    "metadata": frames.metadata_patch(row, patch_document_column_name),
                }
            )
        result = MetadataUpdateResult()
        for batch in _chunks(patches):
            body = self._http.request(
                "PATCH", f"{_project_path(project_name)}/spans/metadata", json={"data": list(batch)}
            )
            result.spans_processed += body["spans_processed"]
            result.spans_updated += body["spans_updated"]
            result.spans_failed += body["spans_failed"]
            result.errors.extend(body["errors"])
        return result

    def delete(self, project: str, span_ids: Iterable[str]) -> int:
        """Delete spans of ``project`` for good, with their annotations; returns how many were
        deleted (unknown ids are ignored)."""
        ids = [str(span_id) for span_id in span_ids]
        deleted = 0
        for batch in _chunks(ids):
            body = self._http.request(
                "POST", f"{_project_path(project)}/spans/delete", json={"span_ids": list(batch)}
            )
            deleted += body["deleted"]
        return deleted

    # --- exports ---------------------------------------------------------------------------

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
            "start_time": _time_param(start_time),
            "end_time": _time_param(end_time),
        }
        try:
            with (
                self._http.stream(
                    f"{_project_path(project_name)}/spans/export", params=params
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
    ) -> Path:
        """Stream the project's spans to a Parquet file at ``path`` (see ``export_to_file``)."""
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
    ) -> pd.DataFrame:
        """The project's spans (newest first) as a DataFrame of the export columns.

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


__all__ = ["MetadataUpdateResult", "SpanList", "Spans"]
