"""Chat completions through the ``openai`` SDK: OpenAI, Azure OpenAI, any compatible endpoint.

One call = ``chat_complete``: it waits for the provider's limits (``evalhub.providers.limiter``), then
retries timeouts, connection errors, 429 and 5xx with exponential backoff and full jitter,
honouring ``Retry-After`` / ``retry-after-ms``; a bad key, a forbidden or unknown model, or a bad
request fail at once. The SDK's own retries are off so that only this policy applies.

The API key is never logged and is scrubbed from every error message.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from django.views.decorators.debug import sensitive_variables

from evalhub.core.outbound import OutboundDenied, OutboundTransport
from evalhub.providers.limiter import Limiter, LimiterError, Limits, limiter_default

logger = logging.getLogger(__name__)

_KEY_LIKE = re.compile(r"\b(sk-|ehk_)[A-Za-z0-9_\-*.]{3,}")


class LlmError(Exception):
    """A failed call, with a message fit to show a user (no secrets)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = False,
        fatal: bool = False,
    ):
        super().__init__(message)
        self.status, self.retryable = status, retryable
        # The attempts that failed before this error (see ``ChatResult.failures``).
        self.failures: list[dict[str, Any]] = []
        # Not about one request: a bad key, no permission, an unknown model or endpoint, an
        # exhausted quota, a missing provider. Every call would fail the same way.
        self.fatal = fatal or status in (401, 403, 404)


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """What a call needs of a provider, the key already decrypted."""

    key: str  # identity for the limits, e.g. "provider:3"
    kind: str  # "openai" / "azure" / "compatible"
    api_key: str = field(repr=False)
    default_model: str
    base_url: str = ""
    api_version: str = ""
    max_concurrency: int = 4
    requests_per_minute: int = 60
    timeout_seconds: float = 60.0

    def limits(self) -> Limits:
        return Limits(
            self.key,
            self.max_concurrency,
            self.requests_per_minute,
            60.0,
            lease_seconds=self.timeout_seconds + 10.0,
        )


@dataclass(slots=True)
class ChatResult:
    content: str | None
    tool_calls: list[dict[str, Any]]  # [{"name": ..., "arguments": "<json>"}]
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: float  # the successful attempt's
    attempts: int
    raw: str  # the response body as JSON text
    # Each failed attempt before the answer: ``attempt``, ``error``, ``status``, ``time``
    # (epoch seconds) and ``retry_in_seconds``.
    failures: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 0.5
    max_backoff_seconds: float = 60.0
    limiter_timeout_seconds: float = 600.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        from django.conf import settings

        return cls(
            max_attempts=getattr(settings, "EVALHUB_LLM_MAX_ATTEMPTS", 5),
            max_backoff_seconds=float(getattr(settings, "EVALHUB_LLM_MAX_BACKOFF_SECONDS", 60)),
        )

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt ``attempt + 1``: ``Retry-After`` when the server gave one
        (capped), else full jitter over an exponentially growing window."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff_seconds)
        window = min(self.base_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
        return random.uniform(window / 2, window)  # noqa: S311


def scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return _KEY_LIKE.sub(r"\1***", text)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return float(millis) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


_clients: dict[tuple[Any, ...], openai.OpenAI] = {}
_clients_lock = threading.Lock()
_MAX_CLIENTS = 64


def client_for(provider: ProviderConfig) -> openai.OpenAI:
    """The SDK client for ``provider``, kept per process: its connection pool is reused across
    calls and threads (an ``openai`` client is thread-safe); building one per call cost more
    CPU than the call."""
    identity = (
        provider.kind,
        provider.base_url,
        provider.api_version,
        provider.timeout_seconds,
        hashlib.sha256(provider.api_key.encode()).hexdigest(),
    )
    client = _clients.get(identity)
    if client is not None:
        return client
    with _clients_lock:  # built once: a run's first calls all arrive here together
        client = _clients.get(identity)
        if client is not None:
            return client
        return _client_build(provider, identity)


@sensitive_variables("common")
def _client_build(provider: ProviderConfig, identity: tuple[Any, ...]) -> openai.OpenAI:
    common: dict[str, Any] = {
        "api_key": provider.api_key or "none",
        "max_retries": 0,
        "timeout": provider.timeout_seconds,
    }
    # Every connection is checked against EVALHUB_OUTBOUND_DENY when it is made.
    common["http_client"] = openai.DefaultHttpxClient(
        transport=OutboundTransport(), trust_env=False
    )
    client: openai.OpenAI
    if provider.kind == "azure":
        client = openai.AzureOpenAI(
            azure_endpoint=provider.base_url,
            api_version=provider.api_version or "2024-10-21",
            **common,
        )
    else:
        client = openai.OpenAI(base_url=provider.base_url or None, **common)
    if len(_clients) >= _MAX_CLIENTS:
        _clients.clear()
    _clients[identity] = client
    return client


def openai_response_type() -> type[Any]:
    """The HTTP response class the SDK returns unparsed (its ``cast_to`` for a raw answer)."""
    from openai._httpx2 import http_response_types

    return http_response_types()[0]


def _status_error(exc: openai.APIStatusError, secret: str) -> LlmError:
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else None
    detail = ""
    if body is not None:
        error = body.get("error", body)
        detail = error.get("message", "") if isinstance(error, dict) else str(error)
    detail = scrub(str(detail or exc.message), secret)
    code = ""
    if body is not None and isinstance(body.get("error", body), dict):
        error = body.get("error", body)
        code = str(error.get("code") or error.get("type") or "")
    if status == 429 and code == "insufficient_quota":
        return LlmError(f"quota exhausted (429): {detail}", status=status, fatal=True)
    if status == 401:
        return LlmError(f"authentication failed (401): {detail}", status=status)
    if status == 403:
        return LlmError(f"permission denied (403): {detail}", status=status)
    if status == 404:
        return LlmError(f"model or endpoint not found (404): {detail}", status=status)
    retryable = status in (408, 409, 429) or status >= 500
    return LlmError(f"provider answered {status}: {detail}", status=status, retryable=retryable)


def _result(text: str, started: float, attempts: int) -> ChatResult:
    """The completion read straight from the response body: the SDK's typed models would cost
    more CPU than the rest of the call, and ``raw`` keeps exactly what the provider sent."""
    latency_ms = (time.monotonic() - started) * 1000
    body = json.loads(text)
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list):
        raise LlmError(f"the provider's response is not a chat completion: {text[:200]!r}")
    if not choices:
        raise LlmError("the provider's response has no choices")
    message = (choices[0] or {}).get("message") or {}
    tool_calls = [
        {
            "name": call["function"].get("name", ""),
            "arguments": call["function"].get("arguments", ""),
        }
        for call in message.get("tool_calls") or []
        if isinstance(call, dict) and isinstance(call.get("function"), dict)
    ]
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return ChatResult(
        content=message.get("content"),
        tool_calls=tool_calls,
        model=body.get("model") or "",
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        total_tokens=usage.get("total_tokens"),
        latency_ms=latency_ms,
        attempts=attempts,
        raw=text,
    )


