"""Datasets over the API (``/v1``), in Phoenix-like shapes: ``{"data": ...}`` bodies, string
ids, ``next_cursor`` pages.

Examples are made from spans: given by ``span_ids``, or every span of ``project`` matching a
``filter`` (the filter language). Errors are ``{"detail": ...}`` naming the field; span ids that
do not exist are a 404 listing them; nothing is written when a request fails.
"""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from annotations.datasets.models import (
    Dataset,
    DatasetExampleRevision,
    DatasetVersion,
)
from annotations.datasets.selectors import (
    MAX_PAGE_SIZE,
    dataset_get,
    dataset_page,
    span_pks_by_id,
    span_pks_matching,
)
from annotations.datasets.services import (
    MAX_EXAMPLES_PER_ADD,
    DatasetNameTaken,
    DatasetSourceMissing,
    dataset_create,
    dataset_delete,
    dataset_examples_add,
    dataset_name_clean,
    expected_output_from_clean,
)
from annotations.datasets.versions import (
    dataset_version_get,
    dataset_version_latest,
    version_example_count,
    version_examples_page,
)
from evalhub.core.paging import InvalidCursor, Page, Pages, paged
from evalhub.identity.auth import request_user
from tracing.api.mutations import project_from_path
from tracing.query import FilterError
from tracing.query.lists import span_queryset
from tracing.store.selectors import global_id_pk

router = Router(tags=["datasets"])

MAX_SPAN_IDS = 10_000


class DatasetOut(Schema):
    id: str = Field(..., description="a Phoenix GlobalID (base64 of 'Dataset:<pk>')")
    name: str
    description: str
    metadata: dict[str, Any]
    example_count: int = Field(..., description="examples at the latest version")
    created_at: str
    updated_at: str


class DatasetResponse(Schema):
    data: DatasetOut


class ExampleOut(Schema):
    id: str
    node_id: str
    input: dict[str, Any]
    output: dict[str, Any] = Field(..., description="the expected output, as a JSON object")
    updated_at: str
    expected_output: str | None
    labels: dict[str, Any]
    metadata: dict[str, Any]
    span_id: str
    trace_id: str
    project: str
    created_at: str


class ExamplesData(Schema):
    dataset_id: str
    version_id: str | None
    examples: list[ExampleOut]


class ExamplesPage(Schema):
    data: ExamplesData
    next_cursor: str | None


class ExamplesAddedResponse(Schema):
    data: DatasetOut
    added: int = Field(..., description="examples added")
    skipped: int = Field(..., description="spans the dataset already had")


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


def dataset_global_id(pk: int) -> str:
    """The Phoenix GlobalID of a dataset: the Phoenix client tells ids from names by it."""
    return base64.b64encode(f"Dataset:{pk}".encode()).decode()


def _dataset_out(dataset: Dataset) -> dict[str, Any]:
    """``dataset`` with the example count of its latest version."""
    return {
        "id": dataset_global_id(dataset.pk),
        "name": dataset.name,
        "description": dataset.description,
        "metadata": {},
        "example_count": version_example_count(version=dataset_version_latest(dataset=dataset)),
        "created_at": dataset.created_at.isoformat(),
        "updated_at": dataset.updated_at.isoformat(),
    }


def _example_out(revision: DatasetExampleRevision) -> dict[str, Any]:
    """An example as a version holds it (Phoenix's fields), with where it came from."""
    example = revision.example
    return {
        "id": str(example.pk),
        "node_id": str(example.pk),
        "input": revision.input,
        "output": revision.output,
        "metadata": revision.metadata,
        "updated_at": revision.created_at.isoformat(),
        "expected_output": example.expected_output,
        "labels": example.labels,
        "span_id": example.source_span_id,
        "trace_id": example.source_trace_id,
        "project": example.source_project,
        "created_at": example.created_at.isoformat(),
    }


def dataset_from_path(identifier: str) -> Dataset:
    """The dataset a path names (numeric id, Phoenix GlobalID or name), else 404."""
    pk = global_id_pk(identifier, "Dataset")
    dataset = dataset_get(pk, by_name=False) if pk is not None else dataset_get(identifier)
    if dataset is None:
        raise HttpError(404, f"dataset {identifier!r} not found")
    return dataset


def _reloaded(dataset: Dataset) -> Dataset:
    """The dataset read again, with its example count."""
    found = dataset_get(dataset.pk, by_name=False)
    assert found is not None
    return found


def _source_spans(body: ExamplesSourceIn) -> list[int]:
    """The span pks a body names, checked: 400/404 naming what is wrong, before any write."""
    expected_output_from_clean(body.expected_output_from)
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


