"""API keys (only a SHA-256 hash is stored; the key is shown once at creation), and the evaluator
hub: LLM providers (API key encrypted at rest), evaluators and their immutable versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from evalhub.evaluators.models import Evaluator
from evalhub.providers.models import Provider

# --- online evaluation tasks -----------------------------------------------------------------


class Granularity(models.TextChoices):
    SPAN = "span", "Span"
    TRACE = "trace", "Trace"
    SESSION = "session", "Session"


class TargetKind(models.TextChoices):
    """What a task evaluates: a project's spans (traces, sessions), or the runs of every new
    experiment on a dataset (``evalhub.experiments.task_target``)."""

    PROJECT = "project", "Project"
    DATASET = "dataset", "Dataset"


# A dataset task's items: experiment runs (``TaskRunItem.target_kind``, a run's granularity).
EXPERIMENT_RUN = "run"


class TaskStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"


# The quiet period after a trace's / session's last span before it counts as complete.
DEFAULT_QUIET_SECONDS = {Granularity.SPAN: 0, Granularity.TRACE: 60, Granularity.SESSION: 600}


class Task(models.Model):
    """Evaluators attached to a project: what to score (granularity, filter, sampling), how
    often (continuously on new data, by backfill runs, by hand) and with which LLM. A task
    whose ``target`` is a dataset scores the runs of every new experiment on ``dataset``."""

    name = models.CharField(max_length=200)
    target = models.CharField(max_length=8, choices=TargetKind.choices, default=TargetKind.PROJECT)
    project = models.ForeignKey(
        "tracing.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    description = models.TextField(blank=True, default="")
    granularity = models.CharField(
        max_length=8, choices=Granularity.choices, default=Granularity.SPAN
    )
    filter = models.TextField(blank=True, default="", help_text="In the filter language.")
    sampling_rate = models.FloatField(default=100.0, help_text="Percent, 0 to 100.")
    continuous = models.BooleanField(default=True)
    interval_seconds = models.PositiveIntegerField(default=30)
    quiet_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: 60 s for traces, 10 min for sessions."
    )
    provider = models.ForeignKey(
        Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    model = models.CharField(max_length=200, blank=True, default="")
    tracing = models.BooleanField(
        default=False,
        help_text="Record every judge call as an LLM span in the project's judge-traces project.",
    )
    status = models.CharField(max_length=8, choices=TaskStatus.choices, default=TaskStatus.ACTIVE)
    paused_reason = models.TextField(blank=True, default="")
    # Continuous runs have planned every item ingested before this instant.
    cursor = models.DateTimeField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "evalhub_task"  # the table predates the app
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="task_unique_name"),
            models.UniqueConstraint(
                fields=["dataset", "name"],
                condition=models.Q(dataset__isnull=False),
                name="task_unique_name_in_dataset",
            ),
            models.CheckConstraint(
                condition=models.Q(target="project", project__isnull=False)
                | models.Q(target="dataset", dataset__isnull=False, project__isnull=True),
                name="task_target_set",
            ),
            models.CheckConstraint(
                condition=models.Q(sampling_rate__gte=0, sampling_rate__lte=100),
                name="task_sampling_rate_range",
            ),
        ]
        indexes = [models.Index(fields=["status", "continuous"], name="task_due")]

    def __str__(self) -> str:
        return self.name

    @property
    def effective_quiet_seconds(self) -> int:
        if self.quiet_seconds is not None:
            return self.quiet_seconds
        return DEFAULT_QUIET_SECONDS[Granularity(self.granularity)]

    @property
    def is_paused(self) -> bool:
        return self.status == TaskStatus.PAUSED

    @property
    def on_dataset(self) -> bool:
        return self.target == TargetKind.DATASET


class TaskEvaluator(models.Model):
    """One evaluator of a task, with the task's variable mapping (variable → source) laid over
    the evaluator's own."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="task_evaluators")
    evaluator = models.ForeignKey(
        Evaluator, on_delete=models.PROTECT, related_name="task_evaluators"
    )
    variables = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "evalhub_taskevaluator"  # the table predates the app
        ordering = ["task", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "evaluator"], name="task_evaluator_unique")
        ]

    def __str__(self) -> str:
        return f"{self.task_id}: {self.evaluator_id}"


