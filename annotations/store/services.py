"""Writes to the annotation store: upserts of labels, scores and explanations on spans, traces
and sessions, from the API, the app and evaluation tasks alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from numbers import Real
from typing import Any, NamedTuple

from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone

from annotations.models import (
    Annotation,
    AnnotationSource,
    AnnotationTargetKind,
    AnnotatorKind,
    TargetKind,
)
from annotations.naming import annotator_class
from annotations.store.signals import annotations_written
from tracing.models import Project, Session, Span, Trace

MAX_NAME_LENGTH = 255
MAX_LABEL_LENGTH = 255
MAX_IDENTIFIER_LENGTH = 255

# Per target kind: the model annotated, the Annotation foreign key to it, its user-facing id.
_TARGETS: dict[str, tuple[type[models.Model], str, str]] = {
    TargetKind.SPAN: (Span, "span_id", "span_id"),
    TargetKind.TRACE: (Trace, "trace_id", "trace_id"),
    TargetKind.SESSION: (Session, "session_id", "session_id"),
    # A retrieved document: the span, with ``document_position``.
    AnnotationTargetKind.DOCUMENT: (Span, "span_id", "span_id"),
}
MAX_DOCUMENT_POSITION = 2**31 - 1
_UPDATED_FIELDS = [
    "label",
    "score",
    "explanation",
    "metadata",
    "annotator_kind",
    "source",
    "user",
    "updated_at",
    "span_start_time",
]


@dataclass
class AnnotationInput:
    target_kind: str  # "SPAN" / "TRACE" / "SESSION"
    target_id: str  # user-facing span_id / trace_id / session_id
    name: str
    annotator_kind: str = AnnotatorKind.HUMAN
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    identifier: str = ""
    # DOCUMENT only (target_id is the span's id): the document's 0-based position.
    document_position: int | None = None


class AnnotationInputError(ValueError):
    """An item that cannot be stored; ``index`` is its position in the batch."""

    def __init__(self, *, index: int, field: str, message: str) -> None:
        self.index, self.field, self.message = index, field, message
        super().__init__(f"item {index}: {field} {message}")


class AnnotationTargetAmbiguous(AnnotationInputError):
    """A session id found in several projects while no project was given."""


class AnnotationTargetNotFound(Exception):
    """Targets that do not exist (in the given project); nothing of the batch was written."""

    def __init__(self, missing: Sequence[str], *, target_kind: str = "") -> None:
        self.missing = list(missing)
        what = {"SPAN": "spans", "TRACE": "traces", "SESSION": "sessions", "DOCUMENT": "spans"}.get(
            target_kind, "targets"
        )
        super().__init__(f"{what} not found: {', '.join(self.missing)}")


@dataclass(frozen=True, slots=True)
class _Cleaned:
    index: int
    target_kind: str
    target_id: str
    name: str
    annotator_kind: str
    label: str | None
    score: float | None
    explanation: str | None
    metadata: dict[str, Any]
    identifier: str
    document_position: int | None = None


def _clean(index: int, item: AnnotationInput) -> _Cleaned:
    def fail(field_name: str, message: str) -> AnnotationInputError:
        return AnnotationInputError(index=index, field=field_name, message=message)

    target_kind = str(item.target_kind or "").upper()
    if target_kind not in _TARGETS:
        raise fail(
            "target_kind",
            f"must be one of SPAN, TRACE, SESSION, DOCUMENT (got {item.target_kind!r})",
        )
    position = item.document_position
    if target_kind == AnnotationTargetKind.DOCUMENT:
        if isinstance(position, bool) or not isinstance(position, int):
            raise fail("document_position", "must be a whole number")
        if not 0 <= position <= MAX_DOCUMENT_POSITION:
            raise fail("document_position", "must be 0 or more (the document's 0-based place)")
    elif position is not None:
        raise fail("document_position", "is for DOCUMENT annotations only")
    id_field = _TARGETS[target_kind][2]
    # An id is kept as given: ids from production may start or end with spaces.
    target_id = item.target_id if isinstance(item.target_id, str) else ""
    if not target_id.strip():
        raise fail(id_field, "must not be empty")
    name = item.name.strip() if isinstance(item.name, str) else ""
    if not name:
        raise fail("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise fail("name", f"is longer than {MAX_NAME_LENGTH} characters")
    kinds = [k.value for k in AnnotatorKind]
    if item.annotator_kind not in kinds:
        raise fail(
            "annotator_kind", f"must be one of {', '.join(kinds)} (got {item.annotator_kind!r})"
        )
    if item.label is not None and not isinstance(item.label, str):
        raise fail("label", "must be a string")
    if item.label is not None and len(item.label) > MAX_LABEL_LENGTH:
        raise fail("label", f"is longer than {MAX_LABEL_LENGTH} characters")
    if item.explanation is not None and not isinstance(item.explanation, str):
        raise fail("explanation", "must be a string")
    score = item.score
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, Real):
            raise fail("score", "must be a number")
        score = float(score)
        if not math.isfinite(score):
            raise fail("score", f"must be a finite number (got {score})")
    if item.label is None and score is None and item.explanation is None:
        raise fail("result", "needs at least one of label, score, explanation")
    metadata = item.metadata if item.metadata is not None else {}
    if not isinstance(metadata, dict):
        raise fail("metadata", "must be a JSON object")
    if item.identifier is not None and not isinstance(item.identifier, str):
        raise fail("identifier", "must be a string")
    identifier = (item.identifier or "").strip()
    if len(identifier) > MAX_IDENTIFIER_LENGTH:
        raise fail("identifier", f"is longer than {MAX_IDENTIFIER_LENGTH} characters")
    return _Cleaned(
        index=index,
        target_kind=target_kind,
        target_id=target_id,
        name=name,
        annotator_kind=item.annotator_kind,
        label=item.label,
        score=score,
        explanation=item.explanation,
        metadata=metadata,
        identifier=identifier,
        document_position=position,
    )


class _Found(NamedTuple):
    """A target row: its pk, its project's pk and (spans) when it started."""

    pk: int
    project_id: int
    start_time: datetime | None


