"""Retention: delete a project's traces older than its limit, a batch at a time.

A trace goes when it ended before the cutoff (``now - days``), with all its spans; what hangs
on them is handled explicitly, and counted on the pass's ``RetentionSweep`` row and in the log:

- annotations on the deleted spans and traces (and on sessions left with no trace) are deleted;
- labeling-queue items for them are deleted (with their reviews): there is nothing left to
  label;
- dataset examples taken from the deleted spans are kept — they hold copies of the span's
  input, output and labels, and name their source by its ids — and counted;
- a session is recomputed from the traces it keeps, and deleted when none is left.

Each batch of ``BATCH_TRACES`` traces is one transaction, so no transaction holds a huge delete
and memory stays bounded however old and large the project is; an interrupted pass leaves
whole traces, and the next one deletes the rest.

On PostgreSQL the sweep first drops the span partitions older than every project's limit
(``evalhub.retention.partitions``): their spans go without a DELETE, and the batches then
delete the traces left behind.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Final

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations.datasets.models import DatasetExample
from annotations.models import Annotation
from annotations.queues.models import LabelingQueueItem
from evalhub.retention.models import RetentionPolicy, RetentionSweep
from evalhub.retention.partitions import Dropped, partitions_retire
from evalhub.retention.selectors import retention_days
from tracing.models import Project, Span, Trace
from tracing.store.hourly import trace_hours_forget_traces
from tracing.store.services import sessions_recompute

logger = logging.getLogger(__name__)

BATCH_TRACES: Final = 500
_ID_CHUNK: Final = 2000


def retention_policy_set(*, project: Project, days: int | None) -> RetentionPolicy | None:
    """Set ``project``'s own limit (0: keep forever); ``None`` falls back to the default."""
    if days is None:
        RetentionPolicy.objects.filter(project=project).delete()
        return None
    if days < 0:
        raise ValueError("days: must be 0 (keep forever) or more")
    policy, _ = RetentionPolicy.objects.update_or_create(
        project=project, defaults={"days": days, "updated_at": timezone.now()}
    )
    return policy


def _old_traces(project: Project, cutoff: datetime) -> Q:
    return Q(project=project) & (
        Q(end_time__lt=cutoff) | Q(end_time__isnull=True, start_time__lt=cutoff)
    )


def _batch_delete(sweep: RetentionSweep, trace_pks: list[int]) -> None:
    """Delete these traces and what hangs on them (one transaction); add to ``sweep``."""
    traces = Trace.objects.filter(pk__in=trace_pks)
    list(traces.select_for_update().order_by("id").values_list("id", flat=True))
    session_pks = set(
        traces.filter(session__isnull=False).values_list("session_id", flat=True).distinct()
    )
    spans = Span.objects.filter(trace_id__in=trace_pks)
    span_rows = list(spans.values_list("id", "span_id"))
    span_ids = [span_id for _, span_id in span_rows]
    # Sessions whose every trace goes with this batch go too.
    kept = Trace.objects.filter(session_id__in=session_pks).exclude(pk__in=trace_pks)
    emptied = sorted(session_pks - set(kept.values_list("session_id", flat=True)))
    # One statement per kind of target (a row has one): an OR across them, or a join from the
    # results to the spans, made PostgreSQL read every result of the store for each batch.
    targets = [Q(trace_id__in=trace_pks)]
    if span_rows:
        targets.append(Q(span_id__in=[pk for pk, _ in span_rows]))
    if emptied:
        targets.append(Q(session_id__in=emptied))
    for on_them in targets:
        sweep.annotations += (
            Annotation.objects.filter(on_them).delete()[1].get(Annotation._meta.label, 0)
        )
        sweep.queue_items += (
            LabelingQueueItem.objects.filter(on_them)
            .delete()[1]
            .get(LabelingQueueItem._meta.label, 0)
        )
    for start in range(0, len(span_ids), _ID_CHUNK):
        sweep.dataset_examples_kept += DatasetExample.objects.filter(
            source_span_id__in=span_ids[start : start + _ID_CHUNK]
        ).count()
    trace_hours_forget_traces(trace_pks)
    sweep.spans += spans.only("id").delete()[1].get(Span._meta.label, 0)
    sweep.traces += traces.only("id").delete()[1].get(Trace._meta.label, 0)
    sweep.sessions += len(emptied)
    sessions_recompute(session_pks)
    sweep.save()


def retention_apply(
    *,
    project: Project,
    days: int,
    now: datetime | None = None,
    batch: int = BATCH_TRACES,
    dropped: Dropped | None = None,
) -> RetentionSweep:
    """Delete ``project``'s traces that ended more than ``days`` days before ``now``. Must not
    be called inside a transaction (each batch commits on its own). ``dropped``: what span
    partitions dropped just before took from the project (counted on its sweep)."""
    if days <= 0:
        raise ValueError("days: must be 1 or more")
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    dropped = dropped or Dropped()
    sweep = RetentionSweep.objects.create(
        project=project,
        days=days,
        cutoff=cutoff,
        partitions=",".join(dropped.partitions),
        spans=dropped.spans,
        annotations=dropped.annotations,
        queue_items=dropped.queue_items,
        dataset_examples_kept=dropped.dataset_examples_kept,
    )
    # Traces whose spans all went with a dropped partition though they ended after its end.
    for start in range(0, len(dropped.emptied_traces), batch):
        with transaction.atomic():
            _batch_delete(sweep, dropped.emptied_traces[start : start + batch])
    old = Trace.objects.filter(_old_traces(project, cutoff)).order_by("id")
    last = 0
    while True:
        pks = list(old.filter(pk__gt=last).values_list("id", flat=True)[:batch])
        if not pks:
            break
        last = pks[-1]
        with transaction.atomic():
            _batch_delete(sweep, pks)
    sweep.finished_at = timezone.now()
    sweep.save(update_fields=["finished_at"])
    if sweep.traces or sweep.spans:
        logger.info(
            "retention: project %s, %s days (before %s): deleted %s traces, %s spans, "
            "%s sessions, %s annotations, %s labeling-queue items; kept %s dataset examples "
            "taken from deleted spans; span partitions dropped: %s",
            project.name, days, cutoff.isoformat(), sweep.traces, sweep.spans, sweep.sessions,
            sweep.annotations, sweep.queue_items, sweep.dataset_examples_kept,
            sweep.partitions or "none",
        )  # fmt: skip
    return sweep


def retention_sweep(*, now: datetime | None = None) -> list[RetentionSweep]:
    """One pass over every project with a limit (its own, else the default): first the span
    partitions older than every limit (PostgreSQL), then each project's batches."""
    now = now or timezone.now()
    dropped = partitions_retire(now=now)
    sweeps = []
    for project in Project.objects.order_by("id"):
        days = retention_days(project=project)
        if days <= 0:
            continue
        has_old = Trace.objects.filter(_old_traces(project, now - timedelta(days=days)))
        if project.pk not in dropped and not has_old.exists():
            continue
        sweeps.append(
            retention_apply(project=project, days=days, now=now, dropped=dropped.get(project.pk))
        )
    return sweeps
