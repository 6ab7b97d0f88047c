"""Experiments over the API (``/v1``), shaped like Phoenix's so that
``phoenix.client.Client().experiments`` — ``run_experiment``, ``evaluate_experiment``,
``resume_experiment``, ``resume_evaluation``, ``get_experiment``, ``delete`` — works unchanged.

Lists are paged as Phoenix pages them (``cursor``/``limit``, ``{"data", "next_cursor"}``, a
cursor this server did not hand out is a 422), by ``evalhub.core.paging``.

A failed run may be posted again (a retry replaces it); a successful one is a 409. An
experiment on a deleted dataset version is a 409 naming it; unknown experiments, datasets,
versions and examples are 404s.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError

from annotations.datasets.api import dataset_from_path, dataset_global_id, version_from_query
from annotations.datasets.models import DatasetExampleRevision
from evalhub.core.paging import Page, Pages, page_from_id, paged
from evalhub.experiments.models import Experiment, ExperimentEvaluation, ExperimentRun
from evalhub.experiments.selectors import (
    experiment_counts,
    experiment_get,
    experiment_runs_full,
    experiments_of_dataset,
    incomplete_evaluations,
    incomplete_runs,
    revisions_by_example,
    runs_page,
)
from evalhub.experiments.services import (
    ExperimentInvalid,
    NotFound,
    RunExists,
    RunInput,
    VersionGone,
    evaluation_upsert,
    experiment_create,
    experiment_delete,
    run_record,
)
from evalhub.identity.auth import request_user

router = Router(tags=["experiments"])


class ExperimentOut(Schema):
    id: str
    dataset_id: str
    dataset_version_id: str
    name: str
    description: str | None
    repetitions: int
    metadata: dict[str, Any]
    project_name: str | None
    created_at: str
    updated_at: str
    example_count: int
    successful_run_count: int
    failed_run_count: int
    missing_run_count: int
    kind: str
    status: str


class ExperimentResponse(Schema):
    data: ExperimentOut


class ExperimentCreateIn(Schema):
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None
    version_id: str | None = None
    repetitions: int = 1
    splits: list[str] | None = None


class RunIn(Schema):
    dataset_example_id: str
    output: Any = None
    repetition_number: int = 1
    start_time: str
    end_time: str
    trace_id: str | None = None
    error: str | None = None
    prompt_token_count: int | None = None
    completion_token_count: int | None = None
    cost_usd: float | None = None


class IdData(Schema):
    id: str


class IdResponse(Schema):
    data: IdData


class EvaluationIn(Schema):
    experiment_run_id: str
    name: str
    annotator_kind: str = "CODE"
    start_time: str | None = None
    end_time: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    metadata: dict[str, Any] | None = None
    trace_id: str | None = None


class EvaluationNames(Schema):
    evaluation_name: list[str] = Field(default_factory=list)


def experiment_out(experiment: Experiment) -> dict[str, Any]:
    counts = experiment_counts(experiment=experiment)
    return {
        "id": str(experiment.pk),
        "dataset_id": dataset_global_id(experiment.dataset_id),
        "dataset_version_id": str(experiment.dataset_version_id),
        "name": experiment.name,
        "description": experiment.description or None,
        "repetitions": experiment.repetitions,
        "metadata": experiment.metadata,
        "project_name": experiment.project_name or None,
        "created_at": experiment.created_at.isoformat(),
        "updated_at": experiment.updated_at.isoformat(),
        "example_count": counts.example_count,
        "successful_run_count": counts.successful,
        "failed_run_count": counts.failed,
        "missing_run_count": counts.missing,
        "kind": experiment.kind,
        "status": experiment.status,
    }


def run_out(run: ExperimentRun) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(run.pk),
        "experiment_id": str(run.experiment_id),
        "dataset_example_id": str(run.example_id),
        "repetition_number": run.repetition_number,
        "output": run.output,
        "start_time": run.start_time.isoformat(),
        "end_time": run.end_time.isoformat(),
    }
    if run.trace_id:
        out["trace_id"] = run.trace_id
    if run.error is not None:
        out["error"] = run.error
    return out


def example_out(revision: DatasetExampleRevision) -> dict[str, Any]:
    return {
        "id": str(revision.example_id),
        "node_id": str(revision.example_id),
        "input": revision.input,
        "output": revision.output,
        "metadata": revision.metadata,
        "updated_at": revision.created_at.isoformat(),
    }


def experiment_from_path(identifier: str) -> Experiment:
    experiment = experiment_get(identifier)
    if experiment is None:
        raise HttpError(404, f"experiment {identifier!r} not found")
    return experiment


@router.post("/datasets/{name:dataset}/experiments", response=ExperimentResponse)
def experiments_create(
    request: HttpRequest, dataset: str, body: ExperimentCreateIn
) -> dict[str, Any]:
    """Create an experiment on a version of the dataset (default: its latest). 404 for an
    unknown dataset or version, 409 for a deleted version, 400 naming a bad field."""
    found = dataset_from_path(dataset)
    version = version_from_query(found, body.version_id) if body.version_id else None
    try:
        experiment = experiment_create(
            dataset=found,
            version=version,
            name=body.name,
            description=body.description,
            repetitions=body.repetitions,
            metadata=body.metadata,
            user=request_user(request),
        )
    except VersionGone as exc:
        raise HttpError(409, f"version_id: {exc}; use another version") from None
    except ExperimentInvalid as exc:
        raise HttpError(400, str(exc)) from None
    return {"data": experiment_out(experiment)}


_Row = dict[str, Any]  # a list's row as Phoenix's client reads it


@router.get("/datasets/{name:dataset}/experiments", response=list[ExperimentOut])
@paged(invalid_status=422)
def experiments_list(request: HttpRequest, dataset: str) -> Pages:
    """A dataset's experiments, newest first, a page at a time."""
    experiments = experiments_of_dataset(dataset=dataset_from_path(dataset))

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        return page_from_id(experiments, cursor=cursor, limit=limit).map(experiment_out)

    return pages


