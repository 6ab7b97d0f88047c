"""Fast span inserts. PostgreSQL: COPY into a per-connection staging table, then one
``INSERT … SELECT … ON CONFLICT (span_id, start_time) DO NOTHING`` (the unique key of
the partitioned table, ``tracing.partitions``). Other databases: ``bulk_create``.

Values travel as COPY data or bound parameters; table and column names come from the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from django.db import IntegrityError, connection, transaction

from tracing.models import Span
from tracing.store.rollups import stored_field

_FIELDS = [f for f in Span._meta.concrete_fields if not f.primary_key]
COLUMNS = [f.attname for f in _FIELDS]
_JSON_COLUMNS = {f.attname for f in _FIELDS if f.get_internal_type() == "JSONField"}
_STAGE = "tracing_span_stage"


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _copy_rows(cursor: Any, table: str, column_list: str, rows: Sequence[dict[str, Any]]) -> None:
    json_positions = [i for i, name in enumerate(COLUMNS) if name in _JSON_COLUMNS]
    # COPY runs on the driver's cursor: wrap it so its errors arrive as Django's (DataError,
    # IntegrityError) like every other statement's.
    with (
        connection.wrap_database_errors,
        cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
    ):
        for row in rows:
            values = [row.get(name) for name in COLUMNS]
            for position in json_positions:
                values[position] = _json_text(values[position])
            copy.write_row(values)


def spans_insert(rows: Sequence[dict[str, Any]]) -> bool:
    """Insert span rows (dicts keyed by ``COLUMNS``); rows whose span_id exists are skipped.

    Returns True when every row was inserted, False when some were skipped.

    The caller has already left out the spans it found stored and holds the lock on their
    traces, so on PostgreSQL the rows are copied straight into the table. Should a span id be
    stored meanwhile under another trace, the copy fails on the unique index and the rows go
    through a staging table with ``ON CONFLICT DO NOTHING`` instead.
    """
    if not rows:
        return True
    if connection.vendor != "postgresql":
        # No conflict is expected (the caller left out stored spans under its trace locks,
        # and SQLite has one writer at a time), so a conflict is an error here.
        Span.objects.bulk_create([Span(**row) for row in rows], batch_size=500)
        return True
    table = Span._meta.db_table
    column_list = ", ".join(connection.ops.quote_name(stored_field(f)[1]) for f in _FIELDS)
    with connection.cursor() as cursor:
        try:
            with transaction.atomic(savepoint=True):
                _copy_rows(cursor, table, column_list, rows)
            return True
        except IntegrityError:
            pass
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} AS "  # noqa: S608 (model names only)
            f"SELECT {column_list} FROM {table} WITH NO DATA"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
        _copy_rows(cursor, _STAGE, column_list, rows)
        cursor.execute(
            f"INSERT INTO {table} ({column_list}) "  # noqa: S608 (model names only)
            f"SELECT {column_list} FROM {_STAGE} ON CONFLICT (span_id, start_time) DO NOTHING"
        )
        cursor.execute(f"TRUNCATE {_STAGE}")
        return False
