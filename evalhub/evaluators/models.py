"""Evaluators and their immutable versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from annotations.naming import filter_field, result_name


class EvaluatorKind(models.TextChoices):
    LLM = "LLM", "LLM judge"
    CODE = "CODE", "Code"


class Evaluator(models.Model):
    """A named evaluator; its results are annotations with its name (``annotations.naming``),
    by an LLM or code annotator — ``eval.<name>`` in the filter language. Its definition lives
    in immutable versions: editing adds a version, and every result names the one it came from.
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=8, choices=EvaluatorKind.choices)
    template_key = models.CharField(
        max_length=100, blank=True, default="", help_text="The library template it was made from."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "evalhub_evaluator"  # the table predates the app
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def annotation_name(self) -> str:
        """The name its results are stored and shown under."""
        return result_name(self.name)

    @property
    def result_filter(self) -> str:
        """The filter-language field of its results' labels: ``eval.<name>.label``."""
        return filter_field(self.annotation_name, human=False, attribute="label")


class EvaluatorVersion(models.Model):
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField(help_text="The validated definition (evalhub.evaluators.definition).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "evalhub_evaluatorversion"  # the table predates the app
        ordering = ["evaluator", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["evaluator", "number"], name="evaluator_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.evaluator.name} v{self.number}"
