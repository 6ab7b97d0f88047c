"""Budgets in the task engine: a backfill stops at its budget and the task pauses with the
reason; with several workers at once a budget is overrun by at most the calls in flight."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection

from annotations.models import Annotation
from evalhub.budgets.guard import period_start
from evalhub.budgets.models import BudgetUsage
from evalhub.budgets.services import BudgetInvalid, budget_create
from evalhub.tasks.backfill import run_backfill_create
from evalhub.tasks.engine import run_work
from evalhub.tasks.models import RunStatus, Task, TaskRun
from tests import factories
from tests.evalhub.tasks.factories import judge, make_task

pytestmark = pytest.mark.django_db(transaction=True)


def _traces(count: int, project: str = "default") -> None:
    for index in range(count):
        factories.trace(project=project, start=factories.BASE_TIME + timedelta(minutes=index))


def _spent(budget) -> float:  # type: ignore[no-untyped-def]
    usage = BudgetUsage.objects.filter(
        budget=budget, period_start=period_start(budget.period)
    ).first()
    return usage.spent if usage else 0.0


def _recorded_tokens() -> int:
    return sum(
        a.metadata.get("total_tokens", 0) for a in Annotation.objects.filter(annotator_kind="LLM")
    )


def test_a_backfill_stops_at_its_budget_and_the_task_pauses(provider, fake_openai, fast_retry):
    evaluator = judge("Correctness", provider_id=provider.pk)
    _traces(20)
    task = make_task(evaluator, filter="span_kind = 'LLM'", continuous=False)
    # Each call spends the same tokens on these identical spans: measure one.
    budget = budget_create(scope="task", task=task, period="day", unit="tokens", limit=1)
    run = run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1))
    assert run_work(run_id=run.pk, concurrency=1, retry=fast_retry) == "failed"
    per_call = _spent(budget)
    assert per_call > 0 and len(fake_openai.requests) == 1  # the one call in flight
    budget.limit = per_call * 5
    budget.save()
    task.refresh_from_db()
    task.status = "active"
    task.save()
    run = run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1))
    assert run_work(run_id=run.pk, concurrency=1, retry=fast_retry) == "failed"
    run.refresh_from_db()
    task.refresh_from_db()
    assert run.status == RunStatus.FAILED and "budget of task quality is reached" in run.error
    assert task.status == "paused" and "budget" in task.paused_reason
    assert _spent(budget) == pytest.approx(per_call * 5)  # one at a time: exactly at the limit
    assert len(fake_openai.requests) == 5
    assert _spent(budget) == _recorded_tokens()  # spend is what the results recorded


def test_concurrent_workers_overrun_a_global_budget_by_at_most_the_calls_in_flight(
    provider, fake_openai, fast_retry
):
    if connection.vendor == "sqlite":
        pytest.skip("several workers writing at once need PostgreSQL")
    provider.max_concurrency = 64
    provider.save()
    fake_openai.delay = 0.05
    evaluator = judge("Correctness", provider_id=provider.pk)
    runs = []
    for name in ("a", "b", "c", "d"):
        _traces(30, project=name)
        task = make_task(
            evaluator, project=name, name=name, filter="span_kind = 'LLM'", continuous=False
        )
        runs.append(run_backfill_create(task=task, start=factories.BASE_TIME - timedelta(days=1)))
    # A first call tells what one costs (identical spans: identical prompts).
    probe = budget_create(
        scope="evaluator", evaluator=evaluator, period="month", unit="tokens", limit=1e9
    )
    from evalhub.evaluators.running import evaluator_run
    from evalhub.evaluators.selectors import evaluator_version_latest

    per_call = evaluator_run(
        version=evaluator_version_latest(evaluator=evaluator),
        span=factories.trace(project="a")[2],
        retry=fast_retry,
    ).total_tokens
    probe.delete()
    fake_openai.reset()
    limit = per_call * 25
    budget = budget_create(scope="global", period="day", unit="tokens", limit=limit)
    concurrency = 4
    outcomes: list[str] = []

    def work(run_id: int) -> None:
        try:
            outcomes.append(run_work(run_id=run_id, concurrency=concurrency, retry=fast_retry))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(run.pk,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["failed"] * 4
    spent = _spent(budget)
    in_flight = concurrency * len(runs)  # the most calls that can be in flight at once
    assert limit <= spent <= limit + in_flight * per_call
    assert spent == _recorded_tokens() == len(fake_openai.requests) * per_call
    assert len(fake_openai.requests) < 4 * 30  # it stopped well before the end
    paused = Task.objects.filter(status="paused")
    assert paused.count() == 4 and all(
        "budget of all judge calls" in t.paused_reason for t in paused
    )
    assert not TaskRun.objects.filter(status__in=["queued", "running"]).exists()


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"scope": "galaxy"}, "scope"),
        ({"period": "year"}, "period"),
        ({"unit": "euros"}, "unit"),
        ({"limit": 0}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"warn_percent": 0}, "warn_percent"),
        ({"scope": "task"}, "task"),
    ],
)
def test_bad_budgets_name_the_field(arguments, field):
    base = {"scope": "global", "period": "day", "unit": "usd", "limit": 5}
    with pytest.raises(BudgetInvalid) as caught:
        budget_create(**(base | arguments))
    assert caught.value.field == field


def test_one_budget_per_target_period_and_unit():
    budget_create(scope="global", period="day", unit="usd", limit=5)
    with pytest.raises(BudgetInvalid, match="exists"):
        budget_create(scope="global", period="day", unit="usd", limit=9)
    budget_create(scope="global", period="month", unit="usd", limit=9)
