"""Labelled items for calibration tests: people's labels and a judge's results on spans."""

from __future__ import annotations

from datetime import datetime, timedelta

from annotations.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span

Row = tuple[str, str | None, int]  # (person's label, judge's label or None, judge's version)


def labelled_spans(
    rows: list[Row],
    *,
    name: str = "Correctness",
    project: str = "default",
    start: datetime | None = None,
    step: timedelta = timedelta(hours=6),
    person: str = "alice",
) -> list[Span]:
    """One trace per row (items ``step`` apart from ``start``): the person's label on its LLM
    span and, when given, the judge's result there, naming the version that produced it."""
    start = start or factories.BASE_TIME
    spans = []
    items = []
    for index, (human, judge, version) in enumerate(rows):
        llm = factories.trace(project=project, start=start + index * step)[2]
        spans.append(llm)
        items.append(AnnotationInput("SPAN", llm.span_id, name, label=human, identifier=person))
        if judge is not None:
            items.append(
                AnnotationInput(
                    "SPAN",
                    llm.span_id,
                    name,
                    annotator_kind="LLM",
                    label=judge,
                    metadata={"evaluator": name, "version": version},
                )
            )
    annotations_upsert(items=items)
    return spans
