"""Phoenix-compatible routes for span, trace and session annotations (``/v1``), and the
project's agreement report."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError

from annotations.agreement import agreement
from annotations.models import Annotation, AnnotationTargetKind, AnnotatorKind, TargetKind
from annotations.store.selectors import MAX_PAGE_SIZE, agreement_ratings, annotation_list
from annotations.store.services import (
    AnnotationInput,
    AnnotationInputError,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from evalhub.core.paging import Page, Pages, paged
from evalhub.identity.auth import request_user
from tracing.api.mutations import project_from_path

router = Router(tags=["annotations"])

MAX_BATCH = 1000
MAX_IDS_PER_QUERY = 1000
NOTE_NAME = "note"  # Phoenix's name for notes; its client leaves them out of reads by default


class AnnotationResultIn(Schema):
    label: str | None = None
    score: float | None = None
    explanation: str | None = None


class _AnnotationIn(Schema):
    name: str
    annotator_kind: str = Field(..., description="HUMAN, LLM or CODE")
    result: AnnotationResultIn | None = None
    metadata: dict[str, Any] | None = None
    identifier: str | None = Field(
        None, description="Several annotations of one name on one target differ by identifier"
    )


class SpanAnnotationIn(_AnnotationIn):
    span_id: str


class DocumentAnnotationIn(_AnnotationIn):
    span_id: str
    document_position: int = Field(
        ..., description="The document's 0-based place in the span's retrieval.documents"
    )


class TraceAnnotationIn(_AnnotationIn):
    trace_id: str


class SessionAnnotationIn(_AnnotationIn):
    session_id: str


class SpanAnnotationsBody(Schema):
    data: list[SpanAnnotationIn] = Field(..., max_length=MAX_BATCH)


class DocumentAnnotationsBody(Schema):
    data: list[DocumentAnnotationIn] = Field(..., max_length=MAX_BATCH)


class TraceAnnotationsBody(Schema):
    data: list[TraceAnnotationIn] = Field(..., max_length=MAX_BATCH)


class SessionAnnotationsBody(Schema):
    data: list[SessionAnnotationIn] = Field(..., max_length=MAX_BATCH)


class InsertedAnnotation(Schema):
    id: str


class AnnotateResponse(Schema):
    data: list[InsertedAnnotation]


class AnnotationResultOut(Schema):
    label: str | None
    score: float | None
    explanation: str | None


class _AnnotationOut(Schema):
    id: str
    name: str
    annotator_kind: str
    result: AnnotationResultOut
    metadata: dict[str, Any]
    identifier: str
    source: str
    user_id: str | None
    created_at: str
    updated_at: str


class SpanAnnotationOut(_AnnotationOut):
    span_id: str


class TraceAnnotationOut(_AnnotationOut):
    trace_id: str


class SessionAnnotationOut(_AnnotationOut):
    session_id: str


_ID_FIELDS: dict[str, str] = {
    TargetKind.SPAN: "span_id",
    TargetKind.TRACE: "trace_id",
    TargetKind.SESSION: "session_id",
    AnnotationTargetKind.DOCUMENT: "span_id",
}


def _annotate(
    request: HttpRequest, kind: str, items: list[Any], sync: bool
) -> dict[str, list[dict[str, str]]]:
    id_field = _ID_FIELDS[kind]
    inputs = [
        AnnotationInput(
            target_kind=kind,
            target_id=getattr(item, id_field),
            name=item.name,
            annotator_kind=item.annotator_kind,
            label=item.result.label if item.result else None,
            score=item.result.score if item.result else None,
            explanation=item.result.explanation if item.result else None,
            metadata=item.metadata or {},
            identifier=item.identifier or "",
            document_position=getattr(item, "document_position", None),
        )
        for item in items
    ]
    try:
        annotations = annotations_upsert(items=inputs, user=request_user(request))
    except AnnotationTargetNotFound as exc:
        raise HttpError(404, str(exc)) from None
    except AnnotationInputError as exc:
        raise HttpError(422, f"data[{exc.index}].{exc.field}: {exc.message}") from None
    # Phoenix answers an asynchronous request with no ids; here the write is already done.
    return {"data": [{"id": str(a.pk)} for a in annotations] if sync else []}


@router.post("/span_annotations", response=AnnotateResponse)
def span_annotations_create(
    request: HttpRequest, body: SpanAnnotationsBody, sync: bool = False
) -> dict[str, Any]:
    """Create or update span annotations (by span, name and identifier); all or nothing."""
    return _annotate(request, TargetKind.SPAN, body.data, sync)


@router.post("/document_annotations", response=AnnotateResponse)
def document_annotations_create(
    request: HttpRequest, body: DocumentAnnotationsBody, sync: bool = False
) -> dict[str, Any]:
    """Create or update annotations of retrieved documents (by span, document position, name
    and identifier), e.g. retrieval relevance per document; all or nothing. The position is the
    document's 0-based place in the span's ``retrieval.documents``."""
    return _annotate(request, AnnotationTargetKind.DOCUMENT, body.data, sync)


@router.post("/trace_annotations", response=AnnotateResponse)
def trace_annotations_create(
    request: HttpRequest, body: TraceAnnotationsBody, sync: bool = False
) -> dict[str, Any]:
    """Create or update trace annotations (by trace, name and identifier); all or nothing."""
    return _annotate(request, TargetKind.TRACE, body.data, sync)


@router.post("/session_annotations", response=AnnotateResponse)
def session_annotations_create(
    request: HttpRequest, body: SessionAnnotationsBody, sync: bool = False
) -> dict[str, Any]:
    """Create or update session annotations (by session, name and identifier); all or nothing.

    A session id is unique within a project; one that names sessions in several projects is
    rejected (422).
    """
    return _annotate(request, TargetKind.SESSION, body.data, sync)


class SpanNoteIn(Schema):
    span_id: str
    note: str
    identifier: str | None = None


class SpanNoteBody(Schema):
    data: SpanNoteIn


class SpanNoteResponse(Schema):
    data: InsertedAnnotation


@router.post("/span_notes", response=SpanNoteResponse)
def span_note_create(request: HttpRequest, body: SpanNoteBody) -> dict[str, Any]:
    """Add a free-text note to a span: an annotation named ``note`` with the text as its
    explanation. Notes accumulate (each gets a fresh identifier unless one is given)."""
    note = body.data
    if not note.note.strip():
        raise HttpError(422, "data.note: must not be empty")
    item = AnnotationInput(
        target_kind=TargetKind.SPAN,
        target_id=note.span_id,
        name=NOTE_NAME,
        annotator_kind=AnnotatorKind.HUMAN,
        explanation=note.note.strip(),
        identifier=note.identifier or f"note:{uuid.uuid4()}",
    )
    try:
        (annotation,) = annotations_upsert(items=[item], user=request_user(request))
    except AnnotationTargetNotFound as exc:
        raise HttpError(404, str(exc)) from None
    except AnnotationInputError as exc:
        raise HttpError(422, f"data.{exc.field}: {exc.message}") from None
    return {"data": {"id": str(annotation.pk)}}


def _annotation_out(annotation: Annotation, id_field: str) -> dict[str, Any]:
    return {
        "id": str(annotation.pk),
        id_field: annotation.target_key,  # type: ignore[attr-defined]  # annotated by annotation_queryset
        "name": annotation.name,
        "annotator_kind": annotation.annotator_kind,
        "result": {
            "label": annotation.label,
            "score": annotation.score,
            "explanation": annotation.explanation,
        },
        "metadata": annotation.metadata,
        "identifier": annotation.identifier,
        "source": annotation.source,
        "user_id": str(annotation.user_id) if annotation.user_id is not None else None,
        "created_at": annotation.created_at.isoformat(),
        "updated_at": annotation.updated_at.isoformat(),
    }


class _AnnotationFilters(Schema):
    include_annotation_names: list[str] | None = None
    exclude_annotation_names: list[str] | None = None


class SpanAnnotationFilters(_AnnotationFilters):
    span_ids: list[str] = Field(..., min_length=1, max_length=MAX_IDS_PER_QUERY)


class TraceAnnotationFilters(_AnnotationFilters):
    trace_ids: list[str] = Field(..., min_length=1, max_length=MAX_IDS_PER_QUERY)


class SessionAnnotationFilters(_AnnotationFilters):
    session_ids: list[str] = Field(..., min_length=1, max_length=MAX_IDS_PER_QUERY)


def _list(project: str, kind: str, filters: Any) -> Pages:
    found, id_field = project_from_path(project), _ID_FIELDS[kind]

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        page = annotation_list(
            project=found,
            target_kind=kind,
            **{f"{id_field}s": getattr(filters, f"{id_field}s")},
            names=filters.include_annotation_names,
            exclude_names=filters.exclude_annotation_names,
            cursor=cursor,
            limit=limit,
        )
        return page.map(lambda a: _annotation_out(a, id_field))

    return pages


# Phoenix's page size and answer to a bad cursor (422).
_paged = paged(default=10, maximum=MAX_PAGE_SIZE, invalid_status=422)


@router.get("/projects/{name:project}/span_annotations", response=list[SpanAnnotationOut])
@_paged
def span_annotations_list(
    request: HttpRequest, project: str, filters: Query[SpanAnnotationFilters]
) -> Pages:
    """Annotations on the given spans of a project, newest first, a page at a time."""
    return _list(project, TargetKind.SPAN, filters)


@router.get("/projects/{name:project}/trace_annotations", response=list[TraceAnnotationOut])
@_paged
def trace_annotations_list(
    request: HttpRequest, project: str, filters: Query[TraceAnnotationFilters]
) -> Pages:
    """Annotations on the given traces of a project, newest first, a page at a time."""
    return _list(project, TargetKind.TRACE, filters)


@router.get("/projects/{name:project}/session_annotations", response=list[SessionAnnotationOut])
@_paged
def session_annotations_list(
    request: HttpRequest, project: str, filters: Query[SessionAnnotationFilters]
) -> Pages:
    """Annotations on the given sessions of a project, newest first, a page at a time."""
    return _list(project, TargetKind.SESSION, filters)


# --- agreement ----------------------------------------------------------------------------------


class RaterOut(Schema):
    label: str
    kind: str = Field(..., description="HUMAN, LLM or CODE")


class PairAgreementOut(Schema):
    a: RaterOut
    b: RaterOut
    pairs: int = Field(..., description="Targets both rated")
    same_target_pairs: int
    root_span_pairs: int = Field(
        ..., description="A trace's label paired with the evaluator's result on its root span"
    )
    label_pairs: int
    percent_agreement: float | None
    kappa: float | None = Field(..., description="Cohen's kappa of the labels")
    score_pairs: int
    pearson: float | None
    mean_abs_difference: float | None
    disagreements: int


class NameAgreementOut(Schema):
    name: str
    pairs: list[PairAgreementOut]


class AgreementOut(Schema):
    rule: str = Field(..., description="How labels and results were paired")
    pairs: int
    same_target_pairs: int
    root_span_pairs: int
    unpaired: int = Field(..., description="People's labels with nothing to compare with")
    names: list[NameAgreementOut]


@router.get("/projects/{project}/agreement", response=AgreementOut)
def agreement_get(request: HttpRequest, project: str, name: str | None = None) -> dict[str, Any]:
    """Agreement between people, and between people and evaluators, per rubric name (the
    project's Annotations → Agreement page): percent agreement and Cohen's kappa of labels,
    Pearson's r and mean absolute difference of scores, and how the pairs were found."""
    report = agreement(agreement_ratings(project=project_from_path(project), name=name or None))
    return {
        "rule": report.rule,
        "pairs": report.pairs,
        "same_target_pairs": report.same_target_pairs,
        "root_span_pairs": report.root_span_pairs,
        "unpaired": report.unpaired,
        "names": [
            {
                "name": entry.name,
                "pairs": [
                    {
                        "a": {"label": pair.a.label, "kind": pair.a.kind},
                        "b": {"label": pair.b.label, "kind": pair.b.kind},
                        "pairs": pair.pairs,
                        "same_target_pairs": pair.same_target_pairs,
                        "root_span_pairs": pair.root_span_pairs,
                        "label_pairs": pair.label_pairs,
                        "percent_agreement": pair.percent_agreement,
                        "kappa": pair.kappa,
                        "score_pairs": pair.score_pairs,
                        "pearson": pair.pearson,
                        "mean_abs_difference": pair.mean_abs_difference,
                        "disagreements": pair.disagreement_count,
                    }
                    for pair in entry.pairs
                ],
            }
            for entry in report.names
        ],
    }
