"""Trace and session rows recomputed from their spans in one SQL statement each.

The ORM's ``bulk_update`` builds a CASE expression per field and row, which was most of the
ingest time; these statements do the same work inside the database. Only ids are bound as
parameters (always integers from our own rows); no user text reaches the SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Field, Model

from tracing.models import Trace
from tracing.store.hourly import trace_hours_forget, trace_hours_forget_traces

_LATENCY = {
    "postgresql": "EXTRACT(EPOCH FROM (agg.end_time - agg.start_time)) * 1000.0",
    "sqlite": "(julianday(agg.end_time) - julianday(agg.start_time)) * 86400000.0",
}

_TRACES_SQL = """
WITH agg AS (
    SELECT trace_id AS id,
           MIN(start_time) AS start_time,
           MAX(end_time) AS end_time,
           COUNT(*) AS spans,
           SUM(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END) AS errors,
           COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,
           COALESCE(SUM(completion_tokens), 0) AS completion_tokens,
           COALESCE(SUM(total_tokens), 0) AS total_tokens,
           COALESCE(SUM(cost), 0.0) AS cost,
           MIN(session_id) AS any_session
    FROM tracing_span
    WHERE trace_id IN ({ids})
    GROUP BY trace_id
),
ranked AS (
    SELECT trace_id, span_id, name, latency_ms, session_id, parent_id,
           ROW_NUMBER() OVER (
               PARTITION BY trace_id
               ORDER BY CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END, start_time, id
           ) AS position
    FROM tracing_span
    WHERE trace_id IN ({ids})
),
shown AS (SELECT * FROM ranked WHERE position = 1)
UPDATE tracing_trace SET
    start_time = agg.start_time,
    end_time = agg.end_time,
    span_count = agg.spans,
    error_count = agg.errors,
    prompt_tokens = agg.prompt_tokens,
    completion_tokens = agg.completion_tokens,
    total_tokens = agg.total_tokens,
    cost = agg.cost,
    root_span_id = CASE WHEN shown.parent_id IS NULL THEN shown.span_id END,
    root_span_name = shown.name,
    latency_ms = CASE WHEN shown.parent_id IS NULL THEN shown.latency_ms ELSE {latency} END,
    session_id = COALESCE(shown.session_id, agg.any_session)
FROM agg JOIN shown ON shown.trace_id = agg.id
WHERE tracing_trace.id = agg.id
"""

_SESSIONS_SQL = """
WITH agg AS (
    SELECT session_id AS id,
           MIN(start_time) AS start_time,
           MAX(end_time) AS end_time,
           COUNT(*) AS traces,
           SUM(span_count) AS spans,
           SUM(error_count) AS errors,
           SUM(prompt_tokens) AS prompt_tokens,
           SUM(completion_tokens) AS completion_tokens,
           SUM(total_tokens) AS total_tokens,
           SUM(cost) AS cost
    FROM tracing_trace
    WHERE session_id IN ({ids})
    GROUP BY session_id
)
UPDATE tracing_session SET
    start_time = agg.start_time,
    end_time = agg.end_time,
    trace_count = agg.traces,
    span_count = agg.spans,
    error_count = agg.errors,
    prompt_tokens = agg.prompt_tokens,
    completion_tokens = agg.completion_tokens,
    total_tokens = agg.total_tokens,
    cost = agg.cost
FROM agg
WHERE tracing_session.id = agg.id
"""


# Most parameters bound in one statement: PostgreSQL takes 65,535, SQLite 32,766. Larger
# batches are split into several statements.
MAX_PARAMS = 30_000


def _placeholders(ids: Sequence[int]) -> str:
    return ", ".join(["%s"] * len(ids))


def _id_chunks(pks: Sequence[int], per_statement: int) -> list[list[int]]:
    ids = [int(pk) for pk in pks]
    return [ids[i : i + per_statement] for i in range(0, len(ids), per_statement)]


def traces_rollup(trace_pks: Sequence[int]) -> None:
    """Recompute the given trace rows from their spans (traces with no span are left alone).

    The hourly roll-ups of the hours they started in, before and after, are forgotten (call
    it in a transaction)."""
    for ids in _id_chunks(trace_pks, MAX_PARAMS // 2):
        trace_hours_forget_traces(ids)
        sql = _TRACES_SQL.format(ids=_placeholders(ids), latency=_LATENCY[connection.vendor])
        with connection.cursor() as cursor:
            cursor.execute(sql, ids + ids)
        trace_hours_forget(
            Trace.objects.filter(pk__in=ids, start_time__isnull=False).values_list(
                "project_id", "start_time"
            )
        )


def sessions_rollup(session_pks: Sequence[int]) -> None:
    """Recompute the given session rows from their traces."""
    for ids in _id_chunks(session_pks, MAX_PARAMS):
        with connection.cursor() as cursor:
            cursor.execute(_SESSIONS_SQL.format(ids=_placeholders(ids)), ids)


def stored_field(field: object) -> tuple[Field[Any, Any], str]:
    """A field stored in a column of its model's table, with that column's name."""
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{field} is not a column of its model's table")
    return field, field.column


def rows_update(model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``UPDATE`` many rows at once: each row is ``(pk, *values of fields)``.

    One statement with a ``VALUES`` list instead of ``bulk_update``'s CASE per field and row.
    Values are bound parameters, prepared by each field for the database.
    """
    if not rows:
        return
    per_statement = MAX_PARAMS // (len(fields) + 1)
    if len(rows) > per_statement:
        for start in range(0, len(rows), per_statement):
            rows_update(model, fields, rows[start : start + per_statement])
        return
    meta = model._meta
    columns = [stored_field(meta.pk)] + [stored_field(meta.get_field(name)) for name in fields]
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        cell = [f"%s::{field.db_type(connection)}" for field, _ in columns]
    else:
        cell = ["%s"] * len(columns)
    row_sql = "(" + ", ".join(cell) + ")"
    names = ["v_" + column for _, column in columns]
    assignments = ", ".join(
        f"{quote(column)} = v.{name}"
        for (_, column), name in zip(columns[1:], names[1:], strict=True)
    )
    table = quote(meta.db_table)
    # Names come from the model and values are bound parameters.
    sql = (
        f"WITH v ({', '.join(names)}) AS (VALUES {', '.join([row_sql] * len(rows))}) "  # noqa: S608
        f"UPDATE {table} SET {assignments} FROM v "
        f"WHERE {table}.{quote(columns[0][1])} = v.{names[0]}"
    )
    params: list[Any] = []
    for row in rows:
        for (field, _), value in zip(columns, row, strict=True):
            params.append(field.get_db_prep_value(value, connection, prepared=False))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
