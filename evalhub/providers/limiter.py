"""Provider limits: at most N requests in flight and M requests per window, per provider.

``RedisLimiter`` holds across every worker process: the in-flight slots are a Redis sorted set
of leases (a crashed worker's lease expires), the rate is a sliding-window log; both are
checked and taken atomically by Lua scripts that read the Redis server's clock, so processes
on machines with skewed clocks agree.

``LocalLimiter`` is the embedded mode's fallback (no Redis): the same limits per process only.
With several worker processes the provider sees up to N times the limits, for N processes.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class LimiterError(Exception):
    """The limits cannot be taken (Redis unreachable) or did not come free in time."""


class LimiterTimeout(LimiterError):
    """No slot or rate token came free in time."""


@dataclass(frozen=True, slots=True)
class Limits:
    key: str  # the provider's identity, e.g. "provider:3"
    max_concurrency: int  # 0: unlimited
    requests: int  # per ``window_seconds``; 0: unlimited
    window_seconds: float = 60.0
    # How long a slot is held at most: a request's timeout and a margin. A crashed worker's
    # slots come free after this (RedisLimiter).
    lease_seconds: float | None = None


class Limiter(Protocol):
    def slot(self, limits: Limits, *, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Hold one in-flight slot and one rate token for the duration of a request."""
        ...


def _pause(seconds: float) -> None:
    time.sleep(min(max(seconds, 0.005), 1.0) * random.uniform(0.8, 1.2))  # noqa: S311


class LocalLimiter:
    """Per-process limits (threads share them)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._in_flight: dict[str, int] = {}
        self._sent: dict[str, deque[float]] = {}

    def _try(self, limits: Limits) -> float:
        """0 when a slot and a token were taken, else seconds to wait."""
        now = time.monotonic()
        if limits.max_concurrency and self._in_flight.get(limits.key, 0) >= limits.max_concurrency:
            return 0.05
        if limits.requests:
            sent = self._sent.setdefault(limits.key, deque())
            while sent and sent[0] <= now - limits.window_seconds:
                sent.popleft()
            if len(sent) >= limits.requests:
                return sent[0] + limits.window_seconds - now
            sent.append(now)
        self._in_flight[limits.key] = self._in_flight.get(limits.key, 0) + 1
        return 0.0

    @contextlib.contextmanager
    def slot(self, limits: Limits, *, timeout: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                wait = self._try(limits)
                if wait == 0.0:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise LimiterTimeout(f"no free request slot within {timeout:g}s")
                self._lock.wait(min(wait, remaining))
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[limits.key] -= 1
                self._lock.notify_all()


# KEYS[1] slots zset, KEYS[2] rate zset; ARGV: token, max_concurrency, lease_ms, requests,
# window_ms. Returns 0 when taken, else milliseconds to wait.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local max_concurrency = tonumber(ARGV[2])
local requests = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
if max_concurrency > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max_concurrency then
    return 25
  end
end
if requests > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= requests then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], window + 1000)
end
if max_concurrency > 0 then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + 1000)
end
return 0
"""


class RedisLimiter:
    """Limits shared by every process that uses the same Redis database and ``prefix``.

    A slot is a lease of ``lease_seconds`` (longer than any request's timeout): if its holder
    dies, the slot comes free when the lease runs out.
    """

    def __init__(self, client: Any, *, prefix: str = "evalhub:limits", lease_seconds: float = 600):
        self._client = client
        self._prefix = prefix
        self._lease_ms = int(lease_seconds * 1000)
        self._acquire = client.register_script(_ACQUIRE)

    def _keys(self, limits: Limits) -> list[str]:
        return [f"{self._prefix}:{limits.key}:slots", f"{self._prefix}:{limits.key}:rate"]

    @contextlib.contextmanager
    def slot(self, limits: Limits, *, timeout: float) -> Iterator[None]:
        keys = self._keys(limits)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while True:
            try:
                wait_ms = int(
                    self._acquire(
                        keys=keys,
                        args=[
                            token,
                            limits.max_concurrency,
                            int(limits.lease_seconds * 1000)
                            if limits.lease_seconds
                            else self._lease_ms,
                            limits.requests,
                            int(limits.window_seconds * 1000),
                        ],
                    )
                )
            except Exception as exc:  # redis.RedisError, without importing redis here
                raise LimiterError(f"cannot reach Redis for the provider limits: {exc}") from None
            if wait_ms == 0:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LimiterTimeout(f"no free request slot within {timeout:g}s")
            _pause(min(wait_ms / 1000, remaining))
        try:
            yield
        finally:
            if limits.max_concurrency:
                # If Redis is gone now, the lease expires on its own.
                with contextlib.suppress(Exception):
                    self._client.zrem(keys[0], token)


_default: Limiter | None = None
_default_lock = threading.Lock()


def limiter_default() -> Limiter:
    """Redis-backed when ``EVALHUB_LIMITER_REDIS_URL`` (default: ``REDIS_URL``) is set."""
    global _default
    if _default is not None:  # asked before every call: no lock once it is made
        return _default
    with _default_lock:
        if _default is None:
            from django.conf import settings

            url = getattr(settings, "EVALHUB_LIMITER_REDIS_URL", None)
            if url:
                import redis

                _default = RedisLimiter(redis.Redis.from_url(url))
            else:
                _default = LocalLimiter()
        return _default
