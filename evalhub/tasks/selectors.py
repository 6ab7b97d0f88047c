"""What the Tasks pages and the tasks API read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Prefetch, QuerySet
from django.utils import timezone

from evalhub.tasks.models import (
    OUTCOME_STATUS,
    ItemOutcome,
    Task,
    TaskEvaluator,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
)
from evalhub.tasks.planning import Window, candidates_query
from tracing.models import Project

LAST_RUNS = 5


def task_list(*, project: Project | None = None, search: str = "") -> QuerySet[Task]:
    """Tasks newest first, with their project and evaluators loaded."""
    query = Task.objects.select_related("project", "provider").prefetch_related(
        Prefetch(
            "task_evaluators",
            queryset=TaskEvaluator.objects.select_related("evaluator").order_by("position", "id"),
        )
    )
    if project is not None:
        query = query.filter(project=project)
    if search.strip():
        query = query.filter(name__icontains=search.strip())
    return query.order_by("-created_at", "-id")


def task_get(task_id: int) -> Task | None:
    return task_list().filter(pk=task_id).first()


def runs_recent(*, tasks: list[Task], count: int = LAST_RUNS) -> dict[int, list[TaskRun]]:
    """Each task's last ``count`` runs, newest first (one query per task; pages show few)."""
    return {
        task.pk: list(TaskRun.objects.filter(task=task).order_by("-created_at", "-id")[:count])
        for task in tasks
    }


def run_list(
    *, task: Task | None = None, project: Project | None = None, status: str = ""
) -> QuerySet[TaskRun]:
    query = TaskRun.objects.select_related("task", "project")
    if task is not None:
        query = query.filter(task=task)
    if project is not None:
        query = query.filter(project=project)
    if status:
        query = query.filter(status=status)
    return query.order_by("-created_at", "-id")


def run_get(run_id: int) -> TaskRun | None:
    return TaskRun.objects.select_related("task", "project").filter(pk=run_id).first()


def run_logs(*, run: TaskRun, level: str = "", limit: int | None = None) -> QuerySet[TaskRunLog]:
    query = run.logs.order_by("id")
    if level:
        query = query.filter(level=level)
    return query[:limit] if limit is not None else query


RUN_ITEMS_PAGE = 50
MAX_RUN_ITEMS_PAGE = 1000


@dataclass(frozen=True, slots=True)
class RunItemsPage:
    """A page of a run's items in the order they were listed; ``next_after`` is the id to pass
    as ``after`` for the next page (None on the last)."""

    items: list[TaskRunItem]
    next_after: int | None


def run_items(
    *, run: TaskRun, outcome: str = "", after: int | None = None, limit: int | None = None
) -> RunItemsPage:
    """The run's items after item ``after`` (keyset pages: items added meanwhile neither shift
    nor repeat rows), of one ``outcome`` (succeeded, errored, skipped, pending) or all."""
    limit = limit or RUN_ITEMS_PAGE
    query = run.items.order_by("id")
    if outcome:
        query = query.filter(status=OUTCOME_STATUS[ItemOutcome(outcome)])
    if after is not None:
        query = query.filter(id__gt=after)
    rows = list(query[: limit + 1])
    if len(rows) > limit:
        return RunItemsPage(items=rows[:limit], next_after=rows[limit - 1].pk)
    return RunItemsPage(items=rows, next_after=None)


def run_item_counts(run: TaskRun) -> dict[str, int]:
    """How many of the run's items have each outcome (and ``all``)."""
    by_status = dict(
        run.items.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    counts = {o.value: by_status.get(status, 0) for o, status in OUTCOME_STATUS.items()}
    return {"all": sum(counts.values()), **counts}


@dataclass(frozen=True, slots=True)
class MatchCount:
    count: int
    since: datetime
    granularity: str


def matching_count(
    *, project: Project, granularity: str, filter_text: str, hours: int = 24
) -> MatchCount:
    """How many spans / traces / sessions that started in the last ``hours`` match the filter
    (raises ``FilterError`` for a bad filter)."""
    since = timezone.now() - timedelta(hours=hours)
    query = candidates_query(
        project_id=project.pk,
        granularity=granularity,
        filter_text=filter_text,
        window=Window(field="start", start=since, end=None),
    )
    return MatchCount(count=query.count(), since=since, granularity=granularity)


def run_progress(run: TaskRun) -> dict[str, Any]:
    """Counts as the pages and the API show them."""
    total = run.sampled
    done = run.done
    return {
        "matched": run.matched,
        "sampled": run.sampled,
        "evaluated": run.evaluated,
        "succeeded": run.succeeded,
        "errored": run.errored,
        "skipped": run.skipped,
        "total": total,
        "done": min(done, total) if total else done,
        "percent": round(100.0 * min(done, total) / total, 1) if total else 0.0,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost": run.cost,
    }
