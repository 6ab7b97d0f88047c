"""Disagreements routed as labels arrive: results written (people's labels, a judge's results)
→ the routings of the tasks on those projects and names → their job, after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from django.db import transaction
from django.dispatch import receiver

from annotations.models import Annotation
from annotations.store.signals import annotations_written
from evalhub.calibration.models import DisagreementRouting
from evalhub.calibration.routing import ROUTE, routings_for
from evalhub.core.jobs import job_send

_FK = {"SPAN": "span_id", "TRACE": "trace_id", "SESSION": "session_id"}


@receiver(annotations_written, dispatch_uid="calibration.disagreements")
def _on_annotations_written(sender: Any, annotations: Sequence[Annotation], **kwargs: Any) -> None:
    projects = {a.project_id for a in annotations}
    if (
        not projects
        or not DisagreementRouting.objects.filter(task__project_id__in=projects).exists()
    ):
        return  # one query a write, none of the rest, while nothing is routed
    written = [
        (a.project_id, a.name, a.target_kind, getattr(a, _FK[a.target_kind]))
        for a in annotations
        if a.label is not None and a.target_kind in _FK and getattr(a, _FK[a.target_kind])
    ]
    for routing_id, targets in routings_for(written=written).items():
        transaction.on_commit(partial(job_send, ROUTE, routing_id, targets))