def chat_complete(
    provider: ProviderConfig,
    *,
    messages: Sequence[dict[str, Any]],
    model: str = "",
    temperature: float | None = 0.0,
    max_tokens: int | None = None,
    tools: list[dict[str, Any]] | None = None,
    tool_choice: dict[str, Any] | None = None,
    response_format: dict[str, Any] | None = None,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ChatResult:
    """One chat completion, within the provider's limits, retried as described above.
    Raises ``LlmError`` with a message safe to show."""
    limiter = limiter or limiter_default()
    retry = retry or RetryPolicy.from_settings()
    client = client_for(provider)
    kwargs: dict[str, Any] = {"model": model or provider.default_model, "messages": list(messages)}
    if temperature is not None:
        kwargs["temperature"] = temperature
    if max_tokens is not None:
        kwargs["max_tokens"] = max_tokens
    if tools:
        kwargs["tools"] = tools
    if tool_choice:
        kwargs["tool_choice"] = tool_choice
    if response_format:
        kwargs["response_format"] = response_format

    last_error: LlmError | None = None
    failures: list[dict[str, Any]] = []
    for attempt in range(1, retry.max_attempts + 1):
        retry_after = None
        try:
            with limiter.slot(provider.limits(), timeout=retry.limiter_timeout_seconds):
                started = time.monotonic()
                # The body as built here, posted as is: the SDK's ``create`` would walk it
                # through its typed-dict transform first, about 0.8 ms of CPU a call.
                response = client.post(
                    "/chat/completions", body=kwargs, cast_to=openai_response_type()
                )
            result = _result(response.text, started, attempt)
            result.failures = failures
            return result
        except LimiterError as exc:
            error = LlmError(f"provider limits: {exc}", retryable=True)
            error.failures = failures
            raise error from None
        except OutboundDenied as exc:  # EVALHUB_OUTBOUND_DENY, checked as the connection opens
            error = LlmError(f"the provider's address is refused: {exc.message}", fatal=True)
            error.failures = failures
            raise error from None
        except openai.APIStatusError as exc:
            last_error = _status_error(exc, provider.api_key)
            retry_after = retry_after_seconds(exc.response.headers)
        except openai.APITimeoutError:
            last_error = LlmError(
                f"the provider did not answer within {provider.timeout_seconds:g}s", retryable=True
            )
        except openai.APIConnectionError as exc:
            if isinstance(exc.__cause__, OutboundDenied):  # as an SDK may wrap it
                raise LlmError(
                    f"the provider's address is refused: {exc.__cause__.message}", fatal=True
                ) from None
            cause = scrub(str(exc.__cause__ or exc), provider.api_key)
            last_error = LlmError(f"cannot reach the provider: {cause}", retryable=True)
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as exc:
            error = LlmError(
                f"the provider's response cannot be read: {scrub(str(exc), provider.api_key)[:300]}"
            )
            error.failures = failures
            raise error from None
        if not last_error.retryable or attempt == retry.max_attempts:
            break
        delay = retry.backoff(attempt, retry_after)
        failures.append(
            {
                "attempt": attempt,
                "error": str(last_error),
                "status": last_error.status,
                "time": time.time(),
                "retry_in_seconds": round(delay, 3),
            }
        )
        logger.info(
            "provider %s: attempt %d failed (%s); retrying in %.2fs",
            provider.key,
            attempt,
            last_error,
            delay,
        )
        sleep(delay)
    assert last_error is not None
    if last_error.retryable and retry.max_attempts > 1:
        error = LlmError(
            f"{last_error} (gave up after {retry.max_attempts} attempts)",
            status=last_error.status,
            retryable=True,
        )
        error.failures = failures
        raise error
    last_error.failures = failures
    raise last_error
