from __future__ import annotations

from django.conf import settings
from django.db import models


class UserPreferences(models.Model):
    """A person's preferences. ``time_zone`` is an IANA zone name, or empty: the browser's."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="preferences",
    )
    time_zone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "user preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user}"
