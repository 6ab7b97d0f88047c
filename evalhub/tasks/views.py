"""Tasks pages: the tasks and runs lists, the task form (with its live previews and the test
run), a task's runs, a run's log, backfills, and "Evaluate with…" from the trace browser.

Views parse the request, call a service (``evalhub.tasks.services``) or a selector
(``evalhub.tasks.selectors``, ``evalhub.tasks.dryrun``) and render. The form's previews are
partials of the form's template, refreshed by htmx; a run's progress is a partial that polls
every 2 s while the run is active and comes back without its trigger once it has finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalhub.core.web import htmx_partial, next_or
from evalhub.evaluators.models import Evaluator
from evalhub.evaluators.selectors import evaluator_list
from evalhub.tasks.dryrun import (
    DRY_RUN_LIMIT,
    evaluator_mappings,
    preview_span,
    skip_forecast,
    task_dry_run,
)
from evalhub.tasks.forms import BackfillForm, RunFilterForm, RunItemsForm, TaskFilterForm, TaskForm
from evalhub.tasks.judge_tracing import judge_project_name
from evalhub.tasks.models import Granularity, ItemOutcome, Task, TaskRun, TaskRunItem
from evalhub.tasks.selectors import (
    matching_count,
    run_get,
    run_item_counts,
    run_items,
    run_list,
    run_logs,
    run_progress,
    runs_recent,
    task_get,
    task_list,
)
from evalhub.tasks.services import (
    TASK_FIELDS,
    RunRejected,
    TaskEvaluatorInput,
    TaskInput,
    TaskInvalid,
    run_backfill_create,
    run_cancel,
    run_manual_create,
    task_delete,
    task_duplicate,
    task_input_of,
    task_pause,
    task_resume,
    task_update,
)
from evalhub.tasks.services import task_create as task_create_service
from tracing.browser.filters import ALL_TIME, quote
from tracing.models import Project, Span
from tracing.query import FilterError
from tracing.store.selectors import spans_existing

LIST_TEMPLATE: Final = "evalhub/tasks/task_list.html"
RUNS_TEMPLATE: Final = "evalhub/tasks/run_list.html"
FORM_TEMPLATE: Final = "evalhub/tasks/task_form.html"
DETAIL_TEMPLATE: Final = "evalhub/tasks/task_detail.html"
RUN_TEMPLATE: Final = "evalhub/tasks/run_detail.html"
BULK_TEMPLATE: Final = "evalhub/_bulk_evaluate.html"
TASKS_PER_PAGE: Final = 50
RUNS_PER_PAGE: Final = 25
LOGS_PER_PAGE: Final = 50
# The class of a "run … is queued" message: the run page removes it once the run has started.
RUN_QUEUED_TAG: Final = "run-queued"
# The trace browser's tabs and the granularity of their rows.
TAB_GRANULARITY: Final = {
    "spans": Granularity.SPAN,
    "traces": Granularity.TRACE,
    "sessions": Granularity.SESSION,
}
GRANULARITY_TAB: Final = {granularity: tab for tab, granularity in TAB_GRANULARITY.items()}


def _task_or_404(task_id: int) -> Task:
    task = task_get(task_id)
    if task is None:
        raise Http404("no such task")
    return task


def _run_or_404(run_id: int) -> TaskRun:
    run = run_get(run_id)
    if run is None:
        raise Http404("no such run")
    return run


# --- the Tasks page and the runs tab ----------------------------------------------------------


@login_required
@require_GET
def tasks_page(request: HttpRequest) -> HttpResponse:
    """Every task with its settings, status (and why it is paused) and its last runs."""
    form = TaskFilterForm(request.GET or None)
    project = form.cleaned_data.get("project") if form.is_valid() else None
    page = Paginator(task_list(project=project), TASKS_PER_PAGE).get_page(request.GET.get("page"))
    tasks = list(page.object_list)
    recent = runs_recent(tasks=tasks)
    for task in tasks:
        task.recent_runs = recent.get(task.pk, [])  # type: ignore[attr-defined]
    ctx = {"form": form, "project": project, "page": page, "tasks": tasks, "tab": "tasks"}
    if htmx_partial(request):
        return render(request, f"{LIST_TEMPLATE}#results", ctx)
    return render(request, LIST_TEMPLATE, ctx)


@login_required
@require_GET
def runs_page(request: HttpRequest) -> HttpResponse:
    """Every run, newest first: continuous, backfill and manual (also those of no task)."""
    form = RunFilterForm(request.GET or None)
    cleaned = form.cleaned_data if form.is_valid() else {}
    runs = run_list(project=cleaned.get("project"), status=cleaned.get("status") or "")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {"form": form, "project": cleaned.get("project"), "page": page, "tab": "runs"}
    if htmx_partial(request):
        return render(request, f"{RUNS_TEMPLATE}#results", ctx)
    return render(request, RUNS_TEMPLATE, ctx)


# --- the task form ----------------------------------------------------------------------------


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
            ids = [pk for pk in form.data.getlist("evaluators") if str(pk).isdigit()]
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
    data = form.task_input()
    try:
        with transaction.atomic():
            if task is None:
                saved = task_create_service(data=data, user=request.user)
            else:
                changes = {name: getattr(data, name) for name in TASK_FIELDS}
                saved = task_update(task=task, changes=changes)
            run = None
            if wants_backfill:
                run = run_backfill_create(
                    task=saved,
                    start=backfill_form.cleaned_data["start"],
                    end=backfill_form.cleaned_data.get("end"),
                    max_items=backfill_form.cleaned_data["max_items"],
                    user=request.user,
                )
    except TaskInvalid as exc:
        form.add_invalid(exc)
        return None
    except RunRejected as exc:
        backfill_form.add_rejection(exc)
        return None
    return saved, run


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
        f"{form.fields[name].label or name.replace('_', ' ').capitalize()}: {' '.join(errors)}"
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
        try:
            ctx["items"] = task_dry_run(data=data)
            ctx["forecast"] = skip_forecast(
                project=data.project,
                granularity=data.granularity,
                filter_text=data.filter,
                entries=data.evaluators,
            )
        except FilterError as exc:
            ctx["problems"] = [f"Filter: {exc}"]
        ctx["project_name"] = data.project.name
    return render(request, f"{FORM_TEMPLATE}#test-results", ctx)


# --- a task: its runs and the actions on it ---------------------------------------------------


@login_required
@require_GET
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task_or_404(task_id)
    page = Paginator(run_list(task=task), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    judge_project = judge_project_name(task.project.name) if task.project else ""
    return render(
        request,
        DETAIL_TEMPLATE,
        {
            "task": task,
            "page": page,
            "judge_project": judge_project,
            "judge_project_exists": Project.objects.filter(name=judge_project).exists(),
        },
    )


@login_required
@require_POST
def task_pause_view(request: HttpRequest, task_id: int) -> HttpResponse:
    task = task_pause(task=_task_or_404(task_id))
    messages.success(request, f"Paused {task.name}: it evaluates nothing new until resumed.")
    return redirect(next_or(request, reverse("tasks:list")))


@login_required
@require_POST
def task_resume_view(request: HttpRequest, task_id: int) -> HttpResponse:
    task = task_resume(task=_task_or_404(task_id))
    messages.success(request, f"Resumed {task.name}: it picks up where it stopped.")
    return redirect(next_or(request, reverse("tasks:list")))


@login_required
@require_POST
def task_duplicate_view(request: HttpRequest, task_id: int) -> HttpResponse:
    copy = task_duplicate(task=_task_or_404(task_id), user=request.user)
    messages.success(request, f"Created {copy.name}, paused: check it, then resume it.")
    return redirect("tasks:edit", task_id=copy.pk)


@login_required
@require_http_methods(["GET", "POST"])
def task_delete_view(request: HttpRequest, task_id: int) -> HttpResponse:
    """A confirmation page; the POST deletes the task and its runs (not its results)."""
    task = _task_or_404(task_id)
    if request.method == "POST":
        name = task.name
        task_delete(task=task)
        messages.success(request, f"Deleted task {name}. Its results stay on the spans.")
        return redirect("tasks:list")
    return render(
        request,
        "evalhub/tasks/task_delete.html",
        {"task": task, "run_count": run_list(task=task).count()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def task_backfill(request: HttpRequest, task_id: int) -> HttpResponse:
    """A one-time run of the task over a past time range."""
    task = _task_or_404(task_id)
    if request.method == "POST":
        form = BackfillForm(request.POST)
        if form.is_valid():
            try:
                run = run_backfill_create(
                    task=task,
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data.get("end"),
                    max_items=form.cleaned_data["max_items"],
                    user=request.user,
                )
            except RunRejected as exc:
                form.add_rejection(exc)
            else:
                messages.success(
                    request, f"Backfill run #{run.pk} is queued.", extra_tags=RUN_QUEUED_TAG
                )
                return redirect("tasks:run", run_id=run.pk)
    else:
        form = BackfillForm(initial={"start": BackfillForm.initial_start()})
    return render(request, "evalhub/tasks/backfill_form.html", {"task": task, "form": form})


# --- a run's log ------------------------------------------------------------------------------


def run_traces_url(run: TaskRun) -> str:
    """The trace browser on the run's project — its spans, traces or sessions tab — showing
    exactly the items the run listed: the filter ``task_run = <id>`` (which the user can read
    and edit) over all time."""
    if run.project is None:  # a dataset task's run: "View runs" of its experiment
        return reverse("experiments:detail", kwargs={"experiment_id": run.experiment_id or 0})
    granularity = run.config.get("granularity", Granularity.SPAN)
    url = reverse(
        f"tracing:{GRANULARITY_TAB.get(granularity, 'spans')}",
        kwargs={"project": run.project.name},
    )
    return f"{url}?{urlencode({'q': f'task_run = {run.pk}', 'range': ALL_TIME})}"


def _duration(run: TaskRun) -> str:
    if run.started_at is None:
        return ""
    seconds = int(((run.finished_at or timezone.now()) - run.started_at).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _target_urls(
    project: str, targets: list[tuple[str, str]], *, result: str = ""
) -> dict[tuple[str, str], str]:
    """The page of each (kind, key) target — a span's pane in its trace, a trace, a session
    — with ``?result=<evaluator>`` to highlight that evaluator's result; targets that are gone
    have none."""
    span_traces = spans_existing([key for kind, key in targets if kind == Granularity.SPAN and key])
    query = f"?{urlencode({'result': result})}" if result else ""
    urls = {}
    for kind, key in targets:
        if not key:
            continue
        if kind == Granularity.SPAN and key in span_traces:
            urls[kind, key] = reverse(
                "detail:span_pane",
                kwargs={"project": project, "trace_id": span_traces[key], "span_id": key},
            )
        elif kind == Granularity.TRACE:
            urls[kind, key] = reverse("detail:trace", kwargs={"project": project, "trace_id": key})
        elif kind == Granularity.SESSION:
            urls[kind, key] = reverse(
                "detail:session", kwargs={"project": project, "session_id": key}
            )
        if (kind, key) in urls:
            urls[kind, key] += query
    return urls


@dataclass(frozen=True, slots=True)
class _LogLine:
    entry: Any
    url: str  # the item's page, "" when it has none (or is gone)


def _log_lines(run: TaskRun, entries: list[Any]) -> list[_LogLine]:
    """Each log entry with a link to its span / trace / session."""
    project = run.project.name if run.project else ""
    urls = _target_urls(project, [(e.target_kind, e.target_key) for e in entries])
    return [_LogLine(entry=e, url=urls.get((e.target_kind, e.target_key), "")) for e in entries]


@dataclass(frozen=True, slots=True)
class _ItemResult:
    entry: dict[str, Any]  # evaluator, label, score, explanation, latency_ms, error / skipped
    url: str  # the item's page with this result highlighted
    judge_url: str  # the trace of the judge call, when the task recorded it


@dataclass(frozen=True, slots=True)
class _ItemRow:
    item: TaskRunItem
    url: str
    results: list[_ItemResult]


def _item_rows(run: TaskRun, items: list[TaskRunItem]) -> list[_ItemRow]:
    """Each item with links to its page (a result highlighted) and its judge calls' traces."""
    project = run.project.name if run.project else ""
    targets = [(i.target_kind, i.target_key) for i in items]
    plain = _target_urls(project, targets)
    judge_project = judge_project_name(project)
    rows = []
    for item in items:
        target = (item.target_kind, item.target_key)
        url = plain.get(target, "")
        results = []
        for entry in item.results:
            judge_trace = entry.get("judge_trace_id") or ""
            results.append(
                _ItemResult(
                    entry=entry,
                    url=f"{url}?{urlencode({'result': entry.get('evaluator', '')})}" if url else "",
                    judge_url=reverse(
                        "detail:trace",
                        kwargs={
                            "project": entry.get("judge_project") or judge_project,
                            "trace_id": judge_trace,
                        },
                    )
                    if judge_trace
                    else "",
                )
            )
        rows.append(_ItemRow(item=item, url=url, results=results))
    return rows


