"""Writes for experiments: create (pinned to a dataset version), record runs and evaluations,
delete. Every write checks its input first and raises an error naming the field; nothing is
partly written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotations.datasets.models import Dataset, DatasetVersion
from annotations.datasets.versions import VersionGone, dataset_version_latest, version_examples
from evalhub.core.jobs import job_send
from evalhub.experiments.models import (
    Experiment,
    ExperimentEvaluation,
    ExperimentKind,
    ExperimentRun,
    ExperimentStatus,
)

MAX_REPETITIONS: Final = 100
MAX_NAME_LENGTH: Final = 255
ANNOTATOR_KINDS: Final = ("LLM", "CODE", "HUMAN")


class ExperimentInvalid(ValueError):
    """Input that cannot be stored; the message starts with the field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class RunExists(Exception):
    """A successful run for this example and repetition is already recorded."""


class NotFound(LookupError):
    """Something the request names does not exist (a 404)."""


# The Celery tasks of experiments (evalhub.experiments.jobs).
PROMPT_EXPERIMENT_RUN = "experiments.prompt_experiment_run"
EXPERIMENT_EVALUATE = "experiments.experiment_evaluate"


def _name(value: Any, field: str = "name") -> str:
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_NAME_LENGTH:
        raise ExperimentInvalid(field, f"is longer than {MAX_NAME_LENGTH} characters")
    return text


def _touch(experiment: Experiment) -> None:
    Experiment.objects.filter(pk=experiment.pk).update(updated_at=timezone.now())


@transaction.atomic
def experiment_create(
    *,
    dataset: Dataset,
    version: DatasetVersion | None = None,
    name: str | None = None,
    description: str | None = None,
    repetitions: int = 1,
    metadata: Mapping[str, Any] | None = None,
    user: User | None = None,
    kind: str = ExperimentKind.SDK,
    **prompt_settings: Any,
) -> Experiment:
    """An experiment on ``version`` of ``dataset`` (default: its latest version). Raises
    ``ExperimentInvalid`` naming the field and ``VersionGone`` for a deleted version."""
    if isinstance(repetitions, bool) or not isinstance(repetitions, int):
        raise ExperimentInvalid("repetitions", "must be an integer")
    if not 1 <= repetitions <= MAX_REPETITIONS:
        raise ExperimentInvalid("repetitions", f"must be between 1 and {MAX_REPETITIONS}")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ExperimentInvalid("metadata", "must be a JSON object")
    if version is None:
        version = dataset_version_latest(dataset=dataset)
        if version is None:
            raise ExperimentInvalid("version_id", f"dataset {dataset.name!r} has no examples yet")
    if version.dataset_id != dataset.pk:
        raise ExperimentInvalid("version_id", f"is not a version of dataset {dataset.name!r}")
    if version.deleted_at is not None:
        raise VersionGone(version)
    now = timezone.now()
    experiment = Experiment.objects.create(
        dataset=dataset,
        dataset_version=version,
        name=_name(name) or f"experiment {now:%Y-%m-%d %H:%M:%S}",
        description=description.strip() if isinstance(description, str) else "",
        repetitions=repetitions,
        metadata=dict(metadata or {}),
        kind=kind,
        status=ExperimentStatus.OPEN if kind == ExperimentKind.SDK else ExperimentStatus.QUEUED,
        created_by=user if user is not None and user.is_authenticated else None,
        created_at=now,
        updated_at=now,
        **prompt_settings,
    )
    # Traced runs go to the experiment's own project; a run links to its trace by trace_id.
    experiment.project_name = f"Experiment-{experiment.pk}"
    experiment.save(update_fields=["project_name"])
    return experiment


