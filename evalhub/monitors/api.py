"""REST routes for monitors, notification channels and automations (``/v1/monitors``,
``/v1/notification_channels``, ``/v1/automations``).

Errors are ``{"detail": ...}``: an invalid configuration is a 422 whose ``detail`` starts with
the field and whose ``field`` names it (an unknown field is refused the same way), a name
already taken a 409, a missing row a 404. Nothing is written when a request is refused.
Durations are in seconds, times ISO 8601 with a time zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Status
from ninja.errors import HttpError

from annotations.datasets.models import Dataset
from annotations.queues.models import LabelingQueue
from evalhub.core.fields import FieldInvalid
from evalhub.core.paging import Page, Pages, page_by_text, page_from_id, paged
from evalhub.monitors import selectors
from evalhub.monitors.api_channels import router as channels_router
from evalhub.monitors.api_common import Strict as _Strict
from evalhub.monitors.api_common import invalid as _invalid
from evalhub.monitors.api_common import saved
from evalhub.monitors.api_common import when as _when
from evalhub.monitors.automations import (
    AutomationInput,
    automation_create,
    automation_delete,
    automation_update,
)
from evalhub.monitors.checks import monitor_preview
from evalhub.monitors.models import Automation, Monitor, NotificationChannel
from evalhub.monitors.services import (
    MonitorInput,
    channels_by_name,
    monitor_create,
    monitor_delete,
    monitor_mute,
    monitor_update,
)
from tracing.store.selectors import project_get

router = Router(tags=["monitors"])
router.add_router("", channels_router)  # /notification_channels (evalhub.monitors.api_channels)
MAX_CHECKS = 1000


class MonitorIn(_Strict):
    name: str
    project: str = Field(..., description="The project's name (or id)")
    metric: str = Field(
        ...,
        description="eval_label_rate, eval_mean_score, annotation_label_rate, "
        "annotation_mean_score, error_rate, latency_p50/p95/p99, tokens, cost, span_count",
    )
    condition: str = Field(..., description="threshold or baseline")
    result_name: str = Field("", description="The evaluation/annotation name (eval.<name>)")
    label: str = Field("", description="For label rates: the label counted")
    filter: str = Field("", description="Which spans, in the filter language")
    description: str = ""
    window_seconds: int = Field(3600, description="300 (5 min) to 604800 (7 days)")
    frequency_seconds: int = Field(300, description="How often a window ends")
    delay_seconds: int = Field(60, description="Wait this long for late results")
    direction: str = Field("above", description="above or below")
    threshold: float | None = Field(None, description="Threshold conditions; rates are 0 to 1")
    consecutive: int = Field(1, description="Windows in a row that must breach")
    baseline_offset_seconds: int = Field(86400, description="86400 (day) or 604800 (week)")
    significance: float = Field(0.05, description="Baseline: the test's level")
    min_effect: float = Field(0.0, description="Baseline: the smallest change that matters")
    min_samples: int = Field(30, description="Never judge fewer results than this")
    segment_field: str = Field("", description="Group by this field, e.g. model_name")
    channels: list[str] = Field(default_factory=list, description="Notification channel names")
    enabled: bool = True


class MonitorPatch(_Strict):
    name: str | None = None
    metric: str | None = None
    condition: str | None = None
    result_name: str | None = None
    label: str | None = None
    filter: str | None = None
    description: str | None = None
    window_seconds: int | None = None
    frequency_seconds: int | None = None
    delay_seconds: int | None = None
    direction: str | None = None
    threshold: float | None = None
    consecutive: int | None = None
    baseline_offset_seconds: int | None = None
    significance: float | None = None
    min_effect: float | None = None
    min_samples: int | None = None
    segment_field: str | None = None
    channels: list[str] | None = None
    enabled: bool | None = None


class MuteIn(_Strict):
    until: datetime | None = Field(None, description="Mute until then; null unmutes")


class AutomationIn(_Strict):
    name: str
    project: str
    filter: str
    action: str = Field(..., description="queue, dataset, tag or webhook")
    queue: str | None = Field(None, description="The labeling queue's name")
    dataset: str | None = Field(None, description="The dataset's name")
    dataset_source: str = Field("span", description="span or trace")
    expected_output_from: str = ""
    tag: str = ""
    channel: str | None = Field(None, description="A webhook or Slack channel's name")
    sampling_rate: float = Field(100.0, description="Percent, more than 0 up to 100")
    daily_cap: int | None = None
    enabled: bool = True


def _project(value: str) -> Any:
    project = project_get(value)
    if project is None:
        raise HttpError(404, f"project {value!r} not found")
    return project


def _monitor(monitor_id: int) -> Monitor:
    monitor = Monitor.objects.select_related("project").filter(pk=monitor_id).first()
    if monitor is None:
        raise HttpError(404, f"no monitor #{monitor_id}")
    return monitor


def monitor_out(monitor: Monitor) -> dict[str, Any]:
    return {
        "id": monitor.pk,
        "name": monitor.name,
        "project": monitor.project.name,
        "metric": monitor.metric,
        "condition": monitor.condition,
        "result_name": monitor.result_name,
        "label": monitor.label,
        "filter": monitor.filter,
        "description": monitor.description,
        "window_seconds": monitor.window_seconds,
        "frequency_seconds": monitor.frequency_seconds,
        "delay_seconds": monitor.delay_seconds,
        "direction": monitor.direction,
        "threshold": monitor.threshold,
        "consecutive": monitor.consecutive,
        "baseline_offset_seconds": monitor.baseline_offset_seconds,
        "significance": monitor.significance,
        "min_effect": monitor.min_effect,
        "min_samples": monitor.min_samples,
        "segment_field": monitor.segment_field,
        "channels": [c.name for c in monitor.channels.all()],
        "enabled": monitor.enabled,
        "state": monitor.state,
        "firing_segment": monitor.firing_segment,
        "muted_until": _when(monitor.muted_until),
        "checked_through": _when(monitor.checked_through),
        "created_at": _when(monitor.created_at),
    }


def _monitor_input(body: MonitorIn | dict[str, Any]) -> MonitorInput:
    data = body if isinstance(body, dict) else body.model_dump()
    data = {k: v for k, v in data.items() if k != "project"}
    data["channels"] = channels_by_name(data.get("channels") or [])
    return MonitorInput(**data)


@router.get("/monitors", response=list[dict[str, Any]])
@paged()
def monitors_list(request: HttpRequest, project: str | None = None) -> Pages:
    """Every monitor (of ``project``, a name or id, when given) with its state, oldest first,
    a page at a time."""
    scope = _project(project) if project is not None else None

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        query = selectors.monitor_list(project=scope).order_by("id")
        return page_from_id(query, cursor=cursor, limit=limit, descending=False).map(monitor_out)

    return pages


@router.post("/monitors", response={201: dict, 404: dict, 409: dict, 422: dict})
def monitors_create(request: HttpRequest, body: MonitorIn) -> Status:
    project = _project(body.project)
    return saved(
        lambda: monitor_create(project=project, data=_monitor_input(body)),
        lambda monitor: Status(201, monitor_out(_monitor(monitor.pk))),
    )


@router.post("/monitors/preview", response={200: dict, 404: dict, 422: dict})
def monitors_preview(request: HttpRequest, body: MonitorIn) -> Any:
    """When this configuration would have fired over the last 30 days (nothing is saved)."""
    project = _project(body.project)
    try:
        preview = monitor_preview(project=project, data=_monitor_input(body))
    except FieldInvalid as exc:
        return _invalid(exc)
    return {
        "step_seconds": preview.step_seconds,
        "fired_count": preview.fired_count,
        "points": [
            {
                "window_end": p.end.isoformat(),
                "value": p.value,
                "baseline_value": p.baseline,
                "samples": p.samples,
                "status": p.status,
                "firing": p.firing,
                "fired": p.fired,
            }
            for p in preview.points
        ],
    }


@router.get("/monitors/{monitor_id}", response={200: dict, 404: dict})
def monitors_get(request: HttpRequest, monitor_id: int) -> dict[str, Any]:
    return monitor_out(_monitor(monitor_id))


@router.patch("/monitors/{monitor_id}", response={200: dict, 404: dict, 409: dict, 422: dict})
def monitors_update(request: HttpRequest, monitor_id: int, body: MonitorPatch) -> Any:
    """Change any subset of the fields."""
    monitor = _monitor(monitor_id)
    current = monitor_out(monitor)
    changes = body.model_dump(exclude_unset=True)
    merged = {k: current[k] for k in MonitorIn.model_fields if k in current} | changes
    return saved(
        lambda: monitor_update(monitor=monitor, data=_monitor_input(merged)),
        lambda _: monitor_out(_monitor(monitor_id)),
    )


@router.delete("/monitors/{monitor_id}", response={204: None, 404: dict})
def monitors_delete(request: HttpRequest, monitor_id: int) -> Status:
    monitor_delete(monitor=_monitor(monitor_id))
    return Status(204, None)


@router.post("/monitors/{monitor_id}/mute", response={200: dict, 404: dict, 422: dict})
def monitors_mute(request: HttpRequest, monitor_id: int, body: MuteIn) -> Any:
    try:
        monitor = monitor_mute(monitor=_monitor(monitor_id), until=body.until)
    except FieldInvalid as exc:
        return _invalid(exc)
    return monitor_out(_monitor(monitor.pk))


@router.get("/monitors/{monitor_id}/checks", response={200: dict, 404: dict})
def monitors_checks(request: HttpRequest, monitor_id: int, limit: int = 200) -> dict[str, Any]:
    """The last ``limit`` checks (at most 1000), oldest first."""
    monitor = _monitor(monitor_id)
    checks = selectors.monitor_checks(monitor=monitor, limit=max(1, min(limit, MAX_CHECKS)))
    return {
        "data": [
            {
                "window_start": c.window_start.isoformat(),
                "window_end": c.window_end.isoformat(),
                "status": c.status,
                "value": c.value,
                "samples": c.samples,
                "baseline_value": c.baseline_value,
                "baseline_samples": c.baseline_samples,
                "p_value": c.p_value,
                "segment": c.segment,
                "breached_segments": c.breached_segments,
            }
            for c in checks
        ]
    }


@router.get("/monitors/{monitor_id}/events", response={200: dict, 404: dict})
def monitors_events(request: HttpRequest, monitor_id: int) -> dict[str, Any]:
    """The monitor's history (fired, resolved, muted, unmuted), newest first."""
    monitor = _monitor(monitor_id)
    return {
        "data": [
            {
                "kind": e.kind,
                "created_at": e.created_at.isoformat(),
                "message": e.message,
                "payload": e.payload,
                "notified": e.notified,
            }
            for e in monitor.events.all()[:500]
        ]
    }


