"""The pieces of a demo trace's spans: ids, token counts, chat messages, OpenInference
attributes for messages, documents and LLM calls, and ``TraceBuilder``, which lays spans out in
time under their root."""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tracing.demo import content
from tracing.demo.content import ToolCall
from tracing.demo.failures import Failure
from tracing.models import StatusCode
from tracing.store.records import SpanRecord

MODELS = (  # (model, provider, weight, ms per completion token)
    ("gpt-4o", "openai", 5, 11.0),
    ("gpt-4o-mini", "openai", 3, 6.0),
    ("claude-3-5-sonnet-20241022", "anthropic", 2, 13.0),
)
EMBEDDING_MODEL = "text-embedding-3-small"
RERANKER_MODEL = "rerank-english-v3.0"


def hex_id(*parts: object, width: int) -> str:
    text = ":".join(str(part) for part in ("evalhub-demo", *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:width]


def token_count(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def lognormal_ms(rng: random.Random, median_ms: float, sigma: float) -> float:
    return median_ms * math.exp(rng.gauss(0.0, sigma))


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    content: str = ""
    tool_calls: tuple[tuple[str, ToolCall], ...] = ()  # (tool call id, call)
    tool_call_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content or None}
        if self.tool_calls:
            data["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.tool, "arguments": json.dumps(call.arguments)},
                }
                for call_id, call in self.tool_calls
            ]
        if self.tool_call_id:
            data["tool_call_id"] = self.tool_call_id
        return data

    def tokens(self) -> int:
        return (
            4
            + token_count(self.content)
            + sum(token_count(json.dumps(c.arguments)) + 8 for _, c in self.tool_calls)
        )