class RunKind(models.TextChoices):
    CONTINUOUS = "continuous", "Continuous"
    BACKFILL = "backfill", "Backfill"
    MANUAL = "manual", "Manual"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class TaskRun(models.Model):
    """One run of a task (or of a lone evaluator, for a manual run): its items, counts, cost
    and log. ``config`` is the task as it was when the run was made — editing a task changes
    future runs only, and a resumed run evaluates the same way it started."""

    task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    # None for a dataset task's run: its experiment is ``config["experiment_id"]``.
    project = models.ForeignKey(
        "tracing.Project", null=True, blank=True, on_delete=models.CASCADE, related_name="runs"
    )
    kind = models.CharField(max_length=12, choices=RunKind.choices)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    config = models.JSONField(default=dict)
    # The data window: ingestion time for continuous runs, span start time for backfills.
    data_start = models.DateTimeField(null=True, blank=True)
    data_end = models.DateTimeField(null=True, blank=True)
    max_items = models.PositiveIntegerField(null=True, blank=True)
    planned = models.BooleanField(default=False, help_text="Every item of the run is listed.")
    # Items: matched the filter and not yet evaluated by the task; in the sample (and the cap);
    # planned = listed to evaluate; skipped = gone or unusable by the time they came up.
    matched = models.PositiveIntegerField(default=0)
    sampled = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    # Evaluations (an item times each evaluator).
    evaluated = models.PositiveIntegerField(default=0)
    finished = models.PositiveIntegerField(
        default=0, help_text="Items finished: evaluated by every evaluator that could, or skipped."
    )
    succeeded = models.PositiveIntegerField(default=0)
    errored = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0.0)
    items_start = models.DateTimeField(null=True, blank=True)  # the items' earliest start time
    items_end = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "evalhub_taskrun"  # the table predates the app
        ordering = ["-created_at", "-id"]
        constraints = [
            # Two beat ticks never run the same task's continuous evaluation twice at once.
            models.UniqueConstraint(
                fields=["task"],
                condition=models.Q(kind="continuous", status__in=["queued", "running"]),
                name="taskrun_one_active_continuous",
            )
        ]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="taskrun_task_newest"),
            models.Index(fields=["status", "updated_at"], name="taskrun_status_updated"),
        ]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.kind}, {self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @property
    def experiment_id(self) -> int | None:
        """The experiment a dataset task's run scores (None for a project's run)."""
        return self.config.get("experiment_id") if isinstance(self.config, dict) else None

    @property
    def total(self) -> int:
        """Items listed to evaluate."""
        return self.sampled

    @property
    def done(self) -> int:
        """Items finished (evaluated by every evaluator that could, or skipped)."""
        return self.finished


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"
    ERROR = "error", "Error"
    SKIPPED = "skipped", "Skipped"


class ItemOutcome(models.TextChoices):
    """An item's status as users filter it."""

    SUCCEEDED = "succeeded", "Succeeded"
    ERRORED = "errored", "Errored"
    SKIPPED = "skipped", "Skipped"
    PENDING = "pending", "Pending"


OUTCOME_STATUS = {
    ItemOutcome.SUCCEEDED: ItemStatus.DONE,
    ItemOutcome.ERRORED: ItemStatus.ERROR,
    ItemOutcome.SKIPPED: ItemStatus.SKIPPED,
    ItemOutcome.PENDING: ItemStatus.PENDING,
}


class TaskRunItem(models.Model):
    """A span, trace or session a run evaluates. ``dedupe_task`` (the task, except in manual
    runs) makes an item unique per task: continuous runs and backfills never evaluate it
    twice. Marked done in the transaction that writes its results, with ``results``: one entry
    per evaluator (``evaluator``, ``label``, ``score``, ``explanation``, ``latency_ms``,
    ``error`` or ``skipped``, ``judge_trace_id``), and ``reason`` when it was skipped."""

    run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="items")
    dedupe_task = models.ForeignKey(
        Task, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    target_kind = models.CharField(max_length=8, choices=Granularity.choices)
    target_pk = models.BigIntegerField()
    target_key = models.CharField(max_length=255)  # span_id / trace_id / session_id
    start_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=ItemStatus.choices, default=ItemStatus.PENDING)
    results = models.JSONField(default=list, blank=True)
    reason = models.TextField(blank=True, default="")
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")  # who wrote its results

    class Meta:
        db_table = "evalhub_taskrunitem"  # the table predates the app
        constraints = [
            models.UniqueConstraint(
                fields=["run", "target_kind", "target_pk"], name="taskrunitem_unique_in_run"
            ),
            models.UniqueConstraint(
                fields=["dedupe_task", "target_kind", "target_pk"],
                condition=models.Q(dedupe_task__isnull=False),
                name="taskrunitem_unique_in_task",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "status", "id"], name="taskrunitem_run_status"),
            models.Index(fields=["run", "id"], name="taskrunitem_run_pages"),
        ]

    def __str__(self) -> str:
        return f"{self.target_kind} {self.target_key} ({self.status})"


class TaskRunShard(models.Model):
    """A contiguous chunk of a run's items (ids ``first_item`` to ``last_item``) that one
    worker at a time leases: a run's shards are worked by as many workers at once as are free
    (up to ``EVALHUB_RUN_MAX_SHARDS``). The lease is renewed with every write of results; a
    shard whose lease expired is taken over by the next worker that asks. ``finished_at``: no
    item of it is left pending."""

    run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    first_item = models.BigIntegerField()
    last_item = models.BigIntegerField()
    size = models.PositiveIntegerField()
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "evalhub_taskrunshard"  # the table predates the app
        ordering = ["run", "number"]
        constraints = [
            models.UniqueConstraint(fields=["run", "number"], name="taskrunshard_unique_number")
        ]
        indexes = [
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(finished_at__isnull=True),
                name="taskrunshard_open_lease",
            )
        ]

    def __str__(self) -> str:
        return f"run #{self.run_id} shard {self.number}"


class RunLogLevel(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"


class TaskRunLog(models.Model):
    """A line in a run's log: one per failed evaluation, one per reason items were skipped for
    (``count`` items, the first of them in ``target_key``), plus the run's milestones."""

    run = models.ForeignKey(TaskRun, on_delete=models.CASCADE, related_name="logs")
    created_at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=RunLogLevel.choices, default=RunLogLevel.INFO)
    target_kind = models.CharField(max_length=8, blank=True, default="")
    target_key = models.CharField(max_length=255, blank=True, default="")
    evaluator = models.CharField(max_length=200, blank=True, default="")
    message = models.TextField()
    count = models.PositiveIntegerField(default=1)

    class Meta:
        db_table = "evalhub_taskrunlog"  # the table predates the app
        ordering = ["run", "id"]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"
