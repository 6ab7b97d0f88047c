"""The fake OpenAI-compatible judge of the tests: ``evalhub.fake_judge`` (shipped with the app,
``python -m evalhub.fake_judge``) as a threaded server, strict the way the tests expect — one
API key (``VALID_KEY``), three model names (``KNOWN_MODELS``) — and answering "correct" unless
told otherwise with ``answer(...)`` (``answer(None)``: the varied labels users get).

Use the ``fake_openai`` fixture: ``fake_openai.base_url`` goes in a provider.
"""

from __future__ import annotations

from collections.abc import Iterator

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


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI-compatible server; ``.base_url`` ends in ``/v1``."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["KNOWN_MODELS", "VALID_KEY", "Behavior", "FakeOpenAI", "fake_openai"]
