"""The span table's time partitions (PostgreSQL): the migration's conversion keeps every row,
id, index and reference; partitions are created ahead and take the rows waiting in DEFAULT;
ingest's duplicate handling works on the partitioned key. SQLite keeps one table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from annotations.models import Annotation, AnnotationSource
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.celery import beat_schedule
from tests import factories
from tracing.models import Span
from tracing.partitions import (
    DEFAULT,
    is_partitioned,
    partition_drop,
    partitions,
    partitions_droppable,
    partitions_ensure,
    period_start,
    span_table_partition,
)
from tracing.store.services import spans_delete

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite keeps one span table"
)


def _rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def test_periods_start_on_mondays_utc():
    moment = datetime(2026, 12, 10, 15, 30, tzinfo=UTC)  # a Thursday
    assert period_start(moment, 7) == datetime(2026, 12, 7, tzinfo=UTC)
    assert period_start(moment, 1) == datetime(2026, 12, 10, tzinfo=UTC)
    assert period_start(datetime(2026, 12, 7, tzinfo=UTC), 7) == datetime(2026, 12, 7, tzinfo=UTC)


def test_sqlite_keeps_one_table():
    if connection.vendor == "postgresql":
        assert is_partitioned()
        return
    assert not is_partitioned()
    assert partitions() == [] and partitions_ensure() == []
    factories.trace()
    assert Span.objects.count() == 3


def test_the_beat_schedule_keeps_partitions_ahead():
    entry = beat_schedule()["partitions-ensure"]
    assert (entry["task"], entry["schedule"]) == ("tracing.partitions_ensure", 86_400.0)


@postgresql_only
def test_the_migration_made_weeks_ahead_and_a_default():
    now = timezone.now()
    found = partitions()
    assert any(p.start <= now < p.end for p in found)
    assert found[-1].start >= period_start(now, 7) + timedelta(days=28)
    assert all(p.end - p.start == timedelta(days=7) for p in found)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [DEFAULT])
        assert cursor.fetchone()[0]


@postgresql_only
def test_old_spans_wait_in_default_until_their_partition_is_made():
    long_ago = timezone.now() - timedelta(days=400)
    root = factories.trace(start=long_ago)[0]
    annotations_upsert(
        items=[AnnotationInput(target_kind="SPAN", target_id=root.span_id, name="ok", label="y")],
        source=AnnotationSource.API,
        project=root.project,
    )
    assert _rows(DEFAULT) >= 3
    created = partitions_ensure()
    name = f"tracing_span_p{period_start(long_ago, 7):%Y%m%d}"
    assert name in created
    assert _rows(name) == 3 and _rows(DEFAULT) == 0
    # Same ids, same references; a second pass creates nothing.
    moved = Span.objects.get(span_id=root.span_id)
    assert moved.pk == root.pk and Annotation.objects.get(span=moved).label == "y"
    assert partitions_ensure() == []
    # Deleting through Django still cascades (no database constraint any more).
    assert spans_delete(span_ids=[root.span_id]) == 1
    assert not Annotation.objects.filter(span_id=root.pk).exists()


@postgresql_only
def test_a_duplicate_span_is_dropped_on_the_partitioned_key():
    from tracing.store.bulk import COLUMNS, spans_insert

    root = factories.trace()[0]
    row = {name: getattr(root, name) for name in COLUMNS}
    # Stored meanwhile (same span id and start time): the copy fails, the fallback skips it.
    assert spans_insert([row]) is False
    assert Span.objects.filter(span_id=root.span_id).count() == 1


@postgresql_only
def test_a_partition_is_dropped_only_by_name_from_the_catalogue():
    with pytest.raises(ValueError, match="not a partition"):
        partition_drop("tracing_trace")
    old = timezone.now() - timedelta(days=100)
    (name,) = partitions_ensure(ahead=0, now=old)
    assert [p.name for p in partitions_droppable(old + timedelta(days=8))] == [name]
    partition_drop(name)
    assert name not in {p.name for p in partitions()}


@postgresql_only
def test_converting_one_table_keeps_rows_ids_indexes_and_the_sequence():
    """The migration's conversion, run on a one-table span store built in this test's
    transaction (the test database's own table is put aside and comes back at rollback)."""
    with connection.cursor() as cursor:
        for part in [*partitions(), None]:
            name = part.name if part else DEFAULT
            cursor.execute(f"ALTER TABLE {name} RENAME TO {name}_aside")
        cursor.execute("ALTER TABLE tracing_span RENAME TO tracing_span_aside")
        cursor.execute(
            "CREATE TABLE tracing_span (LIKE tracing_span_aside INCLUDING DEFAULTS, "
            "CONSTRAINT span_plain_pkey PRIMARY KEY (id), "
            "CONSTRAINT span_plain_unique UNIQUE (span_id, start_time), "
            "CONSTRAINT span_plain_trace_fk FOREIGN KEY (trace_id) REFERENCES tracing_trace (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        cursor.execute("CREATE INDEX span_plain_trace ON tracing_span (trace_id, start_time)")
    spans = factories.trace(start=timezone.now() - timedelta(days=20))
    spans += factories.trace(start=timezone.now())
    annotations_upsert(
        items=[
            AnnotationInput(target_kind="SPAN", target_id=spans[0].span_id, name="ok", label="y")
        ],
        source=AnnotationSource.API,
        project=spans[0].project,
    )
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "ALTER TABLE annotations_annotation ADD CONSTRAINT annotation_span_fk "
            "FOREIGN KEY (span_id) REFERENCES tracing_span (id)"
        )

    assert span_table_partition(batch=2, ahead=2) is True

    assert is_partitioned() and span_table_partition() is False
    assert sorted(Span.objects.values_list("pk", flat=True)) == sorted(s.pk for s in spans)
    assert _rows(DEFAULT) == 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'tracing_span'")
        assert {"span_plain_pkey", "span_plain_unique", "span_plain_trace"} <= {
            row[0] for row in cursor.fetchall()
        }
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE confrelid = 'tracing_span'::regclass"
        )
        assert cursor.fetchone()[0] == 0
        # No temporary name is left on the table or its partitions.
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conname LIKE '%%pnew' "
            "UNION SELECT relname FROM pg_class WHERE relname LIKE '%%pnew'"
        )
        assert cursor.fetchall() == []
    # New spans take ids after the copied ones; the annotation still finds its span.
    newer = factories.trace(start=timezone.now())
    assert min(s.pk for s in newer) > max(s.pk for s in spans)
    assert Annotation.objects.get(label="y").span_id == spans[0].pk


@postgresql_only
def test_the_command_does_nothing_on_a_partitioned_table(capsys):
    call_command("spans_partition")
    assert "partitioned already" in capsys.readouterr().out
