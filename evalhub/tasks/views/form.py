"""The task form: new and edit, with its live previews (matching count, variables) and the test run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalhub.evaluators.selectors import evaluator_list
from evalhub.identity.auth import request_user
from evalhub.tasks.backfill import task_save
from evalhub.tasks.dryrun import (
    DRY_RUN_LIMIT,
    evaluator_mappings,
    preview_span,
    skip_forecast,
    task_dry_run,
)
from evalhub.tasks.forms import BackfillForm, TaskForm
from evalhub.tasks.models import Granularity, Task, TaskRun
from evalhub.tasks.runs import RunRejected
from evalhub.tasks.selectors import (
    matching_count,
)
from evalhub.tasks.services import (
    TASK_FIELDS,
    TaskEvaluatorInput,
    TaskInput,
    TaskInvalid,
    task_input_of,
)
from evalhub.tasks.views.common import (
    FORM_TEMPLATE,
    RUN_QUEUED_TAG,
    _task_or_404,
)
from tracing.browser.filters import quote
from tracing.models import Project, Span
from tracing.query import FilterError


@dataclass
class _Draft:
    """What the form holds so far, read leniently (the form may not be valid yet)."""

    project: Project | None
    granularity: str
    filter_text: str
    span_id: str
    entries: list[TaskEvaluatorInput]


def _value(form: TaskForm, name: str) -> Any:
    if form.is_bound:
        return form.data.get(name)
    value = form.initial.get(name, form.fields[name].initial)
    return value


def _draft(form: TaskForm, entries: list[TaskEvaluatorInput] | None = None) -> _Draft:
    project_value = _value(form, "project")
    project: Project | None = None
    if isinstance(project_value, Project):
        project = project_value
    elif project_value:
        project = Project.objects.filter(name=str(project_value)).first()
    granularity = str(_value(form, "granularity") or Granularity.SPAN)
    if granularity not in Granularity.values:
        granularity = Granularity.SPAN
    if entries is None:
        if form.is_bound:
            posted = cast(QueryDict, form.data)  # bound to request.GET / POST
            ids = [pk for pk in posted.getlist("evaluators") if str(pk).isdigit()]
            found = {str(e.pk): e for e in evaluator_list().filter(pk__in=ids)}
            chosen = [found[pk] for pk in dict.fromkeys(ids) if pk in found]
            entries = [
                TaskEvaluatorInput(evaluator=e, variables=form.posted_sources(e)) for e in chosen
            ]
        else:
            entries = []
    return _Draft(
        project=project,
        granularity=granularity,
        filter_text=str(_value(form, "filter") or ""),
        span_id=str(_value(form, "span") or "").strip(),
        entries=entries,
    )


def _filter_error_context(error: FilterError | None, text: str) -> dict[str, Any]:
    if error is None:
        return {"filter_error": None}
    return {
        "filter_error": error,
        "filter_text": text,
        "filter_caret": " " * (min(error.position, len(text) + 1) - 1) + "^",
    }


def _count_context(draft: _Draft) -> dict[str, Any]:
    """The live count of matching items over the last 24 h, or the filter's error."""
    if draft.project is None:
        return {"match": None, "filter_error": None}
    try:
        match = matching_count(
            project=draft.project, granularity=draft.granularity, filter_text=draft.filter_text
        )
    except FilterError as exc:
        return {"match": None, **_filter_error_context(exc, draft.filter_text)}
    return {"match": match, "filter_error": None}


def _mappings_context(draft: _Draft) -> dict[str, Any]:
    """Each chosen evaluator's variables, their sources and values on the preview span."""
    span = None
    if draft.project is not None:
        try:
            span = preview_span(
                project=draft.project,
                granularity=draft.granularity,
                filter_text=draft.filter_text,
                span_id=draft.span_id,
            )
        except FilterError:
            span = None  # the count shows the error
    forecast = None
    if draft.project is not None and draft.entries:
        try:
            forecast = skip_forecast(
                project=draft.project,
                granularity=draft.granularity,
                filter_text=draft.filter_text,
                entries=draft.entries,
            )
        except FilterError:
            forecast = None  # the count shows the error
    return {
        "preview": span,
        "mappings": evaluator_mappings(entries=draft.entries, span=span),
        "draft": draft,
        "forecast": forecast,
    }


def _form_context(
    form: TaskForm,
    backfill_form: BackfillForm,
    *,
    task: Task | None,
    entries: list[TaskEvaluatorInput] | None = None,
) -> dict[str, Any]:
    draft = _draft(form, entries)
    chosen = {e.evaluator.pk for e in draft.entries}
    return {
        "form": form,
        "backfill_form": backfill_form,
        "task": task,
        "backfill_requested": form.is_bound and bool(form["backfill"].value()),
        "chosen_evaluators": chosen,
        "evaluators": list(evaluator_list()),
        "dry_run_limit": DRY_RUN_LIMIT,
        **_count_context(draft),
        **_mappings_context(draft),
    }


def _task_save(
    request: HttpRequest, form: TaskForm, backfill_form: BackfillForm, *, task: Task | None
) -> tuple[Task, TaskRun | None] | None:
    """Create or update the task and, when asked, queue its backfill — all or nothing: a
    rejected backfill leaves no task behind (and no change to one)."""
    valid = form.is_valid()
    wants_backfill = valid and form.cleaned_data.get("backfill")
    if not valid or (wants_backfill and not backfill_form.is_valid()):
        return None
    try:
        return task_save(
            data=form.task_input(),
            task=task,
            backfill=backfill_form.backfill_input() if wants_backfill else None,
            user=request_user(request),
        )
    except TaskInvalid as exc:
        form.add_invalid(exc)
        return None
    except RunRejected as exc:
        backfill_form.add_rejection(exc)
        return None


