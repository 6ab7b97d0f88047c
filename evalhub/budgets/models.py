"""A budget caps what judge calls may spend in a period; its usage rows hold what they spent,
from each call's recorded tokens and cost, one row per period."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class BudgetScope(models.TextChoices):
    GLOBAL = "global", "Everything"
    TASK = "task", "A task"
    EVALUATOR = "evaluator", "An evaluator"
    PROVIDER = "provider", "An AI provider"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Per day (UTC)"
    MONTH = "month", "Per month (UTC)"


class BudgetUnit(models.TextChoices):
    USD = "usd", "Dollars"
    TOKENS = "tokens", "Tokens"


class Budget(models.Model):
    scope = models.CharField(max_length=10, choices=BudgetScope.choices)
    task = models.ForeignKey(
        "tasks.Task", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    evaluator = models.ForeignKey(
        "evaluators.Evaluator", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    provider = models.ForeignKey(
        "providers.Provider", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    period = models.CharField(max_length=8, choices=BudgetPeriod.choices)
    unit = models.CharField(max_length=8, choices=BudgetUnit.choices)
    limit = models.FloatField(help_text="Dollars or tokens per period.")
    warn_percent = models.PositiveSmallIntegerField(
        default=80, help_text="Warn when this share of the limit is spent."
    )
    # Where the warning goes (the monitors' notification channels); none: the page shows it.
    channels = models.ManyToManyField("monitors.NotificationChannel", blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["scope", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(limit__gt=0), name="budget_limit_positive"),
            models.CheckConstraint(
                condition=(
                    Q(
                        scope="global",
                        task__isnull=True,
                        evaluator__isnull=True,
                        provider__isnull=True,
                    )
                    | Q(
                        scope="task",
                        task__isnull=False,
                        evaluator__isnull=True,
                        provider__isnull=True,
                    )
                    | Q(
                        scope="evaluator",
                        task__isnull=True,
                        evaluator__isnull=False,
                        provider__isnull=True,
                    )
                    | Q(
                        scope="provider",
                        task__isnull=True,
                        evaluator__isnull=True,
                        provider__isnull=False,
                    )
                ),
                name="budget_one_target",
            ),
            *[
                models.UniqueConstraint(
                    fields=[*target, "period", "unit"],
                    condition=Q(scope=scope),
                    name=f"budget_unique_{scope}",
                )
                for scope, target in (
                    ("global", []),
                    ("task", ["task"]),
                    ("evaluator", ["evaluator"]),
                    ("provider", ["provider"]),
                )
            ],
        ]

    def __str__(self) -> str:
        return f"{self.target} {self.limit:g} {self.unit} {self.period}"

    @property
    def target(self) -> str:
        if self.scope == BudgetScope.TASK and self.task is not None:
            return f"task {self.task.name}"
        if self.scope == BudgetScope.EVALUATOR and self.evaluator is not None:
            return f"evaluator {self.evaluator.name}"
        if self.scope == BudgetScope.PROVIDER and self.provider is not None:
            return f"provider {self.provider.name}"
        return "all judge calls"


class BudgetUsage(models.Model):
    """What the judge calls a budget covers spent in one period (from their recorded tokens
    and cost), added to atomically as each call finishes."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="usage")
    period_start = models.DateField()
    spent = models.FloatField(default=0.0)
    calls = models.PositiveIntegerField(default=0)
    # When the warning threshold was crossed in this period (set once: one warning a period).
    warned_at = models.DateTimeField(null=True, blank=True)
    warned_channels = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_start"], name="budget_usage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.budget_id} {self.period_start}: {self.spent}"
