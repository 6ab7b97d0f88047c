"""Labeling queues: items to label, who labels them, reviews."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from annotations.models import AnnotationConfig, TargetKind
from tracing.models import Project, Session, Span, Trace

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
    configs = models.ManyToManyField(
        AnnotationConfig,
        related_name="labeling_queues",
        blank=True,
        db_table="annotations_labelingqueue_configs",
    )
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="labeling_queues",
        blank=True,
        db_table="annotations_labelingqueue_assignees",
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
        db_table = "annotations_labelingqueue"  # the table predates the app
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class LabelingQueueItem(models.Model):
    """One span, trace or session in a queue (at most once). ``assigned_to`` is its assignee in
    round-robin mode; ``reserved_by`` is who has it open, until ``reserved_until``."""

    queue = models.ForeignKey(LabelingQueue, on_delete=models.CASCADE, related_name="items")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    # No database constraint: the span table is partitioned on PostgreSQL (tracing.partitions);
    # Django's collector still deletes the item with its span.
    span = models.ForeignKey(
        Span, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_constraint=False
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
        db_table = "annotations_labelingqueueitem"  # the table predates the app
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
        db_table = "annotations_labelingqueuereview"  # the table predates the app
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
