"""Phoenix-compatible span mutations (``/v1``): metadata patches and permanent deletes."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from tracing.models import Project
from tracing.store.metadata import spans_metadata_patch
from tracing.store.selectors import global_id_pk, project_get, span_ids_resolve
from tracing.store.services import spans_delete, spans_delete_identified

router = Router(tags=["spans"])

MAX_BATCH = 1000


def project_from_path(identifier: str) -> Project:
    """The project a path names (numeric id or name, or a Phoenix GlobalID), else 404."""
    project = project_get(identifier)
    if project is None:
        pk = global_id_pk(identifier, "Project")
        project = Project.objects.filter(pk=pk).first() if pk is not None else None
    if project is None:
        raise HttpError(404, f"project {identifier!r} not found")
    return project


class SpanMetadataPatchIn(Schema):
    span_id: str
    metadata: Any = Field(
        ..., description="JSON Merge Patch for the span's metadata; null values are kept as null"
    )


class SpanMetadataPatchBody(Schema):
    data: list[SpanMetadataPatchIn] = Field(..., max_length=MAX_BATCH)


class SpanMetadataErrorOut(Schema):
    span_id: str
    error_message: str


class SpanMetadataPatchOut(Schema):
    spans_processed: int
    spans_updated: int
    spans_failed: int
    errors: list[SpanMetadataErrorOut]


class SpansDeleteBody(Schema):
    span_ids: list[str] = Field(
        ...,
        max_length=MAX_BATCH,
        description="span_ids, or ids as the span listing gives them (either form)",
    )


class SpansDeleteOut(Schema):
    deleted: int
    deleted_span_ids: list[str] = Field(..., description="The span_id of every span deleted")


@router.patch("/projects/{name:project}/spans/metadata", response=SpanMetadataPatchOut)
def spans_metadata_update(
    request: HttpRequest, project: str, body: SpanMetadataPatchBody
) -> dict[str, Any]:
    """Merge a patch into each span's metadata (RFC 7386, except that null sets null).

    Spans that are not in the project and patches that are not objects come back in
    ``errors``; the others are applied.
    """
    result = spans_metadata_patch(
        project=project_from_path(project),
        patches=[(item.span_id, item.metadata) for item in body.data],
    )
    return {
        "spans_processed": result.spans_processed,
        "spans_updated": result.spans_updated,
        "spans_failed": result.spans_failed,
        "errors": [{"span_id": e.span_id, "error_message": e.error_message} for e in result.errors],
    }


@router.delete("/spans/{name:span_identifier}", response={204: None})
def span_delete(request: HttpRequest, span_identifier: str) -> HttpResponse:
    """Delete one span for good (its children stay); by OpenTelemetry span_id, or by the ``id``
    the span listing gives (digits, or a GlobalID)."""
    found = span_ids_resolve(identifiers=[span_identifier])
    if not found:
        raise HttpError(404, f"span {span_identifier!r} not found")
    spans_delete(span_ids=found)
    return HttpResponse(status=204)


@router.post("/projects/{name:project}/spans/delete", response=SpansDeleteOut)
def spans_delete_many(request: HttpRequest, project: str, body: SpansDeleteBody) -> dict[str, Any]:
    """Delete spans of a project for good, with their annotations; unknown ids are ignored.
    Spans are named by ``span_id`` or by the ``id`` the span listing gives."""
    deleted = spans_delete_identified(project=project_from_path(project), identifiers=body.span_ids)
    return {"deleted": len(deleted), "deleted_span_ids": deleted}
