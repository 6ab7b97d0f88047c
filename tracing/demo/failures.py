"""The failures demo traces show: an LLM provider's, a tool service's or the vector store's
error, as the exception event and status message an instrumented app records."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Failure:
    type: str
    message: str
    stacktrace: str

    @property
    def status_message(self) -> str:
        return f"{self.type}: {self.message}"

    def event(self, at: datetime) -> dict[str, Any]:
        return {
            "name": "exception",
            "timestamp": at.isoformat(),
            "attributes": {
                "exception.type": self.type,
                "exception.message": self.message,
                "exception.stacktrace": self.stacktrace,
                "exception.escaped": "False",
            },
        }


def _stacktrace(frames: list[tuple[str, int, str, str]], error_type: str, message: str) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, function, code in frames:
        lines.append(f'  File "{path}", line {line}, in {function}')
        lines.append(f"    {code}")
    lines.append(f"{error_type}: {message}")
    return "\n".join(lines)


_SITE = "/usr/local/lib/python3.12/site-packages"


def llm_failure(rng: random.Random, provider: str, model: str, where: str) -> Failure:
    frames = [
        (
            "/app/support/pipeline.py",
            rng.choice((88, 91, 142)),
            where,
            "response = llm.invoke(messages)",
        ),
        (
            f"{_SITE}/{provider}/_base_client.py",
            1047,
            "request",
            "raise self._make_status_error_from_response(err.response) from None",
        ),
    ]
    if provider == "anthropic":
        options = [
            (
                "anthropic.InternalServerError",
                "Error code: 529 - {'type': 'error', 'error': {'type': 'overloaded_error', "
                "'message': 'Overloaded'}}",
            ),
            ("anthropic.APITimeoutError", "Request timed out."),
        ]
    else:
        used = rng.randint(28000, 29900)
        options = [
            (
                "openai.RateLimitError",
                f"Error code: 429 - {{'error': {{'message': 'Rate limit reached for {model} in "
                f"organization org-lumio on tokens per min (TPM): Limit 30000, Used {used}, "
                f"Requested {rng.randint(900, 2400)}. Please try again in "
                f"{rng.uniform(0.5, 3):.3f}s.', 'type': 'tokens', 'code': 'rate_limit_exceeded'}}}}",
            ),
            ("openai.APITimeoutError", "Request timed out."),
            (
                "openai.BadRequestError",
                "Error code: 400 - {'error': {'message': \"This model's maximum context length "
                "is 128000 tokens. However, your messages resulted in 131584 tokens. Please "
                "reduce the length of the messages.\", 'type': 'invalid_request_error', "
                "'param': 'messages', 'code': 'context_length_exceeded'}}",
            ),
        ]
    error_type, message = rng.choice(options)
    return Failure(error_type, message, _stacktrace(frames, error_type, message))


def tool_failure(rng: random.Random, tool: str) -> Failure:
    service = "orders" if "order" in tool or "return" in tool else "accounts"
    options = [
        ("TimeoutError", f"{service}-service did not respond within 5.0 s"),
        (
            "httpx.HTTPStatusError",
            f"Server error '503 Service Unavailable' for url "
            f"'http://{service}.internal:8080/v2/{tool.replace('_', '-')}'",
        ),
    ]
    error_type, message = rng.choice(options)
    frames = [
        (
            "/app/support/tools.py",
            rng.choice((41, 57, 73, 96)),
            tool,
            f"resp = client.post('/v2/{tool}', json=args)",
        ),
        (f"{_SITE}/httpx/_client.py", 1144, "post", "return self.request("),
        (
            f"{_SITE}/httpx/_models.py",
            829,
            "raise_for_status",
            "raise HTTPStatusError(message, request=request, response=self)",
        ),
    ]
    return Failure(error_type, message, _stacktrace(frames, error_type, message))


def retrieval_failure(rng: random.Random, stage: str) -> Failure:
    if stage == "embedding":
        error_type, message = "openai.APIConnectionError", "Connection error."
        frames = [
            ("/app/support/rag.py", 37, "embed_query", "vector = embedder.embed_query(question)"),
            (
                f"{_SITE}/openai/_base_client.py",
                1012,
                "request",
                "raise APIConnectionError(request=request) from err",
            ),
        ]
    else:
        error_type = "qdrant_client.http.exceptions.ResponseHandlingException"
        message = rng.choice(("timed out", "[Errno 111] Connection refused"))
        frames = [
            (
                "/app/support/rag.py",
                52,
                "retrieve",
                "hits = store.search(collection='help-center', query_vector=vector, limit=k)",
            ),
            (
                f"{_SITE}/qdrant_client/http/api_client.py",
                134,
                "send",
                "raise ResponseHandlingException(e)",
            ),
        ]
    return Failure(error_type, message, _stacktrace(frames, error_type, message))


def llm_failure_ms(rng: random.Random, failure: Failure) -> float:
    """How long a failed LLM call ran: a rate limit answers at once, anything else times out."""
    return rng.uniform(200, 900) if "RateLimit" in failure.type else 30_000.0
