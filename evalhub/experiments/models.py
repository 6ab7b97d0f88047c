"""Experiments, their runs and evaluations; prompts and their versions and tags."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ExperimentKind(models.TextChoices):
    SDK = "sdk", "SDK"  # the task function runs in the user's process
    PROMPT = "prompt", "Prompt"  # EvalHub runs a prompt on Celery


class ExperimentStatus(models.TextChoices):
    OPEN = "open", "Open"  # an SDK experiment: runs arrive over the API
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class Experiment(models.Model):
    """A task run over one version of a dataset, ``repetitions`` times per example."""

    dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.CASCADE, related_name="experiments"
    )
    dataset_version = models.ForeignKey(
        "datasets.DatasetVersion", on_delete=models.CASCADE, related_name="experiments"
    )
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    repetitions = models.PositiveIntegerField(default=1)
    metadata = models.JSONField(default=dict, blank=True)
    project_name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(
        max_length=8, choices=ExperimentKind.choices, default=ExperimentKind.SDK
    )
    status = models.CharField(
        max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.OPEN
    )
    # A prompt experiment: the prompt version, the provider and model, how variables map to
    # example fields ({"question": "input.question"}) and the concurrency.
    prompt_version = models.ForeignKey(
        "experiments.PromptVersion", null=True, blank=True, on_delete=models.SET_NULL
    )
    provider = models.ForeignKey(
        "providers.Provider", null=True, blank=True, on_delete=models.SET_NULL
    )
    model = models.CharField(max_length=200, blank=True, default="")
    variables = models.JSONField(default=dict, blank=True)
    concurrency = models.PositiveIntegerField(default=8)
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["dataset", "-id"], name="experiment_by_dataset")]

    def __str__(self) -> str:
        return self.name


class ExperimentRun(models.Model):
    """One run of the task on one example (one repetition): output or error, timing, cost."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    example = models.ForeignKey(
        "datasets.DatasetExample", on_delete=models.CASCADE, related_name="experiment_runs"
    )
    repetition_number = models.PositiveIntegerField(default=1)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(null=True, blank=True)
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(default=timezone.now)
    trace_id = models.CharField(max_length=64, blank=True, default="")
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    cost_usd = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "example", "repetition_number"],
                name="experiment_run_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.example_id}#{self.repetition_number}"

    @property
    def latency_ms(self) -> float:
        return (self.end_time - self.start_time).total_seconds() * 1000


class ExperimentEvaluation(models.Model):
    """An evaluator's result on one run (one per run and name; logged again, it is replaced)."""

    run = models.ForeignKey(ExperimentRun, on_delete=models.CASCADE, related_name="evaluations")
    name = models.CharField(max_length=255)
    annotator_kind = models.CharField(max_length=8, default="CODE")
    label = models.TextField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    explanation = models.TextField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    error = models.TextField(null=True, blank=True)
    trace_id = models.CharField(max_length=64, blank=True, default="")
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "name"], name="experiment_evaluation_unique")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.name}"


class Prompt(models.Model):
    """A named prompt; its content lives in versions."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.name


class PromptVersion(models.Model):
    """One version of a prompt: template (Phoenix's chat or string template), model and
    invocation parameters. Versions are never edited; a change is a new version."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="versions")
    description = models.TextField(blank=True, default="")
    model_provider = models.CharField(max_length=40, default="OPENAI")
    model_name = models.CharField(max_length=200)
    template = models.JSONField()
    template_type = models.CharField(max_length=8, default="CHAT")
    template_format = models.CharField(max_length=12, default="MUSTACHE")
    invocation_parameters = models.JSONField(default=dict, blank=True)
    tools = models.JSONField(null=True, blank=True)
    response_format = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.prompt_id}@{self.pk}"


class PromptVersionTag(models.Model):
    """A name for one version of a prompt ("production"); moving it re-points it."""

    prompt = models.ForeignKey(Prompt, on_delete=models.CASCADE, related_name="tags")
    version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["prompt", "name"], name="prompt_tag_unique")]

    def __str__(self) -> str:
        return self.name
