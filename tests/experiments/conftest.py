"""Fixtures for experiments: the fake OpenAI-compatible server and a provider on it, with a
fresh per-test limiter (the evaluator hub's)."""

from tests.evalhub.conftest import _fresh_default_limiter, fast_retry, provider  # noqa: F401
from tests.evalhub.fake_openai import fake_openai  # noqa: F401
