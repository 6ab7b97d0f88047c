"""Datasets of examples copied from spans."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

# --- datasets ---


class Dataset(models.Model):
    """A named collection of examples taken from spans, for offline experiments."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "annotations_dataset"  # the table predates the app

    def __str__(self) -> str:
        return self.name


class DatasetExample(models.Model):
    """One example: a copy of a span's input, output and metadata, the labels of its
    annotations and an expected output, taken when it was added. The copy stays as it was when
    the source span changes or is deleted; the source is kept by its user-facing ids."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    input = models.TextField(null=True, blank=True)
    output = models.TextField(null=True, blank=True)
    expected_output = models.TextField(null=True, blank=True)
    # {"<annotation name>": {"label": str | None, "score": float | None, "explanation": ...}}
    labels = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    source_span_id = models.CharField(max_length=32)
    source_trace_id = models.CharField(max_length=64, blank=True, default="")
    source_project = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "annotations_datasetexample"  # the table predates the app
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "source_span_id"], name="dataset_example_unique_span"
            )
        ]
        indexes = [models.Index(fields=["dataset", "id"], name="dataset_example_order")]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.source_span_id}"
