"""DataFrames ↔ the JSON the API speaks: spans, evaluation columns and attribute nesting.

A span frame has one row per span and the columns ``context.span_id``, ``context.trace_id``,
``parent_id``, ``name``, ``span_kind``, ``start_time``, ``end_time`` (UTC timestamps),
``status_code``, ``status_message``, ``events`` and one ``attributes.<key>`` column per
attribute. Attribute keys are split on dots through objects but not through lists: a list of
messages stays one column (``attributes.llm.input_messages``) holding a list of nested dicts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

SPAN_ID = "context.span_id"
TRACE_ID = "context.trace_id"
SPAN_COLUMNS = (
    SPAN_ID,
    TRACE_ID,
    "parent_id",
    "name",
    "span_kind",
    "start_time",
    "end_time",
    "status_code",
    "status_message",
    "events",
)
ATTRIBUTES = "attributes."
METADATA = "attributes.metadata."
EVAL_FIELDS = {
    "label": "label",
    "score": "score",
    "explanation": "explanation",
    "text": "explanation",
}
# Column prefixes of the evaluation-records route: evaluations (LLM) and annotations (human).
# The name between prefix and field is the result's name as the server stores and shows it
# (an evaluator's or rubric's name; ``eval.<name>`` in filters selects machines' results,
# ``annotation.<name>`` people's), the same rule as the server's ``annotations.naming``.
EVALUATION_PREFIXES = ("eval.", "trace_eval.", "session_eval.")
ANNOTATION_PREFIXES = ("annotation.", "trace_annotation.", "session_annotation.")
ID_COLUMNS = ("context.span_id", "span_id", "context.trace_id", "trace_id", "session_id")

Record = dict[str, Any]


def is_null(value: Any) -> bool:
    """None, NaN, ``pd.NA``, ``NaT`` and ``...`` (the placeholder of documentation examples,
    ``"attributes.llm.input_messages": [...]``) are null; lists, dicts and arrays never are."""
    if value is None or value is pd.NA or value is pd.NaT or value is Ellipsis:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str | bytes | list | tuple | dict | Mapping):
        return False
    try:
        return bool(pd.isna(value)) if pd.api.types.is_scalar(value) else False
    except (TypeError, ValueError):
        return False


def native(value: Any) -> Any:
    """A cell → plain Python: numpy scalars and arrays unwrapped, nulls → ``None``. A list of
    nothing but placeholders (``[...]``) is null too."""
    if isinstance(value, Mapping):
        return {str(k): native(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(v is Ellipsis for v in value):
            return None
        return [native(v) for v in value]
    if hasattr(value, "tolist") and not pd.api.types.is_scalar(value):  # numpy array
        return [native(v) for v in value.tolist()]
    if is_null(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    item = getattr(value, "item", None)  # numpy scalar
    return item() if callable(item) and not isinstance(value, str | bytes) else value


def frame_records(frame: pd.DataFrame) -> list[Record]:
    """The rows of ``frame`` as dicts of plain values, a named index included as columns."""
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise ValueError("the data frame has duplicate column names")
    return [
        {column: native(value) for column, value in zip(columns, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


RESULT_FIELDS = ("label", "score", "explanation", "text")


def long_form_records(rows: Sequence[Record], prefix: str) -> list[Record] | None:
    """Rows in long form — a ``name`` column and ``label`` / ``score`` / ``explanation`` /
    ``text`` columns, one result per row — as ``<prefix><name>.<field>`` records; ``None``
    when the rows are not in that form."""
    columns = {column for row in rows for column in row}
    if "name" not in columns or not columns & set(RESULT_FIELDS):
        return None
    records = []
    for row in rows:
        name = row.get("name")
        if is_null(name) or not str(name):
            raise ValueError("every row needs a name (the evaluation's name)")
        record = {column: row[column] for column in ID_COLUMNS if column in row}
        for field in RESULT_FIELDS:
            if field in row and not is_null(row[field]):
                record[f"{prefix}{name}.{field}"] = row[field]
        records.append(record)
    return records


def _utc_iso(value: Any, column: str) -> str:
    if isinstance(value, str):
        value = pd.Timestamp(value)
    if not isinstance(value, datetime):
        raise ValueError(f"{column}: {value!r} is not a time")
    if value.tzinfo is None:  # times without a zone are read as UTC
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys → nested dicts; objects whose keys are exactly 0..n-1 become lists."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {} if child is None else {"": child}
            node = child
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted


def flatten_objects(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts → dotted keys, stopping at lists and scalars (and empty dicts)."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value:
            flat.update(flatten_objects(value, path))
        else:
            flat[path] = value
    return flat


@dataclass(frozen=True, slots=True)
class EvalColumn:
    column: str
    name: str
    field: str  # label, score or explanation


def eval_columns(columns: Iterable[str], prefix: str = "eval.") -> list[EvalColumn]:
    """The ``<prefix><name>.<field>`` columns among ``columns``."""
    found = []
    for column in columns:
        if not column.startswith(prefix):
            continue
        name, dot, field = column[len(prefix) :].rpartition(".")
        if not dot or not name or field not in EVAL_FIELDS:
            raise ValueError(
                f"column {column!r}: expected {prefix}<name>.label, .score, .explanation or .text"
            )
        found.append(EvalColumn(column=column, name=name, field=EVAL_FIELDS[field]))
    return found


def evaluations_of(records: Sequence[Record], columns: Sequence[EvalColumn]) -> list[Record]:
    """One LLM evaluation per row and name that has a value, for the span log route."""
    evaluations = []
    for row in records:
        by_name: dict[str, Record] = {}
        for spec in columns:
            value = row.get(spec.column)
            if is_null(value):
                continue
            by_name.setdefault(spec.name, {})[spec.field] = value
        if not by_name:
            continue
        span_id = row.get(SPAN_ID, row.get("span_id"))
        if is_null(span_id):
            raise ValueError(f"a row with evaluations has no {SPAN_ID}")
        for name, result in by_name.items():
            evaluations.append(
                {"span_id": span_id, "name": name, "annotator_kind": "LLM", **result}
            )
    return evaluations


def span_of(row: Record) -> Record:
    """A span-frame row → a span in the API's (Phoenix's) shape."""
    for column in (SPAN_ID, TRACE_ID, "name", "start_time", "end_time"):
        if is_null(row.get(column)):
            raise ValueError(f"every span needs {column}")
    attributes = {
        column[len(ATTRIBUTES) :]: value
        for column, value in row.items()
        if column.startswith(ATTRIBUTES) and not is_null(value)
    }
    events = row.get("events")
    span: Record = {
        "name": row["name"],
        "context": {"trace_id": str(row[TRACE_ID]), "span_id": str(row[SPAN_ID])},
        # Without a span kind the server reads the openinference.span.kind attribute.
        "span_kind": None if is_null(row.get("span_kind")) else row["span_kind"],
        "parent_id": None if is_null(row.get("parent_id")) else str(row["parent_id"]),
        "start_time": _utc_iso(row["start_time"], "start_time"),
        "end_time": _utc_iso(row["end_time"], "end_time"),
        "status_code": row.get("status_code") if not is_null(row.get("status_code")) else "UNSET",
        "status_message": "" if is_null(row.get("status_message")) else row["status_message"],
        "attributes": attributes,
        "events": [
            {**event, "timestamp": _utc_iso(event.get("timestamp"), "events.timestamp")}
            for event in (events if isinstance(events, list) else [])
        ],
    }
    return span


def span_row(span: Mapping[str, Any]) -> Record:
    """A span from the API → a span-frame row (attributes re-nested, then split into columns)."""
    context = span.get("context") or {}
    row: Record = {
        SPAN_ID: context.get("span_id"),
        TRACE_ID: context.get("trace_id"),
        "parent_id": span.get("parent_id"),
        "name": span.get("name"),
        "span_kind": span.get("span_kind"),
        "start_time": span.get("start_time"),
        "end_time": span.get("end_time"),
        "status_code": span.get("status_code"),
        "status_message": span.get("status_message"),
        "events": span.get("events") or [],
    }
    nested = unflatten(span.get("attributes") or {})
    for key, value in flatten_objects(nested).items():
        row[ATTRIBUTES + key] = value
    return row


def spans_frame(spans: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Spans from the API → a span frame (columns in ``SPAN_COLUMNS`` order, then attributes
    sorted; times as UTC timestamps)."""
    rows = [span_row(span) for span in spans]
    attribute_columns = sorted({key for row in rows for key in row if key.startswith(ATTRIBUTES)})
    columns = [*SPAN_COLUMNS, *attribute_columns]
    # Absent attributes are None, as in a frame built from records with None cells.
    frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in rows], columns=columns)
    for column in ("start_time", "end_time"):
        times = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        frame[column] = times.dt.as_unit("us")  # the server keeps microseconds
    return frame


