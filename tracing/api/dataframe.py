"""Span queries answered as pandas "table schema" JSON, for the Phoenix client's
``spans.get_spans_dataframe`` (``POST /v1/spans``).

A query is the client's ``SpanQuery.to_dict()``: ``select`` (keys to project), ``filter``
(``condition``, read by our filter language), ``explode`` / ``concat`` (a list attribute such as
``retrieval.documents``, one row per element or one joined string), ``rename`` and ``index``.
Without ``select``, every span column and every attribute (as ``attributes.<dotted key>``) is
returned, indexed by ``context.span_id``.

The answer is built without pandas: the client decodes it with
``pandas.io.json._table_schema.parse_table_schema`` after stripping one ``<prefix>_`` from every
column and index name, which lets a key be both the index and a column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from tracing.store.records import flatten, unflatten
from tracing.store.rows import phoenix_attributes

_STRING_COLUMNS: Final = {
    "context.span_id",
    "context.trace_id",
    "name",
    "span_kind",
    "parent_id",
    "status_code",
    "status_message",
}
_TIME_COLUMNS: Final = {"start_time", "end_time"}
_NUMBER_COLUMNS: Final = {"latency_ms"}
DEFAULT_COLUMNS: Final = (
    "name",
    "span_kind",
    "parent_id",
    "start_time",
    "end_time",
    "status_code",
    "status_message",
    "events",
    "context.span_id",
    "context.trace_id",
)
_ALIASES: Final = {"span_id": "context.span_id", "trace_id": "context.trace_id"}
MAX_ROWS: Final = 100_000


class SpanQueryError(ValueError):
    """A query this server cannot answer; the message names the part."""


@dataclass(frozen=True)
class SpanQuerySpec:
    # (column name, key read): ``select(input="input.value")`` names the column ``input``.
    select: list[tuple[str, str]] = field(default_factory=list)
    filter: str = ""
    explode: dict[str, Any] | None = None
    concat: dict[str, Any] | None = None
    rename: dict[str, str] = field(default_factory=dict)
    index: str = "context.span_id"


def _key(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise SpanQueryError(f"{where} must be a non-empty string")
    return _alias(raw.strip())


def _alias(key: str) -> str:
    return _ALIASES.get(key, key)


def query_spec(raw: Mapping[str, Any], number: int = 0) -> SpanQuerySpec:
    """Read query ``number`` of the ``queries`` list; ``SpanQueryError`` names what is wrong."""
    where = f"queries.{number}"
    if not isinstance(raw, Mapping):
        raise SpanQueryError(f"{where} must be an object")
    select = raw.get("select") or {}
    if not isinstance(select, Mapping):
        raise SpanQueryError(f"{where}.select must be an object")
    selected: list[tuple[str, str]] = []
    for name, projection in select.items():
        source = projection.get("key", name) if isinstance(projection, Mapping) else name
        selected.append(
            (_key(name, f"{where}.select name"), _key(source, f"{where}.select.{name}.key"))
        )
    condition = (
        (raw.get("filter") or {}).get("condition", "")
        if isinstance(raw.get("filter"), Mapping)
        else ""
    )
    explode = raw.get("explode")
    concat = raw.get("concat")
    for name, part in (("explode", explode), ("concat", concat)):
        if part is not None and not (
            isinstance(part, Mapping) and isinstance(part.get("key"), str)
        ):
            raise SpanQueryError(f"{where}.{name} must be an object with a key")
    if explode is not None and concat is not None:
        raise SpanQueryError(f"{where} cannot have both explode and concat")
    rename = raw.get("rename") or {}
    if not isinstance(rename, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in rename.items()
    ):
        raise SpanQueryError(f"{where}.rename must map names to names")
    index = raw.get("index")
    index_key = (
        _key(index.get("key"), f"{where}.index.key")
        if isinstance(index, Mapping)
        else "context.span_id"
    )
    return SpanQuerySpec(
        select=selected,
        filter=str(condition or ""),
        explode=dict(explode) if explode else None,
        concat=dict(concat) if concat else None,
        rename={_alias(k): v for k, v in rename.items()},
        index=index_key,
    )


class _SpanValues:
    """Reads dotted keys from one span row: span columns first, then attributes."""

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row
        self.flat = phoenix_attributes(row)
        self._nested: dict[str, Any] | None = None

    def columns(self) -> dict[str, Any]:
        row = self.row
        return {
            "name": row["name"],
            "span_kind": row["span_kind"],
            "parent_id": row["parent_id"],
            "start_time": row["start_time"],
            "end_time": row["end_time"],
            "status_code": row["status_code"],
            "status_message": row["status_message"] or "",
            "events": row["events"] or [],
            "context.span_id": row["span_id"],
            "context.trace_id": row["trace__trace_id"],
            "latency_ms": row["latency_ms"],
        }

    def get(self, key: str) -> Any:
        columns = self.columns()
        if key in columns:
            return columns[key]
        if key.startswith("attributes."):
            key = key[len("attributes.") :]
        if key in self.flat:
            return self.flat[key]
        if self._nested is None:
            self._nested = unflatten(self.flat)
        node: Any = self._nested
        for part in key.split("."):
            if isinstance(node, Mapping) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return None
        return node


def _lookup(item: Any, key: str) -> Any:
    if not isinstance(item, Mapping):
        return None
    flat = flatten(item)
    if key in flat:
        return flat[key]
    node: Any = item
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _field_type(name: str) -> dict[str, Any]:
    if name in _STRING_COLUMNS:
        return {"type": "string"}
    if name in _TIME_COLUMNS:
        return {"type": "datetime", "tz": "UTC"}
    if name in _NUMBER_COLUMNS:
        return {"type": "number"}
    return {"type": "any"}


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def dataframe_rows(
    rows: Sequence[Mapping[str, Any]], spec: SpanQuerySpec
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """(index names, column names, records) for the spans ``rows`` under ``spec``."""
    out: list[dict[str, Any]] = []
    if spec.explode is not None:
        index_names = [spec.explode.get("primary_index_key") or spec.index, "document_position"]
        index_names[0] = _alias(index_names[0])
    else:
        index_names = [spec.index]
    selected = [(name, key) for name, key in spec.select if name not in index_names]
    columns: list[str] = []

    def add_column(name: str) -> None:
        if name not in columns:
            columns.append(name)

    for row in rows:
        values = _SpanValues(row)
        base: dict[str, Any] = {name: values.get(name) for name in index_names[:1]}
        if spec.select:
            for name, key in selected:
                base[name] = values.get(key)
        elif spec.explode is None and spec.concat is None:
            for key in DEFAULT_COLUMNS:
                base[key] = values.get(key)
            for key, value in values.flat.items():
                base[f"attributes.{key}"] = value
        if spec.explode is not None:
            items = values.get(spec.explode["key"])
            if not isinstance(items, list):
                continue
            kwargs = spec.explode.get("kwargs") or {}
            for position, item in enumerate(items):
                record = dict(base)
                record["document_position"] = position
                if kwargs:
                    for name, sub_key in kwargs.items():
                        record[name] = _lookup(item, sub_key)
                elif isinstance(item, Mapping):
                    record.update(flatten(item))
                else:
                    record[spec.explode["key"]] = item
                out.append(record)
        elif spec.concat is not None:
            items = values.get(spec.concat["key"])
            if not isinstance(items, list):
                continue
            separator = spec.concat.get("separator", "\n\n")
            kwargs = spec.concat.get("kwargs") or {spec.concat["key"]: ""}
            record = dict(base)
            for name, sub_key in kwargs.items():
                parts = [_lookup(item, sub_key) if sub_key else item for item in items]
                record[name] = str(separator).join(str(p) for p in parts if p is not None)
            out.append(record)
        else:
            out.append(base)
    # Every span column, the index's too: Phoenix keeps ``context.span_id`` as both the
    # index and a column of the full frame (``get_span_annotations_dataframe`` reads it).
    keep_index_column = not spec.select and spec.explode is None and spec.concat is None
    for record in out:
        for name in record:
            if name not in index_names or keep_index_column:
                add_column(name)
    return index_names, columns, out


def dataframe_json(rows: Sequence[Mapping[str, Any]], spec: SpanQuerySpec) -> str:
    """The table-schema JSON of the data frame answering ``spec`` on ``rows``."""
    index_names, columns, records = dataframe_rows(rows, spec)
    renamed = {name: spec.rename.get(name, name) for name in columns}
    index_fields = [(f"i{n}_{name}", name) for n, name in enumerate(index_names)]
    column_fields = [(f"c{n}_{renamed[name]}", name) for n, name in enumerate(columns)]
    schema_fields = [
        {"name": wire, **_field_type(name)} for wire, name in index_fields + column_fields
    ]
    data = [
        {wire: _cell(record.get(name)) for wire, name in index_fields + column_fields}
        for record in records
    ]
    return json.dumps(
        {
            "schema": {
                "fields": schema_fields,
                "primaryKey": [wire for wire, _ in index_fields],
                "pandas_version": "1.4.0",
            },
            "data": data,
        },
        default=str,
        ensure_ascii=False,
    )


__all__ = ["MAX_ROWS", "SpanQueryError", "SpanQuerySpec", "dataframe_json", "query_spec"]
