"""Fixtures for the evaluator hub: the fake judge server, providers, limiters, fast retries."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from evalhub.providers.limiter import LocalLimiter, RedisLimiter
from evalhub.providers.llm import RetryPolicy
from evalhub.providers.models import Provider
from evalhub.providers.services import provider_create
from tests.evalhub.fake_openai import VALID_KEY, FakeOpenAI, fake_openai  # noqa: F401

REDIS_URL = "redis://127.0.0.1:6379/5"


@pytest.fixture
def provider(db, fake_openai: FakeOpenAI) -> Provider:  # noqa: F811
    return provider_create(
        name="fake",
        kind="compatible",
        base_url=fake_openai.base_url,
        api_key=VALID_KEY,
        default_model="judge-small",
        max_concurrency=8,
        requests_per_minute=0,
        timeout_seconds=5,
    )


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_seconds=0.01, max_backoff_seconds=0.5)


@pytest.fixture
def local_limiter() -> LocalLimiter:
    return LocalLimiter()


@pytest.fixture
def redis_limiter() -> Iterator[RedisLimiter]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    prefix = f"test:limits:{uuid.uuid4().hex}"
    yield RedisLimiter(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def _fresh_default_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that uses the default limiter gets a fresh per-process one in each test (never the
    Redis of the environment)."""
    from evalhub.providers import limiter

    monkeypatch.setattr(limiter, "_default", LocalLimiter())
