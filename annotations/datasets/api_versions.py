"""Dataset uploads, versions and example edits over the API (``/v1``), shaped like Phoenix's
so that ``phoenix.client.Client().datasets`` works unchanged.

``POST /datasets/upload`` takes the Phoenix client's JSON body (``inputs``/``outputs``/
``metadata`` lists) or a multipart file (CSV, gzip'd CSV, JSONL, Parquet) with
``input_keys[]``/``output_keys[]``/``metadata_keys[]``; a malformed row is a 400 naming its row
and nothing is stored. Every change answers with the new ``version_id``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from annotations.datasets.api import dataset_from_path, dataset_global_id, version_from_query
from annotations.datasets.models import DatasetVersion
from annotations.datasets.services import DatasetNameTaken
from annotations.datasets.upload import (
    Keys,
    UploadInvalid,
    dataset_upload,
    rows_from_file,
    rows_from_json,
)
from annotations.datasets.versions import (
    ExampleContent,
    dataset_examples_patch,
    dataset_examples_remove,
    dataset_version_delete,
    dataset_version_get,
    dataset_versions,
    version_diff,
    version_download,
)
from evalhub.core.json_input import JsonInputError, json_body_loads
from evalhub.core.paging import Page, Pages, page_from_id, paged

router = Router(tags=["datasets"])


class UploadData(Schema):
    dataset_id: str
    version_id: str
    num_created_examples: int
    num_updated_examples: int
    num_deleted_examples: int


class UploadResponse(Schema):
    data: UploadData


class VersionOut(Schema):
    version_id: str
    description: str | None
    metadata: dict[str, Any]
    created_at: str
    deleted: bool
    change_count: int


class VersionResponse(Schema):
    data: VersionOut


class ExampleEdit(Schema):
    id: str
    input: dict[str, Any]
    output: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class ExamplesEditIn(Schema):
    examples: list[ExampleEdit]
    description: str | None = None


class ExamplesDeleteIn(Schema):
    example_ids: list[str]
    description: str | None = None


class ChangeData(Schema):
    dataset_id: str
    version_id: str


class ChangeResponse(Schema):
    data: ChangeData


def _version_out(version: DatasetVersion, change_count: int | None = None) -> dict[str, Any]:
    return {
        "version_id": str(version.pk),
        "description": version.description or None,
        "metadata": version.metadata,
        "created_at": version.created_at.isoformat(),
        "deleted": version.deleted_at is not None,
        "change_count": getattr(version, "change_count", change_count or 0),
    }


def _keys(request: HttpRequest) -> Keys:
    span = (request.POST.get("span_id_key") or "").strip() or None
    return Keys(
        input=request.POST.getlist("input_keys[]"),
        output=request.POST.getlist("output_keys[]"),
        metadata=request.POST.getlist("metadata_keys[]"),
        span_id=span,
    )


def _upload_body(request: HttpRequest) -> tuple[dict[str, Any], list[Any]]:
    """The upload's fields and rows, from a multipart form or a JSON body; 400 naming what is
    wrong."""
    content_type = request.content_type or ""
    if content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("file")
        if upload is None:
            raise HttpError(400, "file: required in a multipart upload")
        rows = rows_from_file(
            filename=upload.name or "",
            content_type=upload.content_type or "",
            data=upload.read(),
            keys=_keys(request),
        )
        fields = {k: request.POST.get(k) for k in ("action", "name", "description")}
        return fields, rows
    try:
        body = json_body_loads(request.body)
    except JsonInputError as exc:
        raise HttpError(400, str(exc)) from None
    if not isinstance(body, dict):
        raise HttpError(400, "body: must be a JSON object")
    rows = rows_from_json(
        inputs=body.get("inputs"),
        outputs=body.get("outputs"),
        metadata=body.get("metadata"),
        span_ids=body.get("span_ids"),
    )
    return body, rows


@router.post("/datasets/upload", response=UploadResponse)
def datasets_upload(request: HttpRequest) -> dict[str, Any]:
    """Create or change a dataset from a table or JSON lists: one new version. ``action``:
    ``create`` (409 when the name is taken), ``append``, ``update`` (the rows become the
    dataset's content). 400 names the field or the malformed row; nothing is stored then."""
    try:
        fields, rows = _upload_body(request)
        name = fields.get("name")
        if not isinstance(name, str):
            raise HttpError(400, "name: required")
        description = fields.get("description")
        result = dataset_upload(
            name=name,
            rows=rows,
            action=str(fields.get("action") or "create"),
            description=description if isinstance(description, str) else None,
            user=getattr(request, "user", None),
        )
    except UploadInvalid as exc:
        raise HttpError(400, str(exc)) from None
    except DatasetNameTaken as exc:
        raise HttpError(409, str(exc)) from None
    assert result.version is not None
    return {
        "data": {
            "dataset_id": dataset_global_id(result.dataset.pk),
            "version_id": str(result.version.pk),
            "num_created_examples": result.created,
            "num_updated_examples": result.updated,
            "num_deleted_examples": result.deleted,
        }
    }


@router.get("/datasets/{name:dataset}/versions", response=list[VersionOut])
@paged(invalid_status=422)
def dataset_versions_list(request: HttpRequest, dataset: str) -> Pages:
    """A dataset's versions, newest first (deleted ones marked), a page at a time."""
    versions = dataset_versions(dataset=dataset_from_path(dataset))

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_from_id(versions, cursor=cursor, limit=limit).map(_version_out)

    return pages


def _version(dataset: str, version_id: str) -> DatasetVersion:
    found = dataset_from_path(dataset)
    version = dataset_version_get(dataset=found, version_id=version_id)
    if version is None:
        raise HttpError(404, f"dataset {found.name!r} has no version {version_id!r}")
    return version


@router.delete("/datasets/{name:dataset}/versions/{version_id}", response=VersionResponse)
def dataset_version_remove(request: HttpRequest, dataset: str, version_id: str) -> dict[str, Any]:
    """Delete a version: experiments that ran on it keep it; new experiments may not use it."""
    version = dataset_version_delete(version=_version(dataset, version_id))
    return {"data": _version_out(version, version.revisions.count())}


class DiffQuery(Schema):
    against: str = Field(..., description="the version to compare with (the older one)")


@router.get("/datasets/{name:dataset}/versions/{version_id}/diff")
def dataset_version_diff(
    request: HttpRequest, dataset: str, version_id: str, query: Query[DiffQuery]
) -> dict[str, Any]:
    """Examples added, removed and changed from version ``against`` to ``version_id``."""
    after = _version(dataset, version_id)
    before = _version(dataset, query.against)
    diff = version_diff(a=before, b=after)

    def content(r: Any) -> dict[str, Any]:
        return {
            "id": str(r.example_id),
            "input": r.input,
            "output": r.output,
            "metadata": r.metadata,
        }

    return {
        "data": {
            "from_version_id": str(before.pk),
            "to_version_id": str(after.pk),
            "added": [content(r) for r in diff.added],
            "removed": [content(r) for r in diff.removed],
            "changed": [{"before": content(a), "after": content(b)} for a, b in diff.changed],
        }
    }


def _example_pk(text: str) -> int:
    value = str(text).strip()
    if not value.isdigit() or len(value) > 18:
        raise HttpError(400, f"examples: {text!r} is not an example id")
    return int(value)


@router.post("/datasets/{name:dataset}/examples/edit", response=ChangeResponse)
def dataset_examples_edit(
    request: HttpRequest, dataset: str, body: ExamplesEditIn
) -> dict[str, Any]:
    """Edit examples' input, expected output and metadata: one new version."""
    found = dataset_from_path(dataset)
    if not body.examples:
        raise HttpError(400, "examples: must not be empty")
    changes = {
        _example_pk(e.id): ExampleContent(input=e.input, output=e.output, metadata=e.metadata)
        for e in body.examples
    }
    try:
        version = dataset_examples_patch(
            dataset=found, changes=changes, description=body.description or "examples edited"
        )
    except KeyError as exc:
        raise HttpError(404, str(exc.args[0])) from None
    return {"data": {"dataset_id": dataset_global_id(found.pk), "version_id": str(version.pk)}}


@router.post("/datasets/{name:dataset}/examples/delete", response=ChangeResponse)
def dataset_examples_delete(
    request: HttpRequest, dataset: str, body: ExamplesDeleteIn
) -> dict[str, Any]:
    """Delete examples: one new version (older versions keep them)."""
    found = dataset_from_path(dataset)
    if not body.example_ids:
        raise HttpError(400, "example_ids: must not be empty")
    try:
        version = dataset_examples_remove(
            dataset=found,
            example_ids=[_example_pk(i) for i in body.example_ids],
            description=body.description or "examples deleted",
        )
    except KeyError as exc:
        raise HttpError(404, str(exc.args[0])) from None
    return {"data": {"dataset_id": dataset_global_id(found.pk), "version_id": str(version.pk)}}


class DownloadQuery(Schema):
    version_id: str | None = None


def _download(dataset: str, version_id: str | None, fmt: str) -> HttpResponse:
    found = dataset_from_path(dataset)
    version = version_from_query(found, version_id)
    download = version_download(dataset=found, version=version, fmt=fmt)
    response = HttpResponse(download.text, content_type=download.content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    return response


@router.get("/datasets/{name:dataset}/csv")
def dataset_download_csv(
    request: HttpRequest, dataset: str, query: Query[DownloadQuery]
) -> HttpResponse:
    """A version of the dataset (default latest) as CSV, one column per object (JSON text)."""
    return _download(dataset, query.version_id, "csv")


@router.get("/datasets/{name:dataset}/jsonl")
def dataset_download_jsonl(
    request: HttpRequest, dataset: str, query: Query[DownloadQuery]
) -> HttpResponse:
    """A version of the dataset (default latest) as JSON lines."""
    return _download(dataset, query.version_id, "jsonl")