# --- automations ---------------------------------------------------------------------------------


def _automation(automation_id: int) -> Automation:
    automation = (
        Automation.objects.select_related("project", "queue", "dataset", "channel")
        .filter(pk=automation_id)
        .first()
    )
    if automation is None:
        raise HttpError(404, f"no automation #{automation_id}")
    return automation


def automation_out(a: Automation) -> dict[str, Any]:
    return {
        "id": a.pk,
        "name": a.name,
        "project": a.project.name,
        "filter": a.filter,
        "action": a.action,
        "queue": a.queue.name if a.queue else None,
        "dataset": a.dataset.name if a.dataset else None,
        "dataset_source": a.dataset_source,
        "expected_output_from": a.expected_output_from,
        "tag": a.tag,
        "channel": a.channel.name if a.channel else None,
        "sampling_rate": a.sampling_rate,
        "daily_cap": a.daily_cap,
        "enabled": a.enabled,
        "hits": a.hits.count(),
    }


def _named(model: Any, name: str | None, field: str) -> Any:
    if name is None:
        return None
    row = model.objects.filter(name=name).first()
    if row is None:
        raise FieldInvalid(field=field, message=f"no {field} named {name!r}")
    return row


def _automation_input(body: AutomationIn) -> AutomationInput:
    data = body.model_dump()
    data.pop("project")
    data["queue"] = _named(LabelingQueue, data["queue"], "queue")
    data["dataset"] = _named(Dataset, data["dataset"], "dataset")
    data["channel"] = _named(NotificationChannel, data["channel"], "channel")
    return AutomationInput(**data)


