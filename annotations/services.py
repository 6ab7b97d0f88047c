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
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from annotations.models import (
    Annotation,
    AnnotationConfig,
    AnnotationConfigKind,
    AnnotationSource,
    AnnotationTargetKind,
    AnnotatorKind,
    OptimizationDirection,
    ProjectAnnotationConfig,
    TargetKind,
)
from annotations.naming import RECORD_PREFIXES, AnnotatorClass, annotator_class, class_kinds
from annotations.signals import annotations_written
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
_ID_COLUMN_NAMES = {
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


# --- annotation configs (rubrics) ---------------------------------------------------------------

RESERVED_CONFIG_NAMES = frozenset({"note"})  # Phoenix keeps "note" for span notes


class FieldInvalid(ValueError):
    """Input that cannot be used; ``field`` names what is wrong (API ``detail``, form error)."""

    def __init__(self, *, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


class AnnotationConfigInvalid(FieldInvalid):
    """A config that cannot be stored."""


class NameTaken(Exception):
    """Another row of this kind already has this name."""

    noun = "record"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"{'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun} named {name!r} already exists"
        )


class AnnotationConfigNameTaken(NameTaken):
    noun = "annotation config"


def name_free(
    model: type[models.Model], name: str, *, pk: int | None, taken: type[NameTaken]
) -> None:
    """Raise ``taken`` when another row of ``model`` (not ``pk``) has ``name``."""
    others = model._default_manager.filter(name=name)
    if pk is not None:
        others = others.exclude(pk=pk)
    if others.exists():
        raise taken(name)


def save_named(instance: models.Model, *, taken: type[NameTaken], **save: Any) -> None:
    """Save a row with a unique ``name`` in a savepoint, so that a concurrent writer's name makes
    this call raise ``taken`` rather than break the caller's transaction."""
    try:
        with transaction.atomic():
            instance.save(**save)
    except IntegrityError:
        raise taken(instance.name) from None  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class _CleanedConfig:
    name: str
    kind: str
    description: str
    optimization_direction: str
    values: list[dict[str, Any]]
    lower_bound: float | None
    upper_bound: float | None


def _number(field_name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise AnnotationConfigInvalid(field=field_name, message="must be a finite number")
    return float(value)


def _clean_config(
    *,
    name: str,
    kind: str,
    description: str | None,
    optimization_direction: str | None,
    values: Sequence[Mapping[str, Any]] | None,
    lower_bound: float | None,
    upper_bound: float | None,
) -> _CleanedConfig:
    def fail(field_name: str, message: str) -> AnnotationConfigInvalid:
        return AnnotationConfigInvalid(field=field_name, message=message)

    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise fail("name", "must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise fail("name", f"is longer than {MAX_NAME_LENGTH} characters")
    if name in RESERVED_CONFIG_NAMES:
        raise fail("name", f"{name!r} is reserved")
    if kind not in AnnotationConfigKind.values:
        raise fail(
            "type", f"must be one of {', '.join(AnnotationConfigKind.values)} (got {kind!r})"
        )
    direction = optimization_direction or OptimizationDirection.NONE
    if direction not in OptimizationDirection.values:
        raise fail(
            "optimization_direction",
            f"must be one of {', '.join(OptimizationDirection.values)} (got {direction!r})",
        )
    cleaned_values: list[dict[str, Any]] = []
    if kind == AnnotationConfigKind.CATEGORICAL:
        if not values:
            raise fail("values", "a CATEGORICAL config needs at least one value")
        seen: set[str] = set()
        for index, value in enumerate(values):
            label = value.get("label") if isinstance(value, Mapping) else None
            label = label.strip() if isinstance(label, str) else ""
            if not label:
                raise fail(f"values[{index}].label", "must not be empty")
            if len(label) > MAX_LABEL_LENGTH:
                raise fail(
                    f"values[{index}].label", f"is longer than {MAX_LABEL_LENGTH} characters"
                )
            if label in seen:
                raise fail(f"values[{index}].label", f"{label!r} appears more than once")
            seen.add(label)
            score = _number(f"values[{index}].score", value.get("score"))
            cleaned_values.append({"label": label, "score": score})
    elif values:
        raise fail("values", f"only a CATEGORICAL config has values (this one is {kind})")
    lower = _number("lower_bound", lower_bound)
    upper = _number("upper_bound", upper_bound)
    if kind == AnnotationConfigKind.CATEGORICAL and (lower is not None or upper is not None):
        raise fail("lower_bound", "a CATEGORICAL config has no bounds")
    if lower is not None and upper is not None and lower >= upper:
        raise fail("lower_bound", f"must be less than upper_bound ({lower} >= {upper})")
    return _CleanedConfig(
        name=name,
        kind=kind,
        description=description or "",
        optimization_direction=direction,
        values=cleaned_values,
        lower_bound=lower,
        upper_bound=upper,
    )


def _save_config(config: AnnotationConfig, cleaned: _CleanedConfig) -> AnnotationConfig:
    name_free(AnnotationConfig, cleaned.name, pk=config.pk, taken=AnnotationConfigNameTaken)
    for attr in _CleanedConfig.__slots__:
        setattr(config, attr, getattr(cleaned, attr))
    config.updated_at = timezone.now()
    save_named(config, taken=AnnotationConfigNameTaken)
    return config


@transaction.atomic
def annotation_config_create(
    *,
    name: str,
    kind: str,
    description: str | None = None,
    optimization_direction: str | None = None,
    values: Sequence[Mapping[str, Any]] | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
) -> AnnotationConfig:
    """Create a rubric. Raises ``AnnotationConfigInvalid`` (a ``ValueError`` naming the field)
    for a bad kind, direction, name, values or bounds, and ``AnnotationConfigNameTaken``."""
    cleaned = _clean_config(
        name=name,
        kind=kind,
        description=description,
        optimization_direction=optimization_direction,
        values=values,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
    )
    return _save_config(AnnotationConfig(), cleaned)


@transaction.atomic
def annotation_config_update(
    *,
    config: AnnotationConfig,
    name: str,
    kind: str,
    description: str | None = None,
    optimization_direction: str | None = None,
    values: Sequence[Mapping[str, Any]] | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
) -> AnnotationConfig:
    """Replace every field of ``config`` (as a PUT does), validated as on create."""
    cleaned = _clean_config(
        name=name,
        kind=kind,
        description=description,
        optimization_direction=optimization_direction,
        values=values,
        lower_bound=lower_bound,
        upper_bound=upper_bound,
    )
    return _save_config(config, cleaned)


@transaction.atomic
def annotation_config_delete(*, config: AnnotationConfig) -> None:
    """Delete a rubric and its enablement in every project; annotations stay."""
    config.delete()


@transaction.atomic
def project_annotation_config_enable(*, project: Project, config: AnnotationConfig) -> bool:
    """Enable ``config`` for ``project``; False when it already was."""
    _, created = ProjectAnnotationConfig.objects.get_or_create(
        project=project, annotation_config=config
    )
    return created


@transaction.atomic
def project_annotation_config_disable(*, project: Project, config: AnnotationConfig) -> bool:
    """Disable ``config`` for ``project``; False when it was not enabled."""
    deleted, _ = ProjectAnnotationConfig.objects.filter(
        project=project, annotation_config=config
    ).delete()
    return deleted > 0


@transaction.atomic
def annotation_config_projects_set(
    *, config: AnnotationConfig, projects: Sequence[Project]
) -> None:
    """Enable ``config`` for exactly ``projects``: the others lose it, the new ones get it."""
    wanted = {project.pk for project in projects}
    ProjectAnnotationConfig.objects.filter(annotation_config=config).exclude(
        project_id__in=wanted
    ).delete()
    have = set(
        ProjectAnnotationConfig.objects.filter(annotation_config=config).values_list(
            "project_id", flat=True
        )
    )
    ProjectAnnotationConfig.objects.bulk_create(
        [
            ProjectAnnotationConfig(project_id=pk, annotation_config=config)
            for pk in sorted(wanted - have)
        ],
        ignore_conflicts=True,
    )


@transaction.atomic
def annotation_config_save(
    *,
    config: AnnotationConfig | None,
    projects: Sequence[Project],
    name: str,
    kind: str,
    description: str | None = None,
    optimization_direction: str | None = None,
    values: Sequence[Mapping[str, Any]] | None = None,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
) -> AnnotationConfig:
    """Create a rubric (``config`` None) or replace one, and enable it for exactly
    ``projects``; all or nothing. Raises as ``annotation_config_create`` does."""
    fields: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "description": description,
        "optimization_direction": optimization_direction,
        "values": values,
        "lower_bound": lower_bound,
        "upper_bound": upper_bound,
    }
    if config is None:
        saved = annotation_config_create(**fields)
    else:
        saved = annotation_config_update(config=config, **fields)
    annotation_config_projects_set(config=saved, projects=projects)
    return saved


# --- a person's annotations under a rubric (the annotate form) ----------------------------------


# Per target kind: the lookup of an annotation's target by its user-facing id.
_TARGET_LOOKUPS = {
    TargetKind.SPAN: "span__span_id",
    TargetKind.TRACE: "trace__trace_id",
    TargetKind.SESSION: "session__session_id",
}


def _stored(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    name: str,
    identifier: str,
    klass: AnnotatorClass = "human",
) -> models.QuerySet[Annotation]:
    """The stored annotation with this key (at most one), as a query."""
    if target_kind not in _TARGET_LOOKUPS:
        return Annotation.objects.none()
    return Annotation.objects.filter(
        project=project,
        target_kind=target_kind,
        name=name,
        identifier=identifier,
        annotator_kind__in=class_kinds(klass),
        **{_TARGET_LOOKUPS[target_kind]: target_id},
    )


def _person_result(
    *,
    config: AnnotationConfig,
    stored: Annotation | None,
    label: str | None,
    score: float | None,
    explanation: str | None,
) -> tuple[str | None, float | None, str | None]:
    """The (label, score, explanation) to store, checked against the rubric."""

    def fail(field_name: str, message: str) -> AnnotationInputError:
        return AnnotationInputError(index=0, field=field_name, message=message)

    explanation = explanation.strip() if explanation and explanation.strip() else None
    if config.kind == AnnotationConfigKind.CATEGORICAL:
        if label is None:
            if stored is None or stored.label is None:
                raise fail("label", "pick one of the values first")
            label = stored.label
        scores = {value["label"]: value.get("score") for value in config.values}
        if label not in scores:
            raise fail("label", f"{label!r} is not one of {', '.join(scores)}")
        return label, scores[label], explanation
    if config.kind == AnnotationConfigKind.CONTINUOUS:
        if score is None:
            if stored is None or stored.score is None:
                raise fail("score", "enter a number")
            score = stored.score
        if not math.isfinite(score):
            raise fail("score", "must be a finite number")
        if config.lower_bound is not None and score < config.lower_bound:
            raise fail("score", f"must be at least {config.lower_bound:g}")
        if config.upper_bound is not None and score > config.upper_bound:
            raise fail("score", f"must be at most {config.upper_bound:g}")
        return None, score, explanation
    if explanation is None:
        raise fail("explanation", "must not be empty")
    return None, None, explanation


@transaction.atomic
def annotation_person_save(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    config: AnnotationConfig,
    user: AbstractBaseUser,
    label: str | None = None,
    score: float | None = None,
    explanation: str | None = None,
) -> Annotation:
    """Store ``user``'s annotation of a span, trace or session under the rubric ``config``
    (enabled for ``project``): one per person and rubric, identified by the username, made by a
    HUMAN in the APP.

    A CATEGORICAL label must be one of the rubric's values and takes that value's score; a
    CONTINUOUS score must lie within its bounds; a FREEFORM annotation is its text (stored as the
    explanation). A ``None`` label (CATEGORICAL) or score (CONTINUOUS) keeps the stored one, so
    notes can be changed alone. A blank explanation clears it. Raises ``AnnotationInputError``
    naming the field, ``AnnotationTargetNotFound`` for a target not in the project.
    """
    if not ProjectAnnotationConfig.objects.filter(
        project=project, annotation_config=config
    ).exists():
        raise AnnotationInputError(
            index=0, field="name", message=f"{config.name!r} is not enabled for {project.name}"
        )
    identifier = user.get_username()
    stored = _stored(
        project=project,
        target_kind=target_kind,
        target_id=target_id,
        name=config.name,
        identifier=identifier,
    ).first()
    label, score, explanation = _person_result(
        config=config, stored=stored, label=label, score=score, explanation=explanation
    )
    (annotation,) = annotations_upsert(
        items=[
            AnnotationInput(
                target_kind=target_kind,
                target_id=target_id,
                name=config.name,
                annotator_kind=AnnotatorKind.HUMAN,
                label=label,
                score=score,
                explanation=explanation,
                metadata=stored.metadata if stored is not None else {},
                identifier=identifier,
            )
        ],
        source=AnnotationSource.APP,
        user=user,
        project=project,
    )
    return annotation


@transaction.atomic
def annotation_delete(
    *,
    project: Project,
    target_kind: str,
    target_id: str,
    name: str,
    identifier: str,
    klass: AnnotatorClass = "human",
) -> bool:
    """Delete the annotation named ``name`` with ``identifier`` by a person (``klass``
    "human") or a machine on a span, trace or session of ``project``; False when there is
    none."""
    deleted, _ = _stored(
        project=project,
        target_kind=target_kind,
        target_id=target_id,
        name=name,
        identifier=identifier,
        klass=klass,
    ).delete()
    return deleted > 0


__all__ = [
    "RECORD_FIELDS",
    "RECORD_ID_COLUMNS",
    "RECORD_PREFIXES",
    "RESERVED_CONFIG_NAMES",
    "AnnotationConfigInvalid",
    "AnnotationConfigNameTaken",
    "AnnotationInput",
    "AnnotationInputError",
    "AnnotationTargetAmbiguous",
    "AnnotationTargetNotFound",
    "EvaluationRecordError",
    "RecordAnnotation",
    "RecordColumn",
    "SpanWindow",
    "annotation_config_create",
    "annotation_config_delete",
    "annotation_config_projects_set",
    "annotation_config_save",
    "annotation_config_update",
    "annotation_delete",
    "annotation_person_save",
    "annotations_upsert",
    "evaluation_records_read",
    "evaluation_records_upsert",
    "project_annotation_config_disable",
    "project_annotation_config_enable",
    "record_column_parse",
]