SpanWindow = tuple[datetime | None, datetime | None]
"""When targeted spans started: (start inclusive, end exclusive), ``None`` for no bound."""


def _resolve_targets(
    cleaned: Sequence[_Cleaned], project: Project | None, span_window: SpanWindow | None = None
) -> dict[tuple[str, str], list[_Found]]:
    """(kind, user-facing id) → the target rows found (pk, project pk, a span's start), locked.

    Raises ``AnnotationTargetNotFound`` listing every missing id (a span that did not start
    within ``span_window`` counts as missing), and
    ``AnnotationTargetAmbiguous`` for a session id found in several projects without ``project``.
    """
    wanted: dict[str, set[str]] = {}
    for item in cleaned:
        wanted.setdefault(item.target_kind, set()).add(item.target_id)
    found: dict[tuple[str, str], list[_Found]] = {}
    for kind, ids in wanted.items():
        model, _, id_field = _TARGETS[kind]
        query = model._default_manager.filter(**{f"{id_field}__in": sorted(ids)})
        if project is not None:
            query = query.filter(project=project)
        if model is Span and span_window is not None:
            start, end = span_window
            if start is not None:
                query = query.filter(start_time__gte=start)
            if end is not None:
                query = query.filter(start_time__lt=end)
        # Lock the targets (in id order) so concurrent upserts on them run one after the other
        # and a second writer sees the first one's rows instead of colliding on insert.
        locked = query.select_for_update(no_key=True).order_by("pk")
        started = ("start_time",) if model is Span else ()
        for pk, key, project_id, *start in locked.values_list(
            "pk", id_field, "project_id", *started
        ):
            found.setdefault((kind, key), []).append(
                _Found(pk, project_id, start[0] if start else None)
            )

    missing: list[str] = []
    kinds_missing: set[str] = set()
    for item in cleaned:
        key = (item.target_kind, item.target_id)
        if key not in found and item.target_id not in missing:
            missing.append(item.target_id)
            kinds_missing.add(item.target_kind)
    if missing:
        only_kind = next(iter(kinds_missing)) if len(kinds_missing) == 1 else ""
        raise AnnotationTargetNotFound(missing, target_kind=only_kind)
    for item in cleaned:
        if len(found[(item.target_kind, item.target_id)]) > 1:
            raise AnnotationTargetAmbiguous(
                index=item.index,
                field="session_id",
                message=(
                    f"{item.target_id!r} names sessions in several projects; "
                    "annotate it within one project"
                ),
            )
    return found