def _items_context(request: HttpRequest, run: TaskRun) -> dict[str, Any]:
    """The run's items: a keyset page (``after``) of one outcome (``outcome``)."""
    form = RunItemsForm(request.GET)
    outcome, after = form.outcome_after()
    page = run_items(run=run, outcome=outcome, after=after)
    counts = run_item_counts(run)
    return {
        "items_outcome": outcome,
        "items_after": after,
        "item_rows": _item_rows(run, page.items),
        "items_next": page.next_after,
        "item_counts": counts,
        "outcomes": [(value, label, counts[value]) for value, label in ItemOutcome.choices],
        "traces_url": run_traces_url(run),
    }


def _run_name(run: TaskRun) -> str:
    if run.task is not None:
        return run.task.name
    names = [e.get("name", "") for e in run.config.get("evaluators", [])]
    return ", ".join(n for n in names if n) or "manual run"


@login_required
@require_GET
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    """A run: status, window, timing, counts, progress, cost, error and its log. htmx polls
    the ``live`` partial every 2 s while the run is queued or running."""
    run = _run_or_404(run_id)
    if htmx_partial(request) and request.htmx.target == "run-items":  # type: ignore[attr-defined]
        return render(
            request, f"{RUN_TEMPLATE}#items", {"run": run, **_items_context(request, run)}
        )
    logs = Paginator(run_logs(run=run), LOGS_PER_PAGE).get_page(request.GET.get("page"))
    ctx = {
        "run": run,
        "run_name": _run_name(run),
        "granularity": run.config.get("granularity", Granularity.SPAN),
        "progress": run_progress(run),
        "duration": _duration(run),
        "logs": logs,
        "log_lines": _log_lines(run, list(logs.object_list)),
        "traces_url": run_traces_url(run),
        "evaluator_names": [e.get("name", "") for e in run.config.get("evaluators", [])],
    }
    if htmx_partial(request):
        return render(request, f"{RUN_TEMPLATE}#live", ctx)
    return render(request, RUN_TEMPLATE, {**ctx, **_items_context(request, run)})


