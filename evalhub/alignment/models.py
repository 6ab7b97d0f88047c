"""An alignment run: a draft evaluator definition evaluated on the items people labelled, each
item keeping the people's label, the current version's stored result and the draft's."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AlignmentStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class AlignmentRun(models.Model):
    """``draft`` is the definition tried (validated, ``evalhub.evaluators.definition``); ``base_version``
    the version it is compared with (the newest when the run was made). Status lives here."""

    evaluator = models.ForeignKey(
        "evaluators.Evaluator", on_delete=models.CASCADE, related_name="alignment_runs"
    )
    project = models.ForeignKey(
        "tracing.Project", on_delete=models.CASCADE, related_name="alignment_runs"
    )
    base_version = models.ForeignKey(
        "evaluators.EvaluatorVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    draft = models.JSONField()
    status = models.CharField(
        max_length=10, choices=AlignmentStatus.choices, default=AlignmentStatus.QUEUED
    )
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0, help_text="People disagree: no truth.")
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    error = models.TextField(blank=True, default="")
    saved_version = models.ForeignKey(
        "evaluators.EvaluatorVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["evaluator", "-created_at"], name="alignment_run_newest")]

    def __str__(self) -> str:
        return f"alignment #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in (AlignmentStatus.QUEUED, AlignmentStatus.RUNNING)


class AlignmentItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    ERROR = "error", "Error"


class AlignmentItem(models.Model):
    """A labelled item: the people's label (their majority), the current version's stored
    label (``current_version`` produced it; empty: it has none) and the draft's."""

    run = models.ForeignKey(AlignmentRun, on_delete=models.CASCADE, related_name="items")
    target_kind = models.CharField(max_length=8)  # SPAN / TRACE / SESSION
    target_key = models.CharField(max_length=255)
    # No database constraint: the span table is partitioned on PostgreSQL (tracing.partitions).
    span = models.ForeignKey(
        "tracing.Span", null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    human_label = models.CharField(max_length=255)
    current_label = models.CharField(max_length=255, null=True, blank=True)
    current_version = models.PositiveIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=8, choices=AlignmentItemStatus.choices, default=AlignmentItemStatus.PENDING
    )
    draft_label = models.CharField(max_length=255, null=True, blank=True)
    draft_score = models.FloatField(null=True, blank=True)
    draft_explanation = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "target_kind", "target_key"], name="alignment_item_unique"
            )
        ]
        indexes = [models.Index(fields=["run", "status", "id"], name="alignment_item_pending")]

    def __str__(self) -> str:
        return f"{self.target_kind} {self.target_key}"
