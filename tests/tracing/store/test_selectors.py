import re
from datetime import timedelta

import pytest
from django.db import connection

from tests import factories
from tracing.query.lists import (
    InvalidAttributeFilter,
    attribute_filter_parse,
    span_list,
    span_queryset,
    trace_list,
)
from tracing.store import selectors
from tracing.store.selectors import InvalidCursor, project_get, span_rows_batched

T0 = factories.BASE_TIME


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.b:5", ("a.b", 5)),
        ("a:0.5", ("a", 0.5)),
        ("a:true", ("a", True)),
        ("a:false", ("a", False)),
        ('a:"5"', ("a", "5")),
        ('a:""', ("a", "")),
        ("a:gpt-4o", ("a", "gpt-4o")),
        ("a:x:y", ("a", "x:y")),
        ("a:[1]", ("a", "[1]")),
        ("a:", ("a", "")),
    ],
)
def test_attribute_filter_parse_types_values_like_the_phoenix_client(raw, expected):
    assert attribute_filter_parse(raw) == expected


@pytest.mark.parametrize("raw", ["a", ":1", "a..b:1", ".a:1"])
def test_attribute_filter_parse_rejects(raw):
    with pytest.raises(InvalidAttributeFilter):
        attribute_filter_parse(raw)


@pytest.mark.django_db
def test_project_get_by_id_then_name():
    named = factories.project("alpha")
    assert project_get(str(named.pk)) == named
    assert project_get("alpha") == named
    assert project_get("  alpha ") == named
    assert project_get("beta") is None
    digits = factories.project("999999")
    assert project_get("999999") == digits


@pytest.mark.django_db
def test_span_list_keyset_pages_cover_everything_once_with_ties():
    records = [factories.span_record(start=T0 + timedelta(seconds=i // 4)) for i in range(21)]
    factories.ingest(records)
    project = factories.project()
    seen, cursor = [], None
    while True:
        page = span_list(project=project, cursor=cursor, limit=5)
        seen += [span.span_id for span in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 21
    assert set(seen) == {r.span_id for r in records}
    starts = [r.start_time for r in sorted(records, key=lambda r: r.start_time, reverse=True)]
    assert [s.start_time for s in span_queryset(project=project)] == starts


@pytest.mark.django_db
def test_cursor_of_another_list_is_refused():
    factories.trace()
    factories.trace(start=T0 + timedelta(minutes=1))
    project = factories.project()
    trace_cursor = trace_list(project=project, limit=1).next_cursor
    assert trace_cursor
    with pytest.raises(InvalidCursor):
        span_list(project=project, cursor=trace_cursor)
    with pytest.raises(InvalidCursor):
        trace_list(project=project, sort="latency_ms", cursor=trace_cursor)


@pytest.mark.django_db
def test_span_list_first_page_uses_the_newest_index():
    factories.trace()
    project = factories.project()
    query = span_queryset(project=project).select_related("trace")[:101]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = " ".join(str(row) for row in cursor.fetchall())
            assert "span_project_newest" in plan
            assert "TEMP B-TREE" not in plan
        else:
            # Whatever the statistics of the moment, the index must be able to serve the order:
            # with scans and sorts priced out, a plan without it would still have to sort.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_sort = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = " ".join(row[0] for row in cursor.fetchall())
            cursor.execute("RESET enable_seqscan")
            cursor.execute("RESET enable_sort")
            # The table is partitioned by time: the partitions' indexes of these serve it, in
            # a Merge Append that keeps their order (no Sort node).
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent IN ('span_project_newest'::regclass, "
                "'span_project_roots'::regclass)"
            )
            names = {"span_project_newest", "span_project_roots"}
            names |= {row[0] for row in cursor.fetchall()}
            assert any(name in plan for name in names), plan
            assert not re.search(r"(^|->)\s*Sort\s+\(", plan), plan


@pytest.mark.django_db
def test_rows_are_read_in_bounded_batches(django_assert_num_queries):
    factories.ingest([factories.span_record(start=T0 + timedelta(seconds=i)) for i in range(7)])
    query = span_queryset(project=factories.project())
    with django_assert_num_queries(3):
        batches = list(span_rows_batched(query, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert set(batches[0][0]) == set(selectors.EXPORT_FIELDS)
    ids = [row["span_id"] for batch in batches for row in batch]
    assert len(set(ids)) == 7
