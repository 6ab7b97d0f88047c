"""The automation hook: results written → the project's automations, after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from annotations.models import Annotation
from annotations.store.signals import annotations_written
from evalhub.core.jobs import job_send
from evalhub.monitors.automations import AUTOMATIONS_APPLY
from evalhub.monitors.models import Automation
from tracing.models import Span


@receiver(annotations_written, dispatch_uid="monitors.automations")
def _on_annotations_written(sender: Any, annotations: Sequence[Annotation], **kwargs: Any) -> None:
    projects = {a.project_id for a in annotations}
    if not projects:
        return
    active = set(
        Automation.objects.filter(project_id__in=projects, enabled=True)
        .values_list("project_id", flat=True)
        .distinct()
    )
    if not active:
        return
    by_project: dict[int, set[int]] = {}
    traces: dict[int, set[int]] = {}
    for annotation in annotations:
        if annotation.project_id not in active:
            continue
        if annotation.span_id is not None:
            by_project.setdefault(annotation.project_id, set()).add(annotation.span_id)
        elif annotation.trace_id is not None:
            traces.setdefault(annotation.project_id, set()).add(annotation.trace_id)
    for project_id, trace_pks in traces.items():
        roots = Span.objects.filter(trace_id__in=trace_pks, parent_id__isnull=True)
        by_project.setdefault(project_id, set()).update(roots.values_list("pk", flat=True))

    for project_id, span_pks in by_project.items():
        ids = sorted(span_pks)
        transaction.on_commit(partial(job_send, AUTOMATIONS_APPLY, project_id, ids))