@router.get("/datasets", response=list[DatasetOut])
@paged(invalid_status=422)
def datasets_list(request: HttpRequest, name: str | None = None) -> Pages | Page[Any]:
    """Every dataset, newest first, with its example count, a page at a time (``name``: the
    one with that name, as the Phoenix client looks datasets up)."""
    if name is not None:
        named = dataset_get(name, by_name=True)
        found = [named] if named is not None and named.name == name.strip() else []
        return Page([_dataset_out(d) for d in found], None)

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return dataset_page(cursor=cursor, limit=limit).map(_dataset_out)

    return pages


@router.post("/datasets", response=DatasetResponse)
def datasets_create(request: HttpRequest, body: DatasetCreateIn) -> dict[str, Any]:
    """Create a dataset with examples from ``span_ids`` or the spans of ``project`` matching
    ``filter``. 400 names the invalid field; 404 lists unknown span ids; 409 when the name is
    taken."""
    dataset_name_clean(body.name)
    pks = _source_spans(body)
    try:
        result = dataset_create(
            name=body.name,
            description=body.description or "",
            user=request_user(request),
            spans=pks,
            expected_output_from=body.expected_output_from,
        )
    except (DatasetNameTaken, DatasetSourceMissing) as exc:
        raise _failed(exc) from None
    return {"data": _dataset_out(_reloaded(result.dataset))}


@router.get("/datasets/{name:dataset}", response=DatasetResponse)
def dataset_detail(request: HttpRequest, dataset: str) -> dict[str, Any]:
    """One dataset, by id or name, with its example count."""
    return {"data": _dataset_out(dataset_from_path(dataset))}


@router.delete("/datasets/{name:dataset}", response=DatasetResponse)
def dataset_remove(request: HttpRequest, dataset: str) -> dict[str, Any]:
    """Delete a dataset (by id or name) with its examples; returns it as it was."""
    found = dataset_from_path(dataset)
    out = _dataset_out(found)
    dataset_delete(dataset=found)
    return {"data": out}


class ExamplesQuery(Schema):
    version_id: str | None = Field(None, description="a version of the dataset; default latest")
    cursor: str | None = None
    limit: int | None = Field(
        None, ge=1, le=MAX_PAGE_SIZE, description="a page at a time; default: every example"
    )


def version_from_query(dataset: Dataset, version_id: str | None) -> DatasetVersion | None:
    """The version a query names (404 when the dataset has no such version), else the
    latest (None for a dataset without examples yet)."""
    if version_id is None or not version_id.strip():
        return dataset_version_latest(dataset=dataset)
    version = dataset_version_get(dataset=dataset, version_id=version_id)
    if version is None:
        raise HttpError(404, f"version_id: dataset {dataset.name!r} has no version {version_id!r}")
    return version


@router.get("/datasets/{name:dataset}/examples", response=ExamplesPage)
def dataset_examples_list(
    request: HttpRequest, dataset: str, query: Query[ExamplesQuery]
) -> dict[str, Any]:
    """A dataset's examples at a version (default: the latest) as JSON objects, in the order
    they were added: all of them, or ``limit`` at a time."""
    found = dataset_from_path(dataset)
    version = version_from_query(found, query.version_id)
    try:
        page = version_examples_page(version=version, cursor=query.cursor, limit=query.limit)
    except InvalidCursor as exc:  # this page is an object (Phoenix's shape), not a paged list
        raise HttpError(422, exc.message) from None
    return {
        "data": {
            "dataset_id": dataset_global_id(found.pk),
            "version_id": None if version is None else str(version.pk),
            "examples": [_example_out(e) for e in page.items],
        },
        "next_cursor": page.next_cursor,
    }


@router.post("/datasets/{name:dataset}/examples", response=ExamplesAddedResponse)
def dataset_examples_append(
    request: HttpRequest, dataset: str, body: ExamplesSourceIn
) -> dict[str, Any]:
    """Add examples from ``span_ids`` or the spans of ``project`` matching ``filter``; spans
    the dataset already has are skipped (``skipped``). 400 names the invalid field; 404 lists
    unknown span ids."""
    found = dataset_from_path(dataset)
    pks = _source_spans(body)
    try:
        result = dataset_examples_add(
            dataset=found, spans=pks, expected_output_from=body.expected_output_from
        )
    except DatasetSourceMissing as exc:
        raise _failed(exc) from None
    return {
        "data": _dataset_out(_reloaded(found)),
        "added": result.added,
        "skipped": result.skipped,
    }
