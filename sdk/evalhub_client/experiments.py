"""``client.experiments``: run a task function over a dataset version in this process, record
each run (output or error, timing) on EvalHub, and score runs with evaluator functions.

>>> ran = client.experiments.run(ds, task=lambda input: answer(input["question"]),
...                              evaluators=[exact], name="baseline")
>>> client.experiments.evaluate(ran.id, evaluators={"short": lambda output: len(output) < 50})

A task or evaluator takes, by parameter name, any of ``input``, ``expected`` (alias
``reference``), ``metadata``, ``example`` — and evaluators ``output`` too; a function of one
other parameter gets ``input`` (a task) or ``output`` (an evaluator). A task that raises records
its error on that run and the experiment goes on. An evaluator returns a bool, a number, a
label, a ``(score, explanation)`` pair or a dict with ``score``/``label``/``explanation``.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tqdm.auto import tqdm

from evalhub_client._http import Transport, path_segment
from evalhub_client.datasets import Dataset, Datasets

Evaluators = Sequence[Callable[..., Any]] | Mapping[str, Callable[..., Any]]
NAMES = ("input", "expected", "reference", "metadata", "example", "output")


@dataclass(frozen=True)
class Experiment:
    id: str
    dataset_id: str
    dataset_version_id: str
    name: str
    successful_run_count: int
    failed_run_count: int
    missing_run_count: int
    raw: dict[str, Any]


def _experiment(data: dict[str, Any]) -> Experiment:
    return Experiment(
        id=data["id"],
        dataset_id=data["dataset_id"],
        dataset_version_id=data["dataset_version_id"],
        name=data["name"],
        successful_run_count=data["successful_run_count"],
        failed_run_count=data["failed_run_count"],
        missing_run_count=data["missing_run_count"],
        raw=data,
    )


def _bind(fn: Callable[..., Any], values: Mapping[str, Any], default: str) -> Any:
    parameters = builtins.list(inspect.signature(fn).parameters.values())
    named = {p.name for p in parameters} & set(NAMES)
    if not named and len(parameters) == 1:
        return fn(values[default])
    kwargs = {p.name: values[p.name] for p in parameters if p.name in values}
    return fn(**kwargs)


def _values(example: Mapping[str, Any], output: Any = None) -> dict[str, Any]:
    return {
        "input": example["input"],
        "expected": example["output"],
        "reference": example["output"],
        "metadata": example["metadata"],
        "example": example,
        "output": output,
    }


def evaluation_result(value: Any) -> dict[str, Any]:
    """An evaluator's return value as ``{"score", "label", "explanation"}``."""
    if isinstance(value, bool):
        return {"score": float(value), "label": str(value)}
    if isinstance(value, int | float):
        return {"score": float(value)}
    if isinstance(value, str):
        return {"label": value}
    if isinstance(value, tuple) and len(value) == 2:
        return {"score": float(value[0]), "explanation": str(value[1])}
    if isinstance(value, Mapping):
        return {k: value[k] for k in ("score", "label", "explanation") if value.get(k) is not None}
    raise TypeError(f"an evaluator returned {type(value).__name__}")