def _saved_redirect(request: HttpRequest, task: Task, run: TaskRun | None, verb: str) -> Any:
    if run is not None:
        messages.success(
            request,
            f"{verb} task {task.name}; backfill run #{run.pk} is queued.",
            extra_tags=RUN_QUEUED_TAG,
        )
    else:
        messages.success(request, f"{verb} task {task.name}.")
    return redirect("tasks:detail", task_id=task.pk)


def _new_initial(request: HttpRequest) -> dict[str, Any]:
    """``?project=<name>``, ``?granularity=`` and ``?q=<filter>`` (from a project), or
    ``?span=<span id>`` (from a span's pane: its project, a filter on its name, and previews on
    it)."""
    initial: dict[str, Any] = {}
    project = request.GET.get("project", "").strip()
    if project:
        initial["project"] = project
    span_id = request.GET.get("span", "").strip()
    if span_id:
        initial["span"] = span_id
        span = Span.objects.filter(span_id=span_id).select_related("project").first()
        if span is not None:
            # Spans like this one: same name (the preview stays on this span).
            initial.setdefault("project", span.project.name)
            initial["name"] = f"{span.name} quality"[:200]
            initial["filter"] = f"name = {quote(span.name)}"
    granularity = request.GET.get("granularity", "")
    if granularity in Granularity.values:
        initial["granularity"] = granularity
    if "q" in request.GET:
        initial["filter"] = request.GET["q"]
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def task_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TaskForm(request.POST)
        backfill_form = BackfillForm(request.POST, prefix="backfill")
        saved = _task_save(request, form, backfill_form, task=None)
        if saved is not None:
            return _saved_redirect(request, *saved, "Created")
    else:
        form = TaskForm(initial=_new_initial(request))
        backfill_form = BackfillForm(
            prefix="backfill", initial={"start": BackfillForm.initial_start()}
        )
    return render(request, FORM_TEMPLATE, _form_context(form, backfill_form, task=None))


def _edit_initial(data: TaskInput) -> dict[str, Any]:
    initial = {name: getattr(data, name) for name in TASK_FIELDS if name != "evaluators"}
    initial["evaluators"] = [e.evaluator.pk for e in data.evaluators]
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def task_edit(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task_or_404(task_id)
    if task.on_dataset:  # its form is the dataset's (no project, granularity or filter)
        return redirect("experiments:task-edit", pk=task.dataset_id, dataset_task_id=task.pk)
    entries = None
    if request.method == "POST":
        form = TaskForm(request.POST)
        backfill_form = BackfillForm(request.POST, prefix="backfill")
        saved = _task_save(request, form, backfill_form, task=task)
        if saved is not None:
            return _saved_redirect(request, *saved, "Saved")
    else:
        data = task_input_of(task)
        entries = data.evaluators
        form = TaskForm(initial=_edit_initial(data))
        backfill_form = BackfillForm(
            prefix="backfill", initial={"start": BackfillForm.initial_start()}
        )
    return render(
        request, FORM_TEMPLATE, _form_context(form, backfill_form, task=task, entries=entries)
    )


@login_required
@require_GET
def task_form_count(request: HttpRequest) -> HttpResponse:
    """The form's live count (project, granularity, filter from the query string)."""
    draft = _draft(TaskForm(request.GET))
    return render(request, f"{FORM_TEMPLATE}#count", _count_context(draft))


@login_required
@require_POST
def task_form_variables(request: HttpRequest) -> HttpResponse:
    """The form's evaluator mappings with their values on the preview span (the whole form
    posted)."""
    draft = _draft(TaskForm(request.POST))
    return render(request, f"{FORM_TEMPLATE}#mappings", _mappings_context(draft))


def _dry_run_input(form: TaskForm) -> tuple[TaskInput | None, list[str]]:
    """The task as the form holds it, for a test run, or the problems that prevent one."""
    form.is_valid()
    problems = [
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {' '.join(str(error) for error in errors)}"
        for name, errors in form.errors.items()
        if name in {"project", "evaluators", "granularity", "sampling_rate", "provider", "model"}
    ]
    cleaned = form.cleaned_data
    if not problems and not cleaned.get("evaluators"):
        problems.append("Choose at least one evaluator.")
    if problems:
        return None, problems
    return (
        TaskInput(
            name=cleaned.get("name") or "",
            project=cleaned["project"],
            evaluators=form.evaluator_entries(),
            granularity=cleaned["granularity"],
            filter=cleaned.get("filter") or "",
            sampling_rate=cleaned["sampling_rate"],
            provider=cleaned.get("provider"),
            model=cleaned.get("model") or "",
        ),
        [],
    )


@login_required
@require_POST
def task_form_test(request: HttpRequest) -> HttpResponse:
    """ "Test task": evaluate a few matching, sampled items as the task would; writes nothing."""
    form = TaskForm(request.POST)
    data, problems = _dry_run_input(form)
    ctx: dict[str, Any] = {"problems": problems, "tested": True, "dry_run_limit": DRY_RUN_LIMIT}
    if data is not None:
        project = data.project
        assert project is not None  # _dry_run_input refuses a form without one
        try:
            ctx["items"] = task_dry_run(data=data)
            ctx["forecast"] = skip_forecast(
                project=project,
                granularity=data.granularity,
                filter_text=data.filter,
                entries=data.evaluators,
            )
        except FilterError as exc:
            ctx["problems"] = [f"Filter: {exc}"]
        ctx["project_name"] = project.name
    return render(request, f"{FORM_TEMPLATE}#test-results", ctx)
