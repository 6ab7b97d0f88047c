import json

import pytest

from evalhub.evaluators.definition import EvaluatorConfigError, config_parse
from evalhub.evaluators.judge import (
    TOOL_NAME,
    TemplateVariableMissing,
    UnparseableAnswer,
    judge_parse,
    judge_request,
    snap_label,
    template_render,
    template_variables,
)
from evalhub.evaluators.library import TEMPLATES

LABELS = ["correct", "incorrect"]


def test_template_variables_and_render_keep_literal_braces():
    template = 'Q: {question}\nA: {answer}\nJSON like {{"a": 1}} and {question} again'
    assert template_variables(template) == ["question", "answer"]
    rendered = template_render(template, {"question": "2+2?", "answer": "{4}"})
    assert rendered == 'Q: 2+2?\nA: {4}\nJSON like {"a": 1} and 2+2? again'


def test_render_never_formats_attributes():
    # str.format would resolve {x.__class__}; the renderer treats it as plain text.
    assert template_render("{x.__class__} {x}", {"x": "v"}) == "{x.__class__} v"


def test_render_names_the_missing_variable():
    with pytest.raises(TemplateVariableMissing) as info:
        template_render("{input} vs {reference}", {"input": "a"})
    assert str(info.value) == "missing variable {reference}"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("correct", "correct"),
        ("  INCORRECT. ", "incorrect"),
        ("The answer is correct because it cites the policy.", "correct"),
        ("I think this is Incorrect", "incorrect"),
        ('"correct"', "correct"),
    ],
)
def test_text_snaps_to_exactly_one_choice(text, label):
    assert snap_label(text, LABELS) == label


@pytest.mark.parametrize(
    "text",
    ["It is partly correct and partly incorrect", "maybe", "", "corrected version"],
)
def test_text_with_none_or_several_choices_is_unparseable(text):
    with pytest.raises(UnparseableAnswer):
        snap_label(text, LABELS)


def test_a_choice_inside_a_longer_choice_is_not_a_second_answer():
    labels = ["relevant", "not relevant"]
    assert snap_label("Verdict: not relevant", labels) == "not relevant"
    assert snap_label("Verdict: relevant", labels) == "relevant"
    with pytest.raises(UnparseableAnswer):
        snap_label("relevant for Q1, not relevant for Q2", labels)


def test_tool_mode_request_has_an_enum_schema_and_forces_the_call():
    request = judge_request(
        template="Judge {output}",
        values={"output": "x"},
        system_prompt="Be strict.",
        labels=LABELS,
        mode="tool",
        explanations=True,
    )
    assert request.messages[0] == {"role": "system", "content": "Be strict."}
    assert request.messages[1]["content"].startswith("Judge x")
    function = request.tools[0]["function"]
    assert function["name"] == TOOL_NAME
    assert function["parameters"]["properties"]["label"]["enum"] == LABELS
    assert function["parameters"]["required"] == ["explanation", "label"]
    assert request.tool_choice == {"type": "function", "function": {"name": TOOL_NAME}}
    assert request.response_format is None


def test_json_mode_request_without_explanations():
    request = judge_request(
        template="Judge {output}",
        values={"output": "x"},
        system_prompt="",
        labels=LABELS,
        mode="json",
        explanations=False,
    )
    assert len(request.messages) == 1
    schema = request.response_format["json_schema"]["schema"]
    assert set(schema["properties"]) == {"label"}
    assert request.tools is None


def test_parse_tool_call_canonicalises_the_label_case():
    answer = judge_parse(
        content=None,
        tool_calls=[
            {"name": TOOL_NAME, "arguments": json.dumps({"label": "Correct", "explanation": "ok"})}
        ],
        labels=LABELS,
        mode="tool",
        explanations=True,
    )
    assert (answer.label, answer.explanation) == ("correct", "ok")


def test_parse_tool_call_with_a_label_outside_the_choices_is_unparseable():
    with pytest.raises(UnparseableAnswer, match="not one of the choices"):
        judge_parse(
            content=None,
            tool_calls=[{"name": TOOL_NAME, "arguments": '{"label": "maybe"}'}],
            labels=LABELS,
            mode="tool",
            explanations=False,
        )


def test_parse_json_in_a_code_fence():
    answer = judge_parse(
        content='```json\n{"explanation": "fine", "label": "incorrect"}\n```',
        tool_calls=[],
        labels=LABELS,
        mode="json",
        explanations=True,
    )
    assert answer.label == "incorrect" and answer.explanation == "fine"


def test_parse_text_with_explanation_reads_the_label_line():
    answer = judge_parse(
        content="EXPLANATION: It says correct things but the number is wrong.\nLABEL: incorrect",
        tool_calls=[],
        labels=LABELS,
        mode="text",
        explanations=True,
    )
    assert answer.label == "incorrect"
    assert answer.explanation == "It says correct things but the number is wrong."


def test_parse_empty_answer_is_unparseable():
    with pytest.raises(UnparseableAnswer, match="empty"):
        judge_parse(content="", tool_calls=[], labels=LABELS, mode="text", explanations=False)


def test_config_requires_known_sources_and_distinct_choices():
    base = {
        "kind": "LLM",
        "template": "{input} {context}",
        "choices": [{"label": "a", "score": 1}, {"label": "b", "score": 0}],
    }
    with pytest.raises(EvaluatorConfigError, match=r"\{context\}: unknown source 'context'"):
        config_parse(base)
    config = config_parse({**base, "variables": {"context": "documents"}})
    assert config.mapping() == {"input": "input", "context": "documents"}
    with pytest.raises(EvaluatorConfigError, match="distinct"):
        config_parse(
            {
                **base,
                "variables": {"context": "documents"},
                "choices": [{"label": "A"}, {"label": "a"}],
            }
        )


def test_library_has_the_required_templates_and_each_is_a_valid_definition():
    keys = {t.key for t in TEMPLATES}
    assert {
        "hallucination",
        "qa_correctness",
        "document_relevance",
        "toxicity",
        "summarization",
        "code_correctness",
        "user_frustration",
        "sql_generation",
        "tool_calling",
        "tool_selection",
        "citation_accuracy",
        "reference_match",
    } <= keys
    assert len(TEMPLATES) >= 12
    for template in TEMPLATES:
        config = config_parse(template.config())
        assert len(config.choices) >= 2
        assert all(c.score is not None for c in config.choices)
