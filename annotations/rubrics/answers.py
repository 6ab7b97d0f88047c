"""The one check of an answer under a rubric: what a person may store as a label, a score or a
text for an annotation config. The annotate form and labeling queues both call it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from annotations.models import AnnotationConfig, AnnotationConfigKind
from evalhub.core.fields import FieldInvalid


class AnswerInvalid(FieldInvalid):
    """An answer the rubric does not allow; ``field`` is label, score or explanation."""


@dataclass(frozen=True, slots=True)
class Answer:
    label: str | None
    score: float | None
    explanation: str | None


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> float | None:
    """A number given as a number or as text (None: not one; booleans are not numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def rubric_answer(
    config: AnnotationConfig,
    *,
    label: Any = None,
    score: Any = None,
    explanation: Any = None,
    text_required: bool = True,
) -> Answer | None:
    """The (label, score, explanation) to store for an answer under ``config``.

    CATEGORICAL: ``label`` must be one of the rubric's values and takes that value's score.
    CONTINUOUS: ``score`` (a number, or text of one) must be finite and within the bounds.
    FREEFORM: the text is ``explanation``; empty is refused, or with ``text_required=False``
    answers None (nothing to store). Notes in ``explanation`` go along with the other kinds.
    Raises ``AnswerInvalid`` naming the field.
    """
    note = explanation.strip() if isinstance(explanation, str) and explanation.strip() else None
    if config.kind == AnnotationConfigKind.CATEGORICAL:
        scores = {value["label"]: value.get("score") for value in config.values}
        if _is_empty(label):
            raise AnswerInvalid(field="label", message="choose a value")
        if not isinstance(label, str) or label not in scores:
            raise AnswerInvalid(
                field="label", message=f"{label!r} is not one of {', '.join(scores)}"
            )
        return Answer(label, scores[label], note)
    if config.kind == AnnotationConfigKind.CONTINUOUS:
        if _is_empty(score):
            raise AnswerInvalid(field="score", message="enter a number")
        number = _number(score)
        if number is None:
            raise AnswerInvalid(field="score", message="must be a number")
        if not math.isfinite(number):
            raise AnswerInvalid(field="score", message="must be a finite number")
        if config.lower_bound is not None and number < config.lower_bound:
            raise AnswerInvalid(field="score", message=f"must be at least {config.lower_bound:g}")
        if config.upper_bound is not None and number > config.upper_bound:
            raise AnswerInvalid(field="score", message=f"must be at most {config.upper_bound:g}")
        return Answer(None, number, note)
    if _is_empty(explanation):
        if text_required:
            raise AnswerInvalid(field="explanation", message="must not be empty")
        return None
    if not isinstance(explanation, str):
        raise AnswerInvalid(field="explanation", message="must be text")
    return Answer(None, None, note)
