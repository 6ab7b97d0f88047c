"""Shared set-up for the monitor tests: spans with judge labels placed in given windows."""

from __future__ import annotations

from datetime import datetime, timedelta

from annotations.models import AnnotatorKind
from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tracing.models import Span


def labelled_spans(
    *,
    start: datetime,
    total: int,
    incorrect: int,
    project: str = "default",
    name: str = "correctness",
    model: str = "gpt-4o-mini",
    seconds: float = 200.0,
    human: bool = False,
) -> list[Span]:
    """``total`` LLM spans spread over ``seconds`` from ``start``, the first ``incorrect`` of
    them judged 'incorrect' and the rest 'correct' (scores 0 and 1)."""
    step = seconds / max(total, 1)
    records = [
        factories.span_record(
            kind="LLM",
            name="llm",
            start=start + timedelta(seconds=index * step),
            attributes=factories.llm_attributes(model=model),
            status_code="ERROR" if index < incorrect else "OK",
            latency_ms=100.0 + index,
        )
        for index in range(total)
    ]
    spans = factories.ingest(records, project=project)
    annotations_upsert(
        items=[
            AnnotationInput(
                target_kind="SPAN",
                target_id=record.span_id,
                name=name,
                annotator_kind=AnnotatorKind.HUMAN if human else AnnotatorKind.LLM,
                label="incorrect" if index < incorrect else "correct",
                score=0.0 if index < incorrect else 1.0,
                identifier="tester" if human else "",
            )
            for index, record in enumerate(records)
        ]
    )
    return spans


PREVIEW_STEP = 30 * 86400 // 120  # the preview's window every 6 hours


def preview_window_start(now: datetime, back: int) -> datetime:
    """A minute into the preview window ``back`` steps before the last one, so that spans
    spread over a few minutes from there stay in that one window whatever the time of day."""
    from evalhub.monitors.checks import window_end_floor

    last_end = window_end_floor(now, PREVIEW_STEP)
    return last_end - timedelta(seconds=PREVIEW_STEP * (back + 1) - 60)
