"""A run's page: progress, log and items, and the jump to the traces it evaluated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from evalhub.core.web import htmx_partial
from evalhub.identity.auth import request_user
from evalhub.tasks.forms import RunItemsForm
from evalhub.tasks.judge_tracing import judge_project_name
from evalhub.tasks.models import Granularity, ItemOutcome, TaskRun, TaskRunItem
from evalhub.tasks.runs import RunRejected, run_cancel
from evalhub.tasks.selectors import (
    run_item_counts,
    run_items,
    run_logs,
    run_progress,
)
from evalhub.tasks.views.common import (
    GRANULARITY_TAB,
    LOGS_PER_PAGE,
    RUN_TEMPLATE,
    _run_or_404,
)
from tracing.browser.filters import ALL_TIME
from tracing.store.selectors import spans_existing


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
    if htmx_partial(request) and request.htmx.target == "run-items":  # type: ignore[attr-defined]  # django-htmx sets request.htmx
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
        run_cancel(run=run, user=request_user(request))
    except RunRejected as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled run #{run.pk}; what it evaluated stays.")
    return redirect("tasks:run", run_id=run.pk)
