"""``client.spans``: list, log, annotate, evaluate, patch metadata, delete and export spans
(the exports: ``evalhub_client.spans.exports``).

The calls take the arguments the Arize spans SDK documents (``space_id`` / ``space`` are
accepted and ignored: EvalHub has no spaces) and return its shapes (``evalhub_client.types``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, PrivateAttr

from evalhub_client import frames
from evalhub_client._http import Transport, project_path
from evalhub_client.errors import EvalHubError, NotFoundError
from evalhub_client.spans.exports import SpanExports, TimeLike, time_param
from evalhub_client.types import (
    AnnotateRecordInput,
    Pagination,
    Span,
    SpanDeletePartialResponse,
    SpansLogResponse,
    SpansUpdateResult,
)

Record = dict[str, Any]
Records = list[Record]

MAX_BATCH = 1000
"""Spans, records or ids sent per request (the server's limit per request)."""
ANNOTATE_WINDOW = timedelta(days=31)
"""How far back ``annotate_spans`` looks for spans when no ``start_time`` is given."""


def _as_datetime(value: datetime | str, name: str) -> datetime:
    """A datetime or ISO 8601 text → an aware datetime (no zone: UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {value!r} is not an ISO 8601 time") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _chunks[T](items: Sequence[T]) -> Iterator[Sequence[T]]:
    size = MAX_BATCH
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _transient(exc: EvalHubError) -> bool:
    """A failure that trying again may get past: no answer, 429 or 5xx."""
    return exc.status_code is None or exc.status_code == 429 or exc.status_code >= 500


class SpanList(BaseModel):
    """One page of spans, newest first (the Arize SDK's span list response).

    ``spans`` holds this page's spans as ``Span`` objects (``span.span_id``, ``span.name``,
    ``span.context.trace_id``...) and ``pagination`` the way on: ``pagination.has_more`` and
    ``pagination.next_cursor``, to pass as ``cursor=`` to ``spans.list``. ``to_dict()`` is the
    response as a dict (``{"spans": [...], "pagination": {...}}``).

    EvalHub's earlier shape stays: ``data`` (this page's spans as dicts), ``next_cursor``,
    ``next_page()``, ``pages()``; iterating yields the dicts of this page and of every later page,
    fetched as needed; ``to_dicts``, ``to_json`` (a JSON array of spans) and ``to_df`` convert
    this page, or every page with ``all_pages=True``.
    """

    model_config = ConfigDict(frozen=True)

    spans: list[Span]
    pagination: Pagination

    _client: Spans | None = PrivateAttr(None)
    _project: str = PrivateAttr("")
    _params: dict[str, Any] = PrivateAttr(default_factory=dict)
    _data: Records = PrivateAttr(default_factory=list)

    @classmethod
    def from_api(
        cls, body: Mapping[str, Any], *, client: Spans, project: str, params: dict[str, Any]
    ) -> SpanList:
        data: Records = list(body["data"])
        cursor = body.get("next_cursor")
        page = cls(
            spans=[Span.from_api(span) for span in data],
            pagination=Pagination(next_cursor=cursor, has_more=cursor is not None),
        )
        page._client, page._project, page._params, page._data = client, project, params, data
        return page

    @property
    def data(self) -> Records:
        """This page's spans as dicts in the API's shape (EvalHub's earlier name; prefer
        ``spans``)."""
        return self._data

    @property
    def next_cursor(self) -> str | None:
        return self.pagination.next_cursor

    def __repr__(self) -> str:
        return f"<SpanList {len(self.spans)} spans, next_cursor={self.next_cursor!r}>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "spans": [span.to_dict() for span in self.spans],
            "pagination": self.pagination.to_dict(),
        }

    def next_page(self) -> SpanList | None:
        if self.next_cursor is None or self._client is None:
            return None
        return self._client._page(self._project, {**self._params, "cursor": self.next_cursor})

    def pages(self) -> Iterator[SpanList]:
        page: SpanList | None = self
        while page is not None:
            yield page
            page = page.next_page()

    def __iter__(self) -> Iterator[Record]:  # type: ignore[override]  # iterates rows, where pydantic.BaseModel iterates fields
        for page in self.pages():
            yield from page.data

    def to_dicts(self, *, all_pages: bool = False) -> Records:
        return list(self) if all_pages else list(self.data)

    def to_json(self, *, all_pages: bool = False, indent: int | None = None) -> str:
        """The spans as a JSON array (``json.dumps(page.to_dict())`` is the whole response)."""
        return json.dumps(self.to_dicts(all_pages=all_pages), indent=indent, ensure_ascii=False)

    def to_df(self, *, all_pages: bool = False) -> pd.DataFrame:
        """A span frame (see ``evalhub_client.frames``), the same shape ``Spans.log`` takes."""
        return frames.spans_frame(self.to_dicts(all_pages=all_pages))


SpanListResponse = SpanList
"""The Arize SDK's name."""


