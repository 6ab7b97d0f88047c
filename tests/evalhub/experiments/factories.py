"""Builders shared by the experiments tests: the fake judge's reply of a prompt that answers in
capitals."""

from __future__ import annotations

from typing import Any


def upper_reply(body: dict[str, Any]) -> dict[str, Any]:
    question = body["messages"][-1]["content"].removeprefix("Q: ")
    answer = "Paris" if question == "capital of France" else question.upper()
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
    }
