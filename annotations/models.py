"""One store for evaluation results and human labels on spans, traces and sessions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotations.naming import human_expression
from tracing.models import Project, Session, Span, Trace


class TargetKind(models.TextChoices):
    SPAN = "SPAN"
    TRACE = "TRACE"
    SESSION = "SESSION"


class AnnotationTargetKind(models.TextChoices):
    """What an annotation is on: ``TargetKind``'s, and a retrieved document of a span (the span
    and ``document_position``, its 0-based place in ``retrieval.documents``). Labeling queues
    hold the three ``TargetKind``s only."""

    SPAN = "SPAN"
    TRACE = "TRACE"
    SESSION = "SESSION"
    DOCUMENT = "DOCUMENT"


class AnnotatorKind(models.TextChoices):
    HUMAN = "HUMAN"
    LLM = "LLM"
    CODE = "CODE"


class AnnotationSource(models.TextChoices):
    API = "API"
    APP = "APP"
    TASK = "TASK"


def _target_is(
    kind: str,
    *,
    span: bool = False,
    trace: bool = False,
    session: bool = False,
    document: bool = False,
) -> Q:
    """The row's target is ``kind``: exactly the target columns named are set."""
    return Q(
        target_kind=kind,
        span__isnull=not span,
        trace__isnull=not trace,
        session__isnull=not session,
        document_position__isnull=not document,
    )


class Annotation(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    target_kind = models.CharField(max_length=8, choices=AnnotationTargetKind.choices)
    # No database constraint: the span table is partitioned on PostgreSQL (tracing.partitions);
    # Django's collector still deletes annotations with their span.
    span = models.ForeignKey(
        Span,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="annotations",
        db_constraint=False,
    )
    # SPAN and DOCUMENT annotations: the span's start time, copied when the result is written
    # (a span's start time never changes), so a filter on results can read a project's results
    # newest span first from one index instead of walking every span (``tracing.query.lists``).
    span_start_time = models.DateTimeField(null=True, blank=True)
    # DOCUMENT annotations only: the document's 0-based position in the span's
    # ``retrieval.documents``.
    document_position = models.PositiveIntegerField(null=True, blank=True)
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
    name = models.CharField(max_length=255)
    annotator_kind = models.CharField(max_length=8, choices=AnnotatorKind.choices)
    label = models.CharField(max_length=255, null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    explanation = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    identifier = models.CharField(max_length=255, blank=True, default="")
    source = models.CharField(
        max_length=8, choices=AnnotationSource.choices, default=AnnotationSource.API
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            # One result per target, name, class (human or machine) and identifier: a
            # person's label and a judge's result of the same name live side by side
            # (``annotations.naming`` says why).
            models.UniqueConstraint(
                F("span"),
                F("name"),
                F("identifier"),
                human_expression(),
                condition=Q(span__isnull=False, document_position__isnull=True),
                name="annotation_unique_span_class",
            ),
            models.UniqueConstraint(
                F("span"),
                F("document_position"),
                F("name"),
                F("identifier"),
                human_expression(),
                condition=Q(document_position__isnull=False),
                name="annotation_unique_document_class",
            ),
            models.UniqueConstraint(
                F("trace"),
                F("name"),
                F("identifier"),
                human_expression(),
                condition=Q(trace__isnull=False),
                name="annotation_unique_trace_class",
            ),
            models.UniqueConstraint(
                F("session"),
                F("name"),
                F("identifier"),
                human_expression(),
                condition=Q(session__isnull=False),
                name="annotation_unique_session_class",
            ),
            models.CheckConstraint(
                condition=(
                    _target_is(TargetKind.SPAN, span=True)
                    | _target_is(AnnotationTargetKind.DOCUMENT, span=True, document=True)
                    | _target_is(TargetKind.TRACE, trace=True)
                    | _target_is(TargetKind.SESSION, session=True)
                ),
                name="annotation_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["name", "label", "span"], name="annotation_name_label_span"),
            models.Index(fields=["name", "score"], name="annotation_name_score"),
            # A project's results of one name, newest span first; trace and session results
            # (no span) sit at the NULL end (``tracing.query.lists.span_list``).
            models.Index(
                fields=["project", "name", "-span_start_time", "-span"],
                name="annotation_name_span_time",
            ),
            models.Index(fields=["project", "-created_at"], name="annotation_project_newest"),
            # The results written since a moment (the automations' sweep, evalhub.monitors).
            models.Index(fields=["project", "updated_at"], name="annotation_project_updated"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.label or self.score}"


class AnnotationConfigKind(models.TextChoices):
    CATEGORICAL = "CATEGORICAL"
    CONTINUOUS = "CONTINUOUS"
    FREEFORM = "FREEFORM"


class OptimizationDirection(models.TextChoices):
    MAXIMIZE = "MAXIMIZE"
    MINIMIZE = "MINIMIZE"
    NONE = "NONE"


class AnnotationConfig(models.Model):
    """A rubric for annotations of one name: its labels (with scores) or its score range."""

    name = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16, choices=AnnotationConfigKind.choices)
    description = models.TextField(blank=True, default="")
    optimization_direction = models.CharField(
        max_length=8, choices=OptimizationDirection.choices, default=OptimizationDirection.NONE
    )
    # CATEGORICAL: [{"label": str, "score": float | None}, ...] with distinct labels.
    values = models.JSONField(default=list, blank=True)
    lower_bound = models.FloatField(null=True, blank=True)
    upper_bound = models.FloatField(null=True, blank=True)
    projects = models.ManyToManyField(
        Project, through="ProjectAnnotationConfig", related_name="annotation_configs", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class ProjectAnnotationConfig(models.Model):
    """An annotation config enabled for a project."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    annotation_config = models.ForeignKey(AnnotationConfig, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "annotation_config"], name="project_annotation_config_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id}:{self.annotation_config_id}"
