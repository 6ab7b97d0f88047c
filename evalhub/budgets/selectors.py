"""Budgets with what they spent in the current period."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from evalhub.budgets.guard import period_start
from evalhub.budgets.models import Budget, BudgetUsage


@dataclass(frozen=True, slots=True)
class BudgetState:
    budget: Budget
    period_start: date
    spent: float
    calls: int
    warned_at: datetime | None = None  # the warning of this period (once), else None
    warned_channels: int = 0  # messages it sent (0: shown on this page only)

    @property
    def share(self) -> float:
        return self.spent / self.budget.limit

    @property
    def percent(self) -> float:
        return round(self.share * 100, 1)

    @property
    def reached(self) -> bool:
        return self.spent >= self.budget.limit

    @property
    def warning(self) -> bool:
        """The warning threshold is crossed (shown on the page; sent once a period through
        the budget's channels)."""
        return not self.reached and self.percent >= self.budget.warn_percent

    @property
    def channel_names(self) -> list[str]:
        return [channel.name for channel in self.budget.channels.all()]


def budget_list() -> QuerySet[Budget]:
    """Every budget (by scope, then as created) with what ``budget_states`` reads of it."""
    return Budget.objects.select_related("task", "evaluator", "provider").prefetch_related(
        "channels"
    )


def budget_states(budgets: Sequence[Budget] | None = None) -> list[BudgetState]:
    """Every budget (or ``budgets``, rows of ``budget_list``) with its current period's
    spend (three queries)."""
    budgets = list(budget_list()) if budgets is None else budgets
    if not budgets:
        return []
    now = timezone.now()
    starts = {b.pk: period_start(b.period, now) for b in budgets}
    keys = Q()
    for budget in budgets:
        keys |= Q(budget=budget, period_start=starts[budget.pk])
    usage = {u.budget_id: u for u in BudgetUsage.objects.filter(keys)}
    return [
        BudgetState(
            budget=b,
            period_start=starts[b.pk],
            spent=usage[b.pk].spent if b.pk in usage else 0.0,
            calls=usage[b.pk].calls if b.pk in usage else 0,
            warned_at=usage[b.pk].warned_at if b.pk in usage else None,
            warned_channels=usage[b.pk].warned_channels if b.pk in usage else 0,
        )
        for b in budgets
    ]
