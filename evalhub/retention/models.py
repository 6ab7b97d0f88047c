"""How long a project's traces are kept, and what each retention pass removed."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class RetentionPolicy(models.Model):
    """A project's own limit: traces older than ``days`` are deleted; 0 keeps them forever
    (whatever ``EVALHUB_RETENTION_DAYS`` says)."""

    project = models.OneToOneField(
        "tracing.Project", on_delete=models.CASCADE, related_name="retention_policy"
    )
    days = models.PositiveIntegerField(help_text="0: keep forever.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "retention policies"

    def __str__(self) -> str:
        return f"{self.project_id}: {self.days or 'forever'} days"


class RetentionSweep(models.Model):
    """One retention pass over a project: the traces that ended before ``cutoff`` and
    everything that hung on them. Counts grow batch by batch (an interrupted pass shows what it
    did; the next one deletes the rest). Dataset examples are copies and are kept: they are
    counted in ``dataset_examples_kept``."""

    project = models.ForeignKey("tracing.Project", on_delete=models.CASCADE, related_name="+")
    days = models.PositiveIntegerField()
    cutoff = models.DateTimeField()
    traces = models.PositiveIntegerField(default=0)
    spans = models.PositiveBigIntegerField(default=0)
    sessions = models.PositiveIntegerField(default=0)
    annotations = models.PositiveBigIntegerField(default=0)
    queue_items = models.PositiveIntegerField(default=0)
    dataset_examples_kept = models.PositiveIntegerField(default=0)
    # The span partitions dropped whole (PostgreSQL), comma-separated; their spans are counted
    # in ``spans`` (tracing.partitions, evalhub.retention.partitions).
    partitions = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["project", "-started_at"], name="retention_sweep_newest")]

    def __str__(self) -> str:
        return f"retention of project {self.project_id} before {self.cutoff:%Y-%m-%d}"