@router.get("/experiments/{experiment_id}", response=ExperimentResponse)
def experiments_get(request: HttpRequest, experiment_id: str) -> dict[str, Any]:
    """One experiment with its run counts."""
    return {"data": experiment_out(experiment_from_path(experiment_id))}


@router.delete("/experiments/{experiment_id}", response={204: None})
def experiments_delete(request: HttpRequest, experiment_id: str) -> Status:
    """Delete an experiment with its runs and evaluations (its traces stay)."""
    experiment_delete(experiment=experiment_from_path(experiment_id))
    return Status(204, None)


@router.post("/experiments/{experiment_id}/runs", response=IdResponse)
def experiments_runs_create(request: HttpRequest, experiment_id: str, body: RunIn) -> dict:
    """Record a run: output or error, times, trace. 409 when a successful run of the example
    and repetition exists (a failed one is replaced); 404 when the example is not in the
    experiment's dataset version."""
    experiment = experiment_from_path(experiment_id)
    example = body.dataset_example_id.strip()
    if not example.isdigit() or len(example) > 18:
        raise HttpError(404, f"dataset_example_id: example {body.dataset_example_id!r} not found")
    try:
        run = run_record(
            experiment=experiment,
            run=RunInput(
                example_id=int(example),
                repetition_number=body.repetition_number,
                output=body.output,
                error=body.error,
                start_time=body.start_time,
                end_time=body.end_time,
                trace_id=body.trace_id or "",
                prompt_tokens=body.prompt_token_count,
                completion_tokens=body.completion_token_count,
                cost_usd=body.cost_usd,
            ),
        )
    except RunExists as exc:
        raise HttpError(409, str(exc)) from None
    except NotFound as exc:
        raise HttpError(404, str(exc)) from None
    except ExperimentInvalid as exc:
        raise HttpError(400, str(exc)) from None
    return {"data": {"id": str(run.pk)}}


@router.get("/experiments/{experiment_id}/runs", response=list[_Row])
@paged(invalid_status=422)
def experiments_runs_list(request: HttpRequest, experiment_id: str) -> Pages:
    """An experiment's runs, a page at a time."""
    experiment = experiment_from_path(experiment_id)

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        return runs_page(experiment=experiment, cursor=cursor, limit=limit).map(run_out)

    return pages


@router.get("/experiments/{experiment_id}/incomplete-runs", response=list[_Row])
@paged(invalid_status=422)
def experiments_incomplete_runs(request: HttpRequest, experiment_id: str) -> Pages:
    """Examples whose repetitions have no successful run yet (for ``resume_experiment``)."""
    experiment = experiment_from_path(experiment_id)

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        page = incomplete_runs(experiment=experiment, cursor=cursor, limit=limit)
        return page.map(
            lambda i: {
                "dataset_example": example_out(i.revision),
                "repetition_numbers": i.repetitions,
            }
        )

    return pages


@router.get("/experiments/{experiment_id}/incomplete-evaluations", response=list[_Row])
@paged(invalid_status=422)
def experiments_incomplete_evaluations(
    request: HttpRequest, experiment_id: str, query: Query[EvaluationNames]
) -> Pages:
    """Successful runs missing an evaluation among ``evaluation_name`` (``resume_evaluation``)."""
    experiment = experiment_from_path(experiment_id)
    names = [n for n in query.evaluation_name if n.strip()]
    if not names:
        raise HttpError(400, "evaluation_name: give at least one")

    def pages(*, cursor: str | None, limit: int) -> Page[_Row]:
        page = incomplete_evaluations(
            experiment=experiment, names=names, cursor=cursor, limit=limit
        )
        revisions = revisions_by_example(experiment=experiment)
        rows = [
            {
                "experiment_run": run_out(run),
                "dataset_example": example_out(revisions[run.example_id]),
                "evaluation_names": missing,
            }
            for run, missing in page.items
            if run.example_id in revisions
        ]
        return Page(rows, page.next_cursor)

    return pages


