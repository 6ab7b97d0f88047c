"""What EvalHub runs itself for experiments (on Celery, through ``evalhub.experiments.tasks``):

- a **prompt experiment**: a prompt version's template filled with each example's fields
  (the experiment's ``variables`` map template variables to ``input.<key>``,
  ``expected.<key>``, ``metadata.<key>``), sent to a provider's model with the same limiter,
  retries and cost accounting as judge calls (``evalhub.hub.llm.chat_complete``,
  ``tracing.pricing.cost_of``), ``concurrency`` calls at a time. A call that fails records
  its error on that run and the others go on. Idempotent: a run already recorded without
  error is not run again, so a redelivered task only fills what is missing.
- **evaluating** an experiment's runs with an evaluator of the hub (LLM judge, built-in check
  or custom code): the evaluator's variables resolve against the run — ``input``,
  ``output``, ``reference`` (the expected output), ``metadata.<key>`` — and each result is
  stored as the run's evaluation under the evaluator's name.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Final

from django.db import close_old_connections, transaction

from annotations.models import DatasetExampleRevision
from evalhub.experiments.models import Experiment, ExperimentKind, ExperimentRun, ExperimentStatus
from evalhub.experiments.prompts import invocation_settings, prompt_render
from evalhub.experiments.services import (
    RunExists,
    RunInput,
    evaluation_upsert,
    experiment_status_set,
    run_record,
)
from evalhub.hub.llm import LlmError, chat_complete
from evalhub.hub.variables import is_missing, path_get, value_text

FIELDS: Final = ("input", "expected", "metadata")


class MappingInvalid(ValueError):
    pass


def _unwrap(value: Any) -> Any:
    """``{"question": "..."}`` reads as its one value; other objects stay objects."""
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def example_fields(revision: DatasetExampleRevision) -> dict[str, Any]:
    return {"input": revision.input, "expected": revision.output, "metadata": revision.metadata}


def mapping_check(variables: Mapping[str, str], template_vars: list[str]) -> dict[str, str]:
    """Each template variable → an example field path (default: ``input.<variable>``)."""
    cleaned = {}
    for name in template_vars:
        source = (variables.get(name) or f"input.{name}").strip()
        if source.split(".", 1)[0] not in FIELDS:
            raise MappingInvalid(
                f"variables.{name}: {source!r} must start with input, expected or metadata"
            )
        cleaned[name] = source
    return cleaned


def prompt_values(mapping: Mapping[str, str], fields: Mapping[str, Any]) -> dict[str, str]:
    values = {}
    for name, source in mapping.items():
        head, _, rest = source.partition(".")
        value = path_get(fields[head], rest) if rest else fields[head]
        if is_missing(value):
            raise KeyError(f"variable {name!r}: {source} is missing on this example")
        values[name] = value_text(_unwrap(value) if not rest else value)
    return values


def _claim(experiment_id: int) -> Experiment | None:
    """QUEUED (or a RUNNING one redelivered) → RUNNING; None when there is nothing to do."""
    with transaction.atomic():
        experiment = (
            Experiment.objects.select_for_update()
            .select_related("dataset_version", "prompt_version", "provider")
            .filter(pk=experiment_id, kind=ExperimentKind.PROMPT)
            .first()
        )
        if experiment is None or experiment.status not in (
            ExperimentStatus.QUEUED,
            ExperimentStatus.RUNNING,
        ):
            return None
        experiment.status = ExperimentStatus.RUNNING
        experiment.save(update_fields=["status"])
        return experiment


def _one_call(experiment: Experiment, revision: DatasetExampleRevision, repetition: int) -> None:
    from evalhub.hub.runner import provider_config
    from tracing.pricing import cost_of

    started = datetime.now(UTC)
    run = RunInput(example_id=revision.example_id, repetition_number=repetition)
    try:
        assert experiment.prompt_version is not None and experiment.provider is not None
        values = prompt_values(experiment.variables, example_fields(revision))
        messages = prompt_render(experiment.prompt_version, values)
        settings = invocation_settings(experiment.prompt_version)
        chat = chat_complete(
            provider_config(experiment.provider),
            messages=messages,
            model=experiment.model or experiment.prompt_version.model_name,
            temperature=settings.get("temperature"),
            max_tokens=settings.get("max_tokens") or settings.get("max_completion_tokens"),
        )
        run = RunInput(
            example_id=revision.example_id,
            repetition_number=repetition,
            output=chat.content,
            start_time=started,
            end_time=datetime.now(UTC),
            prompt_tokens=chat.prompt_tokens,
            completion_tokens=chat.completion_tokens,
            cost_usd=cost_of(chat.model, chat.prompt_tokens, chat.completion_tokens),
        )
    except (LlmError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        run = RunInput(
            example_id=revision.example_id,
            repetition_number=repetition,
            error=message,
            start_time=started,
            end_time=datetime.now(UTC),
        )
    with contextlib.suppress(RunExists):  # recorded by a redelivered task meanwhile
        run_record(experiment=experiment, run=run)


def prompt_experiment_execute(*, experiment_id: int) -> int:
    """Run a prompt experiment's missing runs; returns how many calls were made."""
    from evalhub.experiments.selectors import incomplete_runs

    experiment = _claim(experiment_id)
    if experiment is None:
        return 0
    todo: list[tuple[DatasetExampleRevision, int]] = []
    cursor: str | None = None
    while True:
        page = incomplete_runs(experiment=experiment, cursor=cursor, limit=1000)
        todo += [(i.revision, rep) for i in page.items for rep in i.repetitions]
        cursor = page.next_cursor
        if cursor is None:
            break

    def work(item: tuple[DatasetExampleRevision, int]) -> None:
        try:
            _one_call(experiment, *item)
        finally:
            close_old_connections()

    try:
        with ThreadPoolExecutor(max_workers=max(1, experiment.concurrency)) as pool:
            list(pool.map(work, todo))
    except Exception as exc:
        experiment_status_set(
            experiment=experiment, status=ExperimentStatus.FAILED, error=str(exc)[:2000]
        )
        raise
    experiment_status_set(experiment=experiment, status=ExperimentStatus.COMPLETED)
    return len(todo)


