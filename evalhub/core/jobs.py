"""Sending a Celery task by its registered name. An app's ``jobs`` module (the Celery entry
points, found by ``autodiscover_tasks(related_name="jobs")``) imports the app's services; the
services send jobs by name through here, never by importing ``jobs`` — so no import circle."""

from __future__ import annotations

from typing import Any


def job_send(name: str, *args: Any, **options: Any) -> None:
    """Queue the task registered as ``name`` with ``args`` (``options`` as ``apply_async``'s)."""
    from celery import current_app

    current_app.tasks[name].apply_async(args, **options)
