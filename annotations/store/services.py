"""Writes to the annotation store: upserts of labels, scores and explanations on spans, traces
and sessions, from the API, the app and evaluation tasks alike."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from numbers import Real
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from annotations.models import (
    Annotation,
    AnnotationSource,
    AnnotationTargetKind,
    AnnotatorKind,
    TargetKind,
)
from annotations.naming import RECORD_PREFIXES, annotator_class
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


SpanWindow = tuple[datetime | None, datetime | None]
"""When targeted spans started: (start inclusive, end exclusive), ``None`` for no bound."""


def _resolve_targets(
    cleaned: Sequence[_Cleaned], project: Project | None, span_window: SpanWindow | None = None
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(kind, user-facing id) → [(target pk, project pk)], the target rows locked.

    Raises ``AnnotationTargetNotFound`` listing every missing id (a span that did not start
    within ``span_window`` counts as missing), and
    ``AnnotationTargetAmbiguous`` for a session id found in several projects without ``project``.
    """
    wanted: dict[str, set[str]] = {}
    for item in cleaned:
        wanted.setdefault(item.target_kind, set()).add(item.target_id)
    found: dict[tuple[str, str], list[tuple[int, int]]] = {}
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
        rows = (
            query.select_for_update(no_key=True)
            .order_by("pk")
            .values_list("pk", id_field, "project_id")
        )
        for pk, key, project_id in rows:
            found.setdefault((kind, key), []).append((pk, project_id))

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
    user: AbstractBaseUser | None = None,
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
        for annotation in query:
            key = (
                kind,
                getattr(annotation, fk),
                annotation.name,
                annotator_class(annotation.annotator_kind),
                annotation.identifier,
                annotation.document_position,
            )
            if key in latest:
                existing[key] = annotation

    now = timezone.now()
    user_pk = user.pk if user is not None else None
    to_update: list[Annotation] = []
    to_create: list[Annotation] = []
    by_key: dict[_Key, Annotation] = {}
    for key, item in latest.items():
        annotation = existing.get(key)
        if annotation is None:
            kind, target_pk, *_ = key
            annotation = Annotation(
                project_id=targets[(item.target_kind, item.target_id)][0][1],
                target_kind=kind,
                name=item.name,
                identifier=item.identifier,
                document_position=item.document_position,
                created_at=now,
                **{_TARGETS[kind][1]: target_pk},
            )
            to_create.append(annotation)
        else:
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


def _key_of(item: _Cleaned, targets: dict[tuple[str, str], list[tuple[int, int]]]) -> _Key:
    target_pk = targets[(item.target_kind, item.target_id)][0][0]
    return (
        item.target_kind,
        target_pk,
        item.name,
        annotator_class(item.annotator_kind),
        item.identifier,
        item.document_position,
    )


# --- dataframe-shaped evaluation records --------------------------------------------------------

# Column prefix → (what it annotates, who annotated it): ``annotations.naming``.
# Target id column → the target kind it names (the first spelling is the documented one).
RECORD_ID_COLUMNS: dict[str, str] = {
    "context.span_id": TargetKind.SPAN,
    "span_id": TargetKind.SPAN,
    "context.trace_id": TargetKind.TRACE,
    "trace_id": TargetKind.TRACE,
    "session_id": TargetKind.SESSION,
    "session.id": TargetKind.SESSION,
}
# Result field in a column name → the annotation field it fills.
RECORD_FIELDS: dict[str, str] = {
    "label": "label",
    "score": "score",
    "explanation": "explanation",
    "text": "explanation",
}
_ID_COLUMN_NAMES: dict[str, str] = {
    TargetKind.SPAN: "context.span_id",
    TargetKind.TRACE: "context.trace_id",
    TargetKind.SESSION: "session_id",
}


class EvaluationRecordError(ValueError):
    """A record or column that cannot be read; ``index`` is the record's position (``None`` for
    a column name that is wrong in the whole batch)."""

    def __init__(self, *, index: int | None, column: str, message: str) -> None:
        self.index, self.column, self.message = index, column, message
        where = f"records[{index}].{column}" if index is not None else f"column {column!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class RecordColumn:
    """A parsed result column such as ``eval.Correctness.label``."""

    column: str
    prefix: str
    name: str
    field: str


def record_column_parse(column: str) -> RecordColumn | None:
    """``eval.<name>.<field>`` (and the other ``RECORD_PREFIXES``) → its parts; ``None`` for a
    target id column. Anything else raises ``EvaluationRecordError`` naming the column."""
    if column in RECORD_ID_COLUMNS:
        return None

    def fail(message: str) -> EvaluationRecordError:
        return EvaluationRecordError(index=None, column=column, message=message)

    prefix, dot, rest = column.partition(".")
    if prefix not in RECORD_PREFIXES or not dot:
        raise fail(
            "unknown column; expected a target id ("
            + ", ".join(RECORD_ID_COLUMNS)
            + ") or <prefix>.<name>.<field> with a prefix of "
            + ", ".join(RECORD_PREFIXES)
        )
    name, dot, result_field = rest.rpartition(".")
    if not dot or result_field not in RECORD_FIELDS:
        raise fail(f"unknown field {result_field!r}; use label, score, explanation or text")
    if not name.strip():
        raise fail("the evaluation name is empty")
    return RecordColumn(column=column, prefix=prefix, name=name.strip(), field=result_field)


