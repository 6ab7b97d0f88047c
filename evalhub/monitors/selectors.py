"""Reads for the pages and the API: monitors with their recent checks, firing monitors of a
project, a monitor's history, channels with their delivery log, automations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from django.db.models import QuerySet

from evalhub.monitors.models import (
    Automation,
    Delivery,
    Monitor,
    MonitorCheck,
    MonitorState,
    NotificationChannel,
)
from tracing.models import Project

SPARK_POINTS: Final = 24


@dataclass(frozen=True, slots=True)
class MonitorRow:
    monitor: Monitor
    recent: list[MonitorCheck]  # oldest first


def monitor_list(*, project: Project | None = None) -> QuerySet[Monitor]:
    query = Monitor.objects.select_related("project").prefetch_related("channels")
    return query.filter(project=project) if project is not None else query


def monitor_rows(*, project: Project | None = None) -> list[MonitorRow]:
    """Each monitor with its last ``SPARK_POINTS`` checks (for the sparkline)."""
    rows = []
    for monitor in monitor_list(project=project):
        recent = list(MonitorCheck.objects.filter(monitor=monitor)[:SPARK_POINTS])
        rows.append(MonitorRow(monitor=monitor, recent=recent[::-1]))
    return rows


def monitors_firing(*, project: Project) -> QuerySet[Monitor]:
    return Monitor.objects.filter(project=project, state=MonitorState.FIRING, enabled=True)


def monitor_checks(*, monitor: Monitor, limit: int = 200) -> list[MonitorCheck]:
    """The monitor's last ``limit`` checks, oldest first."""
    return list(MonitorCheck.objects.filter(monitor=monitor)[:limit])[::-1]


def channel_list() -> QuerySet[NotificationChannel]:
    return NotificationChannel.objects.all()


def delivery_log(*, channel: NotificationChannel | None = None, limit: int = 50) -> list[Delivery]:
    query = Delivery.objects.select_related("channel", "event__monitor")
    if channel is not None:
        query = query.filter(channel=channel)
    return list(query[:limit])


def automation_list(*, project: Project) -> QuerySet[Automation]:
    return Automation.objects.filter(project=project).select_related("queue", "dataset", "channel")


def delivery_log_of_monitor(*, monitor: Monitor, limit: int = 50) -> list[Delivery]:
    return list(
        Delivery.objects.filter(event__monitor=monitor).select_related("channel", "event")[:limit]
    )
