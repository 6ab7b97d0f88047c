"""LLM providers; the API key is encrypted at rest (``evalhub.providers.crypto``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

# --- the evaluator hub -----------------------------------------------------------------------


class ProviderKind(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    AZURE = "azure", "Azure OpenAI"
    COMPATIBLE = "compatible", "OpenAI-compatible endpoint"


class Provider(models.Model):
    """An LLM provider reached through the ``openai`` SDK. The API key is encrypted at rest
    (``evalhub.providers.crypto``) and never shown again after saving."""

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
        db_table = "evalhub_provider"  # the table predates the app
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
