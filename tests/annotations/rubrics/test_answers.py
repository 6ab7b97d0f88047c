"""annotations.rubrics.answers: the one check of an answer under a rubric."""

import math

import pytest

from annotations.models import AnnotationConfig
from annotations.rubrics.answers import Answer, AnswerInvalid, rubric_answer

CATEGORICAL = AnnotationConfig(
    name="quality", kind="CATEGORICAL", values=[{"label": "good", "score": 1}, {"label": "bad"}]
)
CONTINUOUS = AnnotationConfig(name="relevance", kind="CONTINUOUS", lower_bound=0, upper_bound=10)
FREEFORM = AnnotationConfig(name="notes", kind="FREEFORM")


def test_a_label_takes_its_values_score_and_keeps_a_note():
    assert rubric_answer(CATEGORICAL, label="good", explanation=" fine ") == Answer(
        "good", 1, "fine"
    )
    assert rubric_answer(CATEGORICAL, label="bad") == Answer("bad", None, None)


def test_a_score_may_be_text_of_a_number_within_the_bounds():
    assert rubric_answer(CONTINUOUS, score="7.5") == Answer(None, 7.5, None)
    assert rubric_answer(CONTINUOUS, score=0) == Answer(None, 0.0, None)


def test_text_is_the_explanation_and_may_be_left_out_where_optional():
    assert rubric_answer(FREEFORM, explanation=" ok ") == Answer(None, None, "ok")
    assert rubric_answer(FREEFORM, explanation="  ", text_required=False) is None


@pytest.mark.parametrize(
    ("config", "answer", "field", "message"),
    [
        (CATEGORICAL, {}, "label", "choose a value"),
        (CATEGORICAL, {"label": "meh"}, "label", "'meh' is not one of good, bad"),
        (CATEGORICAL, {"label": ["good"]}, "label", "['good'] is not one of good, bad"),
        (CONTINUOUS, {"score": ""}, "score", "enter a number"),
        (CONTINUOUS, {"score": "x"}, "score", "must be a number"),
        (CONTINUOUS, {"score": True}, "score", "must be a number"),
        (CONTINUOUS, {"score": math.nan}, "score", "must be a finite number"),
        (CONTINUOUS, {"score": -1}, "score", "must be at least 0"),
        (CONTINUOUS, {"score": "11"}, "score", "must be at most 10"),
        (FREEFORM, {"explanation": " "}, "explanation", "must not be empty"),
        (FREEFORM, {"explanation": 3}, "explanation", "must be text"),
    ],
)
def test_answers_the_rubric_does_not_allow_are_refused_naming_the_field(
    config, answer, field, message
):
    with pytest.raises(AnswerInvalid) as refused:
        rubric_answer(config, **answer)
    assert (refused.value.field, refused.value.message) == (field, message)
