"""Request and response bodies of the Phoenix-compatible tracing routes (Phoenix's shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema


class ProjectOut(Schema):
    id: str
    name: str
    description: str | None = None


class ProjectIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    description: str | None = None


class ProjectUpdateIn(Schema):
    description: str | None = None


class ProjectOneOut(Schema):
    data: ProjectOut


class SpanContextOut(Schema):
    trace_id: str
    span_id: str


class SpanEventOut(Schema):
    name: str
    timestamp: str
    attributes: dict[str, Any] = {}


class SpanOut(Schema):
    id: str
    name: str
    context: SpanContextOut
    span_kind: str
    parent_id: str | None
    start_time: str
    end_time: str
    status_code: str
    status_message: str
    attributes: dict[str, Any] = Field(
        ..., description="Flat, dotted OpenInference keys (input.value, llm.model_name, ...)."
    )
    events: list[SpanEventOut]


class EvaluationIn(Schema):
    """An evaluation result logged with the spans: an annotation on a span or a trace."""

    span_id: str | None = Field(None, description="The span evaluated (or give trace_id).")
    trace_id: str | None = Field(None, description="The trace evaluated, when no span_id.")
    name: str
    annotator_kind: Literal["LLM", "CODE", "HUMAN"] = "LLM"
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    metadata: dict[str, Any] = {}
    identifier: str = ""


class SpansLogIn(Schema):
    data: list[Any] = Field(
        ...,
        description=(
            "Spans in Phoenix's shape: name, context {trace_id, span_id}, span_kind, parent_id, "
            "start_time, end_time (ISO 8601 with a time zone), status_code, status_message, "
            "attributes (flat dotted keys), events."
        ),
    )
    evaluations: list[EvaluationIn] = Field(
        [],
        description=(
            "Optional evaluation results on spans or traces of this batch (or already stored "
            "in the project), stored as annotations in the same transaction: "
            "{span_id | trace_id, name, annotator_kind (default LLM), label, score, "
            "explanation, metadata, identifier}."
        ),
    )


class SpansLogOut(Schema):
    total_received: int
    total_queued: int
    total_evaluations: int = 0


class SpansLogRejectedOut(Schema):
    detail: str = Field(
        ...,
        description="The rejection as a JSON document (what the Phoenix client parses).",
    )
    error: str
    total_received: int
    total_queued: int
    total_invalid: int
    total_duplicates: int
    invalid_spans: list[dict[str, str]]
    duplicate_spans: list[dict[str, str]]


class TraceSpanOut(Schema):
    id: str
    span_id: str
    parent_id: str | None
    name: str
    span_kind: str
    status_code: str
    start_time: str
    end_time: str


class TraceOut(Schema):
    id: str
    trace_id: str
    project_id: str
    start_time: str
    end_time: str
    latency_ms: float | None = None
    session_id: str | None = None
    token_count_prompt: int
    token_count_completion: int
    token_count_total: int
    spans: list[TraceSpanOut] | None = None


class SpanQueryIn(Schema):
    """The body of ``POST /v1/spans`` as the Phoenix client's ``get_spans_dataframe`` sends it."""

    queries: list[dict[str, Any]] = []
    start_time: str | None = None
    end_time: str | None = None
    limit: int | None = Field(1000, ge=1)
    root_spans_only: bool | None = None


class SpanListParams(Schema):
    start_time: datetime | None = Field(None, description="Inclusive lower bound.")
    end_time: datetime | None = Field(None, description="Exclusive upper bound.")
    trace_id: list[str] | None = None
    span_id: list[str] | None = None
    parent_id: str | None = Field(None, description="A span id, or 'null' for root spans.")
    name: list[str] | None = None
    span_kind: list[str] | None = None
    status_code: list[str] | None = None
    attribute: list[str] | None = Field(
        None, description="key:value (repeatable); numbers and true/false are typed."
    )
    filter: str | None = Field(None, description="A filter-language expression.")


class TraceListParams(Schema):
    start_time: datetime | None = Field(None, description="Inclusive lower bound.")
    end_time: datetime | None = Field(None, description="Exclusive upper bound.")
    sort: Literal["start_time", "latency_ms"] = "start_time"
    order: Literal["asc", "desc"] = "desc"
    include_spans: bool = False
    session_identifier: list[str] | None = None
    error: bool | None = None
    min_latency_ms: float | None = Field(None, ge=0)
    max_latency_ms: float | None = Field(None, ge=0)
    filter: str | None = Field(
        None,
        description="A filter-language expression: a trace is listed when any of its spans "
        "matches (with root_spans_only, when its root span does).",
    )
    root_spans_only: bool = Field(False, description="Match the filter on root spans only.")


class ExportParams(Schema):
    format: str = Field("jsonl", description="jsonl, csv or parquet")
    filter: str | None = Field(None, description="A filter-language expression.")
    start_time: datetime | None = Field(None, description="Inclusive lower bound.")
    end_time: datetime | None = Field(None, description="Exclusive upper bound.")
