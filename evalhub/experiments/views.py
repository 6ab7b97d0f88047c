"""Experiment pages: a dataset's versions and experiments, a new prompt experiment, one
experiment (runs by evaluators, aggregates, "Evaluate with…"), and the comparison of two to four
experiments on one dataset. Views parse, call one service or selector, render."""

from __future__ import annotations

from typing import Any, Final

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from annotations.datasets.models import Dataset
from annotations.datasets.versions import (
    dataset_version_get,
    dataset_versions,
    version_diff,
    version_download,
)
from evalhub.core.forms import form_field
from evalhub.core.web import htmx_partial
from evalhub.experiments.forms import (
    RUN_SOURCE_CHOICES,
    SPAN_SOURCE_CHOICES,
    DatasetTaskForm,
    EvaluateForm,
    PromptExperimentForm,
)
from evalhub.experiments.models import Experiment, ExperimentStatus
from evalhub.experiments.prompts import PromptInvalid, prompt_version_create
from evalhub.experiments.selectors import (
    MAX_COMPARED,
    compare_index,
    compare_rows,
    experiment_get,
    experiment_runs,
    experiment_summaries,
    experiment_summary,
    experiments_of_dataset,
    revisions_of,
)
from evalhub.experiments.services import (
    ExperimentInvalid,
    VersionGone,
    experiment_evaluate_start,
    prompt_experiment_start,
)
from evalhub.experiments.task_target import dataset_task_save, dataset_tasks
from evalhub.identity.auth import request_user

RUNS_PER_PAGE: Final = 100
ROWS_PER_PAGE: Final = 100


def _experiment(pk: int) -> Experiment:
    experiment = experiment_get(pk)
    if experiment is None:
        raise Http404("no such experiment")
    return experiment


@login_required
@require_GET
def dataset_experiments(request: HttpRequest, pk: int) -> HttpResponse:
    """A dataset's versions (diff, download) and experiments (compare)."""
    dataset = get_object_or_404(Dataset, pk=pk)
    return render(
        request,
        "experiments/dataset_experiments.html",
        {
            "dataset": dataset,
            "versions": list(dataset_versions(dataset=dataset)[:100]),
            "experiments": list(experiments_of_dataset(dataset=dataset)[:200]),
            "tasks": list(dataset_tasks(dataset=dataset)[:50]),
        },
    )


@login_required
@require_GET
def phoenix_link(request: HttpRequest, global_id: str, page: str) -> HttpResponse:
    """The links the Phoenix client prints (``datasets/<GlobalID>/experiments``,
    ``datasets/<GlobalID>/compare?experimentId=N``) lead to the pages here."""
    from tracing.store.selectors import global_id_pk

    digits = global_id.isdigit() and len(global_id) <= 18
    pk = int(global_id) if digits else global_id_pk(global_id, "Dataset")
    dataset = get_object_or_404(Dataset, pk=pk) if pk is not None else None
    if dataset is None:
        raise Http404("no such dataset")
    experiment = experiment_get(request.GET.get("experimentId", ""))
    if page == "compare" and experiment is not None and experiment.dataset_id == dataset.pk:
        return redirect("experiments:detail", experiment_id=experiment.pk)
    return redirect("experiments:dataset", pk=dataset.pk)


@login_required
@require_GET
def version_diff_page(request: HttpRequest, pk: int) -> HttpResponse:
    """What changed between two versions (``a`` older, ``b`` newer)."""
    dataset = get_object_or_404(Dataset, pk=pk)
    latest = list(dataset_versions(dataset=dataset)[:2])
    if not latest:
        raise Http404("this dataset has no versions yet")
    # Default: the latest version against the one before it.
    b = dataset_version_get(dataset=dataset, version_id=request.GET.get("b", "")) or latest[0]
    a = dataset_version_get(dataset=dataset, version_id=request.GET.get("a", "")) or latest[-1]
    return render(
        request,
        "experiments/version_diff.html",
        {"dataset": dataset, "a": a, "b": b, "diff": version_diff(a=a, b=b)},
    )


