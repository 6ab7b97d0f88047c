"""What the task engine asks before each judge call (``BudgetGuard.blocked``) and tells after
it (``BudgetGuard.record``).

The guarantee: a call starts only while every budget it falls under has spent less than its
limit, read from the database just before the call; each finished call adds its recorded
tokens or cost at once, atomically (``UPDATE … SET spent = spent + x``), whatever worker made
it. So once a budget is reached no call starts, and it is overrun by at most the calls that
were already in flight when it was reached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from evalhub.budgets.models import Budget, BudgetPeriod, BudgetScope, BudgetUnit, BudgetUsage
from evalhub.budgets.notify import budget_warning_check


def period_start(period: str, moment: datetime | None = None) -> date:
    """The first day of the budget period holding ``moment`` (UTC)."""
    today = (moment or timezone.now()).astimezone(UTC).date()
    return today.replace(day=1) if period == BudgetPeriod.MONTH else today


def amount_of(budget: Budget, *, tokens: int | None, cost: float | None) -> float:
    """What a call spent in the budget's unit (an unpriced call costs no dollars)."""
    return float(tokens or 0) if budget.unit == BudgetUnit.TOKENS else float(cost or 0.0)


def _covers(
    budget: Budget, *, task_id: int | None, evaluator_id: int, provider_id: int | None
) -> bool:
    if budget.scope == BudgetScope.GLOBAL:
        return True
    if budget.scope == BudgetScope.TASK:
        return task_id is not None and budget.task_id == task_id
    if budget.scope == BudgetScope.EVALUATOR:
        return budget.evaluator_id == evaluator_id
    return provider_id is not None and budget.provider_id == provider_id


@dataclass
class BudgetGuard:
    budgets: list[Budget]
    task_id: int | None

    def _relevant(self, evaluator_id: int, provider_id: int | None) -> list[Budget]:
        return [
            b
            for b in self.budgets
            if _covers(b, task_id=self.task_id, evaluator_id=evaluator_id, provider_id=provider_id)
        ]

    def applies(self, *, evaluator_id: int, provider_id: int | None) -> bool:
        """Whether any budget covers calls of this evaluator on this provider (else
        ``blocked`` never stops them)."""
        return bool(self._relevant(evaluator_id, provider_id))

    def blocked(self, *, evaluator_id: int, provider_id: int | None) -> str | None:
        """Why a call of this evaluator on this provider may not start (a budget it falls
        under is spent), or None. One query when budgets apply, none otherwise."""
        relevant = self._relevant(evaluator_id, provider_id)
        if not relevant:
            return None
        now = timezone.now()
        keys = Q()
        for budget in relevant:
            keys |= Q(budget=budget, period_start=period_start(budget.period, now))
        spent = dict(BudgetUsage.objects.filter(keys).values_list("budget_id", "spent"))
        for budget in relevant:
            used = spent.get(budget.pk, 0.0)
            if used >= budget.limit:
                return budget_reached_reason(budget, used)
        return None

    def record(
        self, *, evaluator_id: int, provider_id: int | None, tokens: int | None, cost: float | None
    ) -> None:
        """Add a finished call's recorded tokens / cost to every budget it falls under."""
        for budget in self._relevant(evaluator_id, provider_id):
            usage_add(budget=budget, amount=amount_of(budget, tokens=tokens, cost=cost))


def budget_reached_reason(budget: Budget, used: float) -> str:
    unit = "$" if budget.unit == BudgetUnit.USD else ""
    tokens = " tokens" if budget.unit == BudgetUnit.TOKENS else ""
    return (
        f"the {budget.get_period_display().split(' (')[0].lower()} budget of {budget.target} "
        f"is reached: {unit}{used:g}{tokens} of {unit}{budget.limit:g}{tokens}"
    )


def usage_add(*, budget: Budget, amount: float, moment: datetime | None = None) -> None:
    """Add ``amount`` to the budget's usage of the current period, atomically."""
    start = period_start(budget.period, moment)
    updated = BudgetUsage.objects.filter(budget=budget, period_start=start).update(
        spent=F("spent") + amount, calls=F("calls") + 1
    )
    if not updated:
        try:
            with transaction.atomic():
                BudgetUsage.objects.create(budget=budget, period_start=start, spent=amount, calls=1)
        except IntegrityError:  # another worker created the row meanwhile
            BudgetUsage.objects.filter(budget=budget, period_start=start).update(
                spent=F("spent") + amount, calls=F("calls") + 1
            )
    if amount > 0:
        budget_warning_check(budget=budget, start=start)


def budget_guard(
    *, task_id: int | None, evaluator_ids: Iterable[int], provider_ids: Iterable[int]
) -> BudgetGuard:
    """The guard of a run: the budgets that may apply to its calls, read once."""
    budgets = list(
        Budget.objects.filter(
            Q(scope=BudgetScope.GLOBAL)
            | Q(scope=BudgetScope.TASK, task_id=task_id)
            | Q(scope=BudgetScope.EVALUATOR, evaluator_id__in=list(evaluator_ids))
            | Q(scope=BudgetScope.PROVIDER, provider_id__in=list(provider_ids))
        ).select_related("task", "evaluator", "provider")
    )
    return BudgetGuard(budgets=budgets, task_id=task_id)


# --- the task engine's two hooks -----------------------------------------------------------


def run_budget_guard(*, task_id: int | None, evaluators: Iterable[Any]) -> BudgetGuard:
    """The guard of a run whose judges are ``evaluators`` (each with ``version`` and
    ``provider``, as the engine holds them)."""
    chosen = list(evaluators)
    return budget_guard(
        task_id=task_id,
        evaluator_ids=[e.version.evaluator_id for e in chosen],
        provider_ids=[e.provider.pk for e in chosen if e.provider is not None],
    )


def budget_check(guard: BudgetGuard, evaluator: Any) -> str | None:
    """Before a judge call: why it may not start (a budget is spent), or None."""
    if evaluator.version.evaluator.kind != "LLM":
        return None  # code evaluators spend nothing
    provider = evaluator.provider.pk if evaluator.provider is not None else None
    return guard.blocked(evaluator_id=evaluator.version.evaluator_id, provider_id=provider)


def budget_spend(guard: BudgetGuard, evaluator: Any, result: Any) -> None:
    """After a judge call: add what it spent (its recorded tokens and cost)."""
    if result.kind != "LLM" or result.started_at is None:
        return  # no call was made
    provider = evaluator.provider.pk if evaluator.provider is not None else None
    guard.record(
        evaluator_id=evaluator.version.evaluator_id,
        provider_id=provider,
        tokens=result.total_tokens
        if result.total_tokens is not None
        else (result.prompt_tokens or 0) + (result.completion_tokens or 0),
        cost=result.cost,
    )


__all__ = [
    "BudgetGuard",
    "amount_of",
    "budget_check",
    "budget_guard",
    "budget_reached_reason",
    "budget_spend",
    "period_start",
    "run_budget_guard",
    "usage_add",
]


class RunBudgets:
    """The budgets of one run as the task engine's call guard (``evalhub.tasks.hooks``)."""

    def __init__(self, *, task_id: int | None, evaluators: Iterable[Any]) -> None:
        self.guard = run_budget_guard(task_id=task_id, evaluators=evaluators)

    def check(self, evaluator: Any) -> str | None:
        return budget_check(self.guard, evaluator)

    def spend(self, evaluator: Any, result: Any) -> None:
        budget_spend(self.guard, evaluator, result)
