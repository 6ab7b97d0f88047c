"""Time partitions of the span table on PostgreSQL (``tracing_span`` by ``start_time``).

``tracing_span`` is a declaratively range-partitioned table: one partition per
``EVALHUB_SPAN_PARTITION_DAYS`` days (7: Monday to Monday, UTC), named
``tracing_span_pYYYYMMDD`` after its first day, plus ``tracing_span_default`` for spans
outside every partition. Its keys include the partition key: ``PRIMARY KEY (id, start_time)``
(Django keeps ``id`` as the model's pk; the sequence makes it unique) and
``UNIQUE (span_id, start_time)``. Foreign keys to spans are ``db_constraint=False``: Django's
collector still cascades deletions; a dropped partition is the one path that bypasses it, and
retention deletes what references its spans first (``evalhub.retention.services``).

- ``span_table_partition`` converts the one table (the migration ``tracing.0007`` on a small
  installation, ``manage.py spans_partition`` ahead of it on a large one);
- ``partitions_ensure`` creates the partitions ahead (beat, daily), moving rows out of
  ``DEFAULT`` where a new partition covers them;
- ``partitions_droppable`` and ``partition_drop`` serve retention.

SQLite (and ``EVALHUB_SPAN_PARTITION_DAYS = 0``) keeps one table: every function here does
nothing. Only names made here (dates) and names read from the catalogue reach the SQL.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

logger = logging.getLogger(__name__)

TABLE: Final = "tracing_span"
DEFAULT: Final = "tracing_span_default"
_NEW: Final = "tracing_span_new"
_OLD: Final = "tracing_span_old"
_SEQUENCE: Final = "tracing_span_id_seq"
# Partitions are aligned on Mondays (a week of 7 days starts on a Monday, UTC).
_ORIGIN: Final = datetime(1970, 1, 5, tzinfo=UTC)
# Converting a table whose oldest span is older than this many periods puts the older spans in
# DEFAULT rather than creating a partition for each empty period in between.
MAX_PAST_PERIODS: Final = 520
_INDEX = re.compile(r"^CREATE (UNIQUE )?INDEX \S+ ON (?:ONLY )?\S+ (.*)$", re.DOTALL)
_BOUND = re.compile(r"FROM \('([^']+)'\) TO \('([^']+)'\)")


@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime
    end: datetime


def partition_days() -> int:
    """``EVALHUB_SPAN_PARTITION_DAYS``: days a partition covers (0: one table)."""
    return int(getattr(settings, "EVALHUB_SPAN_PARTITION_DAYS", 7))


def partitions_ahead() -> int:
    """``EVALHUB_SPAN_PARTITIONS_AHEAD``: partitions kept created past the current one."""
    return int(getattr(settings, "EVALHUB_SPAN_PARTITIONS_AHEAD", 4))


def _enabled(conn: BaseDatabaseWrapper) -> bool:
    return conn.vendor == "postgresql"


def is_partitioned(conn: BaseDatabaseWrapper = connection) -> bool:
    if not _enabled(conn):
        return False
    with conn.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [TABLE])
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def period_start(moment: datetime, days: int) -> datetime:
    """The first instant of the partition of ``days`` days holding ``moment``."""
    span = timedelta(days=days)
    return _ORIGIN + span * ((moment - _ORIGIN) // span)


def _name(start: datetime) -> str:
    return f"{TABLE}_p{start:%Y%m%d}"


def partitions(conn: BaseDatabaseWrapper = connection) -> list[Partition]:
    """The range partitions of the span table, oldest first (``DEFAULT`` left out)."""
    if not is_partitioned(conn):
        return []
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = %s::regclass",
            [TABLE],
        )
        rows = cursor.fetchall()
    found = []
    for name, bound in rows:
        match = _BOUND.search(bound or "")
        if match is None:
            continue
        start, end = (datetime.fromisoformat(value) for value in match.groups())
        found.append(Partition(name, start.astimezone(UTC), end.astimezone(UTC)))
    return sorted(found, key=lambda p: p.start)


def _create_sql(start: datetime, days: int, table: str = TABLE) -> str:
    end = start + timedelta(days=days)
    return (
        f"CREATE TABLE IF NOT EXISTS {_name(start)} PARTITION OF {table} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def _columns(cursor: Any, table: str) -> str:
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [table],
    )
    return ", ".join(f'"{row[0]}"' for row in cursor.fetchall())


def _partition_create(cursor: Any, start: datetime, days: int) -> int:
    """Create the partition starting at ``start``; rows of its range waiting in ``DEFAULT`` are
    moved into it (in the caller's transaction). Returns how many rows moved."""
    end = start + timedelta(days=days)
    cursor.execute(
        f"SELECT count(*) FROM {DEFAULT} WHERE start_time >= %s AND start_time < %s",  # noqa: S608
        [start, end],
    )
    waiting = cursor.fetchone()[0]
    if not waiting:
        cursor.execute(_create_sql(start, days))
        return 0
    columns = _columns(cursor, TABLE)
    cursor.execute(f"CREATE TEMP TABLE tracing_span_moving (LIKE {TABLE}) ON COMMIT DROP")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT} WHERE start_time >= %s AND start_time < %s "  # noqa: S608
        f"RETURNING *) INSERT INTO tracing_span_moving SELECT * FROM moved",
        [start, end],
    )
    cursor.execute(_create_sql(start, days))
    cursor.execute(
        f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM tracing_span_moving"  # noqa: S608
    )
    cursor.execute("DROP TABLE tracing_span_moving")
    return waiting


