"""``client.tasks``: online evaluation tasks (evaluators attached to a project) and their runs.

>>> task = client.tasks.create("quality", "my-app", ["correctness"], filter="span_kind == 'LLM'")
>>> run = client.tasks.run_backfill(task, start_time="7d")
>>> client.tasks.wait(run).counts
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import monotonic, sleep
from typing import Any

from tqdm.auto import tqdm

from evalhub_client._http import Transport
from evalhub_client.errors import NotFoundError

DEFAULT_MAX_SPANS = 10_000
PAGE_SIZE = 100
LOGS_PAGE_SIZE = 1000

TimeLike = datetime | timedelta | str
EvaluatorLike = str | int | Mapping[str, Any]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration_parse(text: str) -> timedelta | None:
    """``"30m"``, ``"24h"``, ``"7d"``, ``"2w"``, ``"90s"`` → a timedelta; anything else → None."""
    match = _DURATION.match(text)
    if match is None:
        return None
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def time_param(value: TimeLike | None, *, now: datetime | None = None) -> str | None:
    """An ISO 8601 time with a zone for the API. A ``timedelta`` or a duration such as
    ``"7d"`` means that long ago; a datetime without a zone is UTC; other text is sent as is."""
    if value is None:
        return None
    if isinstance(value, str):
        ago = duration_parse(value)
        if ago is None:
            return value.strip()
        value = ago
    if isinstance(value, timedelta):
        value = (now or datetime.now(UTC)) - value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class Task:
    """A task as the server describes it. ``evaluators`` holds one dict per evaluator:
    ``evaluator`` (its name), ``evaluator_id``, ``annotation_name``, ``variables``."""

    id: int
    name: str
    project: str | None
    status: str
    evaluators: list[dict[str, Any]]
    granularity: str
    filter: str
    sampling_rate: float
    continuous: bool
    interval_seconds: int
    quiet_seconds: int | None
    provider: str | None
    model: str
    description: str
    paused_reason: str = ""
    tracing: bool = False
    """Judge calls are recorded as LLM spans in the project ``"<project> · judge traces"``."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    backfill_run_id: int | None = None
    """On a task just created with a backfill: the backfill's run id."""
    target: str = "project"
    """``project`` (its spans) or ``dataset`` (the runs of every new experiment on it)."""
    dataset: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Task:
        return cls(
            id=int(body["id"]),
            name=body["name"],
            project=body.get("project"),
            status=body["status"],
            evaluators=list(body.get("evaluators") or []),
            granularity=body["granularity"],
            filter=body.get("filter") or "",
            sampling_rate=float(body["sampling_rate"]),
            continuous=bool(body["continuous"]),
            interval_seconds=int(body["interval_seconds"]),
            quiet_seconds=body.get("quiet_seconds"),
            provider=body.get("provider"),
            model=body.get("model") or "",
            description=body.get("description") or "",
            paused_reason=body.get("paused_reason") or "",
            tracing=bool(body.get("tracing")),
            created_at=_when(body.get("created_at")),
            updated_at=_when(body.get("updated_at")),
            backfill_run_id=body.get("backfill_run_id"),
            target=body.get("target") or "project",
            dataset=body.get("dataset"),
            raw=dict(body),
        )

    @property
    def is_paused(self) -> bool:
        return self.status == "paused"

    @property
    def evaluator_names(self) -> list[str]:
        return [e["evaluator"] for e in self.evaluators]


