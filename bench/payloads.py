"""Deterministic, realistic OpenInference span batches as OTLP ExportTraceServiceRequest bytes.

Five spans a trace (AGENT → RETRIEVER, LLM, TOOL, LLM), about 1.5 KB a span once encoded.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

QUESTIONS = [
    "How do I reset my password if I no longer have access to the email on my account?",
    "Can I get a refund for the annual plan if I cancel within the first month of use?",
    "Why was my card declined when upgrading to the team plan from the starter tier?",
    "What is the difference between the pro and the enterprise plans for data retention?",
    "How can I export all of my project data as CSV before closing the organisation?",
    "Is there a way to invite a contractor with read-only access to a single workspace?",
]
ANSWER = (
    "Thanks for reaching out. Based on our policy documents, {topic}. If anything is unclear, "
    "reply to this message and a member of the support team will follow up within one business "
    "day. You can also find step-by-step instructions in the help centre under Account settings, "
    "including screenshots for the web and mobile apps and a short video walkthrough."
)
TEMPLATE = (
    "You are a support assistant for Acme Cloud. Use only the documents below to answer. If the "
    "documents do not contain the answer, say that you do not know and offer to escalate.\n"
    "Documents:\n{documents}\nQuestion: {question}\nAnswer in at most three sentences."
)
REGIONS = ["us-west", "us-east", "eu-west"]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet"]


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span(
    rng: random.Random,
    trace_id: bytes,
    span_id: bytes,
    parent: bytes,
    name: str,
    start: int,
    duration_ms: float,
    attrs: dict[str, object],
    error: bool = False,
) -> Span:
    span = Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1e6),
        status=Status(
            code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_OK,
            message="upstream timeout" if error else "",
        ),
    )
    span.attributes.extend(_kv(k, v) for k, v in attrs.items())
    return span


def trace_spans(rng: random.Random, index: int, now_ns: int, run: str) -> list[Span]:
    trace_id = rng.randbytes(16)
    ids = [rng.randbytes(8) for _ in range(5)]
    start = now_ns - rng.randrange(0, 3600 * 10**9)
    question = rng.choice(QUESTIONS) + f" (ticket {run}-{index})"
    answer = ANSWER.format(topic=question[:60].lower())
    model = rng.choice(MODELS)
    common = {
        "session.id": f"sess-{run}-{index // 4}",
        "user.id": f"user-{rng.randrange(500)}",
        "metadata": json.dumps(
            {
                "region": rng.choice(REGIONS),
                "plan": rng.choice(["free", "pro"]),
                "app_version": "2.14.0",
            }
        ),
    }
    latency = rng.lognormvariate(6.3, 0.7)
    error = rng.random() < 0.05
    docs = {
        f"retrieval.documents.{i}.document.{k}": v
        for i in range(3)
        for k, v in (
            ("id", f"kb-{rng.randrange(900)}"),
            ("score", round(rng.random(), 3)),
            (
                "content",
                "Refunds for annual plans are prorated within 30 days of purchase. "
                "Monthly plans can be cancelled at any time from the billing page.",
            ),
        )
    }
    llm = {
        "openinference.span.kind": "LLM",
        "llm.model_name": model,
        "llm.token_count.prompt": rng.randrange(200, 1800),
        "llm.token_count.completion": rng.randrange(20, 400),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "You are a helpful support agent. Answer from the documents.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": question,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": answer,
        "llm.invocation_parameters": json.dumps({"temperature": 0.2, "max_tokens": 512}),
        "llm.prompt_template.template": TEMPLATE,
        "llm.tools.0.tool.json_schema": json.dumps(
            {
                "type": "function",
                "function": {
                    "name": "lookup_order",
                    "description": "Find an order by id",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "order_id": {"type": "integer", "description": "The order number"}
                        },
                        "required": ["order_id"],
                    },
                },
            }
        ),
        "input.value": question,
        "output.value": answer,
    }
    return [
        _span(
            rng,
            trace_id,
            ids[0],
            b"",
            "support-agent",
            start,
            latency + 300,
            {
                "openinference.span.kind": "AGENT",
                "input.value": question,
                "output.value": answer,
                **common,
            },
            error,
        ),
        _span(
            rng,
            trace_id,
            ids[1],
            ids[0],
            "retrieve",
            start + 5_000_000,
            40,
            {"openinference.span.kind": "RETRIEVER", "input.value": question, **docs, **common},
        ),
        _span(
            rng,
            trace_id,
            ids[2],
            ids[0],
            "plan",
            start + 50_000_000,
            latency / 3,
            {**llm, **common},
        ),
        _span(
            rng,
            trace_id,
            ids[3],
            ids[0],
            "lookup_order",
            start + 60_000_000 + int(latency / 3 * 1e6),
            25,
            {
                "openinference.span.kind": "TOOL",
                "tool.name": "lookup_order",
                "tool.parameters": json.dumps({"order_id": index}),
                "input.value": json.dumps({"order_id": index}),
                "output.value": json.dumps({"status": "shipped", "eta_days": 2}),
                **common,
            },
        ),
        _span(
            rng,
            trace_id,
            ids[4],
            ids[0],
            "answer",
            start + 100_000_000 + int(latency / 3 * 1e6),
            latency / 2,
            {**llm, **common},
            error,
        ),
    ]


DAY_NS = 86_400 * 10**9


def _request(rng: random.Random, first: int, traces: int, at_ns: int, run: str) -> bytes:
    """One serialized request of ``traces`` five-span traces, numbered from ``first``."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(_kv("service.name", "support-bot"))
    scope = resource_spans.scope_spans.add()
    for index in range(first, first + traces):
        scope.spans.extend(trace_spans(rng, index, at_ns, run))
    return request.SerializeToString()


def correctness_result(span_id: str, correct: bool, *, explained: bool = False) -> Any:
    """An LLM evaluator's ``Correctness`` result on span ``span_id``, as the annotation service
    takes it (``AnnotationInput``; Django must be set up)."""
    from annotations.store.services import AnnotationInput

    explanation = "Matches the reference." if correct else "Contradicts the documents."
    return AnnotationInput(
        target_kind="SPAN",
        target_id=span_id,
        name="Correctness",
        annotator_kind="LLM",
        label="correct" if correct else "incorrect",
        score=1.0 if correct else 0.0,
        explanation=explanation if explained else None,
    )


def requests(
    total_spans: int, spans_per_request: int = 500, seed: int = 7, run: str = "r"
) -> Iterator[bytes]:
    """Serialized requests, ``spans_per_request`` spans each (whole traces)."""
    rng = random.Random(seed)
    now_ns = time.time_ns()
    traces = spans_per_request // 5
    for number in range(total_spans // spans_per_request):
        yield _request(rng, number * traces, traces, now_ns, run)


def aged_requests(
    spans: int, days: float, *, run: str, per_request: int = 5000, seed: int = 11
) -> Iterator[bytes]:
    """Requests of whole traces spread over ``days`` (at least one request): request ``n`` of
    ``count`` is ``n * days / count`` days old."""
    rng = random.Random(seed)
    now_ns = time.time_ns()
    count = max(spans // per_request, 1)
    traces = per_request // 5
    for number in range(count):
        at = now_ns - int(number * days * DAY_NS / count)
        yield _request(rng, number * traces, traces, at, run)
