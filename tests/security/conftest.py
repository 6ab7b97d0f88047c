"""Fixtures for the security suite: the fake OpenAI-compatible server of the evaluator hub."""

from tests.evalhub.fake_openai import fake_openai  # noqa: F401
