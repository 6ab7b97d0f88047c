"""Enable tracing: a task's judge calls as OpenInference LLM spans in a project of their own.

The project is ``"<project> · judge traces"``, created on demand. Each judge call is one trace
with one LLM span — the rendered prompt as ``llm.input_messages``, the answer as
``llm.output_messages`` with its tool call, the tools offered, the invocation parameters, token
counts (the store prices them from the model price table), the call's time with its retries,
each failed attempt as a ``retry`` event and a final failure as an ``exception`` event with an
ERROR status. Runs of a task group their calls in a session ``task run <id>``. The spans are
written through the trace store's ingest service (``tracing.store.services.spans_ingest``), never over
the network, and each result keeps the trace id (``judge_trace_id``) to link to it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from evalhub.evaluators.definition import LlmJudgeConfig
from evalhub.evaluators.running import EvaluationResult, PreparedEvaluation
from tracing.models import Project
from tracing.store.records import SpanRecord
from tracing.store.services import spans_ingest

SUFFIX = " · judge traces"


def judge_project_name(project_name: str) -> str:
    """The project a task on ``project_name`` records its judge calls in."""
    limit = (Project._meta.get_field("name").max_length or 200) - len(SUFFIX)
    return project_name[:limit] + SUFFIX


@dataclass(frozen=True, slots=True)
class JudgeCall:
    """One judge call to record: the evaluation prepared and its result, and what it was
    about."""

    prepared: PreparedEvaluation
    result: EvaluationResult
    evaluator: str
    target_kind: str
    target_id: str


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _answer(raw: str | None) -> dict[str, Any]:
    """The first choice's message of a chat completion body, or ``{}``."""
    try:
        body = json.loads(raw or "")
        message = body["choices"][0]["message"]
    except (ValueError, KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}


def _attributes(call: JudgeCall, *, run_id: int, task_id: int | None) -> dict[str, Any]:
    prepared, result = call.prepared, call.result
    request = prepared.request
    assert request is not None
    config = prepared.config
    attributes: dict[str, Any] = {
        "openinference.span.kind": "LLM",
        "llm.system": "openai",
        "llm.provider": prepared.provider.kind if prepared.provider else "",
        "llm.model_name": result.model or "",
        "input.value": result.rendered_prompt or "",
        "input.mime_type": "text/plain",
        "session.id": f"task run {run_id}",
        "metadata": json.dumps(
            {
                "task_id": task_id,
                "task_run": run_id,
                "evaluator": call.evaluator,
                "evaluator_version": result.version,
                "target_kind": call.target_kind,
                "target_id": call.target_id,
                "attempts": result.attempts,
                "label": result.label,
                "score": result.score,
            }
        ),
    }
    parameters: dict[str, Any] = {}
    if isinstance(config, LlmJudgeConfig):
        parameters = {"temperature": config.temperature, "max_tokens": config.max_tokens}
    if request.tool_choice:
        parameters["tool_choice"] = request.tool_choice
    if request.response_format:
        parameters["response_format"] = request.response_format
    attributes["llm.invocation_parameters"] = json.dumps(
        {k: v for k, v in parameters.items() if v is not None}
    )
    for index, message in enumerate(request.messages):
        attributes[f"llm.input_messages.{index}.message.role"] = message["role"]
        attributes[f"llm.input_messages.{index}.message.content"] = message["content"]
    for index, tool in enumerate(request.tools or ()):
        attributes[f"llm.tools.{index}.tool.json_schema"] = json.dumps(tool)
    answer = _answer(result.raw_response)
    if answer:
        prefix = "llm.output_messages.0.message"
        attributes[f"{prefix}.role"] = answer.get("role") or "assistant"
        if answer.get("content") is not None:
            attributes[f"{prefix}.content"] = str(answer["content"])
        for index, tool_call in enumerate(answer.get("tool_calls") or ()):
            function = tool_call.get("function") if isinstance(tool_call, dict) else None
            if not isinstance(function, dict):
                continue
            call_prefix = f"{prefix}.tool_calls.{index}.tool_call"
            if tool_call.get("id"):
                attributes[f"{call_prefix}.id"] = str(tool_call["id"])
            attributes[f"{call_prefix}.function.name"] = str(function.get("name") or "")
            attributes[f"{call_prefix}.function.arguments"] = str(function.get("arguments") or "")
    if result.raw_response is not None:
        attributes["output.value"] = result.raw_response
        attributes["output.mime_type"] = "application/json"
    for name, value in (
        ("llm.token_count.prompt", result.prompt_tokens),
        ("llm.token_count.completion", result.completion_tokens),
        ("llm.token_count.total", result.total_tokens),
    ):
        if value is not None:
            attributes[name] = value
    return attributes


def _events(result: EvaluationResult) -> list[dict[str, Any]]:
    events = [
        {
            "name": "retry",
            "timestamp": _moment(failure["time"]).isoformat(),
            "attributes": {
                key: value
                for key, value in (
                    ("attempt", failure.get("attempt")),
                    ("error", failure.get("error")),
                    ("http.status_code", failure.get("status")),
                    ("retry_in_seconds", failure.get("retry_in_seconds")),
                )
                if value is not None
            },
        }
        for failure in result.attempt_failures
        if isinstance(failure.get("time"), int | float)
    ]
    if result.error and result.ended_at is not None:
        events.append(
            {
                "name": "exception",
                "timestamp": _moment(result.ended_at).isoformat(),
                "attributes": {
                    "exception.type": "JudgeError",
                    "exception.message": result.error,
                },
            }
        )
    return events


def judge_span_record(call: JudgeCall, *, run_id: int, task_id: int | None) -> SpanRecord | None:
    """The LLM span of one judge call (``None`` when no call was made: a code evaluator, a
    skipped item, an error before the request)."""
    result = call.result
    if call.prepared.request is None or result.started_at is None:
        return None
    ended = result.ended_at if result.ended_at is not None else result.started_at
    return SpanRecord(
        trace_id=secrets.token_hex(16),
        span_id=secrets.token_hex(8),
        name=f"judge {call.evaluator}"[:1024],
        start_time=_moment(result.started_at),
        end_time=_moment(max(ended, result.started_at)),
        status_code="ERROR" if result.error else "OK",
        status_message=result.error or "",
        attributes=_attributes(call, run_id=run_id, task_id=task_id),
        events=_events(result),
    )


def judge_calls_record(
    calls: Sequence[JudgeCall], *, project_name: str, run_id: int, task_id: int | None
) -> None:
    """Write the spans of ``calls`` to the project's judge-traces project (created on demand)
    and keep each call's trace id and project on its result."""
    project = judge_project_name(project_name)
    records = []
    for call in calls:
        record = judge_span_record(call, run_id=run_id, task_id=task_id)
        if record is None:
            continue
        records.append(record)
        call.result.judge_trace_id = record.trace_id
        call.result.judge_project = project
    if records:
        spans_ingest(records=records, default_project=project)
