"""``run_work``: evaluate a run's pending items.

A worker first claims the run's lease (a run has one worker at a time; a lease whose worker
vanished expires and the sweeper hands the run to another). Items are read from the database
on this thread, evaluated on a thread pool — the judge calls are what takes time — and their
results written in small transactions that also mark the items done and add to the run's
counts. A redelivered message, a second worker or a resumed run therefore never evaluates a
finished item again, and re-writing an annotation only updates it.

A slice of work is bounded in time (``EVALHUB_RUN_SLICE_SECONDS``): the run then lets go of its
lease and is dispatched again, so long backfills share the workers and fit Celery's limits.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import AnnotationSource, AnnotatorKind
from annotations.store.services import (
    AnnotationInput,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from evalhub.evaluators.definition import LlmJudgeConfig, config_parse
from evalhub.evaluators.models import EvaluatorKind, EvaluatorVersion
from evalhub.evaluators.results import result_annotation
from evalhub.evaluators.running import (
    EvaluationResult,
    PreparedEvaluation,
    evaluation_cost,
    evaluation_execute,
    evaluation_prepare,
)
from evalhub.providers.limiter import Limiter
from evalhub.providers.llm import RetryPolicy
from evalhub.providers.models import Provider
from evalhub.tasks.judge_tracing import JudgeCall, judge_calls_record
from evalhub.tasks.models import (
    Granularity,
    ItemStatus,
    RunLogLevel,
    RunStatus,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
)
from evalhub.tasks.services import lease_seconds, run_fail, run_log, run_plan
from tracing.models import Span, Trace

logger = logging.getLogger(__name__)

ITEM_CHUNK = 200
FLUSH_SECONDS = 1.0
MAX_LOG_MESSAGE = 2000


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


@dataclass
class _Evaluator:
    version: EvaluatorVersion
    name: str
    annotator_kind: str
    variables: dict[str, str]
    provider: Provider | None


@dataclass
class _Item:
    row: TaskRunItem
    span: Span | None
    results: list[EvaluationResult | None] = field(default_factory=list)
    prepared: dict[int, PreparedEvaluation] = field(default_factory=dict)  # for judge tracing
    skip_reason: str = ""

    @property
    def complete(self) -> bool:
        return all(r is not None for r in self.results)


@dataclass
class _Unit:
    item: _Item
    index: int
    prepared: PreparedEvaluation


class _LeaseLost(Exception):
    pass


# --- claiming -----------------------------------------------------------------------------


def _claim(run_id: int, worker: str) -> TaskRun | None:
    with transaction.atomic():
        run = TaskRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_active:
            return None
        now = timezone.now()
        held = run.lease_owner and run.lease_owner != worker
        if held and run.lease_expires_at is not None and run.lease_expires_at > now:
            return None
        if run.status == RunStatus.QUEUED:
            run.started_at = now
            run_log(run, f"started on {worker}")
        elif held:
            run_log(
                run,
                f"resumed on {worker}: the lease of {run.lease_owner} expired",
                level=RunLogLevel.WARNING,
            )
        run.status = RunStatus.RUNNING
        run.lease_owner = worker
        run.lease_expires_at = now + timedelta(seconds=lease_seconds())
        run.updated_at = now
        run.save(
            update_fields=["status", "started_at", "lease_owner", "lease_expires_at", "updated_at"]
        )
        return run


# --- representative spans -------------------------------------------------------------------


def _span_query() -> Any:
    return Span.objects.select_related("trace", "session", "project")


def _trace_spans(trace_rows: dict[int, str | None]) -> dict[int, Span]:
    """Trace pk → its root span (else its earliest span)."""
    spans: dict[int, Span] = {}
    roots = [root for root in trace_rows.values() if root]
    by_span_id = {s.span_id: s for s in _span_query().filter(span_id__in=roots)}
    for trace_pk, root in trace_rows.items():
        span = by_span_id.get(root) if root else None
        if span is None:
            span = _span_query().filter(trace_id=trace_pk).order_by("start_time", "id").first()
        if span is not None:
            spans[trace_pk] = span
    return spans


def representative_spans(granularity: str, pks: list[int]) -> dict[int, Span]:
    """Item pk → the span that stands for it: the span itself, a trace's root span, a
    session's first trace's root span (items without spans are left out)."""
    if granularity == Granularity.SPAN:
        return {s.pk: s for s in _span_query().filter(pk__in=pks)}
    if granularity == Granularity.TRACE:
        rows = dict(Trace.objects.filter(pk__in=pks).values_list("pk", "root_span_id"))
        return _trace_spans(rows)
    first_trace: dict[int, tuple[int, str | None]] = {}
    for session_pk, trace_pk, root in (
        Trace.objects.filter(session_id__in=pks)
        .order_by("session_id", "start_time", "id")
        .values_list("session_id", "pk", "root_span_id")
    ):
        first_trace.setdefault(session_pk, (trace_pk, root))
    by_trace = _trace_spans({trace_pk: root for trace_pk, root in first_trace.values()})
    return {
        session_pk: by_trace[trace_pk]
        for session_pk, (trace_pk, _) in first_trace.items()
        if trace_pk in by_trace
    }


# --- the engine -----------------------------------------------------------------------------


class _Engine:
    def __init__(
        self,
        run: TaskRun,
        worker: str,
        *,
        limiter: Limiter | None,
        retry: RetryPolicy | None,
        concurrency: int | None,
    ) -> None:
        self.run, self.worker = run, worker
        self.limiter, self.retry = limiter, retry
        self.granularity = run.config["granularity"]
        self.tracing = bool(run.config.get("tracing"))
        self.evaluators = self._evaluators()
        self.concurrency = concurrency or self._concurrency()
        self.ready: list[_Item] = []
        self.fatal: str = ""
        self.stop = False
        self.lost = False
        self.last_flush = time.monotonic()

    def _evaluators(self) -> list[_Evaluator]:
        config = self.run.config
        override = None
        if config.get("provider_id") is not None:
            override = Provider.objects.filter(pk=config["provider_id"]).first()
            if override is None:
                raise _Fatal("the task's LLM provider no longer exists; choose another")
        versions = EvaluatorVersion.objects.select_related("evaluator").in_bulk(
            [e["version_id"] for e in config["evaluators"]]
        )
        default = Provider.objects.filter(is_default=True).first()
        evaluators = []
        for entry in config["evaluators"]:
            version = versions.get(entry["version_id"])
            if version is None:
                raise _Fatal(f"evaluator {entry['name']} was deleted")
            provider = override
            if provider is None and version.evaluator.kind == EvaluatorKind.LLM:
                parsed = config_parse(version.config)
                assert isinstance(parsed, LlmJudgeConfig)
                if parsed.provider_id is not None:
                    provider = Provider.objects.filter(pk=parsed.provider_id).first()
                else:
                    provider = default
                if provider is None:
                    raise _Fatal(f"evaluator {entry['name']} has no LLM provider")
            evaluators.append(
                _Evaluator(
                    version=version,
                    name=version.evaluator.name,
                    annotator_kind=AnnotatorKind.LLM
                    if version.evaluator.kind == EvaluatorKind.LLM
                    else AnnotatorKind.CODE,
                    variables=dict(entry.get("variables") or {}),
                    provider=provider,
                )
            )
        return evaluators

    def _concurrency(self) -> int:
        limit = int(_setting("EVALHUB_TASK_CONCURRENCY", 16))
        providers = {e.provider.pk: e.provider for e in self.evaluators if e.provider is not None}
        if providers:
            limit = min(limit, sum(p.max_concurrency for p in providers.values()))
        return max(limit, 1)

    # The items, read on this thread; each yields one unit per evaluator.
    def _units(self) -> Any:
        last_id = 0
        model = self.run.config.get("model", "")
        while not self.stop:
            rows = list(
                self.run.items.filter(status=ItemStatus.PENDING, id__gt=last_id).order_by("id")[
                    :ITEM_CHUNK
                ]
            )
            if not rows:
                return
            last_id = rows[-1].pk
            spans = representative_spans(self.granularity, [r.target_pk for r in rows])
            for row in rows:
                item = _Item(row=row, span=spans.get(row.target_pk))
                item.results = [None] * len(self.evaluators)
                if item.span is None:
                    item.skip_reason = f"the {self.granularity} no longer exists"
                    self.ready.append(item)
                    continue
                for index, evaluator in enumerate(self.evaluators):
                    prepared = evaluation_prepare(
                        version=evaluator.version,
                        span=item.span,
                        provider=evaluator.provider,
                        variables=evaluator.variables,
                        model=model
                        if evaluator.version.evaluator.kind == EvaluatorKind.LLM
                        else "",
                    )
                    if self.tracing and prepared.request is not None:
                        item.prepared[index] = prepared
                    yield _Unit(item=item, index=index, prepared=prepared)

    def _complete(self, unit: _Unit, result: EvaluationResult) -> None:
        if result.fatal:
            if not self.fatal:
                self.fatal = result.error or "the provider refused the request"
            self.stop = True
            return
        evaluation_cost(result)
        unit.item.results[unit.index] = result
        if unit.item.complete:
            self.ready.append(unit.item)

    def go(self, deadline: float) -> str:
        """Evaluate until no item is left, the deadline passes, or the run stops. Returns
        ``finished``, ``yielded``, ``failed``, ``cancelled`` or ``lost``."""
        units = self._units()
        exhausted = False
        inflight: dict[Future[EvaluationResult], _Unit] = {}
        with ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"run{self.run.pk}"
        ) as pool:
            while True:
                if time.monotonic() > deadline:
                    self.stop = True
                while not self.stop and not exhausted and len(inflight) < self.concurrency:
                    unit = next(units, None)
                    if unit is None:
                        exhausted = True
                        break
                    if unit.prepared.result.error is not None:  # or skipped: nothing to call
                        self._complete(unit, unit.prepared.result)
                        continue
                    future = pool.submit(
                        evaluation_execute, unit.prepared, limiter=self.limiter, retry=self.retry
                    )
                    inflight[future] = unit
                if not inflight and (exhausted or self.stop):
                    break
                # Write after topping the slots up: the requests run while this thread is busy
                # with the database, instead of waiting for it.
                self._maybe_flush()
                if inflight:
                    done, _ = wait(inflight, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        self._complete(inflight.pop(future), future.result())
        self._flush()
        if self.lost:
            return "lost"
        if self.fatal:
            run_fail(run_id=self.run.pk, reason=self.fatal, pause_task=True)
            return "failed"
        if exhausted:
            return self._finish()
        return self._yield()

    def _maybe_flush(self) -> None:
        elapsed = time.monotonic() - self.last_flush
        if len(self.ready) >= max(2 * self.concurrency, 50) or (
            elapsed >= FLUSH_SECONDS and (self.ready or elapsed >= lease_seconds() / 3)
        ):
            self._flush()

    def _annotation_inputs(self, items: list[_Item]) -> list[AnnotationInput]:
        inputs = []
        kind = self.granularity.upper()
        for item in items:
            if item.skip_reason:
                continue
            for evaluator, result in zip(self.evaluators, item.results, strict=True):
                assert result is not None
                if result.skipped:
                    continue
                inputs.append(
                    result_annotation(
                        result=result,
                        evaluator_name=evaluator.name,
                        annotator_kind=evaluator.annotator_kind,
                        target_kind=kind,
                        target_id=item.row.target_key,
                        metadata={"run_id": self.run.pk, "task_id": self.run.task_id},
                    )
                )
        return inputs

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        items, self.ready = self.ready, []
        try:
            with transaction.atomic():
                run = TaskRun.objects.select_for_update().get(pk=self.run.pk)
                if run.status != RunStatus.RUNNING or run.lease_owner != self.worker:
                    raise _LeaseLost
                self._write(run, items)
        except _LeaseLost:
            self.lost = self.stop = True
            return
        self.run = run

    def _judge_calls_record(self, run: TaskRun, items: list[_Item]) -> None:
        """Enable tracing: the judge calls of these items as LLM spans, their trace ids kept
        on the results (so the annotations and the items link to them)."""
        calls = [
            JudgeCall(
                prepared=prepared,
                result=item.results[index],  # type: ignore[arg-type]
                evaluator=self.evaluators[index].name,
                target_kind=item.row.target_kind,
                target_id=item.row.target_key,
            )
            for item in items
            if not item.skip_reason
            for index, prepared in item.prepared.items()
        ]
        judge_calls_record(calls, project_name=run.project.name, run_id=run.pk, task_id=run.task_id)

    def _write(self, run: TaskRun, items: list[_Item]) -> None:
        if self.tracing:
            self._judge_calls_record(run, items)
        while True:
            try:
                with transaction.atomic():
                    annotations_upsert(
                        items=self._annotation_inputs(items),
                        source=AnnotationSource.TASK,
                        project=run.project,
                    )
                break
            except AnnotationTargetNotFound as exc:  # deleted while being evaluated
                missing = set(exc.missing)
                for item in items:
                    if item.row.target_key in missing and not item.skip_reason:
                        item.skip_reason = f"the {self.granularity} was deleted"
        logs: list[TaskRunLog] = []
        skips: dict[tuple[str, str], list[TaskRunItem]] = {}
        counts = dict.fromkeys(
            ("evaluated", "succeeded", "errored", "skipped", "prompt_tokens", "completion_tokens"),
            0,
        )
        cost = 0.0
        now = timezone.now()
        for item in items:
            row = item.row
            row.finished_at = now
            if item.skip_reason:
                row.status, row.reason, row.results = ItemStatus.SKIPPED, item.skip_reason, []
                counts["skipped"] += 1
                skips.setdefault(("", item.skip_reason), []).append(row)
                continue
            failed = False
            ran = False
            row.results = []
            for evaluator, result in zip(self.evaluators, item.results, strict=True):
                assert result is not None
                row.results.append(_item_result(evaluator.name, result))
                if result.skipped:
                    skips.setdefault((evaluator.name, result.skipped), []).append(row)
                    continue
                ran = True
                counts["evaluated"] += 1
                counts["prompt_tokens"] += result.prompt_tokens or 0
                counts["completion_tokens"] += result.completion_tokens or 0
                cost += result.cost or 0.0
                if result.ok:
                    counts["succeeded"] += 1
                    continue
                failed = True
                counts["errored"] += 1
                logs.append(
                    TaskRunLog(
                        run=run,
                        level=RunLogLevel.ERROR,
                        target_kind=row.target_kind,
                        target_key=row.target_key,
                        evaluator=evaluator.name,
                        message=(result.error or "")[:MAX_LOG_MESSAGE],
                    )
                )
            if not ran:
                counts["skipped"] += 1
                row.status = ItemStatus.SKIPPED
                row.reason = "; ".join(dict.fromkeys(r["skipped"] for r in row.results))
            else:
                row.status = ItemStatus.ERROR if failed else ItemStatus.DONE
        TaskRunItem.objects.bulk_update(
            [item.row for item in items], ["status", "results", "reason", "finished_at"]
        )
        logs += _skip_logs(run, skips)
        TaskRunLog.objects.bulk_create(logs)
        for name, value in counts.items():
            setattr(run, name, getattr(run, name) + value)
        run.finished += len(items)
        run.cost += cost
        starts = [i.row.start_time for i in items if i.row.start_time is not None]
        if starts:
            run.items_start = min([*starts, *([run.items_start] if run.items_start else [])])
            run.items_end = max([*starts, *([run.items_end] if run.items_end else [])])
        run.lease_expires_at = now + timedelta(seconds=lease_seconds())
        run.updated_at = now
        run.save()

    def _finish(self) -> str:
        with transaction.atomic():
            run = TaskRun.objects.select_for_update().get(pk=self.run.pk)
            if run.status != RunStatus.RUNNING or run.lease_owner != self.worker:
                return "lost"
            if run.items.filter(status=ItemStatus.PENDING).exists():
                return self._release(run)
            now = timezone.now()
            run.status, run.finished_at, run.updated_at = RunStatus.COMPLETED, now, now
            run.lease_owner, run.lease_expires_at = "", None
            run.save()
            run_log(
                run,
                f"completed: {run.succeeded} succeeded, {run.errored} errored, "
                f"{run.skipped} skipped",
            )
        return "finished"

    def _yield(self) -> str:
        with transaction.atomic():
            run = TaskRun.objects.select_for_update().get(pk=self.run.pk)
            if run.status != RunStatus.RUNNING or run.lease_owner != self.worker:
                return "cancelled" if run.status == RunStatus.CANCELLED else "lost"
            return self._release(run)

    def _release(self, run: TaskRun) -> str:
        run.lease_owner, run.lease_expires_at, run.updated_at = "", None, timezone.now()
        run.save(update_fields=["lease_owner", "lease_expires_at", "updated_at"])
        return "yielded"


class _Fatal(Exception):
    pass


def _item_result(evaluator: str, result: EvaluationResult) -> dict[str, Any]:
    """What an item keeps of one evaluation, for its run's items list."""
    entry = {
        "evaluator": evaluator,
        "label": result.label,
        "score": result.score,
        "explanation": result.explanation,
        "latency_ms": result.latency_ms,
        "error": None if result.skipped else result.error,
        "skipped": result.skipped,
        "judge_trace_id": result.judge_trace_id,
        "judge_project": result.judge_project,
    }
    if entry["error"] is not None:
        entry["error"] = entry["error"][:MAX_LOG_MESSAGE]
    return {key: value for key, value in entry.items() if value is not None}


