"""The trace of each run of a prompt experiment EvalHub runs itself: a CHAIN span for the run
(the example's variables in, the output out, the experiment, example and repetition in its
metadata) with the model call as an LLM child span (messages, model, token counts; an error
as an ``exception`` event and ERROR status). The spans go to the experiment's project
(``Experiment-<id>``) through the trace store's ingest service, and the run keeps the trace id
— the experiment page, the comparison and dataset tasks' variables (``trace.trajectory``…)
reach the trace from there."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracing.store.records import SpanRecord
from tracing.store.services import spans_ingest


@dataclass(frozen=True, slots=True)
class TracedRun:
    """What a run's trace shows: the call's messages and variables, and how it went."""

    experiment_id: int
    example_id: int
    repetition: int
    variables: Mapping[str, str]
    messages: Sequence[Mapping[str, str]] | None
    model: str
    output: Any
    error: str | None
    start: datetime
    end: datetime
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def new_trace_id() -> str:
    return secrets.token_hex(16)


def _status(run: TracedRun) -> tuple[str, str, list[dict[str, Any]]]:
    if not run.error:
        return "OK", "", []
    event = {
        "name": "exception",
        "timestamp": run.end.isoformat(),
        "attributes": {"exception.type": "LlmError", "exception.message": run.error},
    }
    return "ERROR", run.error, [event]


def _output_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, default=str)


def run_span_records(run: TracedRun, *, trace_id: str) -> list[SpanRecord]:
    """The spans of one run's trace, root first."""
    status, message, events = _status(run)
    root_id, llm_id = secrets.token_hex(8), secrets.token_hex(8)
    metadata = {
        "experiment_id": run.experiment_id,
        "dataset_example_id": run.example_id,
        "repetition_number": run.repetition,
    }
    root: dict[str, Any] = {
        "openinference.span.kind": "CHAIN",
        "input.value": json.dumps(dict(run.variables), ensure_ascii=False),
        "input.mime_type": "application/json",
        "metadata": json.dumps(metadata),
    }
    llm: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.model_name": run.model,
        "input.value": json.dumps(list(run.messages or []), ensure_ascii=False),
        "input.mime_type": "application/json",
    }
    for index, item in enumerate(run.messages or ()):
        llm[f"llm.input_messages.{index}.message.role"] = item.get("role", "user")
        llm[f"llm.input_messages.{index}.message.content"] = item.get("content", "")
    if run.error is None and run.output is not None:
        root["output.value"] = llm["output.value"] = _output_text(run.output)
        llm["llm.output_messages.0.message.role"] = "assistant"
        llm["llm.output_messages.0.message.content"] = _output_text(run.output)
    for name, value in (
        ("llm.token_count.prompt", run.prompt_tokens),
        ("llm.token_count.completion", run.completion_tokens),
    ):
        if value is not None:
            llm[name] = value
    records = [
        SpanRecord(
            trace_id=trace_id,
            span_id=root_id,
            name="experiment run",
            start_time=run.start,
            end_time=run.end,
            status_code=status,
            status_message=message,
            attributes=root,
        )
    ]
    if run.messages is not None:
        records.append(
            SpanRecord(
                trace_id=trace_id,
                span_id=llm_id,
                parent_id=root_id,
                name="llm",
                start_time=run.start,
                end_time=run.end,
                status_code=status,
                status_message=message,
                attributes=llm,
                events=events,
            )
        )
    return records


def runs_trace(records: Sequence[SpanRecord], *, project_name: str) -> None:
    """Store the spans of a batch of runs in the experiment's project."""
    if records:
        spans_ingest(records=records, default_project=project_name)