@router.get("/automations", response=list[dict[str, Any]])
@paged()
def automations_list(request: HttpRequest, project: str) -> Pages:
    """The project's automations by name, a page at a time."""
    query = selectors.automation_list(project=_project(project))

    def pages(*, cursor: str | None, limit: int) -> Page[dict[str, Any]]:
        return page_by_text(query, cursor=cursor, limit=limit, field="name").map(automation_out)

    return pages


@router.post("/automations", response={201: dict, 404: dict, 409: dict, 422: dict})
def automations_create(request: HttpRequest, body: AutomationIn) -> Status:
    project = _project(body.project)
    return saved(
        lambda: automation_create(project=project, data=_automation_input(body)),
        lambda automation: Status(201, automation_out(automation)),
    )


@router.get("/automations/{automation_id}", response={200: dict, 404: dict})
def automations_get(request: HttpRequest, automation_id: int) -> dict[str, Any]:
    return automation_out(_automation(automation_id))


@router.put("/automations/{automation_id}", response={200: dict, 404: dict, 409: dict, 422: dict})
def automations_update(request: HttpRequest, automation_id: int, body: AutomationIn) -> Any:
    automation = _automation(automation_id)
    if _project(body.project) != automation.project:
        return Status(
            422, {"detail": "project: an automation stays in its project", "field": "project"}
        )
    return saved(
        transaction.atomic(
            lambda: automation_update(automation=automation, data=_automation_input(body))
        ),
        lambda _: automation_out(_automation(automation_id)),
    )


@router.delete("/automations/{automation_id}", response={204: None, 404: dict})
def automations_delete(request: HttpRequest, automation_id: int) -> Status:
    automation_delete(automation=_automation(automation_id))
    return Status(204, None)


__all__ = ["router"]