@login_required
@require_POST
def run_cancel_view(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(run_id)
    try:
        run_cancel(run=run, user=request.user)
    except RunRejected as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled run #{run.pk}; what it evaluated stays.")
    return redirect("tasks:run", run_id=run.pk)


# --- "Evaluate with…" in the trace browser ----------------------------------------------------


def _project_or_404(name: str, tab: str) -> Project:
    if tab not in TAB_GRANULARITY:
        raise Http404("no such tab")
    return get_object_or_404(Project, name=name)


@login_required
@require_GET
def evaluate_options(request: HttpRequest, project: str, tab: str) -> HttpResponse:
    """The bulk bar's "Evaluate with" choices: the evaluators and the project's tasks."""
    project_row = _project_or_404(project, tab)
    ctx = {
        "project": project_row,
        "tab": tab,
        "evaluators": evaluator_list(),
        "project_tasks": task_list(project=project_row),
    }
    return render(request, f"{BULK_TEMPLATE}#options", ctx)


def _evaluate_with(choice: str, project: Project) -> tuple[Task | None, Evaluator | None]:
    """``task:<id>`` (a task of ``project``) or ``evaluator:<id>``; (None, None) if neither."""
    kind, _, ident = choice.partition(":")
    if not ident.isdigit():
        return None, None
    if kind == "task":
        task = task_get(int(ident))
        return (task, None) if task is not None and task.project_id == project.pk else (None, None)
    if kind == "evaluator":
        return None, evaluator_list().filter(pk=int(ident)).first()
    return None, None


@login_required
@require_POST
def evaluate_selected(request: HttpRequest, project: str, tab: str) -> HttpResponse:
    """A manual run over the rows selected in the trace browser, then its log page."""
    project_row = _project_or_404(project, tab)
    back = next_or(request, reverse(f"tracing:{tab}", kwargs={"project": project_row.name}))
    task, evaluator = _evaluate_with(request.POST.get("evaluate_with", ""), project_row)
    if task is None and evaluator is None:
        messages.error(request, "Choose an evaluator or a task to evaluate with.")
        return redirect(back)
    try:
        run = run_manual_create(
            project=project_row,
            granularity=TAB_GRANULARITY[tab],
            keys=request.POST.getlist("selected"),
            task=task,
            evaluator=evaluator,
            user=request.user,
        )
    except RunRejected as exc:
        messages.error(request, f"Could not evaluate: {exc.message}")
        return redirect(back)
    messages.success(
        request,
        f"Run #{run.pk} is queued: {run.sampled} {tab} to evaluate.",
        extra_tags=RUN_QUEUED_TAG,
    )
    return redirect("tasks:run", run_id=run.pk)
