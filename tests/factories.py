"""Test data builders, in one place. They go through the same services as production code."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from evalhub.identity.services import api_key_create
from tracing.models import Project, Span
from tracing.store.records import SpanRecord
from tracing.store.services import spans_ingest

_counter = itertools.count(1)
BASE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def next_hex(width: int) -> str:
    return f"{next(_counter):0{width}x}"


def api_key(name: str = "test", *, scope: str = "admin", user: Any = None) -> str:
    """A raw API key; by default an admin-scope key with no user, which may call every route."""
    _key, raw = api_key_create(name=name, scope=scope, user=user)
    return raw


def span_record(
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_id: str | None = None,
    name: str = "span",
    kind: str = "CHAIN",
    start: datetime | None = None,
    latency_ms: float = 100.0,
    status_code: str = "OK",
    status_message: str = "",
    input_value: str | None = "question",
    output_value: str | None = "answer",
    attributes: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    session_id: str | None = None,
    project_name: str | None = None,
    events: list[dict[str, Any]] | None = None,
) -> SpanRecord:
    start = start or BASE_TIME
    attrs: dict[str, Any] = {"openinference.span.kind": kind}
    if input_value is not None:
        attrs["input.value"] = input_value
    if output_value is not None:
        attrs["output.value"] = output_value
    if metadata is not None:
        attrs["metadata"] = json.dumps(metadata)
    if session_id is not None:
        attrs["session.id"] = session_id
    attrs.update(attributes or {})
    return SpanRecord(
        trace_id=trace_id or next_hex(32),
        span_id=span_id or next_hex(16),
        parent_id=parent_id,
        name=name,
        start_time=start,
        end_time=start + timedelta(milliseconds=latency_ms),
        status_code=status_code,
        status_message=status_message,
        attributes=attrs,
        events=events or [],
        project_name=project_name,
    )


def llm_attributes(
    model: str = "gpt-4o-mini", prompt_tokens: int = 100, completion_tokens: int = 20
) -> dict[str, Any]:
    return {
        "llm.model_name": model,
        "llm.token_count.prompt": prompt_tokens,
        "llm.token_count.completion": completion_tokens,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "question",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "answer",
    }


def ingest(records: list[SpanRecord], project: str = "default") -> list[Span]:
    spans_ingest(records=records, default_project=project)
    return list(
        Span.objects.filter(span_id__in=[r.span_id for r in records]).order_by("start_time")
    )


def _retrieval_trace(
    *,
    project: str,
    root: tuple[str, str, float],
    start: datetime,
    question: str,
    answer: str,
    documents: dict[str, Any],
    llm_latency_ms: float,
    status_code: str = "OK",
    session_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    model: str = "gpt-4o-mini",
) -> list[Span]:
    """A trace of three spans: a ``root`` (name, kind, latency) → RETRIEVER (with the
    ``documents`` attributes) and LLM children. Returns its spans, root first."""
    trace_id = next_hex(32)
    name, kind, latency_ms = root
    common: dict[str, Any] = {
        "trace_id": trace_id,
        "input_value": question,
        "session_id": session_id,
    }
    parent = span_record(
        **common,
        name=name,
        kind=kind,
        start=start,
        latency_ms=latency_ms,
        status_code=status_code,
        output_value=answer,
        metadata=metadata,
    )
    retriever = span_record(
        **common,
        parent_id=parent.span_id,
        name="retrieve",
        kind="RETRIEVER",
        start=start + timedelta(milliseconds=10),
        latency_ms=50,
        output_value=None,
        attributes=documents,
    )
    llm = span_record(
        **common,
        parent_id=parent.span_id,
        name="llm",
        kind="LLM",
        start=start + timedelta(milliseconds=100),
        latency_ms=llm_latency_ms,
        status_code=status_code,
        output_value=answer,
        attributes=llm_attributes(model=model),
        metadata=metadata,
    )
    return ingest([parent, retriever, llm], project=project)


def trace(
    *,
    project: str = "default",
    start: datetime | None = None,
    session_id: str | None = None,
    status_code: str = "OK",
    llm_latency_ms: float = 400.0,
    model: str = "gpt-4o-mini",
    metadata: dict[str, Any] | None = None,
    input_value: str = "What is the refund policy?",
    output_value: str = "Refunds are accepted within 30 days.",
) -> list[Span]:
    """A small agent trace: AGENT root → RETRIEVER, LLM children. Returns its spans, root first."""
    return _retrieval_trace(
        project=project,
        root=("agent", "AGENT", llm_latency_ms + 200),
        start=start or BASE_TIME,
        question=input_value,
        answer=output_value,
        documents={
            "retrieval.documents.0.document.id": "doc-1",
            "retrieval.documents.0.document.content": "Refunds within 30 days.",
            "retrieval.documents.0.document.score": 0.91,
        },
        llm_latency_ms=llm_latency_ms,
        status_code=status_code,
        session_id=session_id,
        metadata=metadata,
        model=model,
    )


def project(name: str = "default") -> Project:
    return Project.objects.get_or_create(name=name)[0]


def rag_trace(
    *,
    project: str = "default",
    question: str = "What is the refund policy?",
    documents: tuple[str, ...] = ("Refunds within 30 days.", "Shipping is free.", "We sell hats."),
    answer: str = "Refunds are accepted within 30 days.",
    start: datetime | None = None,
) -> list[Span]:
    """A RAG trace: CHAIN root → RETRIEVER (with ``documents``, scored high to low) and LLM.
    Returns its spans, root first."""
    attributes: dict[str, Any] = {}
    for n, content in enumerate(documents):
        attributes[f"retrieval.documents.{n}.document.id"] = f"doc-{n}"
        attributes[f"retrieval.documents.{n}.document.content"] = content
        attributes[f"retrieval.documents.{n}.document.score"] = round(0.9 - n * 0.2, 2)
    return _retrieval_trace(
        project=project,
        root=("rag", "CHAIN", 900),
        start=start or BASE_TIME,
        question=question,
        answer=answer,
        documents=attributes,
        llm_latency_ms=700,
    )