@router.post("/experiment_evaluations", response=IdResponse)
def experiment_evaluations_upsert(request: HttpRequest, body: EvaluationIn) -> dict[str, Any]:
    """Record an evaluator's result on a run (the one of the same name is replaced)."""
    run_id = body.experiment_run_id.strip()
    run = (
        ExperimentRun.objects.filter(pk=int(run_id)).first()
        if run_id.isdigit() and len(run_id) <= 18
        else None
    )
    if run is None:
        raise HttpError(404, f"experiment_run_id: run {body.experiment_run_id!r} not found")
    if body.result is None and body.error is None:
        raise HttpError(400, "result: give a result or an error")
    try:
        evaluation = evaluation_upsert(
            run=run,
            name=body.name,
            annotator_kind=body.annotator_kind,
            result=body.result,
            error=body.error,
            metadata=body.metadata,
            trace_id=body.trace_id,
            start_time=body.start_time,
            end_time=body.end_time,
        )
    except ExperimentInvalid as exc:
        raise HttpError(400, str(exc)) from None
    return {"data": {"id": str(evaluation.pk)}}


def _annotation(evaluation: ExperimentEvaluation) -> dict[str, Any]:
    return {
        "name": evaluation.name,
        "annotator_kind": evaluation.annotator_kind,
        "label": evaluation.label,
        "score": evaluation.score,
        "explanation": evaluation.explanation,
        "trace_id": evaluation.trace_id or None,
        "error": evaluation.error,
        "metadata": evaluation.metadata,
        "start_time": evaluation.start_time.isoformat(),
        "end_time": evaluation.end_time.isoformat(),
    }


def experiment_records(experiment: Experiment) -> list[dict[str, Any]]:
    """Every run with its example and evaluations, as the JSON download gives them."""
    revisions = revisions_by_example(experiment=experiment)
    records = []
    for run in experiment_runs_full(experiment=experiment):
        revision = revisions.get(run.example_id)
        records.append(
            {
                "example_id": str(run.example_id),
                "repetition_number": run.repetition_number,
                "input": revision.input if revision else None,
                "reference_output": revision.output if revision else None,
                "output": run.output,
                "error": run.error,
                "latency_ms": round(run.latency_ms, 3),
                "start_time": run.start_time.isoformat(),
                "end_time": run.end_time.isoformat(),
                "trace_id": run.trace_id or None,
                "prompt_token_count": run.prompt_tokens,
                "completion_token_count": run.completion_tokens,
                "cost_usd": run.cost_usd,
                "annotations": [_annotation(e) for e in run.evaluations.all()],
            }
        )
    return records


@router.get("/experiments/{experiment_id}/json")
def experiments_download_json(request: HttpRequest, experiment_id: str) -> HttpResponse:
    """Every run with its example and evaluations, as a JSON list."""
    experiment = experiment_from_path(experiment_id)
    response = HttpResponse(
        json.dumps(experiment_records(experiment), ensure_ascii=False),
        content_type="application/json",
    )
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}.json"'
    return response


@router.get("/experiments/{experiment_id}/csv")
def experiments_download_csv(request: HttpRequest, experiment_id: str) -> HttpResponse:
    """Every run as a CSV row; objects as JSON text, one column per evaluator score/label."""
    experiment = experiment_from_path(experiment_id)
    records = experiment_records(experiment)
    names = sorted({a["name"] for r in records for a in r["annotations"]})
    out = io.StringIO()
    writer = csv.writer(out)
    base = ["example_id", "repetition_number", "input", "reference_output", "output", "error"]
    base += ["latency_ms", "trace_id", "cost_usd"]
    writer.writerow(base + [f"{n}.{part}" for n in names for part in ("score", "label")])
    for record in records:
        by_name = {a["name"]: a for a in record["annotations"]}
        row = [
            record["example_id"],
            record["repetition_number"],
            json.dumps(record["input"], ensure_ascii=False),
            json.dumps(record["reference_output"], ensure_ascii=False),
            json.dumps(record["output"], ensure_ascii=False),
            record["error"] or "",
            record["latency_ms"],
            record["trace_id"] or "",
            "" if record["cost_usd"] is None else record["cost_usd"],
        ]
        for name in names:
            found = by_name.get(name, {})
            row += ["" if found.get("score") is None else found["score"], found.get("label") or ""]
        writer.writerow(row)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="experiment-{experiment.pk}.csv"'
    return response
