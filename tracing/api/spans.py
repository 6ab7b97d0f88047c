"""Phoenix-compatible routes for projects, spans and traces (``/v1``).

Shapes follow the Phoenix REST API so the ``arize-phoenix-client`` works unchanged; errors are
``{"detail": ...}``. A ``{project}`` in a path is the project's numeric id or its name.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from ninja import Query, Router, Status
from ninja.errors import HttpError

from annotations.store.services import AnnotationInput
from evalhub.core.paging import ErrorOut, Page, Pages, paged
from evalhub.core.streams import download_response
from tracing.api import log
from tracing.api.dataframe import MAX_ROWS, SpanQueryError, dataframe_json, query_spec
from tracing.api.schemas import (
    ExportParams,
    ProjectIn,
    ProjectOneOut,
    ProjectOut,
    ProjectUpdateIn,
    SpanListParams,
    SpanOut,
    SpanQueryIn,
    SpansLogIn,
    SpansLogOut,
    SpansLogRejectedOut,
    TraceListParams,
    TraceOut,
)
from tracing.models import Project, Trace
from tracing.query import FilterError, lists
from tracing.query.lists import InvalidAttributeFilter
from tracing.store import selectors, services
from tracing.store.export import FORMATS, span_export_stream
from tracing.store.rows import span_row, span_to_phoenix
from tracing.store.selectors import UNSET

router = Router(tags=["tracing"])


def _project_or_404(identifier: str) -> Project:
    project = selectors.project_get(identifier)
    if project is None:
        raise HttpError(404, f"project {identifier!r} not found")
    return project


def _project_out(project: Project) -> dict[str, Any]:
    return {"id": str(project.pk), "name": project.name, "description": project.description}


def _aware(value: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _parse_time(raw: str | None, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    try:
        return _aware(datetime.fromisoformat(raw))
    except ValueError as exc:
        raise HttpError(422, f"{name}: {raw!r} is not an ISO 8601 time") from exc


def _attributes(raw: list[str] | None) -> list[tuple[str, Any]]:
    try:
        return [lists.attribute_filter_parse(item) for item in raw or ()]
    except InvalidAttributeFilter as exc:
        raise HttpError(400, f"attribute: {exc}") from exc


def _filter_error(exc: FilterError, param: str = "filter") -> HttpError:
    return HttpError(400, f"{param}: {exc}")


# --- projects ---------------------------------------------------------------------------------


@router.get("/projects", response=list[ProjectOut], summary="List projects")
@paged()
def projects_list(request: HttpRequest, name_contains: str | None = None) -> Pages:
    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = selectors.project_list(name_contains=name_contains, cursor=cursor, limit=limit)
        return page.map(_project_out)

    return pages


@router.post(
    "/projects",
    response={200: ProjectOneOut, 409: ErrorOut, 422: ErrorOut},
    summary="Create a project",
)
def projects_create(request: HttpRequest, body: ProjectIn) -> dict[str, Any]:
    try:
        project = services.project_create_unique(name=body.name, description=body.description or "")
    except services.ProjectNameTaken as exc:
        raise HttpError(409, f"name: {exc}") from exc
    except ValueError as exc:
        raise HttpError(422, f"name: {exc}") from exc
    return {"data": _project_out(project)}


@router.get("/projects/{name:project}", response={200: ProjectOneOut, 404: ErrorOut})
def projects_get(request: HttpRequest, project: str) -> dict[str, Any]:
    return {"data": _project_out(_project_or_404(project))}


@router.put("/projects/{name:project}", response={200: ProjectOneOut, 404: ErrorOut})
def projects_update(request: HttpRequest, project: str, body: ProjectUpdateIn) -> dict[str, Any]:
    updated = services.project_update(
        project=_project_or_404(project), description=body.description or ""
    )
    return {"data": _project_out(updated)}


@router.delete("/projects/{name:project}", response={204: None, 404: ErrorOut})
def projects_delete(request: HttpRequest, project: str) -> Status:
    services.project_delete(project=_project_or_404(project))
    return Status(204, None)


# --- spans ------------------------------------------------------------------------------------


@router.get(
    "/projects/{name:project}/spans",
    response={200: list[SpanOut], 400: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="List a project's spans, newest first",
)
@paged()
def spans_list(request: HttpRequest, project: str, params: Query[SpanListParams]) -> Pages:
    target = _project_or_404(project)
    parent: str | object | None = UNSET
    if params.parent_id is not None:
        raw = params.parent_id.strip()
        parent = None if raw.lower() in ("null", "none", "") else raw
    attributes = _attributes(params.attribute)

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        try:
            page = lists.span_list(
                project=target,
                cursor=cursor,
                limit=limit,
                filter_expr=params.filter,
                start_time=_aware(params.start_time),
                end_time=_aware(params.end_time),
                trace_ids=params.trace_id,
                span_ids=params.span_id,
                parent_id=parent,
                names=params.name,
                span_kinds=params.span_kind,
                status_codes=params.status_code,
                attributes=attributes,
            )
        except FilterError as exc:
            raise _filter_error(exc) from exc
        return page.map(lambda span: span_to_phoenix(span_row(span)))

    return pages


def _rejected(exc: log.SpanBatchRejected) -> dict[str, Any]:
    body = {
        "error": str(exc),
        "total_received": exc.received,
        "total_queued": 0,
        "total_invalid": len(exc.invalid),
        "total_duplicates": len(exc.duplicates),
        "invalid_spans": exc.invalid,
        "duplicate_spans": exc.duplicates,
    }
    # The Phoenix client reads ``detail`` as a JSON document; it stays readable as text.
    return {"detail": json.dumps(body), **body}


@router.post(
    "/projects/{name:project}/spans",
    response={200: SpansLogOut, 400: SpansLogRejectedOut, 404: ErrorOut},
    summary="Log spans (and evaluations of them), all or nothing",
)
def spans_create(request: HttpRequest, project: str, body: SpansLogIn) -> Status:
    target = _project_or_404(project)
    evaluations = [
        AnnotationInput(
            target_kind="SPAN" if item.span_id else "TRACE",
            target_id=item.span_id or item.trace_id or "",
            name=item.name,
            annotator_kind=item.annotator_kind,
            label=item.label,
            score=item.score,
            explanation=item.explanation,
            metadata=item.metadata,
            identifier=item.identifier,
        )
        for item in body.evaluations
    ]
    try:
        result = log.spans_log(project=target, spans=body.data, evaluations=evaluations)
    except log.SpanBatchRejected as exc:
        return Status(400, _rejected(exc))
    return Status(
        200,
        {
            "total_received": result.received,
            "total_queued": result.inserted,
            "total_evaluations": result.evaluations,
        },
    )


@router.get(
    "/projects/{name:project}/spans/export",
    response={200: None, 400: ErrorOut, 404: ErrorOut},
    summary="Export spans as JSONL, CSV or Parquet (streamed)",
)
def spans_export(
    request: HttpRequest, project: str, params: Query[ExportParams]
) -> HttpResponseBase:
    target = _project_or_404(project)
    export_format = params.format
    if export_format not in FORMATS:
        raise HttpError(400, f"format: {export_format!r} is not one of {', '.join(FORMATS)}")
    try:
        query = lists.span_queryset(
            project=target,
            filter_expr=params.filter,
            start_time=_aware(params.start_time),
            end_time=_aware(params.end_time),
        )
    except FilterError as exc:
        raise _filter_error(exc) from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    safe_name = "".join(c if c.isalnum() or c in "-_" else "_" for c in target.name)
    return download_response(
        span_export_stream(query, export_format=export_format),
        export_format=export_format,
        filename=f"spans-{safe_name}-{stamp}",
    )


MAX_QUERIES = 20


@router.post(
    "/spans",
    response={200: None, 400: ErrorOut, 404: ErrorOut},
    summary="Query spans as data frames (get_spans_dataframe; legacy query_spans)",
)
def spans_query_dataframe(
    request: HttpRequest, body: SpanQueryIn, project_name: str | None = None
) -> HttpResponse:
    """One multipart part of table-schema JSON per query, in the queries' order. A single query
    that finds nothing gets no part (the client reads an empty frame); with several queries
    every one gets its part, empty or not, so the legacy client's frames line up."""
    target = _project_or_404(project_name or services.DEFAULT_PROJECT)
    queries = body.queries or [{}]
    if len(queries) > MAX_QUERIES:
        raise HttpError(400, f"queries: at most {MAX_QUERIES} queries per request")
    start_time = _parse_time(body.start_time, "start_time")
    end_time = _parse_time(body.end_time, "end_time")
    limit = min(body.limit or MAX_ROWS, MAX_ROWS)
    answers: list[str] = []
    for number, raw in enumerate(queries):
        try:
            spec = query_spec(raw, number)
            query = lists.span_queryset(
                project=target,
                filter_expr=spec.filter,
                start_time=start_time,
                end_time=end_time,
                parent_id=None if body.root_spans_only else UNSET,
            )
        except SpanQueryError as exc:
            raise HttpError(400, str(exc)) from exc
        except FilterError as exc:
            raise _filter_error(exc, f"queries.{number}.filter.condition") from exc
        rows = list(query.values(*selectors.EXPORT_FIELDS)[:limit])
        if rows or len(queries) > 1:
            answers.append(dataframe_json(rows, spec))
    boundary = uuid.uuid4().hex
    parts = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n{answer}\r\n" for answer in answers
    ]
    parts.append(f"--{boundary}--\r\n")
    return HttpResponse(
        "".join(parts).encode(), content_type=f"multipart/mixed; boundary={boundary}"
    )


