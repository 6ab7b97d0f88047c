"""Fast span inserts. PostgreSQL: COPY into a per-connection staging table, then one
``INSERT … SELECT … ON CONFLICT (span_id) DO NOTHING``. Other databases: ``bulk_create``.

Values travel as COPY data or bound parameters; table and column names come from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from django.db import connection

from tracing.models import Span

_FIELDS = [f for f in Span._meta.concrete_fields if not f.primary_key]
COLUMNS = [f.attname for f in _FIELDS]
_JSON_COLUMNS = {f.attname for f in _FIELDS if f.get_internal_type() == "JSONField"}
_STAGE = "tracing_span_stage"


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def spans_insert(rows: Sequence[dict[str, Any]]) -> None:
    """Insert span rows (dicts keyed by ``COLUMNS``); rows whose span_id exists are skipped."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        Span.objects.bulk_create(
            [Span(**row) for row in rows], ignore_conflicts=True, batch_size=500
        )
        return
    table = Span._meta.db_table
    column_list = ", ".join(connection.ops.quote_name(f.column) for f in _FIELDS)
    json_positions = [i for i, name in enumerate(COLUMNS) if name in _JSON_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS "  # noqa: S608 (model names only)
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
        with cursor.cursor.copy(f"COPY {_STAGE} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                values = [row.get(name) for name in COLUMNS]
                for position in json_positions:
                    values[position] = _json_text(values[position])
                copy.write_row(values)
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) "  # noqa: S608 (model names only)
            f"SELECT {column_list} FROM {_STAGE} ON CONFLICT (span_id) DO NOTHING"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