def _named(evaluators: Evaluators) -> dict[str, Callable[..., Any]]:
    if isinstance(evaluators, Mapping):
        return dict(evaluators)
    return {getattr(fn, "__name__", f"evaluator_{i}"): fn for i, fn in enumerate(evaluators)}


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Experiments:
    def __init__(self, transport: Transport, datasets: Datasets) -> None:
        self._t = transport
        self._datasets = datasets

    def get(self, experiment_id: str) -> Experiment:
        return _experiment(
            self._t.request("GET", f"/v1/experiments/{path_segment(experiment_id)}")["data"]
        )

    def list(self, dataset: str | Dataset) -> builtins.list[Experiment]:
        ident = dataset.id if isinstance(dataset, Dataset) else dataset
        body = self._t.request("GET", f"/v1/datasets/{path_segment(ident)}/experiments")
        return [_experiment(d) for d in body["data"]]

    def runs(self, experiment_id: str) -> builtins.list[dict[str, Any]]:
        """Every run with its example and evaluations (the JSON download)."""
        return self._t.request("GET", f"/v1/experiments/{path_segment(experiment_id)}/json")

    def delete(self, experiment_id: str) -> None:
        self._t.request("DELETE", f"/v1/experiments/{path_segment(experiment_id)}")

    def _run_one(
        self, experiment_id: str, task: Callable[..., Any], example: Mapping[str, Any], rep: int
    ) -> bool:
        started = _now()
        body: dict[str, Any] = {"dataset_example_id": example["id"], "repetition_number": rep}
        try:
            body["output"] = _bind(task, _values(example), "input")
        except Exception as exc:  # the error is the run's; the experiment goes on
            body["error"] = f"{type(exc).__name__}: {exc}"
        body.update(start_time=started, end_time=_now())
        self._t.request("POST", f"/v1/experiments/{path_segment(experiment_id)}/runs", json=body)
        return "error" not in body

    def _execute(
        self,
        experiment_id: str,
        task: Callable[..., Any],
        todo: Sequence[tuple[Mapping[str, Any], int]],
        concurrency: int,
        progress: bool,
    ) -> None:
        with (
            ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
            tqdm(total=len(todo), desc="running tasks", disable=not progress) as bar,
        ):
            futures = [pool.submit(self._run_one, experiment_id, task, e, r) for e, r in todo]
            for future in as_completed(futures):
                future.result()
                bar.update(1)

    def run(
        self,
        dataset: str | Dataset,
        task: Callable[..., Any],
        *,
        evaluators: Evaluators | None = None,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        version_id: str | None = None,
        repetitions: int = 1,
        concurrency: int = 8,
        progress: bool = True,
    ) -> Experiment:
        """Create an experiment on the dataset's version (default: the one given, else the
        latest), run ``task`` on every example ``repetitions`` times, then the evaluators."""
        if not isinstance(dataset, Dataset) or version_id is not None:
            dataset = self._datasets.get(dataset, version_id=version_id)
        body: dict[str, Any] = {"repetitions": repetitions, "version_id": dataset.version_id}
        if name:
            body["name"] = name
        if description:
            body["description"] = description
        if metadata:
            body["metadata"] = dict(metadata)
        created = self._t.request(
            "POST", f"/v1/datasets/{path_segment(dataset.id)}/experiments", json=body
        )["data"]
        todo = [(e, r) for e in dataset.examples for r in range(1, repetitions + 1)]
        self._execute(created["id"], task, todo, concurrency, progress)
        if evaluators:
            self.evaluate(created["id"], evaluators, concurrency=concurrency, progress=progress)
        return self.get(created["id"])

    def resume(
        self,
        experiment_id: str,
        task: Callable[..., Any],
        *,
        concurrency: int = 8,
        progress: bool = True,
    ) -> Experiment:
        """Run again the repetitions that have no successful run (missing or failed)."""
        todo: builtins.list[tuple[Mapping[str, Any], int]] = []
        cursor = None
        while True:
            body = self._t.request(
                "GET",
                f"/v1/experiments/{path_segment(experiment_id)}/incomplete-runs",
                params={"cursor": cursor, "limit": 1000},
            )
            todo += [
                (i["dataset_example"], r) for i in body["data"] for r in i["repetition_numbers"]
            ]
            cursor = body.get("next_cursor")
            if not cursor:
                break
        self._execute(experiment_id, task, todo, concurrency, progress)
        return self.get(experiment_id)

    def evaluate(
        self,
        experiment_id: str,
        evaluators: Evaluators,
        *,
        concurrency: int = 8,
        progress: bool = True,
    ) -> int:
        """Score every run with each evaluator; an evaluator that raises records its error on
        that evaluation. Returns the number of evaluations stored."""
        named = _named(evaluators)
        experiment = self.get(experiment_id)
        examples = {
            e["id"]: e
            for e in self._datasets.get(
                experiment.dataset_id, version_id=experiment.dataset_version_id
            ).examples
        }
        records = self.runs(experiment_id)
        runs = self._run_ids(experiment_id)
        jobs = [
            (runs[(r["example_id"], r["repetition_number"])], examples[r["example_id"]], r, n, fn)
            for r in records
            for n, fn in named.items()
            if r["example_id"] in examples
        ]

        def one(
            job: tuple[str, Mapping[str, Any], Mapping[str, Any], str, Callable[..., Any]],
        ) -> None:
            run_id, example, record, evaluator, fn = job
            started = _now()
            body: dict[str, Any] = {
                "experiment_run_id": run_id,
                "name": evaluator,
                "annotator_kind": "CODE",
            }
            try:
                body["result"] = evaluation_result(
                    _bind(fn, _values(example, record["output"]), "output")
                )
            except Exception as exc:
                body["error"] = f"{type(exc).__name__}: {exc}"
            body.update(start_time=started, end_time=_now())
            self._t.request("POST", "/v1/experiment_evaluations", json=body)

        with (
            ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool,
            tqdm(total=len(jobs), desc="running evaluators", disable=not progress) as bar,
        ):
            for future in as_completed([pool.submit(one, j) for j in jobs]):
                future.result()
                bar.update(1)
        return len(jobs)

    def _run_ids(self, experiment_id: str) -> dict[tuple[str, int], str]:
        ids: dict[tuple[str, int], str] = {}
        cursor = None
        while True:
            body = self._t.request(
                "GET",
                f"/v1/experiments/{path_segment(experiment_id)}/runs",
                params={"cursor": cursor, "limit": 1000},
            )
            for run in body["data"]:
                ids[(run["dataset_example_id"], run["repetition_number"])] = run["id"]
            cursor = body.get("next_cursor")
            if not cursor:
                return ids