# --- traces -----------------------------------------------------------------------------------


def _trace_out(trace: Trace, spans: list[Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(trace.pk),
        "trace_id": trace.trace_id,
        "project_id": str(trace.project_id),
        "start_time": trace.start_time.isoformat() if trace.start_time else "",
        "end_time": trace.end_time.isoformat() if trace.end_time else "",
        "latency_ms": trace.latency_ms,
        "session_id": trace.session.session_id if trace.session else None,
        "token_count_prompt": trace.prompt_tokens,
        "token_count_completion": trace.completion_tokens,
        "token_count_total": trace.total_tokens,
    }
    if spans is not None:
        out["spans"] = [
            {
                "id": str(span.pk),
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "span_kind": span.span_kind,
                "status_code": span.status_code,
                "start_time": span.start_time.isoformat(),
                "end_time": span.end_time.isoformat(),
            }
            for span in spans
        ]
    return out


@router.get(
    "/projects/{name:project}/traces",
    response={200: list[TraceOut], 400: ErrorOut, 404: ErrorOut, 422: ErrorOut},
    summary="List a project's traces",
    exclude_unset=True,
)
@paged()
def traces_list(request: HttpRequest, project: str, params: Query[TraceListParams]) -> Pages:
    target = _project_or_404(project)

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        try:
            page = lists.trace_list(
                project=target,
                start_time=_aware(params.start_time),
                end_time=_aware(params.end_time),
                sort=params.sort,
                order=params.order,
                session_ids=params.session_identifier,
                error=params.error,
                min_latency_ms=params.min_latency_ms,
                max_latency_ms=params.max_latency_ms,
                filter_expr=params.filter,
                root_spans_only=params.root_spans_only,
                cursor=cursor,
                limit=limit,
            )
        except FilterError as exc:
            raise _filter_error(exc) from exc
        if not params.include_spans:
            return page.map(lambda trace: _trace_out(trace, None))
        spans = selectors.trace_spans([t.pk for t in page.items])
        return page.map(lambda trace: _trace_out(trace, spans.get(trace.pk)))

    return pages
