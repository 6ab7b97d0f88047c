"""Datasets over the API (``/v1``), in Phoenix-like shapes: ``{"data": ...}`` bodies, string
ids, ``next_cursor`` pages.

Examples are made from spans: given by ``span_ids``, or every span of ``project`` matching a
``filter`` (the filter language). Errors are ``{"detail": ...}`` naming the field; span ids that
do not exist are a 404 listing them; nothing is written when a request fails.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from annotations.datasets.models import Dataset, DatasetExample
from annotations.datasets.selectors import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    dataset_examples_page,
    dataset_get,
    dataset_page,
    span_pks_by_id,
    span_pks_matching,
)
from annotations.datasets.services import (
    MAX_EXAMPLES_PER_ADD,
    DatasetInvalid,
    DatasetNameTaken,
    DatasetSourceMissing,
    dataset_create,
    dataset_delete,
    dataset_examples_add,
    dataset_name_clean,
    expected_output_from_clean,
)
from tracing.api.mutations import project_from_path
from tracing.query import FilterError
from tracing.query.lists import span_queryset

router = Router(tags=["datasets"])

MAX_SPAN_IDS = 10_000


class DatasetOut(Schema):
    id: str
    name: str
    description: str
    example_count: int
    created_at: str
    updated_at: str


class DatasetResponse(Schema):
    data: DatasetOut


class DatasetsPage(Schema):
    data: list[DatasetOut]
    next_cursor: str | None


class ExampleOut(Schema):
    id: str
    input: str | None
    output: str | None
    expected_output: str | None
    labels: dict[str, Any]
    metadata: dict[str, Any]
    span_id: str
    trace_id: str
    project: str
    created_at: str


class ExamplesData(Schema):
    dataset_id: str
    examples: list[ExampleOut]


class ExamplesPage(Schema):
    data: ExamplesData
    next_cursor: str | None


class ExamplesAddedResponse(Schema):
    data: DatasetOut
    added: int = Field(..., description="examples added")
    skipped: int = Field(..., description="spans the dataset already had")


class PageQuery(Schema):
    cursor: str | None = None
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class ExamplesSourceIn(Schema):
    project: str | None = Field(
        None,
        description="project id or name: required with filter; with span_ids, they must be in it",
    )
    span_ids: list[str] | None = Field(None, description=f"at most {MAX_SPAN_IDS:,} span ids")
    filter: str | None = Field(None, description="filter language over the project's spans")
    expected_output_from: str | None = Field(
        None,
        description=(
            "an annotation whose explanation (else label) becomes expected_output: a rubric's "
            "name for people's labels, eval.<name> for an evaluator's results; by default the "
            "reference in the span's metadata"
        ),
    )


class DatasetCreateIn(ExamplesSourceIn):
    name: str
    description: str | None = None


def _dataset_out(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` as read by the selectors (with ``example_count``)."""
    return {
        "id": str(dataset.pk),
        "name": dataset.name,
        "description": dataset.description,
        "example_count": dataset.example_count,  # type: ignore[attr-defined]
        "created_at": dataset.created_at.isoformat(),
        "updated_at": dataset.updated_at.isoformat(),
    }


def _example_out(example: DatasetExample) -> dict[str, Any]:
    return {
        "id": str(example.pk),
        "input": example.input,
        "output": example.output,
        "expected_output": example.expected_output,
        "labels": example.labels,
        "metadata": example.metadata,
        "span_id": example.source_span_id,
        "trace_id": example.source_trace_id,
        "project": example.source_project,
        "created_at": example.created_at.isoformat(),
    }


def _dataset_from_path(identifier: str) -> Dataset:
    dataset = dataset_get(identifier)
    if dataset is None:
        raise HttpError(404, f"dataset {identifier!r} not found")
    return dataset


def _reloaded(dataset: Dataset) -> Dataset:
    """The dataset read again, with its example count."""
    found = dataset_get(dataset.pk, by_name=False)
    assert found is not None
    return found


