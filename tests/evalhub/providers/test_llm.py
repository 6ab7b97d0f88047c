"""The LLM client against the fake server: retries, errors, limits across processes."""

import multiprocessing
import time

import pytest

from evalhub.providers.limiter import LimiterTimeout, Limits, LocalLimiter, RedisLimiter
from evalhub.providers.llm import LlmError, ProviderConfig, RetryPolicy, chat_complete
from tests.evalhub.fake_openai import VALID_KEY, Behavior

# Not imported from conftest: the spawned workers below must not import Django models.
REDIS_URL = "redis://127.0.0.1:6379/5"
MESSAGES = [{"role": "user", "content": "Is 2+2=4? Answer correct or incorrect."}]


def _provider(fake, **overrides) -> ProviderConfig:
    values = {
        "key": "provider:test",
        "kind": "compatible",
        "api_key": VALID_KEY,
        "default_model": "judge-small",
        "base_url": fake.base_url,
        "max_concurrency": 8,
        "requests_per_minute": 0,
        "timeout_seconds": 5.0,
    }
    values.update(overrides)
    return ProviderConfig(**values)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_a_plain_completion_reports_content_usage_and_latency(fake_openai, local_limiter):
    fake_openai.answer("correct")
    result = chat_complete(_provider(fake_openai), messages=MESSAGES, limiter=local_limiter)
    assert result.content == "correct"
    assert result.model == "judge-small"
    assert result.prompt_tokens == 6  # the fake counts words
    assert result.total_tokens == result.prompt_tokens + result.completion_tokens
    assert result.latency_ms > 0
    assert result.attempts == 1
    assert fake_openai.bodies[0]["messages"] == MESSAGES


def test_429_and_500_are_retried_honouring_retry_after(fake_openai, local_limiter):
    fake_openai.enqueue(Behavior.status(429, retry_after="1.5"), Behavior.status(500))
    sleeps = Sleeps()
    retry = RetryPolicy(max_attempts=4, base_seconds=0.2, max_backoff_seconds=10)
    result = chat_complete(
        _provider(fake_openai), messages=MESSAGES, limiter=local_limiter, retry=retry, sleep=sleeps
    )
    assert result.content is not None
    assert result.attempts == 3
    assert len(fake_openai.requests) == 3
    assert sleeps[0] == 1.5  # Retry-After, exactly
    assert 0.2 <= sleeps[1] <= 0.4  # no Retry-After: jitter within the window base x 2


def test_backoff_grows_exponentially_with_jitter():
    retry = RetryPolicy(max_attempts=6, base_seconds=1.0, max_backoff_seconds=5)
    for attempt, window in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (5, 5.0)]:
        delays = {retry.backoff(attempt, None) for _ in range(50)}
        assert all(window / 2 <= d <= window for d in delays)
        assert len(delays) > 1  # jitter
    assert retry.backoff(1, 30.0) == 5  # Retry-After is capped
    assert retry.backoff(1, 2.0) == 2.0


def test_gives_up_after_max_attempts_with_the_last_error(fake_openai, local_limiter, fast_retry):
    fake_openai.enqueue(*[Behavior.status(503)] * 4)
    with pytest.raises(LlmError) as info:
        chat_complete(
            _provider(fake_openai), messages=MESSAGES, limiter=local_limiter, retry=fast_retry
        )
    assert str(info.value) == "provider answered 503: scripted 503 (gave up after 4 attempts)"
    assert len(fake_openai.requests) == 4


def test_a_slow_answer_times_out_and_is_retried(fake_openai, local_limiter, fast_retry):
    fake_openai.enqueue(Behavior.slow(2.0))
    result = chat_complete(
        _provider(fake_openai, timeout_seconds=0.5),
        messages=MESSAGES,
        limiter=local_limiter,
        retry=fast_retry,
    )
    assert result.attempts == 2
    assert result.content is not None


def test_a_bad_key_fails_at_once_and_the_key_is_not_in_the_error(fake_openai, local_limiter):
    bad_key = "sk-wrong-secret-key-9876543210"
    with pytest.raises(LlmError) as info:
        chat_complete(
            _provider(fake_openai, api_key=bad_key),
            messages=MESSAGES,
            limiter=local_limiter,
            retry=RetryPolicy(max_attempts=5, base_seconds=0.01),
        )
    message = str(info.value)
    assert message.startswith("authentication failed (401): Incorrect API key provided")
    assert bad_key not in message and "9876543210" not in message
    assert len(fake_openai.requests) == 1


def test_an_unknown_model_fails_at_once(fake_openai, local_limiter, fast_retry):
    with pytest.raises(LlmError, match=r"model or endpoint not found \(404\).*gpt-9"):
        chat_complete(
            _provider(fake_openai),
            messages=MESSAGES,
            model="gpt-9",
            limiter=local_limiter,
            retry=fast_retry,
        )
    assert len(fake_openai.requests) == 1


def test_garbage_and_empty_answers_are_errors(fake_openai, local_limiter, fast_retry):
    fake_openai.enqueue(Behavior.garbage())
    with pytest.raises(LlmError, match=r"not a chat completion|cannot be read"):
        chat_complete(
            _provider(fake_openai), messages=MESSAGES, limiter=local_limiter, retry=fast_retry
        )
    fake_openai.enqueue(Behavior.no_choices())
    with pytest.raises(LlmError, match="no choices"):
        chat_complete(
            _provider(fake_openai), messages=MESSAGES, limiter=local_limiter, retry=fast_retry
        )


