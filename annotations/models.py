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


class Annotation(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="annotations")
    target_kind = models.CharField(max_length=8, choices=AnnotationTargetKind.choices)
    span = models.ForeignKey(
        Span, null=True, blank=True, on_delete=models.CASCADE, related_name="annotations"
    )
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
                    Q(
                        target_kind=TargetKind.SPAN,
                        span__isnull=False,
                        trace__isnull=True,
                        session__isnull=True,
                        document_position__isnull=True,
                    )
                    | Q(
                        target_kind=AnnotationTargetKind.DOCUMENT,
                        span__isnull=False,
                        trace__isnull=True,
                        session__isnull=True,
                        document_position__isnull=False,
                    )
                    | Q(
                        target_kind=TargetKind.TRACE,
                        span__isnull=True,
                        trace__isnull=False,
                        session__isnull=True,
                        document_position__isnull=True,
                    )
                    | Q(
                        target_kind=TargetKind.SESSION,
                        span__isnull=True,
                        trace__isnull=True,
                        session__isnull=False,
                        document_position__isnull=True,
                    )
                ),
                name="annotation_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["name", "label", "span"], name="annotation_name_label_span"),
            models.Index(fields=["name", "score"], name="annotation_name_score"),
            models.Index(fields=["project", "-created_at"], name="annotation_project_newest"),
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


# --- labeling queues ---


class AssignmentMode(models.TextChoices):
    ALL = "ALL", "Every assignee labels every item"
    ROUND_ROBIN = "ROUND_ROBIN", "Each item goes to one assignee, in turn"


class ItemState(models.TextChoices):
    """Where an item stands for one person. Only COMPLETED and SKIPPED are stored (as a
    ``LabelingQueueReview``); no review means PENDING."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"


class LabelingQueue(models.Model):
    """Spans, traces or sessions for people to label with a rubric (annotation configs).

    With assignees, ``ALL`` asks each of them to label every item and ``ROUND_ROBIN`` gives
    each item to one of them in turn (``rotation`` counts the items dealt so far). Without
    assignees the queue is open: anyone on the team (but annotators) may take an item, and one
    completion finishes it.
    """

    name = models.CharField(max_length=255, unique=True)
    instructions = models.TextField(blank=True, default="")
    item_kind = models.CharField(max_length=8, choices=TargetKind.choices)
    assignment_mode = models.CharField(
        max_length=16, choices=AssignmentMode.choices, default=AssignmentMode.ALL
    )
    configs = models.ManyToManyField(AnnotationConfig, related_name="labeling_queues", blank=True)
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="labeling_queues", blank=True
    )
    rotation = models.PositiveIntegerField(default=0)
    # Judges' and code evaluators' results on an item stay hidden from a person labelling it
    # until they have submitted their own label (so the machine's answer does not sway theirs).
    hide_machine_results = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LabelingQueueItem(models.Model):
    """One span, trace or session in a queue (at most once). ``assigned_to`` is its assignee in
    round-robin mode; ``reserved_by`` is who has it open, until ``reserved_until``."""

    queue = models.ForeignKey(LabelingQueue, on_delete=models.CASCADE, related_name="items")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    span = models.ForeignKey(
        Span, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    trace = models.ForeignKey(
        Trace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reserved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reserved_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "span"],
                condition=Q(span__isnull=False),
                name="queue_item_unique_span",
            ),
            models.UniqueConstraint(
                fields=["queue", "trace"],
                condition=Q(trace__isnull=False),
                name="queue_item_unique_trace",
            ),
            models.UniqueConstraint(
                fields=["queue", "session"],
                condition=Q(session__isnull=False),
                name="queue_item_unique_session",
            ),
            models.CheckConstraint(
                condition=(
                    Q(span__isnull=False, trace__isnull=True, session__isnull=True)
                    | Q(span__isnull=True, trace__isnull=False, session__isnull=True)
                    | Q(span__isnull=True, trace__isnull=True, session__isnull=False)
                ),
                name="queue_item_one_target",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "assigned_to", "id"], name="queue_item_assignee"),
        ]

    def __str__(self) -> str:
        return f"{self.queue_id}:{self.span_id or self.trace_id or self.session_id}"


class LabelingQueueReview(models.Model):
    """What one person did with a queue item: labelled it (COMPLETED) or passed (SKIPPED)."""

    item = models.ForeignKey(LabelingQueueItem, on_delete=models.CASCADE, related_name="reviews")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=ItemState.choices)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="queue_review_unique_user"),
            models.CheckConstraint(
                condition=Q(state__in=["COMPLETED", "SKIPPED"]), name="queue_review_state"
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-updated_at"], name="queue_review_user_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.item_id}:{self.user_id}={self.state}"


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
        constraints = [
            models.UniqueConstraint(
                fields=["example", "version"], name="dataset_revision_unique_version"
            )
        ]
        indexes = [models.Index(fields=["version", "example"], name="dataset_revision_by_version")]

    def __str__(self) -> str:
        return f"{self.example_id}@{self.version_id}:{self.kind}"
