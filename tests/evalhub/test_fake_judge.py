"""``python -m evalhub.fake_judge``, as a user runs it: the ``openai`` client with any key and
model, every output mode an evaluator uses, varied labels that repeat for the same prompt."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import openai
import pytest

from evalhub.evaluators.judge import judge_parse, judge_request
from evalhub.fake_judge import offered_labels, varied_label

LABELS = ["relevant", "partly relevant", "irrelevant"]


def _serve(*args: str) -> Iterator[str]:
    judge = subprocess.Popen(
        [sys.executable, "-m", "evalhub.fake_judge", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert judge.stdout is not None
        url = judge.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1"), url
        yield url
    finally:
        judge.terminate()
        judge.wait(timeout=10)


@pytest.fixture
def judge_url() -> Iterator[str]:
    yield from _serve()


def _ask(url: str, mode: str, question: str, *, key: str = "any key", model: str = "any-model"):  # type: ignore[no-untyped-def]
    request = judge_request(
        template="Is this answer relevant to {question}?",
        values={"question": question},
        system_prompt="You judge answers.",
        labels=LABELS,
        mode=mode,
        explanations=True,
    )
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
    kwargs = {}
    if request.tools:
        kwargs = {"tools": request.tools, "tool_choice": request.tool_choice}
    if request.response_format:
        kwargs = {"response_format": request.response_format}
    return client.chat.completions.create(model=model, messages=request.messages, **kwargs)


@pytest.mark.parametrize("mode", ["tool", "json", "text"])
def test_any_key_and_model_get_a_label_among_the_choices(judge_url, mode):
    labels = set()
    for n in range(24):
        completion = _ask(judge_url, mode, f"question {n}", key=f"sk-{n}", model=f"model-{n}")
        message = completion.choices[0].message
        calls = [
            {"name": c.function.name, "arguments": c.function.arguments}
            for c in message.tool_calls or []
        ]
        answer = judge_parse(
            content=message.content, tool_calls=calls, labels=LABELS, mode=mode, explanations=True
        )
        assert answer.explanation
        assert completion.usage.total_tokens > 0
        labels.add(answer.label)
    assert labels == set(LABELS)  # varied: every choice comes up over 24 prompts


def test_the_same_prompt_gets_the_same_answer(judge_url):
    first = _ask(judge_url, "json", "what is the refund policy?").choices[0].message.content
    again = _ask(judge_url, "json", "what is the refund policy?").choices[0].message.content
    assert json.loads(first) == json.loads(again)


def test_label_pins_the_answer_and_key_and_model_restrict_who_is_answered():
    for url in _serve("--label", "irrelevant", "--key", "sk-right", "--model", "judge"):
        for n in range(5):
            content = _ask(url, "json", f"q{n}", key="sk-right", model="judge")
            assert json.loads(content.choices[0].message.content)["label"] == "irrelevant"
        with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
            _ask(url, "json", "q", key="sk-wrong", model="judge")
        with pytest.raises(openai.NotFoundError, match="model `other` does not exist"):
            _ask(url, "json", "q", key="sk-right", model="other")


def test_offered_labels_are_read_from_tools_schemas_or_the_prompt():
    for mode in ("tool", "json", "text"):
        request = judge_request(
            template="Judge {x}",
            values={"x": "y"},
            system_prompt="",
            labels=LABELS,
            mode=mode,
            explanations=False,
        )
        body = {
            "messages": request.messages,
            "tools": request.tools,
            "response_format": request.response_format,
        }
        assert offered_labels(body) == LABELS
        assert varied_label(body)[0] in LABELS
    # No choices offered (a connection test): one of the default labels.
    assert varied_label({"messages": [{"role": "user", "content": "Say ok"}]})[0] in {
        "correct",
        "incorrect",
    }