def test_connection_refused_is_retried_then_reported(local_limiter, fast_retry):
    provider = ProviderConfig(
        key="p",
        kind="compatible",
        api_key=VALID_KEY,
        default_model="judge-small",
        base_url="http://127.0.0.1:9/v1",
    )
    with pytest.raises(LlmError, match=r"cannot reach the provider.*gave up after 4 attempts"):
        chat_complete(provider, messages=MESSAGES, limiter=local_limiter, retry=fast_retry)


def test_azure_calls_the_deployment_with_an_api_key_header(fake_openai, local_limiter):
    provider = _provider(
        fake_openai, kind="azure", base_url=fake_openai.root_url, api_version="2024-10-21"
    )
    result = chat_complete(provider, messages=MESSAGES, model="judge-large", limiter=local_limiter)
    assert result.content is not None
    request = fake_openai.requests[0]
    assert request["path"].startswith("/openai/deployments/judge-large/chat/completions")
    assert "api-version=2024-10-21" in request["path"]
    assert request["headers"]["api-key"] == VALID_KEY


# --- limits ------------------------------------------------------------------------------------


def _burst(limiter, limits: Limits, count: int, hold: float) -> list[float]:
    """``count`` threads each take a slot and hold it; returns when each got it."""
    import threading

    got: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        with limiter.slot(limits, timeout=30):
            with lock:
                got.append(time.monotonic())
            time.sleep(hold)

    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return got


def test_local_limiter_caps_concurrency_within_a_process(fake_openai):
    fake_openai.delay = 0.2
    limiter = LocalLimiter()
    provider = _provider(fake_openai, max_concurrency=2)
    import threading

    threads = [
        threading.Thread(
            target=chat_complete,
            kwargs={"provider": provider, "messages": MESSAGES, "limiter": limiter},
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fake_openai.requests) == 6
    assert fake_openai.max_in_flight == 2


def test_local_limiter_rate_window():
    limiter = LocalLimiter()
    limits = Limits("rate", max_concurrency=0, requests=3, window_seconds=0.5)
    started = time.monotonic()
    got = _burst(limiter, limits, 6, 0.0)
    assert len(got) == 6
    assert max(got) - started >= 0.45  # the 4th waited for the window


def test_limiter_times_out_when_no_slot_frees():
    limiter = LocalLimiter()
    limits = Limits("busy", max_concurrency=1, requests=0)
    with limiter.slot(limits, timeout=1), pytest.raises(LimiterTimeout):  # noqa: SIM117
        with limiter.slot(limits, timeout=0.2):
            pass


def _limited_worker(base_url: str, prefix: str, max_concurrency: int, calls: int) -> None:
    """Run in a separate process: ``calls`` concurrent judge calls through Redis limits."""
    import threading

    import redis

    limiter = RedisLimiter(redis.Redis.from_url(REDIS_URL), prefix=prefix)
    provider = ProviderConfig(
        key="provider:shared",
        kind="compatible",
        api_key=VALID_KEY,
        default_model="judge-small",
        base_url=base_url,
        max_concurrency=max_concurrency,
        requests_per_minute=0,
    )
    retry = RetryPolicy(max_attempts=1)
    threads = [
        threading.Thread(
            target=chat_complete,
            kwargs={"provider": provider, "messages": MESSAGES, "limiter": limiter, "retry": retry},
        )
        for _ in range(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_redis_limiter_caps_concurrency_across_processes(fake_openai, redis_limiter):
    fake_openai.delay = 0.3
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_limited_worker, args=(fake_openai.base_url, redis_limiter._prefix, 2, 3)
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    assert len(fake_openai.requests) == 6
    # Per-process limiters would let 2 x 2 through at once.
    assert fake_openai.max_in_flight == 2


def _rate_worker(prefix: str, count: int, queue) -> None:
    import redis

    limiter = RedisLimiter(redis.Redis.from_url(REDIS_URL), prefix=prefix)
    limits = Limits("provider:rate", max_concurrency=0, requests=4, window_seconds=1.0)
    for _ in range(count):
        with limiter.slot(limits, timeout=30):
            queue.put(time.time())


def test_redis_limiter_rate_holds_across_processes(redis_limiter):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_rate_worker, args=(redis_limiter._prefix, 4, queue))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    times = sorted(queue.get(timeout=5) for _ in range(8))
    # 4 per second in all: any 5 consecutive grants span at least a window.
    for i in range(len(times) - 4):
        assert times[i + 4] - times[i] >= 0.9


def test_redis_limiter_slot_of_a_dead_holder_expires(redis_limiter):
    import redis

    short = RedisLimiter(
        redis.Redis.from_url(REDIS_URL), prefix=redis_limiter._prefix, lease_seconds=0.3
    )
    limits = Limits("provider:lease", max_concurrency=1, requests=0)
    holder = short.slot(limits, timeout=1)
    holder.__enter__()  # never released, as if its process died
    started = time.monotonic()
    with short.slot(limits, timeout=5):
        waited = time.monotonic() - started
    assert 0.2 <= waited < 3


def test_an_unreachable_redis_is_a_clear_error(fake_openai):
    import redis

    limiter = RedisLimiter(redis.Redis.from_url("redis://127.0.0.1:1/5", socket_connect_timeout=1))
    with pytest.raises(LlmError, match="provider limits: cannot reach Redis"):
        chat_complete(_provider(fake_openai), messages=MESSAGES, limiter=limiter)
    assert fake_openai.requests == []
