"""An evaluation result as an annotation: the one rule, used by the online tasks' engine (and so
by backfills, manual runs and continuous runs alike)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annotations.naming import result_name
from annotations.store.services import AnnotationInput
from evalhub.evaluators.running import EvaluationResult


def result_annotation(
    *,
    result: EvaluationResult,
    evaluator_name: str,
    annotator_kind: str,
    target_kind: str,
    target_id: str,
    metadata: Mapping[str, Any] | None = None,
) -> AnnotationInput:
    """The annotation ``result`` is written as: named after the evaluator
    (``annotations.naming.result_name``), by an LLM or code annotator. A failed evaluation is
    recorded too: no label or score, the error as explanation (``error: …``) and in
    ``metadata.error``. ``metadata`` adds to what the result keeps (``annotation_metadata``);
    empty values are left out."""
    data = {**result.annotation_metadata(), **(metadata or {})}
    explanation = result.explanation if result.ok else f"error: {result.error}"
    if result.ok and result.label is None and result.score is None and not explanation:
        explanation = ""
    return AnnotationInput(
        target_kind=target_kind,
        target_id=target_id,
        name=result_name(evaluator_name),
        annotator_kind=annotator_kind,
        label=result.label if result.ok else None,
        score=result.score if result.ok else None,
        explanation=explanation,
        metadata={k: v for k, v in data.items() if v is not None},
    )
