"""A shadow version: a candidate definition of one of a task's evaluators, evaluated by the
task's runs beside the active version on the same items. Its results are ``ShadowResult`` rows,
never annotations — so no filter, badge, trend, agreement, export, Phoenix-compatible read or
monitor (which all read annotations) can show them as the evaluator's."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ShadowStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PROMOTED = "promoted", "Promoted"
    DISCARDED = "discarded", "Discarded"


class ShadowVersion(models.Model):
    """``candidate`` is the validated definition tried (``evalhub.evaluators.definition``);
    ``base_version`` the active version when the shadow started; ``promoted_version`` the
    version promotion made of the candidate."""

    task = models.ForeignKey("tasks.Task", on_delete=models.CASCADE, related_name="shadows")
    evaluator = models.ForeignKey(
        "evaluators.Evaluator", on_delete=models.CASCADE, related_name="shadows"
    )
    candidate = models.JSONField()
    base_version = models.ForeignKey(
        "evaluators.EvaluatorVersion", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    alignment_run = models.ForeignKey(
        "alignment.AlignmentRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="shadows",
    )
    status = models.CharField(
        max_length=10, choices=ShadowStatus.choices, default=ShadowStatus.RUNNING
    )
    promoted_version = models.ForeignKey(
        "evaluators.EvaluatorVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["task", "evaluator"],
                condition=models.Q(status="running"),
                name="shadow_one_running",
            )
        ]

    def __str__(self) -> str:
        return f"shadow #{self.pk} of {self.evaluator_id} on task {self.task_id} ({self.status})"

    @property
    def is_running(self) -> bool:
        return self.status == ShadowStatus.RUNNING


class ShadowResult(models.Model):
    """The candidate's result on one item (unique per shadow: a re-evaluated item updates it).
    ``when`` is the item's start time, as Score trends place results; ``trace_id`` and
    ``span_id`` link to the span that stood for the item."""

    shadow = models.ForeignKey(ShadowVersion, on_delete=models.CASCADE, related_name="results")
    run = models.ForeignKey(
        "tasks.TaskRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target_kind = models.CharField(max_length=8)  # SPAN / TRACE / SESSION
    target_key = models.CharField(max_length=255)
    target_pk = models.BigIntegerField()  # the span's / trace's / session's row
    trace_id = models.CharField(max_length=64, blank=True, default="")
    span_id = models.CharField(max_length=64, blank=True, default="")
    when = models.DateTimeField(null=True, blank=True)
    label = models.CharField(max_length=255, null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    explanation = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["shadow", "when", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shadow", "target_kind", "target_key"], name="shadow_result_unique"
            )
        ]
        indexes = [models.Index(fields=["shadow", "when"], name="shadow_result_when")]

    def __str__(self) -> str:
        return f"{self.target_kind} {self.target_key}: {self.label}"
