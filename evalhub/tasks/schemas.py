"""The shapes of the tasks' ``/v1`` routes (``evalhub.tasks.api``): what a task, a backfill
and a run are given as (unknown keys refused) and answered with.
"""

from __future__ import annotations

from datetime import datetime

from ninja import Field, Schema
from pydantic import ConfigDict

from evalhub.tasks.backfill import DEFAULT_MAX_ITEMS

DEFAULT_LOGS_LIMIT = 100
MAX_LOGS_LIMIT = 1000
MAX_DESCRIPTION = 5000  # as on the task form


class _Strict(Schema):
    """Input whose unknown keys are refused: a misspelt field is an error, not ignored."""

    model_config = ConfigDict(extra="forbid")


class TaskEvaluatorIn(_Strict):
    evaluator: int | str = Field(..., description="The evaluator's id or name")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="Template variable → source (e.g. {'output': 'attributes.output.value'})",
    )


class BackfillIn(_Strict):
    data_start_time: datetime = Field(..., description="Spans that started from then…")
    data_end_time: datetime | None = Field(None, description="…until then (default: now)")
    max_spans: int = Field(DEFAULT_MAX_ITEMS, description="At most this many items")


class TaskIn(_Strict):
    name: str
    target: str = Field(
        "project", description="project (its spans) or dataset (its new experiments' runs)"
    )
    project: str | None = Field(None, description="The project's name (or id)")
    dataset: str | None = Field(None, description="The dataset's name (or id), for a dataset task")
    evaluators: list[TaskEvaluatorIn | int | str] = Field(
        ..., description="Evaluators with their variable mapping; a bare id or name maps none"
    )
    granularity: str = Field("span", description="span, trace or session")
    filter: str = Field("", description="Which items to evaluate, in the filter language")
    sampling_rate: float = Field(100.0, description="Percent of matching items, 0 to 100")
    continuous: bool = Field(True, description="Evaluate new data as it arrives")
    interval_seconds: int = Field(30, description="How often continuous runs look for new data")
    quiet_seconds: int | None = Field(
        None, description="Wait this long after a trace's / session's last span (default 60/600)"
    )
    provider: int | str | None = Field(None, description="LLM provider id or name")
    model: str = Field("", description="Model for LLM evaluators (default: the provider's)")
    tracing: bool = Field(
        False, description="Record each judge call as an LLM span in '<project> · judge traces'"
    )
    description: str = Field("", max_length=MAX_DESCRIPTION)
    backfill: BackfillIn | None = Field(None, description="Also start a backfill run")


class TaskPatch(_Strict):
    """Any subset of the fields; ``quiet_seconds`` and ``provider`` may be set to null."""

    name: str | None = None
    project: str | None = None
    dataset: str | None = None
    evaluators: list[TaskEvaluatorIn | int | str] | None = None
    granularity: str | None = None
    filter: str | None = None
    sampling_rate: float | None = None
    continuous: bool | None = None
    interval_seconds: int | None = None
    quiet_seconds: int | None = None
    provider: int | str | None = None
    model: str | None = None
    tracing: bool | None = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class RunIn(_Strict):
    data_start_time: datetime
    data_end_time: datetime | None = Field(None, description="Default: now")
    max_spans: int = DEFAULT_MAX_ITEMS


class TaskEvaluatorOut(Schema):
    evaluator: str
    evaluator_id: int
    annotation_name: str
    variables: dict[str, str]


class TaskOut(Schema):
    id: int
    name: str
    target: str
    project: str | None
    project_id: int | None
    dataset: str | None
    dataset_id: int | None
    description: str
    status: str
    paused_reason: str
    evaluators: list[TaskEvaluatorOut]
    granularity: str
    filter: str
    sampling_rate: float
    continuous: bool
    interval_seconds: int
    quiet_seconds: int | None
    effective_quiet_seconds: int
    provider: str | None
    provider_id: int | None
    model: str
    tracing: bool
    last_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TaskCreatedOut(TaskOut):
    backfill_run_id: int | None


class RunCountsOut(Schema):
    matched: int
    sampled: int
    evaluated: int
    succeeded: int
    errored: int
    skipped: int
    total: int
    done: int
    percent: float
    prompt_tokens: int
    completion_tokens: int
    cost: float


class RunOut(Schema):
    id: int
    task_id: int | None
    task: str | None
    project: str | None
    project_id: int | None
    experiment_id: int | None = Field(None, description="The experiment a dataset task scored")
    kind: str
    status: str
    active: bool
    evaluators: list[str]
    data_start_time: datetime | None
    data_end_time: datetime | None
    items_start_time: datetime | None
    items_end_time: datetime | None
    max_spans: int | None
    counts: RunCountsOut
    error: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class RunLogOut(Schema):
    id: int
    time: datetime
    level: str
    message: str
    count: int = Field(1, description="Items this line stands for (a reason items were skipped)")
    target_kind: str
    target_key: str
    evaluator: str


class RunDetailOut(RunOut):
    logs: list[RunLogOut]
    logs_total: int
    logs_next_after: int | None = Field(
        None, description="Pass as logs_after for the next log entries; null at the end"
    )


class RunItemResultOut(Schema):
    evaluator: str
    label: str | None = None
    score: float | None = None
    explanation: str | None = None
    latency_ms: float | None = None
    error: str | None = Field(None, description="Why the evaluation failed")
    skipped: str | None = Field(None, description="Why it could not run (a missing variable)")
    judge_trace_id: str | None = Field(None, description="The judge call's trace (tracing on)")
    judge_project: str | None = None


class RunItemOut(Schema):
    id: int
    target_kind: str = Field(..., description="span, trace or session")
    target_id: str = Field(..., description="The span id, trace id or session id")
    outcome: str = Field(..., description="succeeded, errored, skipped or pending")
    reason: str = Field(..., description="Why the item was skipped")
    start_time: datetime | None
    finished_at: datetime | None
    results: list[RunItemResultOut] = Field(..., description="One per evaluator")


class RunCreatedOut(Schema):
    run_id: int


class LogsQuery(Schema):
    logs_limit: int = Field(DEFAULT_LOGS_LIMIT, ge=0, le=MAX_LOGS_LIMIT)
    logs_after: int | None = Field(None, description="Log entries after this id")
    logs_level: str | None = Field(None, description="info, warning or error")


class InvalidOut(Schema):
    detail: str
    field: str


class RejectedOut(Schema):
    detail: str
    message: str
    code: str
