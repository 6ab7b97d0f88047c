"""Builders shared by the experiments tests: the fake judge's reply of a prompt that answers in
capitals."""

from __future__ import annotations

from typing import Any

from tests.evalhub.fake_openai import completion


def upper_reply(body: dict[str, Any]) -> dict[str, Any]:
    question = body["messages"][-1]["content"].removeprefix("Q: ")
    answer = "Paris" if question == "capital of France" else question.upper()
    return completion(body, content=answer, tokens=(10, 2))
