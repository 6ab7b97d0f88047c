"""``client.monitors`` and ``client.automations``: watch a metric of a project and act on
results as they arrive.

>>> m = client.monitors.create(
...     "correctness drop", "my-app", metric="eval_label_rate", result_name="correctness",
...     label="incorrect", condition="threshold", threshold=0.25, consecutive=3,
...     window="1h", frequency="5m", channels=["on-call"])
>>> client.monitors.preview(m).fired_count
>>> client.monitors.mute(m, hours=2)
>>> client.automations.create("to review", "my-app", filter="eval.correctness.label = 'incorrect'",
...                           action="queue", queue="failures", daily_cap=200)
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from evalhub_client._http import Transport
from evalhub_client.errors import NotFoundError
from evalhub_client.tasks import duration_parse


def _seconds(value: int | float | timedelta | str) -> int:
    """Seconds from a number, a ``timedelta`` or a duration such as ``"15m"``/``"1h"``/``"7d"``."""
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    if isinstance(value, str):
        parsed = duration_parse(value)
        if parsed is None:
            raise ValueError(f"{value!r} is not a duration (e.g. '15m', '1h', '7d')")
        return int(parsed.total_seconds())
    return int(value)


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Monitor:
    """A monitor as the server describes it; ``raw`` keeps every field."""

    id: int
    name: str
    project: str
    metric: str
    condition: str
    state: str
    threshold: float | None
    window_seconds: int
    frequency_seconds: int
    filter: str = ""
    segment_field: str = ""
    firing_segment: str = ""
    channels: list[str] = field(default_factory=list)
    enabled: bool = True
    muted_until: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Monitor:
        return cls(
            id=int(body["id"]),
            name=body["name"],
            project=body["project"],
            metric=body["metric"],
            condition=body["condition"],
            state=body["state"],
            threshold=body.get("threshold"),
            window_seconds=int(body["window_seconds"]),
            frequency_seconds=int(body["frequency_seconds"]),
            filter=body.get("filter") or "",
            segment_field=body.get("segment_field") or "",
            firing_segment=body.get("firing_segment") or "",
            channels=list(body.get("channels") or []),
            enabled=bool(body.get("enabled", True)),
            muted_until=_when(body.get("muted_until")),
            raw=dict(body),
        )

    @property
    def is_firing(self) -> bool:
        return self.state == "firing"


@dataclass(frozen=True)
class Preview:
    """When a monitor would have fired over the last 30 days."""

    fired_count: int
    step_seconds: int
    points: list[dict[str, Any]]


MonitorRef = Monitor | int | str


class Monitors:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self, project: str | None = None) -> builtins.list[Monitor]:
        params = {"project": project} if project is not None else {}
        return [Monitor.from_api(m) for m in self._transport.pages("/v1/monitors", params=params)]

    def monitor_id(self, monitor: MonitorRef, project: str | None = None) -> int:
        """The id of a monitor given as a ``Monitor``, an id, or a name (with ``project`` when
        names repeat across projects)."""
        if isinstance(monitor, Monitor):
            return monitor.id
        if isinstance(monitor, int):
            return monitor
        found = [m for m in self.list(project) if m.name == monitor]
        if len(found) != 1:
            raise NotFoundError(
                f"no monitor named {monitor!r}"
                if not found
                else f"several monitors named {monitor!r}: pass project=",
                status_code=404,
            )
        return found[0].id

    def get(self, monitor: MonitorRef, project: str | None = None) -> Monitor:
        monitor_id = self.monitor_id(monitor, project)
        return Monitor.from_api(self._transport.request("GET", f"/v1/monitors/{monitor_id}"))

    @staticmethod
    def _fields(fields: dict[str, Any]) -> dict[str, Any]:
        body = dict(fields)
        for short in ("window", "frequency", "delay", "baseline_offset"):
            if short in body:
                body[f"{short}_seconds"] = _seconds(body.pop(short))
        return body

    def create(
        self, name: str, project: str, *, metric: str, condition: str = "threshold", **fields: Any
    ) -> Monitor:
        """Create a monitor. ``fields`` as in the API (``result_name``, ``label``, ``filter``,
        ``threshold``, ``consecutive``, ``direction``, ``significance``, ``min_effect``,
        ``min_samples``, ``segment_field``, ``channels``…); ``window``, ``frequency``,
        ``delay`` and ``baseline_offset`` take durations such as ``"1h"``."""
        body = {"name": name, "project": project, "metric": metric, "condition": condition}
        body |= self._fields(fields)
        return Monitor.from_api(self._transport.request("POST", "/v1/monitors", json=body))

    def update(self, monitor: MonitorRef, **fields: Any) -> Monitor:
        monitor_id = self.monitor_id(monitor)
        body = self._transport.request(
            "PATCH", f"/v1/monitors/{monitor_id}", json=self._fields(fields)
        )
        return Monitor.from_api(body)

    def delete(self, monitor: MonitorRef) -> None:
        self._transport.request("DELETE", f"/v1/monitors/{self.monitor_id(monitor)}")

    def mute(
        self,
        monitor: MonitorRef,
        *,
        until: datetime | None = None,
        hours: float | None = None,
    ) -> Monitor:
        """Mute alerts until ``until`` (or for ``hours``); checks go on."""
        if until is None and hours is None:
            raise ValueError("give until= or hours=")
        moment = until or datetime.now(UTC) + timedelta(hours=hours or 0)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        body = self._transport.request(
            "POST", f"/v1/monitors/{self.monitor_id(monitor)}/mute", json={"until": moment}
        )
        return Monitor.from_api(body)

    def unmute(self, monitor: MonitorRef) -> Monitor:
        body = self._transport.request(
            "POST", f"/v1/monitors/{self.monitor_id(monitor)}/mute", json={"until": None}
        )
        return Monitor.from_api(body)

    def checks(self, monitor: MonitorRef, *, limit: int = 200) -> builtins.list[dict[str, Any]]:
        """The monitor's last checks, oldest first: window, value, samples, baseline, p."""
        path = f"/v1/monitors/{self.monitor_id(monitor)}/checks"
        return list(self._transport.request("GET", path, params={"limit": limit})["data"])

    def events(self, monitor: MonitorRef) -> builtins.list[dict[str, Any]]:
        """Fired / resolved / muted / unmuted, newest first, with the alert's message."""
        path = f"/v1/monitors/{self.monitor_id(monitor)}/events"
        return list(self._transport.request("GET", path)["data"])

    def preview(self, monitor: MonitorRef | None = None, **fields: Any) -> Preview:
        """When a monitor (or the configuration in ``fields``: ``name``, ``project``,
        ``metric``… as for ``create``) would have fired over the last 30 days."""
        body: dict[str, Any] = {}
        if monitor is not None:
            current = self.get(monitor).raw
            keep = [
                "name",
                "project",
                "metric",
                "condition",
                "result_name",
                "label",
                "filter",
                "description",
                "window_seconds",
                "frequency_seconds",
                "delay_seconds",
                "direction",
                "threshold",
                "consecutive",
                "baseline_offset_seconds",
                "significance",
                "min_effect",
                "min_samples",
                "segment_field",
                "channels",
                "enabled",
            ]
            body = {k: current[k] for k in keep if k in current}
        body |= self._fields(fields)
        answer = self._transport.request("POST", "/v1/monitors/preview", json=body)
        return Preview(
            fired_count=int(answer["fired_count"]),
            step_seconds=int(answer["step_seconds"]),
            points=list(answer["points"]),
        )


