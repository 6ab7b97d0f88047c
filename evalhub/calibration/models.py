"""Calibration sampling: a task sends a share of its judged items into a labeling queue, so the
judge keeps being checked against people on fresh production data."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class CalibrationSampling(models.Model):
    """``rate_percent`` of the task's judged items, per label of ``evaluator``'s results (the
    task's first LLM judge when empty), go into ``queue``. ``strata``: label → [items seen,
    items sent], the counts the stratified choice keeps."""

    task = models.OneToOneField(
        "tasks.Task", on_delete=models.CASCADE, related_name="calibration_sampling"
    )
    queue = models.ForeignKey("queues.LabelingQueue", on_delete=models.CASCADE, related_name="+")
    evaluator = models.ForeignKey(
        "evaluators.Evaluator", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    rate_percent = models.FloatField()
    # By the judge's label (each label its share, rare ones included), or one stratum for all.
    stratify = models.BooleanField(default=True)
    strata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(rate_percent__gt=0, rate_percent__lte=100),
                name="calibration_sampling_rate_range",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.rate_percent} % → {self.queue_id}"


class DisagreementRouting(models.Model):
    """As labels arrive on the task's items (people's or the judge's, named as ``evaluator``'s
    results — the task's first LLM judge when empty), the items where a judge and a person
    (``judge``) or two people (``people``) disagree go into ``queue`` for review."""

    task = models.OneToOneField(
        "tasks.Task", on_delete=models.CASCADE, related_name="disagreement_routing"
    )
    queue = models.ForeignKey("queues.LabelingQueue", on_delete=models.CASCADE, related_name="+")
    evaluator = models.ForeignKey(
        "evaluators.Evaluator", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    judge = models.BooleanField(default=True)
    people = models.BooleanField(default=False)
    routed = models.PositiveIntegerField(default=0)  # items it added to the queue so far
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(judge=True) | Q(people=True), name="disagreement_routing_some_kind"
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_id}: disagreements → {self.queue_id}"
