"""Writes the demo data: spans through ``spans_ingest``, evaluations through
``annotations_upsert``. Running it again changes nothing that is already there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import batched

from django.utils import timezone

from annotations.models import AnnotationSource
from annotations.services import AnnotationInput, annotations_upsert
from tracing.demo.generate import DEMO_SEED, DemoTrace, demo_generate
from tracing.models import Project
from tracing.services import spans_ingest

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
    annotations = 0
    for source, items in _annotation_inputs(generated).items():
        annotations += len(annotations_upsert(items=items, source=source, project=stored))
    return DemoSeedResult(
        project=project,
        traces=len(generated),
        spans=spans,
        spans_inserted=inserted,
        annotations=annotations,
    )


def _annotation_inputs(traces: list[DemoTrace]) -> dict[str, list[AnnotationInput]]:
    """Evaluator results as if logged through the API; human labels as if made in the app."""
    by_source: dict[str, list[AnnotationInput]] = {
        AnnotationSource.API: [],
        AnnotationSource.APP: [],
    }
    for trace in traces:
        for item in trace.annotations:
            source = (
                AnnotationSource.APP if item.annotator_kind == "HUMAN" else AnnotationSource.API
            )
            by_source[source].append(
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
            )
    return by_source