def partitions_ensure(*, ahead: int | None = None, now: datetime | None = None) -> list[str]:
    """Create the partitions from the current one to ``ahead`` past it, and those of the rows
    waiting in ``DEFAULT`` (up to ``MAX_PAST_PERIODS`` back), moving those rows into them.
    Idempotent. Returns the names created."""
    days = partition_days()
    if days <= 0 or not is_partitioned():
        return []
    ahead = partitions_ahead() if ahead is None else ahead
    now = now or timezone.now()
    current = period_start(now, days)
    have = {p.name for p in partitions()}
    starts = [current + timedelta(days=days * step) for step in range(ahead + 1)]
    # Periods of the rows waiting in DEFAULT (old backfills, clock skew), within reach.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT date_bin(%s, start_time, %s) FROM {DEFAULT} "  # noqa: S608
            "WHERE start_time >= %s AND start_time < %s",
            [
                timedelta(days=days),  # type: ignore[list-item]  # psycopg sends an interval
                _ORIGIN,
                current - timedelta(days=days * MAX_PAST_PERIODS),
                starts[-1] + timedelta(days=days),
            ],
        )
        starts += [row[0].astimezone(UTC) for row in cursor.fetchall()]
    created = []
    for start in sorted(set(starts)):
        if _name(start) in have:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            moved = _partition_create(cursor, start, days)
        created.append(_name(start))
        logger.info("span partitions: created %s (%s rows moved from DEFAULT)", _name(start), moved)
    return created


def partitions_droppable(before: datetime) -> list[Partition]:
    """The partitions whose every span started before ``before``, oldest first."""
    return [p for p in partitions() if p.end <= before]


