"""The results on demo traces: an LLM judge's "Correctness" and "Hallucination" on answers, and
a support lead's "Quality" label on some conversations."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from tracing.demo import content

EVALUATOR_MODEL = "gpt-4o"


@dataclass(frozen=True, slots=True)
class DemoAnnotation:
    """An evaluation result or human label on one span, as ``annotations_upsert`` takes it."""

    span_id: str
    name: str
    annotator_kind: str
    label: str
    score: float
    explanation: str
    metadata: dict[str, Any]


def judge_annotations(
    rng: random.Random,
    *,
    span_id: str,
    rag: bool,
    hallucinated: bool,
    claim: str,
    docs: list[tuple[content.Document, float]],
) -> list[DemoAnnotation]:
    """LLM-judged "Correctness" on most answers, "Hallucination" on most RAG answers."""
    out: list[DemoAnnotation] = []
    meta = {"model": EVALUATOR_MODEL, "evaluator": "demo"}
    if rng.random() < 0.7:
        correct = rng.random() < (0.15 if hallucinated else 0.93)
        out.append(
            DemoAnnotation(
                span_id=span_id,
                name="Correctness",
                annotator_kind="LLM",
                label="correct" if correct else "incorrect",
                score=1.0 if correct else 0.0,
                explanation=rng.choice(
                    content.CORRECT_EXPLANATIONS if correct else content.INCORRECT_EXPLANATIONS
                ),
                metadata=meta,
            )
        )
    if rag and rng.random() < 0.85:
        detected = hallucinated and rng.random() < 0.9
        sources = ", ".join(doc.id for doc, _ in docs)
        explanation = (
            f'The answer says "{claim}", which none of the retrieved documents ({sources}) support.'
            if detected
            else f"Every statement in the answer is supported by the retrieved documents "
            f"({sources})."
        )
        out.append(
            DemoAnnotation(
                span_id=span_id,
                name="Hallucination",
                annotator_kind="LLM",
                label="hallucinated" if detected else "factual",
                score=0.0 if detected else 1.0,
                explanation=explanation,
                metadata=meta,
            )
        )
    return out


def review_annotation(
    rng: random.Random, *, root_span_id: str, failed: bool, hallucinated: bool
) -> DemoAnnotation | None:
    """A support lead's "Quality" label on some conversations' root spans."""
    if rng.random() >= 0.12:
        return None
    if failed:
        good, note = False, content.HUMAN_BAD[2]
    elif hallucinated:
        good, note = False, content.HUMAN_BAD[1]
    else:
        good = rng.random() < 0.9
        note = rng.choice(content.HUMAN_GOOD) if good else content.HUMAN_BAD[0]
    return DemoAnnotation(
        span_id=root_span_id,
        name="Quality",
        annotator_kind="HUMAN",
        label="good" if good else "bad",
        score=1.0 if good else 0.0,
        explanation=note,
        metadata={"reviewer": "support-lead"},
    )