@login_required
@require_GET
def version_download_page(request: HttpRequest, pk: int, version_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    version = dataset_version_get(dataset=dataset, version_id=version_id)
    if version is None:
        raise Http404("no such version")
    fmt = "jsonl" if request.GET.get("format") == "jsonl" else "csv"
    download = version_download(dataset=dataset, version=version, fmt=fmt)
    response = HttpResponse(download.text, content_type=download.content_type)
    response["Content-Disposition"] = f'attachment; filename="{download.filename}"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def experiment_new(request: HttpRequest, pk: int) -> HttpResponse:
    """A prompt experiment: it runs on Celery; the page of the experiment shows progress."""
    dataset = get_object_or_404(Dataset, pk=pk)
    form = PromptExperimentForm(request.POST or None, dataset=dataset)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():  # a new prompt is kept only with its experiment
                prompt_version = data["prompt_version"] or prompt_version_create(
                    name=data["prompt_name"],
                    version={
                        "model_name": data["model"] or data["provider"].default_model or "default",
                        "template": {
                            "type": "chat",
                            "messages": [
                                *(
                                    [{"role": "system", "content": data["system"]}]
                                    if data["system"].strip()
                                    else []
                                ),
                                {"role": "user", "content": data["template"]},
                            ],
                        },
                    },
                )
                experiment = prompt_experiment_start(
                    dataset=dataset,
                    version=data["version"],
                    prompt_version=prompt_version,
                    provider=data["provider"],
                    model=data["model"],
                    variables=data["variables"],
                    name=data["name"],
                    repetitions=data["repetitions"],
                    concurrency=data["concurrency"],
                    user=request_user(request),
                )
        except (PromptInvalid, ExperimentInvalid) as exc:
            form.add_error(None, str(exc))
        except VersionGone as exc:
            form.add_error("version", str(exc))
        else:
            messages.success(request, f"Experiment {experiment.name!r} is running.")
            return redirect("experiments:detail", experiment_id=experiment.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "experiments/experiment_new.html",
        {"dataset": dataset, "form": form},
        status=status,
    )


@login_required
@require_GET
def experiment_detail(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """Runs by evaluators with aggregates; while a prompt experiment runs, the status polls."""
    experiment = _experiment(experiment_id)
    summary = experiment_summary(experiment=experiment)
    names = [e.name for e in summary.evaluators]
    page = Paginator(experiment_runs(experiment=experiment), RUNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    revisions = revisions_of(experiment=experiment, example_ids=[r.example_id for r in page])
    rows = [
        {
            "run": run,
            "revision": revisions.get(run.example_id),
            "scores": [
                next((e for e in run.evaluations.all() if e.name == name), None) for name in names
            ],
        }
        for run in page.object_list
    ]
    context = {
        "experiment": experiment,
        "summary": summary,
        "names": names,
        "rows": rows,
        "page": page,
        "running": experiment.status in (ExperimentStatus.QUEUED, ExperimentStatus.RUNNING),
        "evaluate_form": EvaluateForm(),
    }
    if htmx_partial(request):
        return render(request, "experiments/experiment_detail.html#body", context)
    return render(request, "experiments/experiment_detail.html", context)


@login_required
@require_POST
def experiment_evaluate(request: HttpRequest, experiment_id: int) -> HttpResponse:
    """Score every run with a hub evaluator (on Celery)."""
    experiment = _experiment(experiment_id)
    form = EvaluateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an evaluator.")
        return redirect("experiments:detail", experiment_id=experiment.pk)
    evaluator = form.cleaned_data["evaluator"]
    experiment_evaluate_start(experiment=experiment, evaluator=evaluator)
    messages.success(request, f"Evaluating with {evaluator.name}: results appear as they come.")
    return redirect("experiments:detail", experiment_id=experiment.pk)


def _delta(first: float | None, other: float | None) -> float | None:
    return None if first is None or other is None else round(other - first, 4)


def _preview(value: Any, limit: int) -> str:
    """A value as a short text (a plain cut: Django's truncation filter reads every
    character, a good part of a 100-row page's time)."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _run_cell(row: Any, run: Any, names: list[str], index: int) -> dict[str, Any]:
    """What the comparison shows of one run: its output (or error), scores, trace link."""
    if run is None:
        return {"run": None}
    return {
        "run": run,
        "text": _preview(run.error if run.error else run.output, 200 if run.error else 300),
        "scores": _score_cells(row, names, index),
        "trace_url": reverse(
            "detail:trace", kwargs={"project": run.project_name, "trace_id": run.trace_id}
        )
        if run.trace_id
        else "",
    }


def _score_cells(row: Any, names: list[str], index: int) -> list[dict[str, Any]]:
    """A run's scores as the page shows them, formatted here (a template filter per score is
    a good part of a 100-row page's time)."""
    cells = []
    for name in names:
        values = row.scores[name]
        score = values[index]
        delta = _delta(values[0], score) if index else None
        cells.append(
            {
                "name": name,
                "score": "—" if score is None else f"{score:.2f}",
                "delta": None if delta is None else (f"{delta:+.2f}" if delta else "0.00"),
            }
        )
    return cells


@login_required
@require_GET
def experiments_compare_page(request: HttpRequest) -> HttpResponse:
    """Two to four experiments of one dataset side by side, per example; ``regressions``
    keeps the examples that score lower in a later experiment than in the first."""
    ids = request.GET.getlist("ids")
    # The oldest is the baseline ("A") the others are compared with.
    found = (experiment_get(i) for i in dict.fromkeys(ids))
    experiments = sorted((e for e in found if e is not None), key=lambda e: e.pk)
    error = None
    if not 2 <= len(experiments) <= MAX_COMPARED:
        error = f"Choose two to {MAX_COMPARED} experiments to compare."
    elif len({e.dataset_id for e in experiments}) > 1:
        error = "Experiments of different datasets cannot be compared."
    if error:
        return render(request, "experiments/compare.html", {"error": error}, status=400)
    evaluator = request.GET.get("evaluator") or None
    names, keys = compare_index(experiments=experiments, evaluator=evaluator)
    if request.GET.get("regressions"):
        keys = [k for k in keys if k.regressed]
    page = Paginator(keys, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    rows = compare_rows(experiments=experiments, keys=list(page))
    cells = [
        {
            "row": row,
            "input": _preview(row.input, 200),
            "expected": _preview(row.expected, 200),
            "cells": [_run_cell(row, run, names, index) for index, run in enumerate(row.runs)],
        }
        for row in rows
    ]
    summaries = experiment_summaries(experiments=experiments)
    return render(
        request,
        "experiments/compare.html",
        {
            "experiments": experiments,
            "columns": list(zip(experiments, summaries, strict=True)),
            "names": names,
            "page": page,
            "rows": cells,
            "dataset": experiments[0].dataset,
            "evaluator": evaluator or "",
            "regressions": bool(request.GET.get("regressions")),
        },
    )


# --- tasks on a dataset: every new experiment scored ---------------------------------------


def _evaluator_rows(form: DatasetTaskForm, task: Any = None) -> list[dict[str, Any]]:
    """Each evaluator with its variables: the source each reads (posted, the task's, else the
    evaluator's own) and the sources a dataset task offers."""
    from evalhub.evaluators.selectors import evaluator_version_latest
    from evalhub.tasks.dryrun import default_mapping

    saved = {te.evaluator_id: te.variables for te in task.task_evaluators.all()} if task else {}
    posted = form.mappings() if form.is_bound else {}
    chosen = {str(v) for v in (form["evaluators"].value() or [])}
    rows = []
    for evaluator in form_field(form, "evaluators", forms.ModelChoiceField).queryset or ():
        version = evaluator_version_latest(evaluator=evaluator)
        own = default_mapping(version) if version is not None else {}
        mine = posted.get(evaluator.pk, saved.get(evaluator.pk, {}))
        rows.append(
            {
                "evaluator": evaluator,
                "checked": str(evaluator.pk) in chosen,
                "variables": [
                    {"name": name, "source": mine.get(name, source), "own": source}
                    for name, source in own.items()
                ],
            }
        )
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def dataset_task_form(
    request: HttpRequest, pk: int, dataset_task_id: int | None = None
) -> HttpResponse:
    """A task on the dataset (new, or ``dataset_task_id`` changed): its evaluators score every
    new experiment on it, on the task engine."""
    from evalhub.tasks.services import TaskInvalid

    dataset = get_object_or_404(Dataset, pk=pk)
    task = (
        get_object_or_404(dataset_tasks(dataset=dataset), pk=dataset_task_id)
        if dataset_task_id
        else None
    )
    if request.method == "POST":
        form = DatasetTaskForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = dataset_task_save(
                    dataset=dataset,
                    name=data["name"],
                    evaluators=list(data["evaluators"]),
                    variables=form.mappings(),
                    provider=data.get("provider"),
                    model=data.get("model") or "",
                    quiet_seconds=data.get("quiet_seconds"),
                    description=data.get("description") or "",
                    task=task,
                    user=request_user(request),
                )
            except TaskInvalid as exc:
                field = exc.field if exc.field in form.fields else None
                form.add_error(field, exc.message)
            else:
                messages.success(request, f"Saved {saved.name}: new experiments are scored.")
                return redirect("tasks:detail", task_id=saved.pk)
    elif task is not None:
        form = DatasetTaskForm(
            initial={
                "name": task.name,
                "description": task.description,
                "evaluators": [te.evaluator_id for te in task.task_evaluators.all()],
                "provider": task.provider_id,
                "model": task.model,
                "quiet_seconds": task.quiet_seconds,
            }
        )
    else:
        form = DatasetTaskForm()
    return render(
        request,
        "experiments/dataset_task_form.html",
        {
            "dataset": dataset,
            "task": task,
            "form": form,
            "evaluator_rows": _evaluator_rows(form, task),
            "run_sources": RUN_SOURCE_CHOICES,
            "span_sources": SPAN_SOURCE_CHOICES,
        },
    )