def partition_drop(name: str) -> None:
    """Detach and drop one partition (a name from ``partitions()``): its spans are gone, with no
    cascade — the caller has handled what references them."""
    if name not in {p.name for p in partitions()}:
        raise ValueError(f"name: {name} is not a partition of {TABLE}")
    with transaction.atomic(), connection.cursor() as cursor:
        # Deferred foreign-key checks of rows written earlier in the transaction would hold
        # the table (Django's constraints are INITIALLY DEFERRED): run them now.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
        cursor.execute(f"DROP TABLE {name}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    logger.info("span partitions: dropped %s", name)


# Converting the one table.


def _catalogue(cursor: Any, table: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """``table``'s constraints (name, type, definition) and its other indexes (name, def)."""
    cursor.execute(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('p', 'u', 'f') ORDER BY conname",
        [table],
    )
    constraints = list(cursor.fetchall())
    cursor.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid "
        "AND c.conrelid = x.indrelid) ORDER BY i.relname",
        [table],
    )
    return constraints, list(cursor.fetchall())


def _temporary(name: str, kind: str = "i") -> str:
    """The name a constraint or index has on the new table until the swap. Foreign keys keep
    theirs (their names are per table, and the partitions' copies keep the name they had)."""
    return name if kind == "f" else f"{name[:56]}_pnew"


def _copy_range(cursor: Any, columns: str, low: int, high: int) -> int:
    cursor.execute(
        f"INSERT INTO {_NEW} ({columns}) SELECT {columns} FROM {TABLE} "  # noqa: S608
        "WHERE id > %s AND id <= %s",
        [low, high],
    )
    return cursor.rowcount


def span_table_partition(
    conn: BaseDatabaseWrapper = connection,
    *,
    batch: int = 100_000,
    days: int | None = None,
    ahead: int | None = None,
    in_transactions: bool = False,
    progress: Callable[[str], None] | None = None,
) -> bool:
    """Convert ``tracing_span`` into a partitioned table, keeping every row, id and index.

    Creates ``tracing_span_new`` partitioned by ``start_time`` with partitions from the oldest
    span to ``ahead`` periods past now and ``DEFAULT``, copies the rows in id ranges of
    ``batch``, builds the indexes, then — under a lock that holds writes back — copies the rows
    added meanwhile, drops the foreign keys that reference spans, swaps the names and moves the
    id sequence. ``in_transactions``: each range commits on its own (the management command,
    run with the site up; spans must not be deleted meanwhile — pause retention); otherwise
    everything runs in the caller's transaction (the migration). Returns False when there is
    nothing to do (not PostgreSQL, partitioning off, or converted already).
    """
    days = partition_days() if days is None else days
    if not _enabled(conn) or days <= 0 or is_partitioned(conn):
        return False
    ahead = partitions_ahead() if ahead is None else ahead
    say = progress or (lambda message: logger.info("span partitions: %s", message))

    def step() -> Any:
        return transaction.atomic(using=conn.alias) if in_transactions else _Nothing()

    with step(), conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_NEW} CASCADE")
        cursor.execute(
            f"CREATE TABLE {_NEW} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING STORAGE "
            "INCLUDING COMMENTS) PARTITION BY RANGE (start_time)"
        )
        cursor.execute(f"SELECT min(start_time), max(id) FROM {TABLE}")  # noqa: S608
        oldest, top = cursor.fetchone()
        now = timezone.now()
        first = period_start(
            max(oldest or now, now - timedelta(days=days * MAX_PAST_PERIODS)), days
        )
        last = period_start(now, days) + timedelta(days=days * ahead)
        start = first
        count = 0
        while start <= last:
            cursor.execute(_create_sql(start, days, _NEW))
            start += timedelta(days=days)
            count += 1
        cursor.execute(f"CREATE TABLE {DEFAULT} PARTITION OF {_NEW} DEFAULT")
        columns = _columns(cursor, TABLE)
    say(f"created {_NEW} with {count} partitions of {days} days and DEFAULT")
    copied, low = 0, 0
    top = top or 0
    while low < top:
        with step(), conn.cursor() as cursor:
            copied += _copy_range(cursor, columns, low, low + batch)
        low += batch
        say(f"copied {copied} rows (ids up to {min(low, top)} of {top})")
    with step(), conn.cursor() as cursor:
        constraints, indexes = _catalogue(cursor, TABLE)
        for name, kind, definition in constraints:
            if kind == "p":
                definition = "PRIMARY KEY (id, start_time)"
            elif kind == "u" and "start_time" not in definition:
                raise RuntimeError(f"{name}: a unique constraint must include start_time")
            cursor.execute(
                f"ALTER TABLE {_NEW} ADD CONSTRAINT {_temporary(name, kind)} {definition}"
            )
        for name, definition in indexes:
            match = _INDEX.match(definition)
            if match is None or (match.group(1) and "start_time" not in match.group(2)):
                raise RuntimeError(f"{name}: cannot rebuild {definition} on the partitioned table")
            unique = match.group(1) or ""
            cursor.execute(f"CREATE {unique}INDEX {_temporary(name)} ON {_NEW} {match.group(2)}")
    say(f"built {len(constraints)} constraints and {len(indexes)} indexes")
    with step(), conn.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN EXCLUSIVE MODE")
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {TABLE}")  # noqa: S608
        newest = cursor.fetchone()[0]
        if newest > top:
            copied += _copy_range(cursor, columns, top, newest)
        # Foreign keys that reference spans (they are db_constraint=False in the models).
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE confrelid = %s::regclass AND contype = 'f'",
            [TABLE],
        )
        for table, name in cursor.fetchall():
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {_OLD}")
        cursor.execute(f"ALTER TABLE {_NEW} RENAME TO {TABLE}")
        cursor.execute(f"DROP TABLE {_OLD}")
        for name, kind, _definition in constraints:
            if kind != "f":
                cursor.execute(
                    f"ALTER TABLE {TABLE} RENAME CONSTRAINT {_temporary(name)} TO {name}"
                )
        for name, _definition in indexes:
            cursor.execute(f"ALTER INDEX {_temporary(name)} RENAME TO {name}")
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {_SEQUENCE} OWNED BY {TABLE}.id")
        cursor.execute(f"SELECT setval('{_SEQUENCE}', greatest(%s, 1), %s)", [newest, newest > 0])
        cursor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN id SET DEFAULT nextval('{_SEQUENCE}')")
        cursor.execute(f"ANALYZE {TABLE}")
    say(f"converted: {copied} rows in the partitioned {TABLE}")
    return True


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *args: object) -> None:
        return None