def _user(request: HttpRequest) -> AbstractBaseUser | None:
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def _source_spans(body: ExamplesSourceIn) -> list[int]:
    """The span pks a body names, checked: 400/404 naming what is wrong, before any write."""
    try:
        expected_output_from_clean(body.expected_output_from)
    except DatasetInvalid as exc:
        raise HttpError(400, str(exc)) from None
    if body.span_ids is not None and body.filter is not None:
        raise HttpError(400, "span_ids: give span_ids or filter, not both")
    if body.span_ids is None and body.filter is None:
        raise HttpError(400, "span_ids: give span_ids or a filter (with project)")
    project = project_from_path(body.project) if body.project is not None else None
    if body.span_ids is not None:
        if not body.span_ids:
            raise HttpError(400, "span_ids: must not be empty")
        if len(body.span_ids) > MAX_SPAN_IDS:
            raise HttpError(400, f"span_ids: at most {MAX_SPAN_IDS:,} span ids at once")
        if any(not isinstance(s, str) or not s.strip() for s in body.span_ids):
            raise HttpError(400, "span_ids: every span id must be a non-empty string")
        found = span_pks_by_id(span_ids=[s.strip() for s in body.span_ids], project=project)
        if found.missing:
            where = f" in project {project.name!r}" if project is not None else ""
            raise HttpError(404, f"spans not found{where}: {', '.join(found.missing)}")
        return found.pks
    if project is None:
        raise HttpError(400, "project: required with filter")
    if not (body.filter or "").strip():
        raise HttpError(400, "filter: must not be empty")
    try:
        spans = span_queryset(project=project, filter_expr=body.filter)
    except FilterError as exc:
        raise HttpError(400, f"filter: {exc}") from None
    pks = span_pks_matching(spans=spans, limit=MAX_EXAMPLES_PER_ADD)
    if len(pks) > MAX_EXAMPLES_PER_ADD:
        raise HttpError(
            400, f"filter: matches more than {MAX_EXAMPLES_PER_ADD:,} spans; narrow it down"
        )
    return pks


def _failed(exc: Exception) -> HttpError:
    if isinstance(exc, DatasetNameTaken):
        return HttpError(409, str(exc))
    if isinstance(exc, DatasetSourceMissing):
        return HttpError(404, str(exc))
    return HttpError(400, str(exc))


@router.get("/datasets", response=DatasetsPage)
def datasets_list(request: HttpRequest, paging: Query[PageQuery]) -> dict[str, Any]:
    """Every dataset, newest first, with its example count, a page at a time."""
    try:
        page = dataset_page(cursor=paging.cursor, limit=paging.limit)
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None
    return {"data": [_dataset_out(d) for d in page.items], "next_cursor": page.next_cursor}


@router.post("/datasets", response=DatasetResponse)
def datasets_create(request: HttpRequest, body: DatasetCreateIn) -> dict[str, Any]:
    """Create a dataset with examples from ``span_ids`` or the spans of ``project`` matching
    ``filter``. 400 names the invalid field; 404 lists unknown span ids; 409 when the name is
    taken."""
    try:
        dataset_name_clean(body.name)
    except DatasetInvalid as exc:
        raise HttpError(400, str(exc)) from None
    pks = _source_spans(body)
    try:
        result = dataset_create(
            name=body.name,
            description=body.description or "",
            user=_user(request),
            spans=pks,
            expected_output_from=body.expected_output_from,
        )
    except (DatasetInvalid, DatasetNameTaken, DatasetSourceMissing) as exc:
        raise _failed(exc) from None
    return {"data": _dataset_out(_reloaded(result.dataset))}


@router.get("/datasets/{name:dataset}", response=DatasetResponse)
def dataset_detail(request: HttpRequest, dataset: str) -> dict[str, Any]:
    """One dataset, by id or name, with its example count."""
    return {"data": _dataset_out(_dataset_from_path(dataset))}


@router.delete("/datasets/{name:dataset}", response=DatasetResponse)
def dataset_remove(request: HttpRequest, dataset: str) -> dict[str, Any]:
    """Delete a dataset (by id or name) with its examples; returns it as it was."""
    found = _dataset_from_path(dataset)
    out = _dataset_out(found)
    dataset_delete(dataset=found)
    return {"data": out}


@router.get("/datasets/{name:dataset}/examples", response=ExamplesPage)
def dataset_examples_list(
    request: HttpRequest, dataset: str, paging: Query[PageQuery]
) -> dict[str, Any]:
    """A dataset's examples in the order they were added, a page at a time."""
    found = _dataset_from_path(dataset)
    try:
        page = dataset_examples_page(dataset=found, cursor=paging.cursor, limit=paging.limit)
    except ValueError as exc:
        raise HttpError(422, str(exc)) from None
    return {
        "data": {"dataset_id": str(found.pk), "examples": [_example_out(e) for e in page.items]},
        "next_cursor": page.next_cursor,
    }


@router.post("/datasets/{name:dataset}/examples", response=ExamplesAddedResponse)
def dataset_examples_append(
    request: HttpRequest, dataset: str, body: ExamplesSourceIn
) -> dict[str, Any]:
    """Add examples from ``span_ids`` or the spans of ``project`` matching ``filter``; spans
    the dataset already has are skipped (``skipped``). 400 names the invalid field; 404 lists
    unknown span ids."""
    found = _dataset_from_path(dataset)
    pks = _source_spans(body)
    try:
        result = dataset_examples_add(
            dataset=found, spans=pks, expected_output_from=body.expected_output_from
        )
    except (DatasetInvalid, DatasetSourceMissing) as exc:
        raise _failed(exc) from None
    return {
        "data": _dataset_out(_reloaded(found)),
        "added": result.added,
        "skipped": result.skipped,
    }
