"""Writes the demo data: spans through ``spans_ingest``, human labels through
``annotations_upsert``, and the LLM evaluations as the results of the demo's task (its
evaluators made from the template library, its run listing what it evaluated) through the
online-tasks product's ``demo_task_seed``. Running it again changes nothing that is already
there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import batched
from typing import TYPE_CHECKING

from django.utils import timezone

from annotations.models import AnnotationSource
from annotations.store.services import AnnotationInput, annotations_upsert
from tracing.demo.generate import DEMO_SEED, DemoTrace, demo_generate
from tracing.models import Project
from tracing.store.services import spans_ingest

if TYPE_CHECKING:
    from evalhub.tasks.demo import DemoResult

DEFAULT_PROJECT = "demo"
DEFAULT_TRACES = 300
DEFAULT_DAYS = 7
_TRACES_PER_BATCH = 50


@dataclass(frozen=True, slots=True)
class DemoSeedResult:
    project: str
    traces: int
    spans: int
    spans_inserted: int
    annotations: int


def demo_seed(
    *,
    traces: int = DEFAULT_TRACES,
    project: str = DEFAULT_PROJECT,
    days: int = DEFAULT_DAYS,
    seed: int = DEMO_SEED,
    now: datetime | None = None,
) -> DemoSeedResult:
    """Store the demo traces and their evaluations in ``project`` (created when missing).

    Idempotent: spans already stored are kept as they are (so a later run does not move them
    in time), and annotations are upserted by (span, name).
    """
    project = project.strip()
    if not project:
        raise ValueError("project must not be empty")
    generated = demo_generate(
        traces=traces, project=project, days=days, now=now or timezone.now(), seed=seed
    )
    spans = inserted = 0
    for batch in batched(generated, _TRACES_PER_BATCH):
        records = [record for trace in batch for record in trace.records]
        result = spans_ingest(records=records, default_project=project)
        spans += result.received
        inserted += result.inserted
    stored = Project.objects.get(name=project)
    labels = _human_labels(generated)
    annotations = len(annotations_upsert(items=labels, source=AnnotationSource.APP, project=stored))
    # The demo calls the online-tasks product (above this layer) for its task's results.
    from evalhub.tasks.demo import demo_task_seed

    annotations += demo_task_seed(project=stored, results=_llm_results(generated)).annotations
    return DemoSeedResult(
        project=project,
        traces=len(generated),
        spans=spans,
        spans_inserted=inserted,
        annotations=annotations,
    )


def _human_labels(traces: list[DemoTrace]) -> list[AnnotationInput]:
    """The human labels, as if made in the app."""
    return [
        AnnotationInput(
            target_kind="SPAN",
            target_id=item.span_id,
            name=item.name,
            annotator_kind=item.annotator_kind,
            label=item.label,
            score=item.score,
            explanation=item.explanation,
            metadata=dict(item.metadata),
        )
        for trace in traces
        for item in trace.annotations
        if item.annotator_kind == "HUMAN"
    ]


def _llm_results(traces: list[DemoTrace]) -> list[DemoResult]:
    """The LLM evaluations, for the demo's task."""
    from evalhub.tasks.demo import DemoResult

    return [
        DemoResult(
            span_id=item.span_id,
            evaluator=item.name,
            label=item.label,
            score=item.score,
            explanation=item.explanation,
            model=str(item.metadata.get("model", "")),
        )
        for trace in traces
        for item in trace.annotations
        if item.annotator_kind != "HUMAN"
    ]
