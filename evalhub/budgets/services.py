"""Creating and removing budgets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

from evalhub.budgets.models import Budget, BudgetPeriod, BudgetScope, BudgetUnit
from evalhub.evaluators.models import Evaluator
from evalhub.providers.models import Provider
from evalhub.tasks.models import Task


class BudgetInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def _choice(field: str, value: Any, choices: type[Any]) -> str:
    if value not in choices.values:
        raise BudgetInvalid(field, f"must be one of {', '.join(choices.values)}")
    return str(value)


@transaction.atomic
def budget_create(
    *,
    scope: str,
    period: str,
    unit: str,
    limit: Any,
    warn_percent: Any = 80,
    task: Task | None = None,
    evaluator: Evaluator | None = None,
    provider: Provider | None = None,
    channels: Sequence[Any] = (),
) -> Budget:
    """A budget; raises ``BudgetInvalid`` naming the field (nothing written)."""
    scope = _choice("scope", scope, BudgetScope)
    period = _choice("period", period, BudgetPeriod)
    unit = _choice("unit", unit, BudgetUnit)
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not limit > 0:
        raise BudgetInvalid("limit", "must be a number above 0")
    if limit > 1e15:
        raise BudgetInvalid("limit", "is too large")
    if (
        isinstance(warn_percent, bool)
        or not isinstance(warn_percent, int)
        or not 1 <= warn_percent <= 100
    ):
        raise BudgetInvalid("warn_percent", "must be a whole number from 1 to 100")
    targets = {"task": task, "evaluator": evaluator, "provider": provider}
    needed = {
        BudgetScope.TASK: "task",
        BudgetScope.EVALUATOR: "evaluator",
        BudgetScope.PROVIDER: "provider",
    }.get(BudgetScope(scope))
    for name, value in targets.items():
        if name == needed and value is None:
            raise BudgetInvalid(name, f"a {scope} budget needs its {name}")
        if name != needed and value is not None:
            raise BudgetInvalid(name, f"a {scope} budget has no {name}")
    try:
        with transaction.atomic():
            budget = Budget.objects.create(
                scope=scope,
                period=period,
                unit=unit,
                limit=float(limit),
                warn_percent=warn_percent,
                **targets,
            )
    except IntegrityError:
        raise BudgetInvalid("scope", "such a budget exists: change or delete it") from None
    if channels:
        budget.channels.set(channels)
    return budget


def budget_delete(*, budget: Budget) -> None:
    budget.delete()
