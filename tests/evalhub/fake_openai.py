"""The fake OpenAI-compatible judge of the tests: ``evalhub.fake_judge`` (shipped with the app,
``python -m evalhub.fake_judge``) as a threaded server, strict the way the tests expect — one
API key (``VALID_KEY``), three model names (``KNOWN_MODELS``) — and answering "correct" unless
told otherwise with ``answer(...)`` (``answer(None)``: the varied labels users get).

Use the ``fake_openai`` fixture: ``fake_openai.base_url`` goes in a provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from evalhub.fake_judge import Behavior, FakeJudge

VALID_KEY = "sk-test-fake-0123456789abcdef"
KNOWN_MODELS = frozenset({"judge-small", "judge-large", "gpt-4o-mini"})


class FakeOpenAI(FakeJudge):
    """The judge as the tests use it: ``VALID_KEY`` and ``KNOWN_MODELS`` only, "correct"."""

    def __init__(self) -> None:
        super().__init__(
            keys={VALID_KEY},
            models=KNOWN_MODELS,
            label="correct",
            explanation="The answer matches the context.",
        )


def completion(
    body: dict[str, Any],
    *,
    content: str | None = None,
    verdict: dict[str, Any] | None = None,
    tokens: tuple[int, int] = (10, 5),
) -> dict[str, Any]:
    """A chat completion answering ``body`` (what a ``FakeOpenAI.reply`` returns): ``verdict``
    as the arguments of a call of the request's tool when it has tools, else as JSON content;
    or the text ``content``. ``tokens``: the prompt's and the completion's token counts."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if verdict is not None:
        arguments = json.dumps(verdict)
        if body.get("tools"):
            function = {"name": body["tools"][0]["function"]["name"], "arguments": arguments}
            message["tool_calls"] = [{"id": "c1", "type": "function", "function": function}]
        else:
            message["content"] = arguments
    prompt, completed = tokens
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", ""),
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completed,
            "total_tokens": prompt + completed,
        },
    }


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server; ``.base_url`` ends in ``/v1``."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["KNOWN_MODELS", "VALID_KEY", "Behavior", "FakeOpenAI", "completion", "fake_openai"]