def _when(value: Any, field: str) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ExperimentInvalid(field, "must be an ISO 8601 time") from None
    else:
        raise ExperimentInvalid(field, "must be an ISO 8601 time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


@dataclass(frozen=True, slots=True)
class RunInput:
    example_id: int
    repetition_number: int = 1
    output: Any = None
    error: str | None = None
    start_time: Any = None
    end_time: Any = None
    trace_id: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


def _check_run(experiment: Experiment, run: RunInput) -> tuple[datetime, datetime]:
    if not 1 <= run.repetition_number <= experiment.repetitions:
        raise ExperimentInvalid(
            "repetition_number", f"must be between 1 and {experiment.repetitions}"
        )
    now = timezone.now()
    start = now if run.start_time is None else _when(run.start_time, "start_time")
    end = start if run.end_time is None else _when(run.end_time, "end_time")
    if end < start:
        raise ExperimentInvalid("end_time", "is before start_time")
    if run.error is not None and not isinstance(run.error, str):
        raise ExperimentInvalid("error", "must be a string")
    if not isinstance(run.trace_id or "", str) or len(run.trace_id or "") > 64:
        raise ExperimentInvalid("trace_id", "must be a string of at most 64 characters")
    return start, end


@transaction.atomic
def run_record(*, experiment: Experiment, run: RunInput) -> ExperimentRun:
    """Record a run. A failed run may be recorded again (a retry replaces it); a successful
    one may not (``RunExists``). Raises ``NotFound`` when the example is not in the
    experiment's dataset version, ``ExperimentInvalid`` naming the field."""
    start, end = _check_run(experiment, run)
    in_version = (
        version_examples(version=experiment.dataset_version)
        .filter(example_id=run.example_id)
        .exists()
    )
    if not in_version:
        raise NotFound(
            f"dataset_example_id: example {run.example_id} is not in dataset version "
            f"{experiment.dataset_version_id}"
        )
    values = {
        "output": run.output,
        "error": run.error,
        "start_time": start,
        "end_time": end,
        "trace_id": run.trace_id or "",
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost_usd": run.cost_usd,
    }
    existing = (
        ExperimentRun.objects.select_for_update()
        .filter(
            experiment=experiment,
            example_id=run.example_id,
            repetition_number=run.repetition_number,
        )
        .first()
    )
    if existing is not None:
        if existing.error is None:
            raise RunExists(
                f"a run of example {run.example_id} repetition {run.repetition_number} exists"
            )
        for key, value in values.items():
            setattr(existing, key, value)
        existing.save()
        existing.evaluations.all().delete()
        _touch(experiment)
        return existing
    try:
        with transaction.atomic():
            created = ExperimentRun.objects.create(
                experiment=experiment,
                example_id=run.example_id,
                repetition_number=run.repetition_number,
                **values,
            )
    except IntegrityError:
        raise RunExists(
            f"a run of example {run.example_id} repetition {run.repetition_number} exists"
        ) from None
    _touch(experiment)
    return created


@transaction.atomic
def runs_store(*, experiment: Experiment, runs: list[RunInput]) -> int:
    """Record many runs of examples known to be in the experiment's version (EvalHub's own
    prompt runs), in one go: failed runs of the same example and repetition are replaced,
    successful ones kept. Returns how many were stored."""
    if not runs:
        return 0
    rows = []
    for run in runs:
        start, end = _check_run(experiment, run)
        rows.append(
            ExperimentRun(
                experiment=experiment,
                example_id=run.example_id,
                repetition_number=run.repetition_number,
                output=run.output,
                error=run.error,
                start_time=start,
                end_time=end,
                trace_id=run.trace_id or "",
                prompt_tokens=run.prompt_tokens,
                completion_tokens=run.completion_tokens,
                cost_usd=run.cost_usd,
            )
        )
    ExperimentRun.objects.filter(
        experiment=experiment,
        error__isnull=False,
        example_id__in={r.example_id for r in runs},
    ).delete()
    created = ExperimentRun.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    _touch(experiment)
    return len(created)


def _score(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ExperimentInvalid("result.score", "must be a finite number")
    return float(value)


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ExperimentInvalid(field, "must be a string")
    return value


@transaction.atomic
def evaluation_upsert(
    *,
    run: ExperimentRun,
    name: str,
    annotator_kind: str = "CODE",
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    trace_id: str | None = None,
    start_time: Any = None,
    end_time: Any = None,
) -> ExperimentEvaluation:
    """Record an evaluator's result on a run (replacing the one of the same name)."""
    cleaned = _name(name)
    if not cleaned:
        raise ExperimentInvalid("name", "must not be empty")
    if annotator_kind not in ANNOTATOR_KINDS:
        raise ExperimentInvalid("annotator_kind", f"must be one of {', '.join(ANNOTATOR_KINDS)}")
    if result is not None and not isinstance(result, Mapping):
        raise ExperimentInvalid("result", "must be a JSON object")
    result = result or {}
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ExperimentInvalid("metadata", "must be a JSON object")
    label = result.get("label")
    now = timezone.now()
    start = now if start_time is None else _when(start_time, "start_time")
    values = {
        "annotator_kind": annotator_kind,
        "label": None if label is None else str(label),
        "score": _score(result.get("score")),
        "explanation": _text(result.get("explanation"), "result.explanation"),
        "metadata": dict(metadata or result.get("metadata") or {}),
        "error": _text(error, "error"),
        "trace_id": (trace_id or "")[:64],
        "start_time": start,
        "end_time": start if end_time is None else _when(end_time, "end_time"),
    }
    evaluation, _ = ExperimentEvaluation.objects.update_or_create(
        run=run, name=cleaned, defaults=values
    )
    return evaluation


@dataclass(frozen=True, slots=True)
class ScoredRun:
    """A hub evaluator's result (``evalhub.evaluators.running.EvaluationResult``) on a run."""

    run_id: int
    name: str
    annotator_kind: str
    result: Any
    metadata: Mapping[str, Any] | None = None


_EVALUATION_FIELDS: Final = (
    "annotator_kind",
    "label",
    "score",
    "explanation",
    "metadata",
    "error",
    "trace_id",
    "start_time",
    "end_time",
)


@transaction.atomic
def evaluations_store(*, scored: list[ScoredRun]) -> int:
    """Store hub evaluators' results as the runs' evaluations, a batch in one statement (one
    per run and name: a later one replaces it); runs deleted meanwhile are left out. Returns
    how many were stored."""
    if not scored:
        return 0
    now = timezone.now().timestamp()
    existing = set(
        ExperimentRun.objects.filter(pk__in={s.run_id for s in scored}).values_list("pk", flat=True)
    )
    rows = []
    for item in scored:
        if item.run_id not in existing:
            continue
        result = item.result
        start = result.started_at or now
        rows.append(
            ExperimentEvaluation(
                run_id=item.run_id,
                name=item.name[:MAX_NAME_LENGTH],
                annotator_kind=item.annotator_kind
                if item.annotator_kind in ("LLM", "CODE")
                else "CODE",
                label=None if result.label is None else str(result.label),
                score=float(result.score)
                if isinstance(result.score, int | float) and math.isfinite(result.score)
                else None,
                explanation=result.explanation,
                metadata={**result.annotation_metadata(), **(item.metadata or {})},
                error=result.error,
                trace_id=(result.judge_trace_id or "")[:64],
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(result.ended_at or start, UTC),
            )
        )
    ExperimentEvaluation.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["run", "name"],
        update_fields=list(_EVALUATION_FIELDS),
        batch_size=500,
    )
    return len(rows)


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> None:
    """Delete an experiment with its runs and evaluations (traces stay)."""
    experiment.delete()


@transaction.atomic
def experiment_status_set(*, experiment: Experiment, status: str, error: str = "") -> Experiment:
    experiment.status = status
    experiment.error = error
    experiment.updated_at = timezone.now()
    experiment.save(update_fields=["status", "error", "updated_at"])
    return experiment


__all__ = [
    "ExperimentInvalid",
    "NotFound",
    "RunExists",
    "RunInput",
    "ScoredRun",
    "VersionGone",
    "evaluation_upsert",
    "evaluations_store",
    "experiment_create",
    "experiment_delete",
    "experiment_status_set",
    "run_record",
    "runs_store",
]


def prompt_experiment_start(
    *,
    dataset: Dataset,
    version: DatasetVersion | None,
    prompt_version: Any,
    provider: Any,
    model: str = "",
    variables: Mapping[str, str] | None = None,
    name: str | None = None,
    repetitions: int = 1,
    concurrency: int = 8,
    user: User | None = None,
) -> Experiment:
    """Create a prompt experiment and run it on Celery (after the commit). Raises
    ``ExperimentInvalid`` (a variable mapped to no example field), ``VersionGone``."""
    from evalhub.experiments.prompts import MappingInvalid, mapping_check, template_variables

    if provider is None:
        raise ExperimentInvalid("provider", "choose a provider")
    if not 1 <= concurrency <= 64:
        raise ExperimentInvalid("concurrency", "must be between 1 and 64")
    try:
        mapping = mapping_check(variables or {}, template_variables(prompt_version))
    except MappingInvalid as exc:
        raise ExperimentInvalid("variables", str(exc)) from None
    with transaction.atomic():
        experiment = experiment_create(
            dataset=dataset,
            version=version,
            name=name or f"{prompt_version.prompt.name} · {model or prompt_version.model_name}",
            repetitions=repetitions,
            user=user,
            kind=ExperimentKind.PROMPT,
            prompt_version=prompt_version,
            provider=provider,
            model=model or prompt_version.model_name,
            variables=mapping,
            concurrency=concurrency,
            metadata={"prompt": prompt_version.prompt.name, "prompt_version_id": prompt_version.pk},
        )
        transaction.on_commit(lambda: job_send(PROMPT_EXPERIMENT_RUN, experiment.pk))
    return experiment


def experiment_evaluate_start(*, experiment: Experiment, evaluator: Any) -> None:
    """Score the experiment's runs with a hub evaluator, on Celery (after the commit)."""
    transaction.on_commit(lambda: job_send(EXPERIMENT_EVALUATE, experiment.pk, evaluator.pk))
