"""Monitors (a metric of a project watched window by window), their checks and alert history,
notification channels with their delivery log, and automations with the items they acted on."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from annotations.datasets.models import Dataset
from annotations.queues.models import LabelingQueue
from tracing.models import Project, Span


class Metric(models.TextChoices):
    EVAL_LABEL_RATE = "eval_label_rate", "Evaluation label rate"
    EVAL_MEAN_SCORE = "eval_mean_score", "Evaluation mean score"
    ANNOTATION_LABEL_RATE = "annotation_label_rate", "Annotation label rate"
    ANNOTATION_MEAN_SCORE = "annotation_mean_score", "Annotation mean score"
    ERROR_RATE = "error_rate", "Error rate"
    LATENCY_P50 = "latency_p50", "Latency p50 (ms)"
    LATENCY_P95 = "latency_p95", "Latency p95 (ms)"
    LATENCY_P99 = "latency_p99", "Latency p99 (ms)"
    TOKENS = "tokens", "Total tokens"
    COST = "cost", "Cost (USD)"
    SPAN_COUNT = "span_count", "Span count"


class Condition(models.TextChoices):
    THRESHOLD = "threshold", "Threshold sustained for N windows"
    BASELINE = "baseline", "Significant change against a baseline window"


class Direction(models.TextChoices):
    ABOVE = "above", "rises above"
    BELOW = "below", "falls below"


class MonitorState(models.TextChoices):
    OK = "ok", "OK"
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (signed JSON)"
    SLACK = "slack", "Slack incoming webhook"
    EMAIL = "email", "E-mail"


class NotificationChannel(models.Model):
    """Where alerts go: a signed JSON webhook, a Slack-compatible incoming webhook, or e-mail."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    url = models.CharField(max_length=2000, blank=True, default="")
    secret = models.CharField(max_length=200, blank=True, default="")
    emails = models.TextField(blank=True, default="")  # one address a line
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Monitor(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="monitors")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    metric = models.CharField(max_length=32, choices=Metric.choices)
    # The evaluation/annotation name (eval.<name>) and, for label rates, the label counted.
    result_name = models.CharField(max_length=255, blank=True, default="")
    label = models.CharField(max_length=255, blank=True, default="")
    filter = models.TextField(blank=True, default="")
    window_seconds = models.PositiveIntegerField(default=3600)
    frequency_seconds = models.PositiveIntegerField(default=300)
    delay_seconds = models.PositiveIntegerField(default=60)
    condition = models.CharField(max_length=16, choices=Condition.choices)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.ABOVE)
    threshold = models.FloatField(null=True, blank=True)
    consecutive = models.PositiveIntegerField(default=1)
    baseline_offset_seconds = models.PositiveIntegerField(default=86400)
    significance = models.FloatField(default=0.05)
    min_effect = models.FloatField(default=0.0)
    min_samples = models.PositiveIntegerField(default=30)
    segment_field = models.CharField(max_length=255, blank=True, default="")
    channels = models.ManyToManyField(NotificationChannel, blank=True, related_name="monitors")
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=16, choices=MonitorState.choices, default=MonitorState.OK)
    firing_segment = models.CharField(max_length=1024, blank=True, default="")
    muted_until = models.DateTimeField(null=True, blank=True)
    checked_through = models.DateTimeField(null=True, blank=True)  # the last window end checked
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="monitor_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_muted(self) -> bool:
        return self.muted_until is not None and self.muted_until > timezone.now()


class CheckStatus(models.TextChoices):
    OK = "ok", "OK"
    BREACH = "breach", "Breach"
    INSUFFICIENT = "insufficient", "Too few results"


class MonitorCheck(models.Model):
    """One evaluation of a monitor over one window: unique per window, so a check that is
    delivered twice finds its row and changes nothing."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="checks")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=CheckStatus.choices)
    value = models.FloatField(null=True)
    samples = models.BigIntegerField(default=0)
    baseline_value = models.FloatField(null=True)
    baseline_samples = models.BigIntegerField(default=0)
    p_value = models.FloatField(null=True)
    segment = models.CharField(max_length=1024, blank=True, default="")  # the worst segment
    breached_segments = models.JSONField(default=list, blank=True)
    segments = models.JSONField(default=list, blank=True)
    # The window's counts by segment ({segment: [value, samples, hits, variance]}), so that a
    # later check using this window as its baseline reads them (None: too many segments).
    stats = models.JSONField(null=True, blank=True)
    duration_ms = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-window_end"]
        constraints = [
            models.UniqueConstraint(fields=["monitor", "window_end"], name="monitor_check_window")
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id}@{self.window_end:%Y-%m-%d %H:%M:%S}"


class EventKind(models.TextChoices):
    FIRED = "fired", "Fired"
    RESOLVED = "resolved", "Resolved"
    MUTED = "muted", "Muted"
    UNMUTED = "unmuted", "Unmuted"


class MonitorEvent(models.Model):
    """The history of a monitor's state: fired, resolved, muted, unmuted."""

    monitor = models.ForeignKey(Monitor, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    check_row = models.ForeignKey(
        MonitorCheck, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    message = models.TextField(blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    notified = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.monitor_id} {self.kind}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    """One message to one channel (an alert or an automation's call) and how sending it went."""

    channel = models.ForeignKey(
        NotificationChannel, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(
        MonitorEvent, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries"
    )
    payload = models.JSONField(default=dict)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    response_status = models.IntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # When the next attempt is due: while an attempt runs, its lease; a pending delivery past
    # it (its message lost) is sent again by the dispatcher's sweep.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="delivery_pending_due",
            )
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "event"],
                condition=models.Q(event__isnull=False),
                name="delivery_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.status}"


class ActionKind(models.TextChoices):
    QUEUE = "queue", "Add to a labeling queue"
    DATASET = "dataset", "Add to a dataset"
    TAG = "tag", "Tag the span"
    WEBHOOK = "webhook", "Call a webhook"


class Automation(models.Model):
    """A rule run on results as they arrive: spans matching ``filter`` get ``action``, sampled,
    at most ``daily_cap`` a day, once per span."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="automations")
    name = models.CharField(max_length=200)
    filter = models.TextField()
    action = models.CharField(max_length=16, choices=ActionKind.choices)
    queue = models.ForeignKey(LabelingQueue, null=True, blank=True, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.CASCADE)
    expected_output_from = models.CharField(max_length=255, blank=True, default="")
    dataset_source = models.CharField(max_length=8, default="span")
    tag = models.CharField(max_length=200, blank=True, default="")
    channel = models.ForeignKey(
        NotificationChannel, null=True, blank=True, on_delete=models.CASCADE
    )
    sampling_rate = models.FloatField(default=100.0)  # percent
    daily_cap = models.PositiveIntegerField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Results written up to here have been swept (``automations.automations_sweep``): a result
    # whose job was lost is acted on by the sweep, once. Starts when the rule is switched on.
    swept_through = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="automation_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class AutomationHit(models.Model):
    """A span an automation acted on: one row per span and rule, so it acts once."""

    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="hits")
    # No database constraint: the span table is partitioned on PostgreSQL (tracing.partitions).
    span = models.ForeignKey(Span, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    day = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["automation", "span"], name="automation_hit_once")
        ]
        indexes = [models.Index(fields=["automation", "day"], name="automation_hit_day")]

    def __str__(self) -> str:
        return f"{self.automation_id}:{self.span_id}"
