"""Reads for experiments: one experiment with its run counts, its runs a page at a time, the
runs still missing, its records for download, its summary (per evaluator, latency, cost) and
the per-example comparison of several experiments on one dataset."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum

from annotations.datasets.models import Dataset, DatasetExampleRevision
from annotations.datasets.versions import version_examples
from evalhub.core.paging import Page, cursor_id, page_from_id
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


def runs_page(
    *, experiment: Experiment, cursor: str | None = None, limit: int = 100
) -> Page[ExperimentRun]:
    """An experiment's runs in id order, ``limit`` at a time (cursor: next run's id; raises
    ``InvalidCursor``)."""
    query = ExperimentRun.objects.filter(experiment=experiment).order_by("id")
    return page_from_id(query, cursor=cursor, limit=limit, descending=False)


@dataclass(frozen=True, slots=True)
class Incomplete:
    revision: DatasetExampleRevision
    repetitions: list[int]


def incomplete_runs(
    *, experiment: Experiment, cursor: str | None = None, limit: int = 50
) -> Page[Incomplete]:
    """Examples with repetitions that have no successful run yet (none, or a failed one), in
    example order, ``limit`` examples at a time (cursor: the next example's id)."""
    first = cursor_id(cursor)
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
    first = cursor_id(cursor)
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


def experiment_runs(*, experiment: Experiment) -> QuerySet[ExperimentRun]:
    """An experiment's runs in example then repetition order, with their evaluations."""
    return (
        ExperimentRun.objects.filter(experiment=experiment)
        .prefetch_related(Prefetch("evaluations", ExperimentEvaluation.objects.order_by("name")))
        .order_by("example_id", "repetition_number")
    )


def revisions_of(
    *, experiment: Experiment, example_ids: Sequence[int]
) -> dict[int, DatasetExampleRevision]:
    """The experiment's examples (as its version holds them) among ``example_ids``."""
    query = version_examples(version=experiment.dataset_version).filter(example_id__in=example_ids)
    return {r.example_id: r for r in query}


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


def experiment_summary(*, experiment: Experiment) -> ExperimentSummary:
    """Runs, errors, latency (mean, p95), tokens, cost and per evaluator the mean score,
    label counts and errors, computed in the database (no run objects are built)."""
    return experiment_summaries(experiments=[experiment])[0]


def experiment_summaries(*, experiments: Sequence[Experiment]) -> list[ExperimentSummary]:
    """``experiment_summary`` of each experiment, in four queries for all of them."""
    ids = [e.pk for e in experiments]
    runs = ExperimentRun.objects.filter(experiment_id__in=ids)
    totals = {
        row["experiment_id"]: row
        for row in runs.values("experiment_id").annotate(
            n=Count("id"),
            errors=Count("id", filter=Q(error__isnull=False)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cost=Sum("cost_usd"),
        )
    }
    latencies: dict[int, list[float]] = defaultdict(list)
    for experiment_id, latency in runs.annotate(
        latency=F("end_time") - F("start_time")
    ).values_list("experiment_id", "latency"):
        latencies[experiment_id].append(latency.total_seconds() * 1000)
    evaluators: dict[int, dict[str, EvaluatorSummary]] = defaultdict(dict)
    evaluations = ExperimentEvaluation.objects.filter(run__experiment_id__in=ids)
    for row in evaluations.values("run__experiment_id", "name").annotate(
        count=Count("id"),
        scored=Count("score"),
        total=Sum("score"),
        errors=Count("id", filter=Q(error__isnull=False)),
    ):
        evaluators[row["run__experiment_id"]][row["name"]] = EvaluatorSummary(
            row["name"], row["count"], row["scored"], row["total"] or 0.0, row["errors"]
        )
    for experiment_id, name, label, count in (
        evaluations.filter(label__isnull=False)
        .values("run__experiment_id", "name", "label")
        .annotate(count=Count("id"))
        .values_list("run__experiment_id", "name", "label", "count")
    ):
        evaluators[experiment_id][name].labels[label] = count  # type: ignore[index]  # label__isnull=False
    summaries = []
    for pk in ids:
        total: Mapping[str, Any] = totals.get(pk, {})
        values = latencies.get(pk, [])
        summaries.append(
            ExperimentSummary(
                runs=total.get("n", 0),
                errors=total.get("errors", 0),
                latency_mean_ms=sum(values) / len(values) if values else None,
                latency_p95_ms=_p95(values),
                prompt_tokens=total.get("prompt") or 0,
                completion_tokens=total.get("completion") or 0,
                cost_usd=total.get("cost"),
                evaluators=sorted(evaluators[pk].values(), key=lambda e: e.name),
            )
        )
    return summaries


@dataclass(frozen=True, slots=True)
class RunCell:
    """What the comparison shows of one run."""

    id: int
    output: Any
    error: str | None
    trace_id: str
    project_name: str


@dataclass(frozen=True, slots=True)
class CompareRow:
    """One example across the compared experiments: its first-repetition run in each (or
    None), and per evaluator the scores of each experiment; ``regressed`` when a later
    experiment scores lower than the first."""

    example_id: int
    input: Any
    expected: Any
    runs: list[RunCell | None]
    scores: dict[str, list[float | None]]
    regressed: bool


@dataclass(frozen=True, slots=True)
class CompareKey:
    """One example in a comparison, before its contents are read: per evaluator the scores
    of each experiment, and whether a later experiment scores lower than the first."""

    example_id: int
    scores: dict[str, list[float | None]]
    regressed: bool
    revision_id: int | None = None  # the example as the first experiment's version holds it


def compare_index(
    *, experiments: Sequence[Experiment], evaluator: str | None = None
) -> tuple[list[str], list[CompareKey]]:
    """Every example of the first experiment's version with its scores side by side: the
    evaluator names and one key per example. A key regresses when an evaluator's score
    (``evaluator``, else any) is lower in a later experiment than in the first ("correct in A,
    incorrect in B"). Reads ids and scores only (the page's contents: ``compare_rows``)."""
    base = experiments[0]
    position = {e.pk: i for i, e in enumerate(experiments)}
    scores: dict[int, dict[str, list[float | None]]] = defaultdict(dict)
    for experiment_id, example_id, name, score in ExperimentEvaluation.objects.filter(
        run__experiment__in=experiments, run__repetition_number=1
    ).values_list("run__experiment_id", "run__example_id", "name", "score"):
        per_name = scores[example_id].setdefault(name, [None] * len(experiments))
        per_name[position[experiment_id]] = score
    names = sorted({name for by_name in scores.values() for name in by_name})
    checked = [evaluator] if evaluator else names
    empty: list[float | None] = [None] * len(experiments)
    keys = []
    for example_id, revision_id in version_examples(version=base.dataset_version).values_list(
        "example_id", "id"
    ):
        by_name = scores.get(example_id, {})
        full = {name: by_name.get(name, empty) for name in names}
        regressed = any(
            (values := full.get(name)) is not None
            and values[0] is not None
            and any(v is not None and v < values[0] for v in values[1:])
            for name in checked
        )
        keys.append(CompareKey(example_id, full, regressed, revision_id))
    return names, keys


def compare_rows(
    *, experiments: Sequence[Experiment], keys: Sequence[CompareKey]
) -> list[CompareRow]:
    """The rows of ``keys`` (a page of ``compare_index``): each example's input and expected
    output, and its first-repetition run in each experiment. Three queries a page."""
    ids = [key.example_id for key in keys]
    position = {e.pk: i for i, e in enumerate(experiments)}
    contents = {
        example_id: (input_value, expected)
        for example_id, input_value, expected in DatasetExampleRevision.objects.filter(
            pk__in=[key.revision_id for key in keys]
        ).values_list("example_id", "input", "output")
    }
    runs: dict[int, list[RunCell | None]] = defaultdict(lambda: [None] * len(experiments))
    for run_id, experiment_id, example_id, output, error, trace_id in ExperimentRun.objects.filter(
        experiment__in=experiments, repetition_number=1, example_id__in=ids
    ).values_list("id", "experiment_id", "example_id", "output", "error", "trace_id"):
        project = experiments[position[experiment_id]].project_name
        runs[example_id][position[experiment_id]] = RunCell(
            run_id, output, error, trace_id, project
        )
    return [
        CompareRow(
            key.example_id,
            *contents.get(key.example_id, (None, None)),
            runs.get(key.example_id, [None] * len(experiments)),
            key.scores,
            key.regressed,
        )
        for key in keys
    ]


def experiments_compare(
    *, experiments: Sequence[Experiment], evaluator: str | None = None
) -> tuple[list[str], list[CompareRow]]:
    """Per example of the first experiment's version, each experiment's run side by side
    (``compare_index`` and every row of it): the evaluator names and the rows."""
    names, keys = compare_index(experiments=experiments, evaluator=evaluator)
    return names, compare_rows(experiments=experiments, keys=keys)


__all__ = [
    "CompareKey",
    "CompareRow",
    "ExperimentSummary",
    "compare_index",
    "compare_rows",
    "experiment_counts",
    "experiment_get",
    "experiment_runs",
    "experiment_runs_full",
    "experiment_summaries",
    "experiment_summary",
    "experiments_compare",
    "experiments_of_dataset",
    "incomplete_evaluations",
    "incomplete_runs",
    "revisions_by_example",
    "revisions_of",
    "runs_page",
]
