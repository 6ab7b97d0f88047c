"""Reads for experiments: one experiment with its run counts, its runs a page at a time, the
runs still missing, its records for download, its summary (per evaluator, latency, cost) and
the per-example comparison of several experiments on one dataset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from django.db.models import Count, Prefetch, Q, QuerySet

from annotations.dataset_versions import version_examples
from annotations.models import Dataset, DatasetExampleRevision
from evalhub.experiments.models import Experiment, ExperimentEvaluation, ExperimentRun

MAX_PAGE_SIZE: Final = 1000
MAX_COMPARED: Final = 4


def _pk(text: str | int) -> int | None:
    value = str(text).strip()
    return int(value) if value.isdigit() and len(value) <= 18 else None


def experiment_get(identifier: str | int) -> Experiment | None:
    pk = _pk(identifier)
    if pk is None:
        return None
    return (
        Experiment.objects.select_related("dataset", "dataset_version", "prompt_version")
        .filter(pk=pk)
        .first()
    )


def experiments_of_dataset(*, dataset: Dataset) -> QuerySet[Experiment]:
    """A dataset's experiments, newest first, with ``run_count`` and ``error_count``."""
    return (
        Experiment.objects.filter(dataset=dataset)
        .select_related("dataset_version")
        .annotate(
            run_count=Count("runs"),
            error_count=Count("runs", filter=Q(runs__error__isnull=False)),
        )
        .order_by("-id")
    )


@dataclass(frozen=True, slots=True)
class RunCounts:
    example_count: int
    successful: int
    failed: int
    missing: int


def experiment_counts(*, experiment: Experiment) -> RunCounts:
    """Examples in the experiment's version and its runs: successful, failed, still missing."""
    examples = version_examples(version=experiment.dataset_version).count()
    counts = ExperimentRun.objects.filter(experiment=experiment).aggregate(
        ok=Count("id", filter=Q(error__isnull=True)),
        failed=Count("id", filter=Q(error__isnull=False)),
    )
    expected = examples * experiment.repetitions
    return RunCounts(
        example_count=examples,
        successful=counts["ok"],
        failed=counts["failed"],
        missing=max(expected - counts["ok"] - counts["failed"], 0),
    )


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


def _check(cursor: str | None, limit: int) -> int | None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    if not cursor:
        return None
    pk = _pk(cursor)
    if pk is None:
        raise ValueError(f"cursor {cursor!r} is not valid")
    return pk


def runs_page(
    *, experiment: Experiment, cursor: str | None = None, limit: int = 100
) -> Page[ExperimentRun]:
    """An experiment's runs in id order, ``limit`` at a time (cursor: next run's id)."""
    first = _check(cursor, limit)
    query = ExperimentRun.objects.filter(experiment=experiment).order_by("id")
    if first is not None:
        query = query.filter(id__gte=first)
    rows = list(query[: limit + 1])
    return Page(rows[:limit], str(rows[limit].pk) if len(rows) > limit else None)


@dataclass(frozen=True, slots=True)
class Incomplete:
    revision: DatasetExampleRevision
    repetitions: list[int]


def incomplete_runs(
    *, experiment: Experiment, cursor: str | None = None, limit: int = 50
) -> Page[Incomplete]:
    """Examples with repetitions that have no successful run yet (none, or a failed one), in
    example order, ``limit`` examples at a time (cursor: the next example's id)."""
    first = _check(cursor, limit)
    done: dict[int, set[int]] = defaultdict(set)
    for example_id, repetition in ExperimentRun.objects.filter(
        experiment=experiment, error__isnull=True
    ).values_list("example_id", "repetition_number"):
        done[example_id].add(repetition)
    wanted = set(range(1, experiment.repetitions + 1))
    query = version_examples(version=experiment.dataset_version)
    if first is not None:
        query = query.filter(example_id__gte=first)
    found: list[Incomplete] = []
    for revision in query.iterator():
        missing = sorted(wanted - done.get(revision.example_id, set()))
        if not missing:
            continue
        if len(found) == limit:
            return Page(found, str(revision.example_id))
        found.append(Incomplete(revision, missing))
    return Page(found, None)


def incomplete_evaluations(
    *, experiment: Experiment, names: Sequence[str], cursor: str | None = None, limit: int = 50
) -> Page[tuple[ExperimentRun, list[str]]]:
    """Successful runs missing a (successful) evaluation among ``names``."""
    first = _check(cursor, limit)
    query = (
        ExperimentRun.objects.filter(experiment=experiment, error__isnull=True)
        .select_related("example")
        .prefetch_related("evaluations")
        .order_by("id")
    )
    if first is not None:
        query = query.filter(id__gte=first)
    found: list[tuple[ExperimentRun, list[str]]] = []
    for run in query.iterator(chunk_size=500):
        have = {e.name for e in run.evaluations.all() if e.error is None}
        missing = [n for n in names if n not in have]
        if not missing:
            continue
        if len(found) == limit:
            return Page(found, str(run.pk))
        found.append((run, missing))
    return Page(found, None)


