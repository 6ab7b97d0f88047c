"""Legacy Phoenix evaluations (``px.Client().log_evaluations`` / ``get_evaluations`` of
arize-phoenix ≤ 13) on the annotation store.

The wire format is an Arrow IPC stream per evaluation set: a table whose id columns name the
targets (``context.span_id`` or ``span_id``; ``context.trace_id`` or ``trace_id``; for documents
also ``document_position`` or ``position``) and whose ``label`` / ``score`` / ``explanation``
columns hold the results, with schema metadata ``arize`` = ``{"eval_id", "eval_name",
"eval_type"}`` (``SpanEvaluations``, ``TraceEvaluations`` or ``DocumentEvaluations``). Each row
is one machine result (annotator kind LLM) named ``eval_name``; a row without any result is
skipped. Reading gives the project's machine results back in the same format, one stream per
(kind, name).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from annotations.models import Annotation, AnnotationTargetKind, AnnotatorKind
from annotations.naming import MACHINE_KINDS
from annotations.store.services import AnnotationInput
from tracing.models import Project

MAX_ROWS: Final = 100_000

# eval_type → (target kind, id column spellings, position column spellings)
_TYPES: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "SpanEvaluations": (AnnotationTargetKind.SPAN, ("context.span_id", "span_id")),
    "TraceEvaluations": (AnnotationTargetKind.TRACE, ("context.trace_id", "trace_id")),
    "DocumentEvaluations": (AnnotationTargetKind.DOCUMENT, ("context.span_id", "span_id")),
}
_POSITION_COLUMNS: Final = ("document_position", "position")
_KIND_TYPES: Final = {kind: name for name, (kind, _) in _TYPES.items()}
# A fixed namespace, so one (kind, name) always reads back with the same eval_id.
_EVAL_ID_NAMESPACE: Final = uuid.UUID("6f1c3c8e-3b0f-4c55-9a57-0c4b7f0b8e21")


class EvaluationsBodyError(ValueError):
    """A body that is not a legacy evaluations table; the message names the part."""


@dataclass(frozen=True, slots=True)
class EvaluationsSet:
    name: str
    eval_type: str
    items: list[AnnotationInput]


def _metadata(schema: pa.Schema) -> tuple[str, str]:
    raw = (schema.metadata or {}).get(b"arize")
    if raw is None:
        raise EvaluationsBodyError(
            "the Arrow schema has no 'arize' metadata (eval_name, eval_type)"
        )
    try:
        meta = json.loads(raw)
    except ValueError:
        raise EvaluationsBodyError("the 'arize' schema metadata is not JSON") from None
    name = meta.get("eval_name") if isinstance(meta, dict) else None
    eval_type = meta.get("eval_type") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise EvaluationsBodyError("eval_name must be a non-empty string")
    if eval_type not in _TYPES:
        raise EvaluationsBodyError(f"eval_type must be one of {', '.join(_TYPES)}")
    return name.strip(), str(eval_type)


def _column(names: list[str], choices: tuple[str, ...], what: str) -> str:
    for choice in choices:
        if choice in names:
            return choice
    raise EvaluationsBodyError(f"the table has no {what} column ({' or '.join(choices)})")


def _text(value: Any, column: str, row: int) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if not isinstance(value, str):
        raise EvaluationsBodyError(f"row {row}: {column} must be text")
    return value


def _score(value: Any, row: int) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvaluationsBodyError(f"row {row}: score must be a number")
    return float(value)


def evaluations_read(body: bytes) -> EvaluationsSet:
    """The results in one legacy evaluations body (an Arrow IPC stream)."""
    try:
        reader = pa.ipc.open_stream(body)
        table = reader.read_all()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise EvaluationsBodyError(f"the body is not an Arrow IPC stream ({exc})") from None
    name, eval_type = _metadata(table.schema)
    if table.num_rows > MAX_ROWS:
        raise EvaluationsBodyError(f"at most {MAX_ROWS} rows per request")
    kind, id_choices = _TYPES[eval_type]
    names = table.column_names
    id_column = _column(names, id_choices, "id")
    position_column = (
        _column(names, _POSITION_COLUMNS, "document position")
        if kind == AnnotationTargetKind.DOCUMENT
        else None
    )
    if not {"label", "score", "explanation"} & set(names):
        raise EvaluationsBodyError("the table has none of the columns label, score, explanation")
    items: list[AnnotationInput] = []
    for row, record in enumerate(table.to_pylist()):
        target = record.get(id_column)
        if not isinstance(target, str) or not target:
            raise EvaluationsBodyError(f"row {row}: {id_column} must be a non-empty string")
        label = _text(record.get("label"), "label", row)
        explanation = _text(record.get("explanation"), "explanation", row)
        score = _score(record.get("score"), row)
        if label is None and explanation is None and score is None:
            continue
        position = None
        if position_column is not None:
            raw = record.get(position_column)
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
                raise EvaluationsBodyError(f"row {row}: {position_column} must be 0 or more")
            position = raw
        items.append(
            AnnotationInput(
                target_kind=kind,
                target_id=target,
                name=name,
                annotator_kind=AnnotatorKind.LLM,
                label=label,
                score=score,
                explanation=explanation,
                document_position=position,
            )
        )
    return EvaluationsSet(name=name, eval_type=eval_type, items=items)


def _stream(kind: str, name: str, rows: list[tuple[Any, ...]]) -> bytes:
    eval_type = _KIND_TYPES[kind]
    columns: dict[str, pa.Array] = {}
    if kind == AnnotationTargetKind.TRACE:
        columns["context.trace_id"] = pa.array([r[0] for r in rows], pa.string())
    else:
        columns["context.span_id"] = pa.array([r[0] for r in rows], pa.string())
    if kind == AnnotationTargetKind.DOCUMENT:
        columns["document_position"] = pa.array([r[1] for r in rows], pa.int64())
    columns["label"] = pa.array([r[2] for r in rows], pa.string())
    columns["score"] = pa.array([r[3] for r in rows], pa.float64())
    columns["explanation"] = pa.array([r[4] for r in rows], pa.string())
    meta = {
        "eval_id": str(uuid.uuid5(_EVAL_ID_NAMESPACE, f"{kind}:{name}")),
        "eval_name": name,
        "eval_type": eval_type,
    }
    table = pa.table(columns).replace_schema_metadata({b"arize": json.dumps(meta).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def evaluations_streams(*, project: Project) -> Iterator[bytes]:
    """The project's machine results on spans, documents and traces as legacy evaluation
    streams, one per (kind, name), in name order. People's labels are annotations, not
    evaluations, and session results have no legacy form: both are left out."""
    query = (
        Annotation.objects.filter(
            project=project,
            annotator_kind__in=MACHINE_KINDS,
            target_kind__in=list(_KIND_TYPES),
        )
        .order_by("target_kind", "name", "id")
        .values_list(
            "target_kind",
            "name",
            "span__span_id",
            "trace__trace_id",
            "document_position",
            "label",
            "score",
            "explanation",
        )
        .iterator(chunk_size=2000)
    )
    current: tuple[str, str] | None = None
    rows: list[tuple[Any, ...]] = []
    for kind, name, span_id, trace_id, position, label, score, explanation in query:
        if (kind, name) != current:
            if current is not None and rows:
                yield _stream(*current, rows)
            current, rows = (kind, name), []
        target = trace_id if kind == AnnotationTargetKind.TRACE else span_id
        rows.append((target, position, label, score, explanation))
    if current is not None and rows:
        yield _stream(*current, rows)
