"""What EvalHub runs itself for experiments (on Celery, through ``evalhub.experiments.jobs``):

- a **prompt experiment**: a prompt version's template filled with each example's fields
  (the experiment's ``variables`` map template variables to ``input.<key>``,
  ``expected.<key>``, ``metadata.<key>``), sent to a provider's model with the same limiter,
  retries and cost accounting as judge calls (``evalhub.providers.llm.chat_complete``,
  ``tracing.store.pricing.cost_of``), ``concurrency`` calls at a time. A call that fails records
  its error on that run and the others go on. Each run's trace (the run and its model call)
  is written to the experiment's project (``evalhub.experiments.run_tracing``). Idempotent: a run already recorded without
  error is not run again, so a redelivered task only fills what is missing.
- **evaluating** an experiment's runs with an evaluator of the hub (LLM judge, built-in check
  or custom code): the evaluator's variables resolve against the run — ``input``,
  ``output``, ``reference`` (the expected output), ``metadata.<key>`` — and any other source
  against the root span of the run's trace (``trace.trajectory``, ``attributes.<path>``…);
  each result is stored as the run's evaluation under the evaluator's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from django.db import connection, transaction

from annotations.datasets.models import DatasetExampleRevision
from evalhub.evaluators.variables import is_missing, path_get, value_text
from evalhub.experiments.models import Experiment, ExperimentKind, ExperimentRun, ExperimentStatus
from evalhub.experiments.prompts import invocation_settings, prompt_render
from evalhub.experiments.run_tracing import TracedRun, new_trace_id, run_span_records, runs_trace
from evalhub.experiments.services import (
    RunInput,
    ScoredRun,
    evaluations_store,
    experiment_status_set,
    runs_store,
)
from evalhub.experiments.task_target import (
    dataset_tasks_nudge,
    run_sources,
    trace_roots,
    variable_values,
)
from evalhub.providers.llm import LlmError, ProviderConfig, chat_complete
from tracing.store.records import SpanRecord

STORE_BATCH: Final = 50
"""Runs recorded at a time as their calls finish (a few queries per batch, not per run)."""


def _unwrap(value: Any) -> Any:
    """``{"question": "..."}`` reads as its one value; other objects stay objects."""
    if isinstance(value, Mapping) and len(value) == 1:
        return next(iter(value.values()))
    return value


def example_fields(revision: DatasetExampleRevision) -> dict[str, Any]:
    return {"input": revision.input, "expected": revision.output, "metadata": revision.metadata}


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
            Experiment.objects.select_for_update(of=("self",))
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


@dataclass(frozen=True, slots=True)
class _Call:
    """One model call to make: no database access while it runs (threads only call)."""

    example_id: int
    repetition: int
    messages: list[dict[str, str]] | None
    error: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)


def _call(provider: ProviderConfig, experiment: Experiment, call: _Call) -> tuple[RunInput, str]:
    try:
        return _call_model(provider, experiment, call)
    finally:
        connection.close()  # a pool thread's connection, if anything opened one


def _call_model(
    provider: ProviderConfig, experiment: Experiment, call: _Call
) -> tuple[RunInput, str]:
    started = datetime.now(UTC)
    if call.messages is None:
        return RunInput(
            example_id=call.example_id,
            repetition_number=call.repetition,
            error=call.error,
            start_time=started,
            end_time=started,
        ), ""
    assert experiment.prompt_version is not None
    settings = invocation_settings(experiment.prompt_version)
    try:
        chat = chat_complete(
            provider,
            messages=call.messages,
            model=experiment.model or experiment.prompt_version.model_name,
            temperature=settings.get("temperature"),
            max_tokens=settings.get("max_tokens") or settings.get("max_completion_tokens"),
        )
    except LlmError as exc:
        return RunInput(
            example_id=call.example_id,
            repetition_number=call.repetition,
            error=str(exc),
            start_time=started,
            end_time=datetime.now(UTC),
        ), ""
    return RunInput(
        example_id=call.example_id,
        repetition_number=call.repetition,
        output=chat.content,
        start_time=started,
        end_time=datetime.now(UTC),
        prompt_tokens=chat.prompt_tokens,
        completion_tokens=chat.completion_tokens,
    ), chat.model


def _calls(experiment: Experiment) -> list[_Call]:
    """The runs still missing, each with its rendered messages (or why it cannot run)."""
    from evalhub.experiments.selectors import incomplete_runs

    assert experiment.prompt_version is not None
    calls: list[_Call] = []
    cursor: str | None = None
    while True:
        page = incomplete_runs(experiment=experiment, cursor=cursor, limit=1000)
        for item in page.items:
            values: dict[str, str] = {}
            try:
                values = prompt_values(experiment.variables, example_fields(item.revision))
                messages: list[dict[str, str]] | None = prompt_render(
                    experiment.prompt_version, values
                )
                error = None
            except KeyError as exc:
                messages, error = None, str(exc.args[0])
            calls += [
                _Call(item.revision.example_id, r, messages, error, values)
                for r in item.repetitions
            ]
        cursor = page.next_cursor
        if cursor is None:
            return calls


def _run_spans(experiment: Experiment, call: _Call, run: RunInput, model: str) -> list[Any]:
    """The spans of a run's trace (``evalhub.experiments.run_tracing``)."""
    return run_span_records(
        TracedRun(
            experiment_id=experiment.pk,
            example_id=call.example_id,
            repetition=call.repetition,
            variables=call.variables,
            messages=call.messages,
            model=model or experiment.model,
            output=run.output,
            error=run.error,
            start=run.start_time,
            end=run.end_time,
            prompt_tokens=run.prompt_tokens,
            completion_tokens=run.completion_tokens,
        ),
        trace_id=run.trace_id,
    )