def experiment_runs_full(*, experiment: Experiment) -> list[ExperimentRun]:
    """Every run with its evaluations, in example then repetition order."""
    return list(
        ExperimentRun.objects.filter(experiment=experiment)
        .prefetch_related(Prefetch("evaluations", ExperimentEvaluation.objects.order_by("name")))
        .order_by("example_id", "repetition_number")
    )


def revisions_by_example(*, experiment: Experiment) -> dict[int, DatasetExampleRevision]:
    return {
        r.example_id: r
        for r in version_examples(version=experiment.dataset_version).select_related("example")
    }


@dataclass(slots=True)
class EvaluatorSummary:
    name: str
    count: int = 0
    scored: int = 0
    score_sum: float = 0.0
    errors: int = 0
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None


@dataclass(frozen=True, slots=True)
class ExperimentSummary:
    runs: int
    errors: int
    latency_mean_ms: float | None
    latency_p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    evaluators: list[EvaluatorSummary]


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def experiment_summary(*, runs: Sequence[ExperimentRun]) -> ExperimentSummary:
    """Aggregates of runs read with their evaluations (``experiment_runs_full``)."""
    latencies = [r.latency_ms for r in runs]
    costs = [r.cost_usd for r in runs if r.cost_usd is not None]
    evaluators: dict[str, EvaluatorSummary] = {}
    for run in runs:
        for evaluation in run.evaluations.all():
            summary = evaluators.setdefault(evaluation.name, EvaluatorSummary(evaluation.name))
            summary.count += 1
            if evaluation.error is not None:
                summary.errors += 1
            if evaluation.score is not None:
                summary.scored += 1
                summary.score_sum += evaluation.score
            if evaluation.label is not None:
                summary.labels[evaluation.label] = summary.labels.get(evaluation.label, 0) + 1
    return ExperimentSummary(
        runs=len(runs),
        errors=sum(1 for r in runs if r.error is not None),
        latency_mean_ms=sum(latencies) / len(latencies) if latencies else None,
        latency_p95_ms=_p95(latencies),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in runs),
        completion_tokens=sum(r.completion_tokens or 0 for r in runs),
        cost_usd=sum(costs) if costs else None,
        evaluators=sorted(evaluators.values(), key=lambda s: s.name),
    )


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One example across the compared experiments: its first-repetition run in each (or
    None), and per evaluator the scores and the delta of each experiment against the first."""

    revision: DatasetExampleRevision
    runs: list[ExperimentRun | None]
    scores: dict[str, list[float | None]]
    regressed: bool


def _first_runs(experiment: Experiment) -> dict[int, ExperimentRun]:
    runs = (
        ExperimentRun.objects.filter(experiment=experiment, repetition_number=1)
        .prefetch_related("evaluations")
        .order_by("example_id")
    )
    return {r.example_id: r for r in runs}


def experiments_compare(
    *, experiments: Sequence[Experiment], evaluator: str | None = None
) -> tuple[list[str], list[CompareRow]]:
    """Per example of the first experiment's version, each experiment's run side by side.
    A row regresses when an evaluator's score (``evaluator``, else any) is lower in a later
    experiment than in the first ("correct in A, incorrect in B"). Returns the evaluator
    names and the rows."""
    base = experiments[0]
    revisions = list(version_examples(version=base.dataset_version).select_related("example"))
    by_experiment = [_first_runs(e) for e in experiments]
    names = sorted(
        {ev.name for runs in by_experiment for run in runs.values() for ev in run.evaluations.all()}
    )
    rows = []
    for revision in revisions:
        runs = [runs.get(revision.example_id) for runs in by_experiment]
        scores: dict[str, list[float | None]] = {}
        for name in names:
            scores[name] = [
                next((ev.score for ev in run.evaluations.all() if ev.name == name), None)
                if run is not None
                else None
                for run in runs
            ]
        checked = [evaluator] if evaluator else names
        regressed = any(
            (values := scores.get(name)) is not None
            and values[0] is not None
            and any(v is not None and v < values[0] for v in values[1:])
            for name in checked
        )
        rows.append(CompareRow(revision, runs, scores, regressed))
    return names, rows


__all__ = [
    "CompareRow",
    "ExperimentSummary",
    "experiment_counts",
    "experiment_get",
    "experiment_runs_full",
    "experiment_summary",
    "experiments_compare",
    "experiments_of_dataset",
    "incomplete_evaluations",
    "incomplete_runs",
    "revisions_by_example",
    "runs_page",
]
