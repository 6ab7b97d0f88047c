"""Dataframe-shaped evaluation records (Phoenix's ``log_evaluations`` and the batch API): the
columns read (``eval.<name>.label``, ``annotation.<name>.score``, ...), each record turned into
annotations and written by ``annotations_upsert``."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from annotations.models import (
    Annotation,
    TargetKind,
)
from annotations.naming import RECORD_PREFIXES
from annotations.store.services import (
    AnnotationInput,
    AnnotationInputError,
    annotations_upsert,
)
from tracing.models import Project

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
    user: User | None = None,
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
    "EvaluationRecordError",
    "RecordAnnotation",
    "RecordColumn",
    "evaluation_records_read",
    "evaluation_records_upsert",
    "record_column_parse",
]
