"""The budget warning: once a budget's spend crosses its warning threshold in a period, one
message goes through the budget's notification channels — those of the monitors
(``evalhub.monitors``, which registers its sender here in its ``AppConfig.ready``; budgets sit
below monitors and do not import them). Without a sender, or without channels, the budget
page shows the warning all the same."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol

from django.db import transaction
from django.utils import timezone

from evalhub.budgets.models import Budget, BudgetUnit, BudgetUsage

logger = logging.getLogger(__name__)


class Sender(Protocol):
    def __call__(self, *, channels: Sequence[Any], payload: dict[str, Any]) -> list[int]:
        """Queue ``payload`` to each of ``channels``; the ids of what was queued."""


_SENDERS: list[Sender] = []
_WARNED: set[tuple[int, Any, date]] = set()  # marked by this process: not asked again


def sender_register(sender: Sender) -> None:
    if sender not in _SENDERS:
        _SENDERS.append(sender)


def warning_payload(budget: Budget, *, spent: float, start: date) -> dict[str, Any]:
    dollars = budget.unit == BudgetUnit.USD
    amount = (
        f"${spent:.4g} of ${budget.limit:g}"
        if dollars
        else f"{spent:.0f} of {budget.limit:g} tokens"
    )
    percent = spent / budget.limit * 100
    period = "today" if budget.period == "day" else "this month"
    return {
        "type": "budget_warning",
        "text": (
            f"EvalHub budget warning: {budget.target} has spent {amount} {period} "
            f"({percent:.0f} %, warning at {budget.warn_percent} %)."
        ),
        "budget_id": budget.pk,
        "scope": budget.scope,
        "target": budget.target,
        "period": budget.period,
        "period_start": start.isoformat(),
        "unit": budget.unit,
        "limit": budget.limit,
        "spent": spent,
        "warn_percent": budget.warn_percent,
    }


def budget_warning_check(*, budget: Budget, start: date) -> bool:
    """After spend was added to ``budget`` in the period starting ``start``: when it has just
    crossed the warning threshold — once a period, whatever the number of workers (a
    conditional UPDATE marks it) — send the warning. True when this call sent it."""
    if (budget.pk, budget.created_at, start) in _WARNED:
        return False
    threshold = budget.limit * budget.warn_percent / 100
    now = timezone.now()
    with transaction.atomic():
        marked = BudgetUsage.objects.filter(
            budget=budget, period_start=start, warned_at__isnull=True, spent__gte=threshold
        ).update(warned_at=now)
        if not marked:
            return False
        _WARNED.add((budget.pk, budget.created_at, start))
        spent = (
            BudgetUsage.objects.filter(budget=budget, period_start=start)
            .values_list("spent", flat=True)
            .first()
        ) or 0.0
        channels = list(budget.channels.filter(enabled=True))
        queued: list[int] = []
        if channels:
            payload = warning_payload(budget, spent=spent, start=start)
            for sender in _SENDERS:
                queued += sender(channels=channels, payload=payload)
        BudgetUsage.objects.filter(budget=budget, period_start=start).update(
            warned_channels=len(queued)
        )
    logger.warning("budget %s: warning threshold crossed (%d messages)", budget.pk, len(queued))
    return True


def channel_choices() -> Any:
    """The notification channels a budget can warn through (a queryset of the monitors'
    channel model, reached through the relation: no import of the monitors app)."""
    return Budget._meta.get_field("channels").related_model._default_manager.order_by("name")


__all__ = ["budget_warning_check", "channel_choices", "sender_register", "warning_payload"]
