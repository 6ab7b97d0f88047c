"""Batch annotation API: bulk span annotation and dataframe-shaped evaluation records (``/v1``).

Both routes work within one project and are all or nothing: when any target is unknown the
answer is 404 with ``missing_ids`` listing them, and nothing is written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.errors import HttpError

from annotations.models import TargetKind
from annotations.store.records import EvaluationRecordError, evaluation_records_upsert
from annotations.store.services import (
    AnnotationInput,
    AnnotationInputError,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from evalhub.core.paging import ErrorOut
from evalhub.identity.auth import request_user
from tracing.api.mutations import project_from_path

router = Router(tags=["annotations"])

MAX_RECORDS = 1000
MAX_ANNOTATIONS = 10_000


class BatchAnnotationIn(Schema):
    name: str = Field(..., min_length=1, max_length=255)
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    text: str | None = Field(None, description="Another name for explanation")
    annotator_kind: Literal["HUMAN", "LLM", "CODE"] = Field(
        "HUMAN", description="Who annotated: HUMAN (the default), LLM or CODE"
    )
    identifier: str = Field(
        "", description="Several annotations of one name on one span differ by identifier"
    )
    metadata: dict[str, Any] = {}


class SpanAnnotationsRecordIn(Schema):
    span_id: str
    annotations: list[BatchAnnotationIn] = Field(..., min_length=1)


class SpanAnnotationsBatchIn(Schema):
    data: list[SpanAnnotationsRecordIn] = Field(..., max_length=MAX_RECORDS)
    start_time: datetime | None = Field(
        None,
        description=(
            "Only spans that started at or after this time are looked up (no bound when "
            "absent); a span outside the window counts as not found. Times without a zone "
            "are UTC."
        ),
    )
    end_time: datetime | None = Field(
        None, description="Only spans that started before this time are looked up"
    )


class WrittenAnnotationOut(Schema):
    id: str
    name: str
    identifier: str


class SpanAnnotationsRecordOut(Schema):
    span_id: str
    annotations: list[WrittenAnnotationOut]


class SpanAnnotationsBatchOut(Schema):
    data: list[SpanAnnotationsRecordOut]


class TargetsNotFoundOut(Schema):
    detail: str
    missing_ids: list[str] = Field([], description="Every unknown target id of the request")


class EvaluationRecordsIn(Schema):
    records: list[dict[str, Any]] = Field(
        ...,
        max_length=MAX_RECORDS,
        description=(
            "Rows of a data frame: target ids (context.span_id, context.trace_id, session_id) "
            "and result columns <prefix>.<name>.<field>, where prefix is eval or annotation "
            "(spans), trace_eval or trace_annotation (traces), session_eval or "
            "session_annotation (sessions), and field is label, score, explanation or text. "
            "eval columns are LLM evaluations, annotation columns human annotations. Null "
            "cells are not given: a stored value stays as it is."
        ),
    )


class EvaluationRecordsOut(Schema):
    records: int = Field(..., description="Records received")
    annotations: int = Field(..., description="Annotations created or updated")


def _utc(value: datetime | None) -> datetime | None:
    """Times without a zone are read as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _not_found(exc: AnnotationTargetNotFound) -> Status:
    return Status(404, {"detail": str(exc), "missing_ids": exc.missing})


@router.post(
    "/projects/{name:project}/span_annotations/batch",
    response={
        200: SpanAnnotationsBatchOut,
        404: TargetsNotFoundOut,
        422: ErrorOut,
    },
    summary="Annotate spans in bulk: up to 1,000 spans by span id, several annotations each",
)
def span_annotations_batch(
    request: HttpRequest, project: str, body: SpanAnnotationsBatchIn
) -> Status:
    """Create or update annotations on spans of the project, by span, name and identifier.

    All or nothing: when a span id is not in the project (or, with ``start_time`` /
    ``end_time``, the span did not start within that window) the answer is 404 with every
    unknown id in ``missing_ids``, and nothing is written.
    """
    target = project_from_path(project)
    start, end = _utc(body.start_time), _utc(body.end_time)
    if start is not None and end is not None and end <= start:
        raise HttpError(422, "end_time: must be after start_time")
    positions: list[tuple[int, int]] = []
    items: list[AnnotationInput] = []
    for i, record in enumerate(body.data):
        for j, annotation in enumerate(record.annotations):
            explanation = annotation.explanation
            if annotation.text is not None:
                if explanation is not None and explanation != annotation.text:
                    raise HttpError(
                        422, f"data[{i}].annotations[{j}].text: conflicts with explanation"
                    )
                explanation = annotation.text
            positions.append((i, j))
            items.append(
                AnnotationInput(
                    target_kind=TargetKind.SPAN,
                    target_id=record.span_id,
                    name=annotation.name,
                    annotator_kind=annotation.annotator_kind,
                    label=annotation.label,
                    score=annotation.score,
                    explanation=explanation,
                    metadata=annotation.metadata,
                    identifier=annotation.identifier,
                )
            )
    if len(items) > MAX_ANNOTATIONS:
        raise HttpError(422, f"data: at most {MAX_ANNOTATIONS} annotations per request")
    try:
        written = annotations_upsert(
            items=items,
            user=request_user(request),
            project=target,
            span_window=(start, end) if start is not None or end is not None else None,
        )
    except AnnotationTargetNotFound as exc:
        if start is None and end is None:
            return _not_found(exc)
        window = f"started from {start or 'any time'} until before {end or 'any time'}"
        return Status(404, {"detail": f"{exc} (among spans {window})", "missing_ids": exc.missing})
    except AnnotationInputError as exc:
        i, j = positions[exc.index]
        raise HttpError(422, f"data[{i}].annotations[{j}].{exc.field}: {exc.message}") from None
    out: list[dict[str, Any]] = [
        {"span_id": record.span_id, "annotations": []} for record in body.data
    ]
    for (i, _), stored in zip(positions, written, strict=True):
        out[i]["annotations"].append(
            {"id": str(stored.pk), "name": stored.name, "identifier": stored.identifier}
        )
    return Status(200, {"data": out})


@router.post(
    "/projects/{name:project}/evaluations/records",
    response={200: EvaluationRecordsOut, 404: TargetsNotFoundOut, 422: ErrorOut},
    summary=(
        "Write evaluations and annotations from data-frame records "
        "(eval.<name>.label|score|explanation, annotation.<name>.…, trace_eval.…, session_eval.…)"
    ),
)
def evaluation_records(request: HttpRequest, project: str, body: EvaluationRecordsIn) -> Status:
    """Create or update evaluations (LLM) and annotations (HUMAN) from up to 1,000 records.

    All or nothing: a column that is not understood, or a value of the wrong type, is a 422
    naming it; targets not in the project are a 404 listing them in ``missing_ids``.
    """
    target = project_from_path(project)
    try:
        written = evaluation_records_upsert(
            project=target, records=body.records, user=request_user(request)
        )
    except AnnotationTargetNotFound as exc:
        return _not_found(exc)
    except EvaluationRecordError as exc:
        raise HttpError(422, str(exc)) from None
    # Records that name the same annotation twice return it twice; count it once.
    count = len({id(annotation) for annotation in written})
    return Status(200, {"records": len(body.records), "annotations": count})
