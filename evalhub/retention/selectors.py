"""What retention reads."""

from __future__ import annotations

from django.conf import settings

from evalhub.retention.models import RetentionPolicy
from tracing.models import Project


def retention_days_default() -> int:
    """``EVALHUB_RETENTION_DAYS``: the limit of projects without their own; 0 keeps forever."""
    return int(getattr(settings, "EVALHUB_RETENTION_DAYS", 0))


def retention_days(*, project: Project) -> int:
    """The limit that holds for ``project``, in days; 0: its traces are kept forever."""
    policy = RetentionPolicy.objects.filter(project=project).first()
    return policy.days if policy is not None else retention_days_default()