def _given(value: Any) -> bool:
    """Null and NaN cells mean "not given"."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True, slots=True)
class RecordAnnotation:
    """One annotation read from a record, with where it came from (for error messages)."""

    index: int
    columns: tuple[str, ...]
    item: AnnotationInput


def evaluation_records_read(records: Sequence[Mapping[str, Any]]) -> list[RecordAnnotation]:
    """Dataframe-shaped records → one annotation per record, prefix and name with a value.

    ``eval.*`` columns are LLM evaluations and ``annotation.*`` human annotations of the span
    in ``context.span_id``; ``trace_eval.*`` / ``trace_annotation.*`` go to
    ``context.trace_id`` and ``session_eval.*`` / ``session_annotation.*`` to ``session_id``.
    ``text`` is another name for ``explanation``. Null and NaN cells are not given; a record
    with no value for a name writes nothing for it.
    """
    parsed: dict[str, RecordColumn | None] = {}
    for record in records:
        for column in record:
            if column not in parsed:
                parsed[column] = record_column_parse(str(column))
    read: list[RecordAnnotation] = []
    for index, record in enumerate(records):
        groups: dict[tuple[str, str], dict[str, tuple[str, Any]]] = {}
        for column, value in record.items():
            spec = parsed[column]
            if spec is None or not _given(value):
                continue
            fields = groups.setdefault((spec.prefix, spec.name), {})
            target_field = RECORD_FIELDS[spec.field]
            if target_field in fields and fields[target_field][1] != value:
                raise EvaluationRecordError(
                    index=index,
                    column=column,
                    message=f"conflicts with {fields[target_field][0]}",
                )
            fields[target_field] = (column, value)
        for (prefix, name), fields in groups.items():
            target_kind, annotator_kind = RECORD_PREFIXES[prefix]
            id_column, target_id = _record_target(record, target_kind)
            first_column = next(iter(fields.values()))[0]
            if target_id is None:
                raise EvaluationRecordError(
                    index=index,
                    column=first_column,
                    message=f"needs a {_ID_COLUMN_NAMES[target_kind]} in the same record",
                )
            if not isinstance(target_id, str) or not target_id.strip():
                raise EvaluationRecordError(
                    index=index, column=id_column, message="must be a non-empty string"
                )
            values = {key: value for key, (_, value) in fields.items()}
            for key in ("label", "explanation"):
                if key in values and not isinstance(values[key], str):
                    raise EvaluationRecordError(
                        index=index, column=fields[key][0], message="must be a string"
                    )
            score = values.get("score")
            if "score" in values and (isinstance(score, bool) or not isinstance(score, Real)):
                raise EvaluationRecordError(
                    index=index, column=fields["score"][0], message="must be a number"
                )
            read.append(
                RecordAnnotation(
                    index=index,
                    columns=tuple(column for column, _ in fields.values()),
                    item=AnnotationInput(
                        target_kind=target_kind,
                        target_id=target_id,
                        name=name,
                        annotator_kind=annotator_kind,
                        label=values.get("label"),
                        score=float(score) if score is not None else None,
                        explanation=values.get("explanation"),
                    ),
                )
            )
    return read


def _record_target(record: Mapping[str, Any], target_kind: str) -> tuple[str, Any]:
    """The id column of ``target_kind`` that has a value in ``record``, and the value."""
    for column, kind in RECORD_ID_COLUMNS.items():
        if kind == target_kind and _given(record.get(column)):
            return column, record[column]
    return _ID_COLUMN_NAMES[target_kind], None


@transaction.atomic
def evaluation_records_upsert(
    *,
    project: Project,
    records: Sequence[Mapping[str, Any]],
    user: AbstractBaseUser | None = None,
) -> list[Annotation]:
    """Write the evaluations and annotations in dataframe-shaped ``records`` into ``project``.

    All or nothing: a bad column or value raises ``EvaluationRecordError``; targets not in the
    project raise ``AnnotationTargetNotFound`` listing them all. An existing annotation (same
    target and name, no identifier) is updated, and the fields a record leaves out keep their
    stored value.
    """
    read = evaluation_records_read(records)
    try:
        return annotations_upsert(
            items=[r.item for r in read], user=user, project=project, merge=True
        )
    except AnnotationInputError as exc:
        source = read[exc.index]
        column = next(
            (c for c in source.columns if RECORD_FIELDS.get(c.rsplit(".", 1)[-1]) == exc.field),
            source.columns[0],
        )
        raise EvaluationRecordError(
            index=source.index, column=column, message=exc.message
        ) from None


__all__ = [
    "RECORD_FIELDS",
    "RECORD_ID_COLUMNS",
    "RECORD_PREFIXES",
    "AnnotationInput",
    "AnnotationInputError",
    "AnnotationTargetAmbiguous",
    "AnnotationTargetNotFound",
    "EvaluationRecordError",
    "RecordAnnotation",
    "RecordColumn",
    "SpanWindow",
    "annotations_upsert",
    "evaluation_records_read",
    "evaluation_records_upsert",
    "record_column_parse",
]
