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
    # Blank for an example that was uploaded (a table or JSON), not made from a span.
    source_span_id = models.CharField(max_length=32, blank=True, default="")
    source_trace_id = models.CharField(max_length=64, blank=True, default="")
    source_project = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    # Deleted from the dataset (its latest version): older versions keep it.
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "annotations_datasetexample"  # the table predates the app
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "source_span_id"],
                condition=~models.Q(source_span_id="") & models.Q(removed_at__isnull=True),
                name="dataset_example_unique_span",
            )
        ]
        indexes = [models.Index(fields=["dataset", "id"], name="dataset_example_order")]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.source_span_id}"


class DatasetVersion(models.Model):
    """One state of a dataset: every change (examples added, edited, deleted, uploaded) makes
    a new version; an experiment pins the version it ran on. A deleted version stays for the
    experiments that ran on it, but no new experiment may use it."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="versions")
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "annotations_datasetversion"  # the table predates the app
        indexes = [models.Index(fields=["dataset", "-id"], name="dataset_version_latest")]

    def __str__(self) -> str:
        return f"{self.dataset_id}@{self.pk}"


class RevisionKind(models.TextChoices):
    CREATE = "CREATE"
    PATCH = "PATCH"
    DELETE = "DELETE"


class DatasetExampleRevision(models.Model):
    """An example as one version left it: input, expected output and metadata as JSON objects.
    An example at version V is its revision with the greatest version <= V, unless that one
    deletes it."""

    example = models.ForeignKey(DatasetExample, on_delete=models.CASCADE, related_name="revisions")
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="revisions")
    kind = models.CharField(max_length=8, choices=RevisionKind.choices)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "annotations_datasetexamplerevision"  # the table predates the app
        constraints = [
            models.UniqueConstraint(
                fields=["example", "version"], name="dataset_revision_unique_version"
            )
        ]
        indexes = [models.Index(fields=["version", "example"], name="dataset_revision_by_version")]

    def __str__(self) -> str:
        return f"{self.example_id}@{self.version_id}:{self.kind}"