def _skip_logs(run: TaskRun, skips: dict[tuple[str, str], list[TaskRunItem]]) -> list[TaskRunLog]:
    """One log line per reason items were skipped for: an existing line of the run counts the
    new items, else a new line names the first item."""
    new = []
    for (evaluator, reason), rows in skips.items():
        message = f"skipped: {reason}"[:MAX_LOG_MESSAGE]
        counted = TaskRunLog.objects.filter(
            run=run, level=RunLogLevel.WARNING, evaluator=evaluator, message=message
        ).update(count=F("count") + len(rows))
        if not counted:
            new.append(
                TaskRunLog(
                    run=run,
                    level=RunLogLevel.WARNING,
                    target_kind=rows[0].target_kind,
                    target_key=rows[0].target_key,
                    evaluator=evaluator,
                    message=message,
                    count=len(rows),
                )
            )
    return new


def run_work(
    *,
    run_id: int,
    worker: str | None = None,
    slice_seconds: float | None = None,
    concurrency: int | None = None,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
) -> str:
    """Work on a run for up to ``slice_seconds``. Returns ``finished``, ``yielded`` (items are
    left: dispatch it again), ``failed``, ``cancelled``, ``busy`` (another worker holds it),
    ``gone`` (no such active run) or ``lost`` (its lease went to another worker)."""
    worker = worker or worker_name()
    slice_seconds = slice_seconds or _setting("EVALHUB_RUN_SLICE_SECONDS", 60)
    deadline = time.monotonic() + slice_seconds
    run = TaskRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_active:
        return "gone"
    claimed = _claim(run_id, worker)
    if claimed is None:
        return "busy"
    run = claimed
    try:
        if not run.planned:
            run = run_plan(run=run)
        engine = _Engine(run, worker, limiter=limiter, retry=retry, concurrency=concurrency)
    except _Fatal as exc:
        run_fail(run_id=run.pk, reason=str(exc), pause_task=True)
        return "failed"
    return engine.go(deadline)