def metadata_value(value: Any) -> Any:
    """A metadata cell → its JSON value: text and numbers as they are, booleans as "True" /
    "False", null as null, dicts and lists as JSON text."""
    value = native(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} cannot be stored in metadata")
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def merge(target: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``patch`` merged into ``target`` key by key (objects recursively); ``patch`` wins."""
    merged = dict(target)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def metadata_patch(row: Record, patch_column: str) -> Any:
    """A row of a metadata frame → the patch for its span: ``attributes.metadata.<field>``
    columns (dotted fields nest), then the patch document column over them."""
    patch: dict[str, Any] = {}
    for column, value in row.items():
        if column.startswith(METADATA) and column != patch_column:
            node = patch
            *parents, leaf = column[len(METADATA) :].split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = metadata_value(value)
    document = row.get(patch_column)
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise ValueError(f"{patch_column}: {document!r} is not JSON") from exc
    if document is None or (not isinstance(document, dict | list) and is_null(document)):
        return patch
    if isinstance(document, Mapping):
        return merge(patch, document)
    return document  # not an object: the server reports it for this span


__all__ = [
    "ANNOTATION_PREFIXES",
    "EVALUATION_PREFIXES",
    "ID_COLUMNS",
    "RESULT_FIELDS",
    "SPAN_COLUMNS",
    "SPAN_ID",
    "TRACE_ID",
    "eval_columns",
    "evaluations_of",
    "flatten_objects",
    "frame_records",
    "is_null",
    "long_form_records",
    "merge",
    "metadata_patch",
    "metadata_value",
    "native",
    "span_of",
    "span_row",
    "spans_frame",
    "unflatten",
]