def message_attributes(prefix: str, messages: list[Message]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, message in enumerate(messages):
        base = f"{prefix}.{i}.message"
        attrs[f"{base}.role"] = message.role
        if message.content:
            attrs[f"{base}.content"] = message.content
        for j, (call_id, call) in enumerate(message.tool_calls):
            attrs[f"{base}.tool_calls.{j}.tool_call.id"] = call_id
            attrs[f"{base}.tool_calls.{j}.tool_call.function.name"] = call.tool
            attrs[f"{base}.tool_calls.{j}.tool_call.function.arguments"] = json.dumps(
                call.arguments
            )
        if message.tool_call_id:
            attrs[f"{base}.tool_call_id"] = message.tool_call_id
    return attrs


def document_attributes(prefix: str, docs: list[tuple[content.Document, float]]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for i, (doc, score) in enumerate(docs):
        base = f"{prefix}.{i}.document"
        attrs[f"{base}.id"] = doc.id
        attrs[f"{base}.content"] = doc.content
        attrs[f"{base}.score"] = round(score, 4)
        attrs[f"{base}.metadata"] = json.dumps({"title": doc.title, "url": doc.url})
    return attrs


def llm_attributes(
    *,
    model: str,
    provider: str,
    messages: list[Message],
    output: Message | None,
    tools: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    invocation = {"model": model, **params}
    request: dict[str, Any] = {**invocation, "messages": [m.as_dict() for m in messages]}
    if tools:
        request["tools"] = [json.loads(content.TOOLS[t].json_schema()) for t in tools]
    prompt_tokens = sum(m.tokens() for m in messages) + 60 * len(tools)
    attrs: dict[str, Any] = {
        "llm.model_name": model,
        "llm.provider": provider,
        "llm.system": provider,
        "llm.invocation_parameters": json.dumps(invocation),
        "input.value": json.dumps(request),
        "input.mime_type": "application/json",
        **message_attributes("llm.input_messages", messages),
    }
    for i, tool in enumerate(tools):
        attrs[f"llm.tools.{i}.tool.json_schema"] = content.TOOLS[tool].json_schema()
    if output is not None:
        completion_tokens = output.tokens()
        attrs.update(message_attributes("llm.output_messages", [output]))
        if output.tool_calls:
            attrs["output.value"] = json.dumps(output.as_dict())
            attrs["output.mime_type"] = "application/json"
        else:
            attrs["output.value"] = output.content
            attrs["output.mime_type"] = "text/plain"
        attrs["llm.token_count.completion"] = completion_tokens
        attrs["llm.token_count.total"] = prompt_tokens + completion_tokens
    attrs["llm.token_count.prompt"] = prompt_tokens
    return attrs


def model_choose(rng: random.Random) -> tuple[str, str, float]:
    """A chat model by how often the app uses it: (model, provider, ms per completion token)."""
    model, provider, _, ms_per_token = rng.choices(MODELS, weights=[m[2] for m in MODELS])[0]
    return model, provider, ms_per_token


def llm_latency_ms(rng: random.Random, completion_tokens: int, ms_per_token: float) -> float:
    latency = (180 + completion_tokens * ms_per_token) * math.exp(rng.gauss(0, 0.3))
    if rng.random() < 0.04:  # the slow tail: queueing at the provider
        latency *= rng.uniform(3.0, 7.0)
    return latency


def tool_attributes(call_id: str, call: ToolCall) -> dict[str, Any]:
    """A tool span's attributes before the tool returns."""
    tool = content.TOOLS[call.tool]
    return {
        "tool.name": tool.name,
        "tool.description": tool.description,
        "tool.parameters": json.dumps(tool.parameters),
        "tool.id": call_id,
        "input.value": json.dumps(call.arguments),
        "input.mime_type": "application/json",
    }


def llm_span_name(provider: str) -> str:
    """The span name the provider's OpenInference instrumentation gives a chat call."""
    return "ChatCompletion" if provider == "openai" else "Messages"


class TraceBuilder:
    """Lays out one trace's spans: children one after another under a root made last."""

    def __init__(
        self,
        *,
        seed: int,
        project: str,
        index: int,
        start: datetime,
        common: dict[str, Any],
    ) -> None:
        self.seed, self.project, self.index = seed, project, index
        self.trace_id = hex_id(seed, project, index, "trace", width=32)
        self.root_span_id = self._span_id(0)
        self.common = common
        self.start = start
        self.cursor = start + timedelta(milliseconds=3)
        self.records: list[SpanRecord] = []

    def _span_id(self, number: int) -> str:
        return hex_id(self.seed, self.project, self.index, "span", number, width=16)

    def child(
        self,
        *,
        name: str,
        kind: str,
        latency_ms: float,
        attributes: dict[str, Any],
        failure: Failure | None = None,
        gap_ms: float = 2.0,
    ) -> SpanRecord:
        start = self.cursor + timedelta(milliseconds=gap_ms)
        end = start + timedelta(milliseconds=round(latency_ms, 3))
        self.cursor = end
        record = self._record(
            span_id=self._span_id(len(self.records) + 1),
            parent_id=self.root_span_id,
            name=name,
            kind=kind,
            start=start,
            end=end,
            attributes=attributes,
            failure=failure,
        )
        self.records.append(record)
        return record

    def root(
        self, *, name: str, kind: str, attributes: dict[str, Any], failure: Failure | None
    ) -> SpanRecord:
        end = self.cursor + timedelta(milliseconds=4)
        record = self._record(
            span_id=self.root_span_id,
            parent_id=None,
            name=name,
            kind=kind,
            start=self.start,
            end=end,
            attributes=attributes,
            failure=failure,
        )
        self.records.insert(0, record)
        return record

    def _record(
        self,
        *,
        span_id: str,
        parent_id: str | None,
        name: str,
        kind: str,
        start: datetime,
        end: datetime,
        attributes: dict[str, Any],
        failure: Failure | None,
    ) -> SpanRecord:
        return SpanRecord(
            trace_id=self.trace_id,
            span_id=span_id,
            parent_id=parent_id,
            name=name,
            start_time=start,
            end_time=end,
            status_code=StatusCode.ERROR if failure else StatusCode.OK,
            status_message=failure.status_message if failure else "",
            attributes={"openinference.span.kind": kind, **attributes, **self.common},
            events=[failure.event(end)] if failure else [],
            project_name=self.project,
        )
