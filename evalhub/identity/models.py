"""API keys: only a SHA-256 hash is stored; the key is shown once at creation."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKeyScope(models.TextChoices):
    """What a key may do (``evalhub.identity.access``): ``ingest`` sends OTLP spans and nothing else;
    ``read`` reads; ``write`` reads, logs spans, annotates, evaluates and manages team content;
    ``admin`` does everything. A key of a user never does more than its user's role allows."""

    INGEST = "ingest", "Ingest (OTLP only)"
    READ = "read", "Read"
    WRITE = "write", "Write (annotate, log, evaluate)"
    ADMIN = "admin", "Admin"


class ApiKey(models.Model):
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    scope = models.CharField(max_length=8, choices=ApiKeyScope.choices, default=ApiKeyScope.INGEST)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused from this moment on; empty: never expires."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "evalhub_apikey"  # the table predates the app
        ordering = ["-created_at"]
        verbose_name = "API key"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(scope__in=["ingest", "read", "write", "admin"]),
                name="api_key_scope_known",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())