# --- evaluating runs with the hub's evaluators ---------------------------------------------


def run_values(run: ExperimentRun, revision: DatasetExampleRevision) -> dict[str, Any]:
    """What an evaluator's variables read of a run."""
    return {
        "input": _unwrap(revision.input),
        "output": run.output,
        "reference": _unwrap(revision.output),
        "metadata": revision.metadata,
    }


def _evaluator_values(config: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """The evaluator's variables (name → source) resolved against the run's values."""
    resolved: dict[str, Any] = {"metadata": values["metadata"]}
    for name, source in config.mapping().items():
        head, _, rest = source.partition(".")
        if head in values:
            value = values[head] if not rest else path_get(values[head], rest)
            if not is_missing(value):
                resolved[name] = value
    return resolved


def experiment_evaluate(*, experiment_id: int, evaluator_id: int) -> int:
    """Score every successful run of the experiment with the evaluator's latest version;
    returns the number of evaluations stored."""
    from evalhub.experiments.selectors import revisions_by_example
    from evalhub.hub.config import config_parse
    from evalhub.hub.runner import evaluator_run
    from evalhub.models import Evaluator
    from evalhub.selectors import evaluator_version_latest

    experiment = Experiment.objects.select_related("dataset_version").get(pk=experiment_id)
    evaluator = Evaluator.objects.get(pk=evaluator_id)
    version = evaluator_version_latest(evaluator=evaluator)
    config = config_parse(version.config)
    revisions = revisions_by_example(experiment=experiment)
    runs = list(ExperimentRun.objects.filter(experiment=experiment, error__isnull=True))

    def work(run: ExperimentRun) -> int:
        try:
            revision = revisions.get(run.example_id)
            if revision is None:
                return 0
            values = _evaluator_values(config, run_values(run, revision))
            started = time.time()
            result = evaluator_run(version=version, values=values)
            evaluation_upsert(
                run=run,
                name=evaluator.name,
                annotator_kind=evaluator.kind if evaluator.kind in ("LLM", "CODE") else "CODE",
                result={
                    "label": result.label,
                    "score": result.score,
                    "explanation": result.explanation,
                },
                error=result.error,
                metadata=result.annotation_metadata(),
                trace_id=result.judge_trace_id,
                start_time=datetime.fromtimestamp(result.started_at or started, UTC),
                end_time=datetime.fromtimestamp(result.ended_at or time.time(), UTC),
            )
            return 1
        finally:
            close_old_connections()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return sum(pool.map(work, runs))