def prompt_experiment_execute(*, experiment_id: int) -> int:
    """Run a prompt experiment's missing runs (``concurrency`` model calls at a time, each
    recorded as it finishes); returns how many runs were recorded."""
    from evalhub.providers.selectors import provider_config
    from tracing.store.pricing import cost_of

    experiment = _claim(experiment_id)
    if experiment is None:
        return 0
    recorded = 0
    try:
        if experiment.provider is None or experiment.prompt_version is None:
            raise LlmError("the experiment's provider or prompt was deleted", fatal=True)
        provider = provider_config(experiment.provider)
        calls = _calls(experiment)
        batch: list[RunInput] = []
        spans: list[SpanRecord] = []

        def store() -> int:
            runs_trace(spans, project_name=experiment.project_name)
            stored = runs_store(experiment=experiment, runs=batch)
            batch.clear()
            spans.clear()
            return stored

        with ThreadPoolExecutor(max_workers=max(1, experiment.concurrency)) as pool:
            futures = {pool.submit(_call, provider, experiment, c): c for c in calls}
            for future in as_completed(futures):
                run, model = future.result()
                if model:
                    run = replace(
                        run, cost_usd=cost_of(model, run.prompt_tokens, run.completion_tokens)
                    )
                run = replace(run, trace_id=new_trace_id())
                spans.extend(_run_spans(experiment, futures[future], run, model))
                batch.append(run)
                if len(batch) >= STORE_BATCH:
                    recorded += store()
        recorded += store()
    except Exception as exc:
        experiment_status_set(
            experiment=experiment, status=ExperimentStatus.FAILED, error=str(exc)[:2000]
        )
        raise
    with transaction.atomic():
        experiment_status_set(experiment=experiment, status=ExperimentStatus.COMPLETED)
        dataset_tasks_nudge(experiment=experiment)
    return recorded


# --- evaluating runs with the hub's evaluators ---------------------------------------------


def _execute(prepared: Any) -> Any:
    from evalhub.evaluators.running import evaluation_execute

    try:
        return evaluation_execute(prepared)
    finally:
        connection.close()  # a pool thread's connection, if anything opened one


def experiment_evaluate(*, experiment_id: int, evaluator_id: int) -> int:
    """Score every successful run of the experiment with the evaluator's latest version;
    returns the number of evaluations stored. Judge calls run 8 at a time (the provider's
    limiter decides how many really go at once); reads and writes stay on this thread."""
    from evalhub.evaluators.definition import config_parse
    from evalhub.evaluators.models import Evaluator
    from evalhub.evaluators.running import evaluation_cost, evaluation_prepare
    from evalhub.evaluators.selectors import evaluator_version_latest
    from evalhub.experiments.selectors import revisions_by_example

    experiment = Experiment.objects.select_related("dataset_version").get(pk=experiment_id)
    evaluator = Evaluator.objects.get(pk=evaluator_id)
    version = evaluator_version_latest(evaluator=evaluator)
    config = config_parse(version.config)
    revisions = revisions_by_example(experiment=experiment)
    runs = [
        r
        for r in ExperimentRun.objects.filter(experiment=experiment, error__isnull=True)
        if r.example_id in revisions
    ]
    # Variables read the run (input, output, expected output, metadata), else its trace.
    mapping = config.mapping()
    roots = trace_roots([run.trace_id for run in runs])
    prepared = [
        evaluation_prepare(
            version=version,
            span=roots.get(run.trace_id),
            values=variable_values(mapping, run_sources(run, revisions[run.example_id])),
        )
        for run in runs
    ]
    stored = 0
    kind = evaluator.kind if evaluator.kind in ("LLM", "CODE") else "CODE"
    batch: list[ScoredRun] = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {pool.submit(_execute, p): run for p, run in zip(prepared, runs, strict=True)}
        for future in as_completed(futures):
            result = future.result()
            evaluation_cost(result)
            batch.append(ScoredRun(futures[future].pk, evaluator.name, kind, result))
            if len(batch) >= STORE_BATCH:  # a statement per batch, not a transaction per run
                stored += evaluations_store(scored=batch)
                batch = []
    stored += evaluations_store(scored=batch)
    return stored
