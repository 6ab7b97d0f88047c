"""An instrumented agent run and the OTLP request of one, with the checks of what ingest stored."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status as OtelStatus
from opentelemetry.trace import StatusCode as OtelStatusCode

from tests.tracing.ingest.otlp_factories import (
    CHILD_ID,
    ROOT_ID,
    START_NS,
    TRACE_ID,
    pb_request,
    pb_span,
)
from tracing.models import Session, Span, Trace


def llm_request(**resource: Any) -> ExportTraceServiceRequest:
    """An AGENT root and an LLM child that failed, as an OpenInference instrumentor sends them."""
    return pb_request(
        pb_span(
            name="agent",
            status_code=Status.STATUS_CODE_OK,
            attributes={
                "openinference.span.kind": "AGENT",
                "input.value": "What is the refund policy?",
                "output.value": "30 days.",
                "session.id": "sess-1",
            },
        ),
        pb_span(
            span_id=CHILD_ID,
            parent_id=ROOT_ID,
            name="ChatCompletion",
            start_ns=START_NS + 100_000_000,
            end_ns=START_NS + 600_000_000,
            status_code=Status.STATUS_CODE_ERROR,
            status_message="rate limited",
            attributes={
                "openinference.span.kind": "LLM",
                "llm.model_name": "gpt-4o-mini",
                "llm.token_count.prompt": 100,
                "llm.token_count.completion": 20,
                "llm.input_messages.0.message.role": "user",
                "llm.input_messages.0.message.content": "question",
                "tag.tags": ["support"],
                "session.id": "sess-1",
            },
            events=[("exception", START_NS + 500_000_000, {"exception.type": "RateLimitError"})],
        ),
        resource=resource,
    )


def assert_nothing_written() -> None:
    assert (Span.objects.count(), Trace.objects.count(), Session.objects.count()) == (0, 0, 0)


def assert_llm_request_stored(project: str = "default") -> None:
    trace = Trace.objects.get(trace_id=TRACE_ID.hex())
    assert trace.project.name == project
    assert (trace.root_span_id, trace.root_span_name) == (ROOT_ID.hex(), "agent")
    assert (trace.span_count, trace.error_count, trace.total_tokens) == (2, 1, 120)
    assert trace.latency_ms == pytest.approx(1500)
    assert trace.session is not None and trace.session.session_id == "sess-1"

    llm = Span.objects.get(span_id=CHILD_ID.hex())
    assert llm.parent_id == ROOT_ID.hex()
    assert (llm.span_kind, llm.model_name, llm.prompt_tokens, llm.completion_tokens) == (
        "LLM",
        "gpt-4o-mini",
        100,
        20,
    )
    assert (llm.status_code, llm.status_message) == ("ERROR", "rate limited")
    assert llm.start_time == datetime(2026, 11, 20, 12, 0, 0, 223456, tzinfo=UTC)
    assert llm.latency_ms == pytest.approx(500)
    assert llm.tags == ["support"]
    assert llm.attributes["llm"]["input_messages"] == [
        {"message": {"role": "user", "content": "question"}}
    ]
    assert llm.events == [
        {
            "name": "exception",
            "timestamp": "2026-11-20T12:00:00.623456+00:00",
            "attributes": {"exception.type": "RateLimitError"},
        }
    ]
    root = Span.objects.get(span_id=ROOT_ID.hex())
    assert (root.span_kind, root.input_value, root.output_value) == (
        "AGENT",
        "What is the refund policy?",
        "30 days.",
    )


def run_agent(provider: TracerProvider) -> tuple[int, str]:
    """An OpenInference-style agent run; returns the trace id and the session id."""
    tracer = provider.get_tracer("openinference.instrumentation.test")
    with tracer.start_as_current_span("agent") as agent:
        agent.set_attribute("openinference.span.kind", "AGENT")
        agent.set_attribute("input.value", "Where is my order?")
        agent.set_attribute("input.mime_type", "text/plain")
        agent.set_attribute("session.id", "chat-42")
        agent.set_attribute("user.id", "user-7")
        with tracer.start_as_current_span("ChatCompletion") as llm:
            llm.set_attribute("openinference.span.kind", "LLM")
            llm.set_attribute("llm.model_name", "gpt-4o-mini")
            llm.set_attribute("llm.token_count.prompt", 100)
            llm.set_attribute("llm.token_count.completion", 20)
            llm.set_attribute("llm.token_count.total", 120)
            llm.set_attribute("llm.input_messages.0.message.role", "user")
            llm.set_attribute("llm.input_messages.0.message.content", "Where is my order?")
            llm.set_attribute("session.id", "chat-42")
            llm.set_status(OtelStatus(OtelStatusCode.OK))
        with tracer.start_as_current_span("lookup_order") as tool:
            tool.set_attribute("openinference.span.kind", "TOOL")
            tool.set_attribute("session.id", "chat-42")
            try:
                raise LookupError("order 1234 not found")
            except LookupError as error:
                tool.record_exception(error)
                tool.set_status(OtelStatus(OtelStatusCode.ERROR, "order 1234 not found"))
        agent.set_attribute("output.value", "I could not find it.")
        trace_id = agent.get_span_context().trace_id
    return trace_id, "chat-42"


def assert_agent_run_stored(trace_id: int, project: str) -> None:
    trace = Trace.objects.get(trace_id=f"{trace_id:032x}")
    assert trace.project.name == project
    assert (trace.root_span_name, trace.span_count, trace.error_count) == ("agent", 3, 1)
    assert (trace.prompt_tokens, trace.completion_tokens, trace.total_tokens) == (100, 20, 120)
    spans = {span.name: span for span in trace.spans.all()}
    agent, llm, tool = spans["agent"], spans["ChatCompletion"], spans["lookup_order"]
    assert trace.root_span_id == agent.span_id and agent.parent_id is None
    assert llm.parent_id == agent.span_id and tool.parent_id == agent.span_id
    assert (agent.span_kind, agent.input_value, agent.output_value, agent.user_id) == (
        "AGENT",
        "Where is my order?",
        "I could not find it.",
        "user-7",
    )
    assert (llm.span_kind, llm.model_name, llm.status_code, llm.total_tokens) == (
        "LLM",
        "gpt-4o-mini",
        "OK",
        120,
    )
    assert (tool.status_code, tool.status_message) == ("ERROR", "order 1234 not found")
    [exception] = tool.events
    assert exception["name"] == "exception"
    assert exception["attributes"]["exception.type"] == "LookupError"
    assert exception["attributes"]["exception.message"] == "order 1234 not found"
    assert "LookupError: order 1234 not found" in exception["attributes"]["exception.stacktrace"]
    session = Session.objects.get(session_id="chat-42")
    assert session.project.name == project
    assert trace.session == session
    assert (session.trace_count, session.span_count, session.error_count) == (1, 3, 1)
    assert session.total_tokens == 120


class RecordingExporter(OTLPSpanExporter):
    """The OTLP/HTTP exporter, keeping the result of every export."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self.results.append(result)
        return result