def _annotation_records(
    annotations: Iterable[AnnotateRecordInput | Mapping[str, Any]],
) -> list[Record]:
    """The annotations to send, one record per span: ``{"span_id", "annotations": [...]}``."""
    records: dict[str, Record] = {}
    for item in annotations:
        if isinstance(item, AnnotateRecordInput) or (
            isinstance(item, Mapping) and "record_id" in item
        ):
            record_input = AnnotateRecordInput.model_validate(item)
            span_id = record_input.record_id
            values = [value.to_dict() for value in record_input.values]
        elif isinstance(item, Mapping):
            flat = frames.native(dict(item))
            span_id = flat.get("span_id")
            if "annotations" in flat:
                values = list(flat["annotations"])
            else:
                values = [{k: v for k, v in flat.items() if k != "span_id" and v is not None}]
        else:
            raise TypeError(f"an annotation is an AnnotateRecordInput or a dict, not {item!r}")
        if not isinstance(span_id, str):
            raise ValueError(f"every annotation needs a span id (record_id): {item!r}")
        records.setdefault(span_id, {"span_id": span_id, "annotations": []})
        records[span_id]["annotations"].extend(values)
    return list(records.values())


class Spans(SpanExports):
    def __init__(self, transport: Transport) -> None:
        self._http = transport

    # --- reading ---------------------------------------------------------------------------

    def _page(self, project: str, params: dict[str, Any]) -> SpanList:
        body = self._http.request("GET", f"{project_path(project)}/spans", params=params)
        return SpanList.from_api(body, client=self, project=project, params=params)

    def list(
        self,
        project: str,
        start_time: TimeLike = None,
        end_time: TimeLike = None,
        filter: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        space: str | None = None,
        space_id: str | None = None,
    ) -> SpanList:
        """The project's spans, newest first, ``limit`` (≤ 1000) per page.

        ``project`` is the project's name or id. ``start_time`` is inclusive and ``end_time``
        exclusive (times without a zone are UTC); without them every span is listed.
        ``filter`` is a filter-language expression such as
        ``"status_code = 'ERROR' AND eval.Correctness.label = 'correct'"``. ``cursor`` is a
        page's ``pagination.next_cursor``. ``space`` / ``space_id`` are ignored.
        """
        params: dict[str, Any] = {
            "start_time": time_param(start_time),
            "end_time": time_param(end_time),
            "filter": filter,
            "limit": limit,
            "cursor": cursor,
        }
        return self._page(project, params)

    # --- writing ---------------------------------------------------------------------------

    def log(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        evals_dataframe: pd.DataFrame | None = None,
        *,
        space_id: str | None = None,
        space: str | None = None,
    ) -> SpansLogResponse:
        """Store the spans of a span frame, and evaluations of them.

        ``dataframe`` has ``context.span_id``, ``context.trace_id``, ``name``, ``start_time``,
        ``end_time`` and optionally ``parent_id``, ``span_kind``, ``status_code``,
        ``status_message``, ``events`` and ``attributes.<key>`` columns (cells may hold lists
        and dicts; null cells, and ``...`` placeholders, are left out).
        ``eval.<name>.label|score|explanation`` columns, in ``dataframe`` or in
        ``evals_dataframe`` (with ``context.span_id`` as a column or the index), are stored as
        LLM evaluations of the spans.

        The project is created when it does not exist. Spans are sent 1,000 at a time; each
        request is all or nothing (``SpanLogError`` lists invalid and duplicate spans). Returns
        the totals received, stored and evaluations, with the ``status_code`` of the answer.
        ``space_id`` / ``space`` are ignored.
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
        status = 200  # nothing to send is a success too
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
            status, body = self._http.send(
                "POST",
                f"{project_path(project_name)}/spans",
                json={"data": list(batch), "evaluations": batch_evaluations},
            )
            for key in totals:
                totals[key] += int(body.get(key, 0))
        return SpansLogResponse(totals, status_code=status)

    def _project_ensure(self, project_name: str) -> None:
        """Create the project when it does not exist yet (as OTLP ingest does)."""
        try:
            self._http.request("GET", project_path(project_name))
        except NotFoundError:
            try:
                self._http.request("POST", "/v1/projects", json={"name": project_name})
            except EvalHubError as exc:
                if exc.status_code != 409:  # created meanwhile by someone else
                    raise

    def annotate_spans(
        self,
        project: str,
        annotations: Sequence[AnnotateRecordInput | Mapping[str, Any]],
        start_time: datetime | str | None = None,
        end_time: datetime | str | None = None,
        *,
        space: str | None = None,
        space_id: str | None = None,
    ) -> Records:
        """Create or update human annotations on spans of ``project``, by span id.

        Each item is an ``AnnotateRecordInput(record_id=<span id>, values=[AnnotationInput(
        name=..., label=..., score=..., text=...)])`` or its dict form; ``text`` is the
        annotation's explanation. EvalHub's earlier forms work too: ``{"span_id": ...,
        "annotations": [{"name", "label", "score", "text" (or "explanation"),
        "annotator_kind" (HUMAN by default), "identifier", "metadata"}]}``, or one flat
        annotation ``{"span_id", "name", ...}``. An annotation is replaced by one of the same
        name on the same span.

        Spans are looked up among those that started in ``[start_time, end_time)``: by default
        the 31 days before ``end_time``, which defaults to now (times without a zone are UTC).
        Sent 1,000 spans at a time, each request all or nothing: a span id not found in the
        window raises ``NotFoundError`` whose ``missing_ids`` lists them, and nothing of that
        request is written. Returns, per span, the annotations written (with ids).
        ``space`` / ``space_id`` are ignored.
        """
        end = _as_datetime(end_time, "end_time") if end_time is not None else datetime.now(UTC)
        start = (
            _as_datetime(start_time, "start_time")
            if start_time is not None
            else end - ANNOTATE_WINDOW
        )
        window = {"start_time": start.isoformat(), "end_time": end.isoformat()}
        written: Records = []
        for batch in _chunks(_annotation_records(annotations)):
            body = self._http.request(
                "POST",
                f"{project_path(project)}/span_annotations/batch",
                json={"data": list(batch), **window},
            )
            written.extend({"record_id": r["span_id"], **r} for r in body["data"])
        return written

    def _records(
        self, project_name: str, dataframe: pd.DataFrame, prefixes: tuple[str, ...]
    ) -> SpansUpdateResult:
        rows = frames.frame_records(dataframe)
        if rows and not any(column.startswith(prefixes) for column in rows[0]):
            rows = frames.long_form_records(rows, prefixes[0]) or rows
        result = SpansUpdateResult(
            spans_processed=len(rows),
            spans_updated=0,
            spans_failed=0,
            errors=[],
            records=0,
            annotations=0,
        )
        if not rows:
            return result
        columns = sorted(
            {c for row in rows for c in row if c in frames.ID_COLUMNS or c.startswith(prefixes)},
            key=lambda c: (c not in frames.ID_COLUMNS, c),
        )
        if not any(c.startswith(prefixes) for c in columns):
            raise ValueError(f"no columns starting with {', '.join(prefixes)}")
        for batch in _chunks(rows):
            body = self._http.request(
                "POST",
                f"{project_path(project_name)}/evaluations/records",
                json={"records": [{c: row[c] for c in columns if c in row} for row in batch]},
            )
            result["records"] += body["records"]
            result["annotations"] += body["annotations"]
        result["spans_updated"] = result["records"]
        return result

    def update_evaluations(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        *,
        space_id: str | None = None,
        space: str | None = None,
    ) -> SpansUpdateResult:
        """Write LLM evaluations from ``eval.<name>.label|score|explanation`` columns (spans by
        ``context.span_id``), ``trace_eval.<name>.…`` (``context.trace_id``) and
        ``session_eval.<name>.…`` (``session_id``) — or, in long form, from ``name`` and
        ``label`` / ``score`` / ``explanation`` columns (one evaluation of a span per row).

        Null cells leave stored values as they are; other columns are ignored. 1,000 rows per
        request, each all or nothing (unknown targets raise ``NotFoundError`` listing them, bad
        columns ``ValidationError``). Returns ``spans_processed`` / ``spans_updated`` (rows),
        ``spans_failed`` (0), ``errors`` ([]), ``records`` and ``annotations`` (written).
        ``space_id`` / ``space`` are ignored.
        """
        return self._records(project_name, dataframe, frames.EVALUATION_PREFIXES)

    def update_annotations(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        *,
        space_id: str | None = None,
        space: str | None = None,
    ) -> SpansUpdateResult:
        """Like ``update_evaluations``, for human annotations: ``annotation.<name>.label|
        score|text`` columns (and ``trace_annotation.…``, ``session_annotation.…``), or the
        long form."""
        return self._records(project_name, dataframe, frames.ANNOTATION_PREFIXES)

    def update_metadata(
        self,
        project_name: str,
        dataframe: pd.DataFrame,
        patch_document_column_name: str = "patch_document",
        *,
        space_id: str | None = None,
        space: str | None = None,
    ) -> SpansUpdateResult:
        """Merge metadata into spans (by ``context.span_id``).

        ``attributes.metadata.<field>`` columns set that field: text stays text, numbers stay
        numbers, booleans become "True"/"False", null becomes JSON null (the key is kept), dicts
        and lists become JSON text. A patch document column (a dict or JSON text) is merged
        last, so it wins on conflicts. Spans that cannot be patched come back in ``errors``
        (``{"span_id", "error_message"}``); the others are updated. ``space_id`` / ``space``
        are ignored.
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
        result = SpansUpdateResult(spans_processed=0, spans_updated=0, spans_failed=0, errors=[])
        for batch in _chunks(patches):
            body = self._http.request(
                "PATCH", f"{project_path(project_name)}/spans/metadata", json={"data": list(batch)}
            )
            for key in ("spans_processed", "spans_updated", "spans_failed", "errors"):
                result[key] += body[key]
        return result

    def delete(
        self,
        project: str,
        span_ids: Iterable[str],
        *,
        space: str | None = None,
        space_id: str | None = None,
    ) -> SpanDeletePartialResponse | None:
        """Delete spans of ``project`` for good, with their annotations.

        ``span_ids`` are span ids, or the ``id``s the span listing gives (``span.id``); unknown
        ones are ignored. Sent 1,000 at a time, each request all or nothing. Returns ``None``
        when every request went through; when one fails in a way retrying may get past (no
        answer, 429, 5xx) after others deleted spans, a ``SpanDeletePartialResponse`` with the
        ``deleted_span_ids`` (call again to complete). Other failures raise. ``space`` /
        ``space_id`` are ignored.
        """
        ids = [str(span_id) for span_id in span_ids]
        if not ids:
            raise ValueError("span_ids must not be empty")
        deleted: list[str] = []
        for batch in _chunks(ids):
            try:
                body = self._http.request(
                    "POST", f"{project_path(project)}/spans/delete", json={"span_ids": list(batch)}
                )
            except EvalHubError as exc:
                if deleted and _transient(exc):
                    return SpanDeletePartialResponse(deleted_span_ids=deleted, detail=str(exc))
                raise
            deleted.extend(body["deleted_span_ids"])
        return None


__all__ = ["SpanList", "SpanListResponse", "Spans"]
