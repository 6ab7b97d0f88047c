"""API keys (only a SHA-256 hash is stored; the key is shown once at creation), and the evaluator
hub: LLM providers (API key encrypted at rest), evaluators and their immutable versions."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


# --- the evaluator hub -----------------------------------------------------------------------


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE = "azure", "Azure OpenAI"
    COMPATIBLE = "compatible", "OpenAI-compatible endpoint"


class Provider(models.Model):
    """An LLM provider reached through the ``openai`` SDK. The API key is encrypted at rest
    (``evalhub.hub.crypto``) and never shown again after saving."""

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=ProviderKind.choices)
    base_url = models.URLField(
        max_length=500, blank=True, default="", help_text="Empty for api.openai.com."
    )
    api_version = models.CharField(
        max_length=40, blank=True, default="", help_text="Azure OpenAI only."
    )
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    api_key_hint = models.CharField(
        max_length=16, blank=True, default="", editable=False, help_text="Its last characters."
    )
    default_model = models.CharField(max_length=200)
    max_concurrency = models.PositiveIntegerField(default=4)
    requests_per_minute = models.PositiveIntegerField(default=60, help_text="0: no limit.")
    timeout_seconds = models.FloatField(default=60.0)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="provider_one_default",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)


class EvaluatorKind(models.TextChoices):
    LLM = "LLM", "LLM judge"
    CODE = "CODE", "Code"


class Evaluator(models.Model):
    """A named evaluator; its results are the annotations ``eval.<name>``. Its definition lives
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
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def annotation_name(self) -> str:
        return f"eval.{self.name}"


class EvaluatorVersion(models.Model):
    evaluator = models.ForeignKey(Evaluator, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField(help_text="The validated definition (evalhub.hub.config).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["evaluator", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["evaluator", "number"], name="evaluator_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.evaluator.name} v{self.number}"