@transaction.atomic
def annotations_upsert(
    *,
    items: Sequence[AnnotationInput],
    source: str = AnnotationSource.API,
    user: User | None = None,
    project: Project | None = None,
    merge: bool = False,
    span_window: SpanWindow | None = None,
) -> list[Annotation]:
    """Create or update annotations; returns one annotation per item, in the items' order.

    An annotation is identified by its target, ``name``, class (a person's or a machine's,
    ``annotations.naming``) and ``identifier``: writing the same again updates its result,
    metadata, annotator kind, source, user and ``updated_at``. Within one batch, the last item
    for a key wins (earlier ones return the same annotation).

    Everything is validated before anything is written: an invalid item raises
    ``AnnotationInputError`` (a ``ValueError``) naming its index and field; targets that do not
    exist raise ``AnnotationTargetNotFound`` listing them all. With ``project``, targets are
    looked up in that project only. Session ids are unique per project only: without
    ``project``, an id that matches sessions in several projects is rejected
    (``AnnotationTargetAmbiguous``) rather than annotating all of them, so one item always makes
    one annotation.

    With ``merge``, a ``None`` label, score or explanation (and empty metadata) keeps what the
    stored annotation has instead of clearing it.

    With ``span_window`` (start inclusive, end exclusive; ``None`` for no bound), a span that did
    not start within it counts as not found.
    """
    if source not in AnnotationSource.values:
        raise ValueError(f"source must be one of {', '.join(AnnotationSource.values)}")
    cleaned = [_clean(index, item) for index, item in enumerate(items)]
    if not cleaned:
        return []
    targets = _resolve_targets(cleaned, project, span_window)

    # One row per (kind, target pk, name, class, identifier) — ``annotations.naming`` — and
    # the last item for a key wins.
    latest: dict[_Key, _Cleaned] = {}
    for item in cleaned:
        latest[_key_of(item, targets)] = item

    existing: dict[_Key, Annotation] = {}
    for kind in {k for k, *_ in latest}:
        fk = _TARGETS[kind][1]
        keys = [key for key in latest if key[0] == kind]
        query = Annotation.objects.filter(
            **{
                "target_kind": kind,
                f"{fk}__in": sorted({key[1] for key in keys}),
                "name__in": sorted({key[2] for key in keys}),
            }
        )
        for stored in query:
            stored_key: _Key = (
                kind,
                getattr(stored, fk),
                stored.name,
                annotator_class(stored.annotator_kind),
                stored.identifier,
                stored.document_position,
            )
            if stored_key in latest:
                existing[stored_key] = stored

    now = timezone.now()
    user_pk = user.pk if user is not None else None
    to_update: list[Annotation] = []
    to_create: list[Annotation] = []
    by_key: dict[_Key, Annotation] = {}
    for key, item in latest.items():
        found = existing.get(key)
        if found is None:
            kind, target_pk, *_ = key
            annotation = Annotation(
                project_id=targets[(item.target_kind, item.target_id)][0].project_id,
                target_kind=kind,
                name=item.name,
                identifier=item.identifier,
                document_position=item.document_position,
                created_at=now,
                **{_TARGETS[kind][1]: target_pk},
            )
            to_create.append(annotation)
        else:
            annotation = found
            to_update.append(annotation)
        if merge and annotation.pk is not None:
            annotation.label = item.label if item.label is not None else annotation.label
            annotation.score = item.score if item.score is not None else annotation.score
            annotation.explanation = (
                item.explanation if item.explanation is not None else annotation.explanation
            )
            annotation.metadata = item.metadata or annotation.metadata
        else:
            annotation.label = item.label
            annotation.score = item.score
            annotation.explanation = item.explanation
            annotation.metadata = item.metadata
        annotation.annotator_kind = item.annotator_kind
        annotation.source = source
        annotation.user_id = user_pk
        annotation.updated_at = now
        annotation.span_start_time = targets[(item.target_kind, item.target_id)][0].start_time
        by_key[key] = annotation

    if to_update:
        Annotation.objects.bulk_update(to_update, _UPDATED_FIELDS, batch_size=500)
    if to_create:
        Annotation.objects.bulk_create(to_create, batch_size=500)
    written = list(by_key.values())
    annotations_written.send(sender=Annotation, annotations=written)
    return [by_key[_key_of(item, targets)] for item in cleaned]


# target kind, target pk, name, class, identifier, document position (DOCUMENT only)
_Key = tuple[str, int, str, str, str, int | None]


def _key_of(item: _Cleaned, targets: dict[tuple[str, str], list[_Found]]) -> _Key:
    target_pk = targets[(item.target_kind, item.target_id)][0].pk
    return (
        item.target_kind,
        target_pk,
        item.name,
        annotator_class(item.annotator_kind),
        item.identifier,
        item.document_position,
    )


__all__ = [
    "AnnotationInput",
    "AnnotationInputError",
    "AnnotationTargetAmbiguous",
    "AnnotationTargetNotFound",
    "SpanWindow",
    "annotations_upsert",
]