@dataclass(frozen=True)
class Run:
    """A run of a task: ``kind`` (continuous, backfill, manual), ``status`` (queued, running,
    completed, failed, cancelled), the data window, ``counts`` (matched, sampled, evaluated,
    succeeded, errored, skipped, total, done, percent, tokens, cost), ``error`` and, when read
    with ``client.tasks.run(...)``, the first ``logs`` entries."""

    id: int
    task_id: int | None
    task: str | None
    project: str
    kind: str
    status: str
    active: bool
    counts: dict[str, Any]
    error: str = ""
    evaluators: list[str] = field(default_factory=list)
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None
    max_spans: int | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    logs: list[dict[str, Any]] = field(default_factory=list, repr=False)
    logs_total: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> Run:
        return cls(
            id=int(body["id"]),
            task_id=body.get("task_id"),
            task=body.get("task"),
            project=body["project"],
            kind=body["kind"],
            status=body["status"],
            active=bool(body["active"]),
            counts=dict(body.get("counts") or {}),
            error=body.get("error") or "",
            evaluators=list(body.get("evaluators") or []),
            data_start_time=_when(body.get("data_start_time")),
            data_end_time=_when(body.get("data_end_time")),
            max_spans=body.get("max_spans"),
            created_at=_when(body.get("created_at")),
            started_at=_when(body.get("started_at")),
            finished_at=_when(body.get("finished_at")),
            duration_seconds=body.get("duration_seconds"),
            logs=list(body.get("logs") or []),
            logs_total=body.get("logs_total"),
            raw=dict(body),
        )

    @property
    def finished(self) -> bool:
        return not self.active

    @property
    def done(self) -> int:
        return int(self.counts.get("done", 0))

    @property
    def total(self) -> int:
        return int(self.counts.get("total", 0))


@dataclass(frozen=True)
class RunItem:
    """A span, trace or session a run listed: ``target_kind`` (span, trace, session),
    ``target_id`` (its id), ``outcome`` (succeeded, errored, skipped, pending), ``reason`` (why
    it was skipped), and ``results``: one dict per evaluator with ``evaluator``, ``label``,
    ``score``, ``explanation``, ``latency_ms``, ``error`` or ``skipped`` and, when the task
    records its judge calls, ``judge_trace_id`` and ``judge_project``."""

    id: int
    target_kind: str
    target_id: str
    outcome: str
    reason: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)
    start_time: datetime | None = None
    finished_at: datetime | None = None

    @classmethod
    def from_api(cls, body: Mapping[str, Any]) -> RunItem:
        return cls(
            id=int(body["id"]),
            target_kind=body["target_kind"],
            target_id=body["target_id"],
            outcome=body["outcome"],
            reason=body.get("reason") or "",
            results=list(body.get("results") or []),
            start_time=_when(body.get("start_time")),
            finished_at=_when(body.get("finished_at")),
        )


TaskRef = Task | int | str
RunRef = Run | int


