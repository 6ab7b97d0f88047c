"""The trace store: projects, traces, spans, sessions and the model price table."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone


class SpanKind(models.TextChoices):
    """The OpenInference span kinds known today. A span keeps the kind it was sent with, known
    or not (``Span.span_kind`` is free text), so kinds the conventions add later are stored,
    filtered and shown as they are; these are the ones the UI offers and colours."""

    LLM = "LLM"
    CHAIN = "CHAIN"
    TOOL = "TOOL"
    RETRIEVER = "RETRIEVER"
    EMBEDDING = "EMBEDDING"
    AGENT = "AGENT"
    RERANKER = "RERANKER"
    GUARDRAIL = "GUARDRAIL"
    EVALUATOR = "EVALUATOR"
    PROMPT = "PROMPT"
    DECISION = "DECISION"
    UNKNOWN = "UNKNOWN"


SPAN_KIND_MAX_LENGTH = 64


class StatusCode(models.TextChoices):
    UNSET = "UNSET"
    OK = "OK"
    ERROR = "ERROR"


class Project(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Session(models.Model):
    """A conversation: the traces that share a ``session.id``. Aggregates are kept at ingest."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    session_id = models.CharField(max_length=255)
    start_time = models.DateTimeField(null=True)
    end_time = models.DateTimeField(null=True)
    trace_count = models.PositiveIntegerField(default=0)
    span_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "session_id"], name="session_unique_id")
        ]
        indexes = [
            models.Index(fields=["project", "-start_time", "-id"], name="session_project_newest")
        ]

    def __str__(self) -> str:
        return self.session_id


class Trace(models.Model):
    """One row per trace, kept right as its spans arrive in any order over any requests."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="traces")
    trace_id = models.CharField(max_length=64, unique=True)
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="traces"
    )
    root_span_id = models.CharField(max_length=32, null=True, blank=True)
    root_span_name = models.CharField(max_length=1024, blank=True, default="")
    start_time = models.DateTimeField(null=True)
    end_time = models.DateTimeField(null=True)
    latency_ms = models.FloatField(null=True)
    span_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["project", "-start_time", "-id"], name="trace_project_newest"),
            # The Traces tab sorted by tokens or cost (read in order, joined to the root span).
            models.Index(fields=["project", "total_tokens", "id"], name="trace_project_tokens"),
            models.Index(fields=["project", "cost", "id"], name="trace_project_cost"),
        ]

    def __str__(self) -> str:
        return self.trace_id


class TraceHour(models.Model):
    """The traces of a project that started in one UTC hour, summed: the Projects page reads
    these for its settled hours (``tracing.store.hourly``). Deleted whenever one of those traces
    changes, and computed again on the next read."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.DateTimeField()  # the start of the UTC hour
    traces = models.PositiveIntegerField(default=0)
    spans = models.BigIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)  # traces with an error span
    tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    # Counts of trace latencies in the fixed bins of ``tracing.store.hourly``, from bin
    # ``latency_first_bin`` on (leading and trailing empty bins left out).
    latency_first_bin = models.PositiveSmallIntegerField(default=0)
    latency_bins = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "hour"], name="trace_hour_unique")
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.hour.isoformat()}"


class Span(models.Model):
    # No single-column indexes on project and trace: the composite indexes below lead with
    # them, and every index costs the ingest path.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="spans", db_index=False
    )
    trace = models.ForeignKey(Trace, on_delete=models.CASCADE, related_name="spans", db_index=False)
    session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="spans"
    )
    # Unique with ``start_time`` (``span_unique_id_start``): on PostgreSQL the table is
    # partitioned by ``start_time`` (``tracing.partitions``), and a partitioned table's unique
    # keys must include the partition key. Lookups by ``span_id`` alone use that index too.
    span_id = models.CharField(max_length=32)
    parent_id = models.CharField(max_length=32, null=True, blank=True)
    name = models.CharField(max_length=1024)
    # Free text: any kind a span names, not only ``SpanKind``'s (see there).
    span_kind = models.CharField(max_length=SPAN_KIND_MAX_LENGTH, default=SpanKind.UNKNOWN)
    status_code = models.CharField(
        max_length=8, choices=StatusCode.choices, default=StatusCode.UNSET
    )
    status_message = models.TextField(blank=True, default="")
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    latency_ms = models.FloatField()
    attributes = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    input_value = models.TextField(null=True, blank=True)
    input_mime_type = models.CharField(max_length=64, blank=True, default="")
    output_value = models.TextField(null=True, blank=True)
    output_mime_type = models.CharField(max_length=64, blank=True, default="")
    model_name = models.CharField(max_length=255, blank=True, default="")
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    total_tokens = models.IntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    session_key = models.CharField(
        "session id", max_length=255, blank=True, default="", db_column="session_id_text"
    )
    user_id = models.CharField(max_length=255, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    ingested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["span_id", "start_time"], name="span_unique_id_start")
        ]
        indexes = [
            models.Index(fields=["project", "-start_time", "-id"], name="span_project_newest"),
            models.Index(
                fields=["project", "-start_time", "-id"],
                name="span_project_roots",
                condition=Q(parent_id__isnull=True),
            ),
            models.Index(fields=["project", "span_kind", "-start_time"], name="span_project_kind"),
            models.Index(fields=["trace", "start_time"], name="span_trace_start"),
            models.Index(fields=["project", "ingested_at"], name="span_project_ingested"),
            # The Spans and Traces tabs sorted by latency, tokens or cost with keyset pages
            # (``tracing.browser.selectors``); the expressions are the ones the tables order by.
            models.Index(fields=["project", "latency_ms", "id"], name="span_project_latency"),
            models.Index(
                fields=["project", "latency_ms", "id"],
                name="span_roots_latency",
                condition=Q(parent_id__isnull=True),
            ),
            models.Index(
                F("project"), Coalesce("total_tokens", 0), F("id"), name="span_project_tokens"
            ),
            models.Index(
                F("project"), Coalesce("cost", Value(0.0)), F("id"), name="span_project_cost"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.span_id})"


class ModelPrice(models.Model):
    """Price per million tokens. A span's model matches the longest ``model_prefix``."""

    model_prefix = models.CharField(max_length=255, unique=True)
    provider = models.CharField(max_length=100, blank=True, default="")
    prompt_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    completion_per_million = models.DecimalField(max_digits=12, decimal_places=4)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_prefix"]

    def __str__(self) -> str:
        return self.model_prefix
