"""Retention by whole span partitions (PostgreSQL, ``tracing.partitions``).

Partitions are shared by every project, so one can go only when every span in it is older
than every project's limit: its end is before ``now - the longest limit``, and no project keeps
its traces forever. For such a partition, before it is dropped:

- the rows that reference its spans (annotations, labeling-queue items with their reviews,
  monitors' hits: every relation to ``Span``) are deleted through Django's collector, and
  references that are ``SET_NULL`` (alignment items) are cleared — a chunk of span ids at a
  time, so memory stays bounded;
- dataset examples taken from its spans are kept (they are copies) and counted;
- traces that started in it and go on after it are noted, to be recomputed from the spans
  they keep once it is gone (and deleted, with what hangs on them, when none is left).

Then it is detached and dropped: no DELETE of its rows. The traces whose spans all went with
it ended before every project's cutoff; the per-project batches that follow delete them (and
their trace- and session-level annotations and queue items) and find their spans gone already.
What a drop removed is counted on the project's ``RetentionSweep``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import Final

from django.db import models, transaction
from django.db.models import Count, Exists, ForeignObjectRel, OuterRef

from annotations.datasets.models import DatasetExample
from annotations.models import Annotation
from annotations.queues.models import LabelingQueueItem
from evalhub.retention.selectors import retention_days
from tracing.models import Project, Span, Trace
from tracing.partitions import Partition, partition_drop, partitions_droppable
from tracing.store.rollups import traces_rollup

logger = logging.getLogger(__name__)

SPAN_CHUNK: Final = 10_000


@dataclass
class Dropped:
    """What the dropped partitions took from one project."""

    partitions: list[str] = field(default_factory=list)
    spans: int = 0
    annotations: int = 0
    queue_items: int = 0
    dataset_examples_kept: int = 0
    # Traces left with no span (they started in a dropped partition and ran on past its end).
    emptied_traces: list[int] = field(default_factory=list)


def partitions_cutoff(*, now: datetime) -> datetime | None:
    """Partitions that end before this instant hold no span any project keeps; None when a
    project keeps its traces forever (or there is no project)."""
    limits = [retention_days(project=p) for p in Project.objects.order_by("id")]
    if not limits or min(limits) <= 0:
        return None
    return now - timedelta(days=max(limits))


def _references_delete(span_pks: list[int], tally: Dropped) -> None:
    """Delete (or clear) every row that references these spans (one transaction)."""
    # Every relation, ``related_name="+"`` ones too (``_meta.related_objects`` hides those).
    for relation in Span._meta.get_fields(include_hidden=True):
        if not (relation.auto_created and relation.is_relation) or relation.concrete:
            continue
        if relation.many_to_many or not isinstance(relation, ForeignObjectRel):
            continue
        rows = relation.related_model._base_manager.filter(
            **{f"{relation.field.attname}__in": span_pks}
        )
        if relation.on_delete is models.CASCADE:
            deleted = rows.delete()[1]
            tally.annotations += deleted.get(Annotation._meta.label, 0)
            tally.queue_items += deleted.get(LabelingQueueItem._meta.label, 0)
        elif relation.on_delete is models.SET_NULL:
            rows.update(**{relation.field.attname: None})
        elif relation.on_delete is not models.DO_NOTHING:
            raise RuntimeError(f"{relation}: no rule to drop the spans it references")


def _partition_retire(part: Partition, dropped: dict[int, Dropped]) -> None:
    spans = Span.objects.filter(start_time__gte=part.start, start_time__lt=part.end)
    counts = dict(spans.order_by().values_list("project_id").annotate(n=Count("id")))
    for project_id, count in counts.items():
        tally = dropped[project_id]
        tally.partitions.append(part.name)
        tally.spans += count
        tally.dataset_examples_kept += DatasetExample.objects.filter(
            source_span_id__in=spans.filter(project_id=project_id).values("span_id")
        ).count()
    last = 0
    while True:
        chunk = list(
            spans.filter(id__gt=last).order_by("id").values_list("id", "project_id")[:SPAN_CHUNK]
        )
        if not chunk:
            break
        last = chunk[-1][0]
        with transaction.atomic():
            by_project = sorted(chunk, key=lambda row: row[1])
            for project_id, rows in groupby(by_project, key=lambda row: row[1]):
                _references_delete([pk for pk, _ in rows], dropped[project_id])
    straddling = list(
        Trace.objects.filter(start_time__lt=part.end, end_time__gte=part.end)
        .filter(Exists(spans.filter(trace_id=OuterRef("pk"))))
        .values_list("id", "project_id")
    )
    partition_drop(part.name)
    with transaction.atomic():
        traces_rollup([pk for pk, _ in straddling])
        left = set(
            Span.objects.filter(trace_id__in=[pk for pk, _ in straddling])
            .values_list("trace_id", flat=True)
            .distinct()
        )
    for pk, project_id in straddling:
        if pk not in left:
            dropped[project_id].emptied_traces.append(pk)
    logger.info(
        "retention: dropped span partition %s (%s spans of %s projects)",
        part.name, sum(counts.values()), len(counts),
    )  # fmt: skip


def partitions_retire(*, now: datetime) -> dict[int, Dropped]:
    """Drop every span partition older than every project's limit, handling what references
    its spans first. Returns what went, per project id. Not inside a transaction."""
    cutoff = partitions_cutoff(now=now)
    if cutoff is None:
        return {}
    dropped: dict[int, Dropped] = defaultdict(Dropped)
    for part in partitions_droppable(cutoff):
        _partition_retire(part, dropped)
    return dict(dropped)