class Tasks:
    """Tasks and runs. A ``task`` argument is a ``Task``, its id, or its name (with
    ``project`` when several projects have a task of that name); a ``run`` is a ``Run`` or
    its id."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    # --- tasks -----------------------------------------------------------------------------

    def list(self, project: str | None = None) -> builtins.list[Task]:
        """Every task (of ``project``, a name or id), newest first."""
        return [Task.from_api(body) for body in self._pages("/v1/tasks", {"project": project})]

    def get(self, task: TaskRef, project: str | None = None) -> Task:
        return Task.from_api(self._http.request("GET", f"/v1/tasks/{self.task_id(task, project)}"))

    def create(
        self,
        name: str,
        project: str | None = None,
        evaluators: Sequence[EvaluatorLike] = (),
        *,
        dataset: str | int | None = None,
        backfill: Mapping[str, Any] | TimeLike | None = None,
        **fields: Any,
    ) -> Task:
        """Create a task on ``project`` (its name), or with ``dataset`` (a name or id) a task
        that scores every new experiment on that dataset (its runs' evaluations).

        ``evaluators``: names or ids, or ``{"evaluator": name, "variables": {var: source}}``.
        ``fields``: ``granularity`` (span, trace, session), ``filter``, ``sampling_rate``
        (percent), ``continuous``, ``interval_seconds``, ``quiet_seconds``, ``provider``
        (id or name), ``model``, ``tracing`` (record each judge call as an LLM span),
        ``description``. ``backfill``: a start time (``"7d"``, a
        datetime…) or ``{"data_start_time", "data_end_time", "max_spans"}`` to start a backfill
        run too; its id is the task's ``backfill_run_id``. Nothing is created when the task or
        its backfill is refused.
        """
        body: dict[str, Any] = {
            "name": name,
            "evaluators": [_evaluator_param(e) for e in evaluators],
            **fields,
        }
        if dataset is not None:
            body |= {"target": "dataset", "dataset": str(dataset)}
        if project is not None:
            body["project"] = project
        if backfill is not None:
            body["backfill"] = _backfill_param(backfill)
        return Task.from_api(self._http.request("POST", "/v1/tasks", json=body))

    def update(self, task: TaskRef, **fields: Any) -> Task:
        """Change any of the fields ``create`` takes (``name``, ``project`` and ``evaluators``
        too); ``quiet_seconds=None`` and ``provider=None`` go back to the defaults."""
        if "evaluators" in fields and fields["evaluators"] is not None:
            fields["evaluators"] = [_evaluator_param(e) for e in fields["evaluators"]]
        body = self._http.request("PATCH", f"/v1/tasks/{self.task_id(task)}", json=fields)
        return Task.from_api(body)

    def pause(self, task: TaskRef, project: str | None = None) -> Task:
        """Stop continuous runs (runs already going finish)."""
        path = f"/v1/tasks/{self.task_id(task, project)}/pause"
        return Task.from_api(self._http.request("POST", path))

    def resume(self, task: TaskRef, project: str | None = None) -> Task:
        """Continuous runs start again where they stopped."""
        path = f"/v1/tasks/{self.task_id(task, project)}/resume"
        return Task.from_api(self._http.request("POST", path))

    def delete(self, task: TaskRef, project: str | None = None) -> None:
        """Delete the task and its runs; the results it wrote stay on the spans."""
        self._http.request("DELETE", f"/v1/tasks/{self.task_id(task, project)}")

    def task_id(self, task: TaskRef, project: str | None = None) -> int:
        """The id of ``task`` (a ``Task``, an id, or a name looked up among the tasks of
        ``project``, else of every project)."""
        if isinstance(task, Task):
            return task.id
        if isinstance(task, int) and not isinstance(task, bool):
            return task
        text = str(task).strip()
        if text.isdigit():
            return int(text)
        found = [t for t in self.list(project) if t.name == text]
        if not found:
            where = f" in project {project}" if project else ""
            raise NotFoundError(f"no task named {text!r}{where}", body=None)
        if len(found) > 1:
            projects = ", ".join(sorted(t.project for t in found))
            raise ValueError(
                f"several tasks are named {text!r} (projects {projects}): give the project or "
                "the task's id"
            )
        return found[0].id

    # --- runs ------------------------------------------------------------------------------

    def run_backfill(
        self,
        task: TaskRef,
        start_time: TimeLike,
        end_time: TimeLike | None = None,
        max_spans: int = DEFAULT_MAX_SPANS,
        *,
        project: str | None = None,
    ) -> Run:
        """Evaluate the spans (traces, sessions) that started from ``start_time`` until
        ``end_time`` (default now), newest first, at most ``max_spans`` items; items the task
        evaluated before are left out. Times: datetimes (without a zone: UTC), ISO text, or
        how long ago (``"7d"``, ``"24h"``, ``"30m"``, a ``timedelta``). Returns the queued run;
        ``RunRejectedError`` (with a ``code``) when it cannot start."""
        now = datetime.now(UTC)
        body = {
            "data_start_time": time_param(start_time, now=now),
            "data_end_time": time_param(end_time, now=now),
            "max_spans": max_spans,
        }
        created = self._http.request(
            "POST", f"/v1/tasks/{self.task_id(task, project)}/runs", json=body
        )
        return self.run(created["run_id"])

    def runs(
        self, task: TaskRef, *, limit: int | None = PAGE_SIZE, project: str | None = None
    ) -> builtins.list[Run]:
        """The task's runs, newest first: the last ``limit`` (``None``: all)."""
        runs = []
        path = f"/v1/tasks/{self.task_id(task, project)}/runs"
        page_size = PAGE_SIZE if limit is None else max(1, min(limit, 1000))
        for body in self._pages(path, {"limit": page_size}):
            if limit is not None and len(runs) >= limit:
                break
            runs.append(Run.from_api(body))
        return runs

    def run(self, run: RunRef, *, logs_limit: int = 100) -> Run:
        """A run with its counts and its first ``logs_limit`` log entries."""
        body = self._http.request(
            "GET", f"/v1/runs/{_run_id(run)}", params={"logs_limit": logs_limit}
        )
        return Run.from_api(body)

    def logs(self, run: RunRef, *, level: str | None = None) -> builtins.list[dict[str, Any]]:
        """Every log entry of the run, oldest first (``level``: info, warning or error):
        ``id``, ``time``, ``level``, ``message``, ``target_kind``, ``target_key``,
        ``evaluator``."""
        entries: builtins.list[dict[str, Any]] = []
        after: int | None = None
        while True:
            body = self._http.request(
                "GET",
                f"/v1/runs/{_run_id(run)}",
                params={"logs_limit": LOGS_PAGE_SIZE, "logs_after": after, "logs_level": level},
            )
            entries += body["logs"]
            after = body.get("logs_next_after")
            if after is None:
                return entries

    def run_items(
        self, run: RunRef, *, outcome: str | None = None, limit: int | None = None
    ) -> builtins.list[RunItem]:
        """The items the run listed, in order — exactly what ``task_run = <run id>`` shows in
        the trace browser — with each evaluator's result; ``outcome`` keeps one of succeeded,
        errored, skipped, pending; ``limit`` stops after that many (``None``: all)."""
        items: builtins.list[RunItem] = []
        page_size = PAGE_SIZE if limit is None else max(1, min(limit, 1000))
        path = f"/v1/runs/{_run_id(run)}/items"
        for body in self._pages(path, {"limit": page_size, "outcome": outcome}):
            if limit is not None and len(items) >= limit:
                break
            items.append(RunItem.from_api(body))
        return items

    def cancel(self, run: RunRef) -> Run:
        """Stop a queued or running run; what it evaluated stays."""
        return Run.from_api(self._http.request("POST", f"/v1/runs/{_run_id(run)}/cancel"))

    def wait(
        self,
        run: RunRef,
        poll_seconds: float = 1,
        timeout: float | None = None,
        progress: bool | None = True,
    ) -> Run:
        """Poll until the run has finished (completed, failed or cancelled) and return it.

        ``progress`` shows a progress bar of items done out of the total (``None``: when
        stderr is a terminal). ``TimeoutError`` after ``timeout`` seconds; the run goes on.
        """
        run_id = _run_id(run)
        started = monotonic()
        with tqdm(
            total=None,
            desc=f"run #{run_id}",
            unit="item",
            disable=None if progress is None else not progress,
        ) as bar:
            while True:
                current = self.run(run_id, logs_limit=0)
                if current.total and bar.total != current.total:
                    bar.total = current.total
                bar.n = current.done
                bar.set_postfix(
                    status=current.status, errors=current.counts.get("errored", 0), refresh=False
                )
                bar.refresh()
                if current.finished:
                    break
                if timeout is not None and monotonic() - started >= timeout:
                    raise TimeoutError(
                        f"run #{run_id} is still {current.status} after {timeout:g} s"
                    )
                sleep(poll_seconds)
        return self.run(run_id)

    # --- paging ----------------------------------------------------------------------------

    def _pages(self, path: str, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        cursor = None
        params = {"limit": PAGE_SIZE, **params}
        while True:
            body = self._http.request("GET", path, params={**params, "cursor": cursor})
            yield from body["data"]
            cursor = body.get("next_cursor")
            if not cursor:
                return


def _run_id(run: RunRef) -> int:
    return run.id if isinstance(run, Run) else int(run)


def _evaluator_param(evaluator: EvaluatorLike) -> Any:
    if isinstance(evaluator, Mapping):
        return dict(evaluator)
    return evaluator


def _backfill_param(backfill: Mapping[str, Any] | TimeLike) -> dict[str, Any]:
    now = datetime.now(UTC)
    if not isinstance(backfill, Mapping):
        return {"data_start_time": time_param(backfill, now=now)}
    out = dict(backfill)
    for key in ("data_start_time", "data_end_time"):
        if key in out:
            out[key] = time_param(out[key], now=now)
    return out
