"""Retention by whole span partitions (PostgreSQL): a partition older than every project's limit
is dropped, what references its spans is deleted first (datasets keep their copies), traces
that ran on past it are recomputed or, left with nothing, deleted; the pass says what it did.
SQLite keeps one table and deletes in batches (tests/evalhub/retention/test_services.py)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from annotations.datasets.models import DatasetExample
from annotations.datasets.services import dataset_create
from annotations.models import Annotation, AnnotationSource
from annotations.queues.models import LabelingQueueItem
from annotations.queues.services import queue_create, queue_items_add
from annotations.rubrics.services import annotation_config_create
from annotations.store.services import AnnotationInput, annotations_upsert
from evalhub.retention.partitions import partitions_cutoff
from evalhub.retention.services import retention_policy_set, retention_sweep
from tests import factories
from tracing.models import Span, Trace
from tracing.partitions import partitions, partitions_ensure, period_start

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite keeps one span table"),
]

DAY_MS = 86_400_000


def _trace(project: str, spans: list[tuple[timedelta, float]], start) -> list[Span]:  # type: ignore[no-untyped-def]
    """A trace of spans at ``start + offset`` lasting ``ms``, the first one the root."""
    trace_id = factories.next_hex(32)
    root_id = factories.next_hex(16)
    records = [
        factories.span_record(
            trace_id=trace_id,
            span_id=root_id if index == 0 else None,
            parent_id=None if index == 0 else root_id,
            name=f"s{index}",
            start=start + offset,
            latency_ms=ms,
        )
        for index, (offset, ms) in enumerate(spans)
    ]
    return factories.ingest(records, project=project)


def test_an_old_partition_is_dropped_with_what_references_its_spans(caplog):
    now = timezone.now()
    begin = period_start(now - timedelta(days=60), 7)
    (name,) = partitions_ensure(ahead=0, now=begin)
    end = begin + timedelta(days=7)
    # "shop" keeps 30 days, "lab" 45: partitions ending 45 days ago or earlier can go.
    retention_policy_set(project=factories.project("shop"), days=30)
    retention_policy_set(project=factories.project("lab"), days=45)
    assert partitions_cutoff(now=now) == now - timedelta(days=45)

    old = _trace(
        "shop", [(timedelta(0), 500), (timedelta(seconds=1), 100)], begin + timedelta(days=1)
    )
    lab_old = _trace("lab", [(timedelta(0), 100)], begin + timedelta(days=2))
    # Starts in the partition, its root runs on for 50 days; a child starts after the partition.
    straddling = _trace(
        "shop", [(timedelta(0), 50 * DAY_MS), (timedelta(days=40), 100)], end - timedelta(minutes=1)
    )
    # Every span in the partition, but the root ends after every cutoff: nothing is left of it.
    emptied = _trace("shop", [(timedelta(0), 55 * DAY_MS)], end - timedelta(hours=1))
    recent = _trace("shop", [(timedelta(0), 100)], now - timedelta(days=3))
    annotations_upsert(
        items=[
            AnnotationInput(target_kind="SPAN", target_id=s.span_id, name="ok", label="yes")
            for s in [*old, straddling[0], straddling[1], emptied[0], recent[0]]
        ]
        + [
            AnnotationInput(target_kind="TRACE", target_id=old[0].trace.trace_id, name="t", score=1)
        ],
        source=AnnotationSource.API,
        project=old[0].project,
    )
    config = annotation_config_create(
        name="quality", kind="CATEGORICAL", values=[{"label": "good"}, {"label": "bad"}]
    )
    queue = queue_create(name="review", item_kind="SPAN", configs=[config])
    queue_items_add(queue=queue, span_ids=[old[1].span_id, recent[0].span_id])
    added = dataset_create(name="golden", spans=[old[0].pk, recent[0].pk])
    in_partition = Span.objects.filter(start_time__gte=begin, start_time__lt=end).count()
    assert in_partition == 5

    with caplog.at_level(logging.INFO):
        sweeps = {s.project.name: s for s in retention_sweep(now=now)}

    assert name not in {p.name for p in partitions()}
    shop, lab = sweeps["shop"], sweeps["lab"]
    assert (shop.partitions, lab.partitions) == (name, name)
    # shop: old (2 spans), straddling's root, emptied's root from the partition; lab: 1.
    assert (shop.spans, lab.spans) == (4, 1)
    # Span annotations on the dropped spans (old's two, straddling's root, emptied's) and the old
    # trace's annotation (deleted with its trace by the batches); the queue item of old[1].
    assert shop.annotations == 5 and shop.queue_items == 1
    assert shop.dataset_examples_kept == 1
    # old and emptied are gone; straddling keeps its child, recomputed; lab's trace is gone.
    assert shop.traces == 2 and lab.traces == 1
    assert not Trace.objects.filter(pk__in=[old[0].trace_id, emptied[0].trace_id]).exists()
    assert not Trace.objects.filter(pk=lab_old[0].trace_id).exists()
    kept = Trace.objects.get(pk=straddling[0].trace_id)
    assert (kept.span_count, kept.start_time) == (1, straddling[1].start_time)
    assert list(Span.objects.filter(trace=kept).values_list("pk", flat=True)) == [straddling[1].pk]
    assert set(Annotation.objects.values_list("span_id", flat=True)) == {
        straddling[1].pk,
        recent[0].pk,
    }
    assert list(LabelingQueueItem.objects.values_list("span_id", flat=True)) == [recent[0].pk]
    examples = DatasetExample.objects.filter(dataset=added.dataset).order_by("id")
    assert [e.source_span_id for e in examples] == [old[0].span_id, recent[0].span_id]
    assert f"dropped span partition {name} (5 spans of 2 projects)" in caplog.text
    assert f"span partitions dropped: {name}" in caplog.text
    # Nothing is left to drop or delete.
    assert retention_sweep(now=now) == []


def test_no_partition_goes_while_a_project_keeps_forever():
    now = timezone.now()
    begin = period_start(now - timedelta(days=400), 7)
    (name,) = partitions_ensure(ahead=0, now=begin)
    _trace("shop", [(timedelta(0), 100)], begin + timedelta(days=1))
    _trace("archive", [(timedelta(0), 100)], begin + timedelta(days=1))
    retention_policy_set(project=factories.project("shop"), days=30)
    retention_policy_set(project=factories.project("archive"), days=0)
    assert partitions_cutoff(now=now) is None
    (sweep,) = retention_sweep(now=now)
    # shop's old trace goes in a batch; the partition stays, with archive's spans.
    assert (sweep.project.name, sweep.partitions, sweep.spans) == ("shop", "", 1)
    assert name in {p.name for p in partitions()}
    assert Span.objects.filter(project__name="archive").count() == 1