@dataclass(frozen=True)
class Automation:
    id: int
    name: str
    project: str
    filter: str
    action: str
    sampling_rate: float
    daily_cap: int | None
    enabled: bool
    hits: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Automation:
        return cls(
            id=int(body["id"]),
            name=body["name"],
            project=body["project"],
            filter=body["filter"],
            action=body["action"],
            sampling_rate=float(body["sampling_rate"]),
            daily_cap=body.get("daily_cap"),
            enabled=bool(body["enabled"]),
            hits=int(body.get("hits") or 0),
            raw=dict(body),
        )


class Automations:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self, project: str) -> builtins.list[Automation]:
        rows = self._transport.pages("/v1/automations", params={"project": project})
        return [Automation.from_api(a) for a in rows]

    def get(self, automation: Automation | int) -> Automation:
        automation_id = automation.id if isinstance(automation, Automation) else automation
        return Automation.from_api(
            self._transport.request("GET", f"/v1/automations/{automation_id}")
        )

    def create(
        self, name: str, project: str, *, filter: str, action: str, **fields: Any
    ) -> Automation:
        """A rule: spans matching ``filter`` get ``action`` (``queue`` with ``queue=<name>``,
        ``dataset`` with ``dataset=<name>`` and ``expected_output_from``, ``tag`` with
        ``tag=``, ``webhook`` with ``channel=<name>``); ``sampling_rate`` (percent) and
        ``daily_cap`` limit it."""
        body = {"name": name, "project": project, "filter": filter, "action": action} | fields
        return Automation.from_api(self._transport.request("POST", "/v1/automations", json=body))

    def update(self, automation: Automation | int, **fields: Any) -> Automation:
        current = self.get(automation).raw
        keep = [
            "name",
            "project",
            "filter",
            "action",
            "queue",
            "dataset",
            "dataset_source",
            "expected_output_from",
            "tag",
            "channel",
            "sampling_rate",
            "daily_cap",
            "enabled",
        ]
        body = {k: current[k] for k in keep} | fields
        automation_id = current["id"]
        return Automation.from_api(
            self._transport.request("PUT", f"/v1/automations/{automation_id}", json=body)
        )

    def delete(self, automation: Automation | int) -> None:
        automation_id = automation.id if isinstance(automation, Automation) else automation
        self._transport.request("DELETE", f"/v1/automations/{automation_id}")


__all__ = ["Automation", "Automations", "Monitor", "Monitors", "Preview"]
