"""``run_work``: evaluate a run's pending items, a shard at a time.

A run's items are cut into shards — contiguous chunks of its item list — when the first worker
takes it up. A worker leases one shard (under the run's row lock) and sends one more message for
the run when another shard is free, so every free worker joins in, up to
``EVALHUB_RUN_MAX_SHARDS`` shards of one run at once (the rest of the workers stay for other
runs). Items are read from the database on this thread, evaluated on a thread pool — the judge
calls are what takes time — and their results written in small transactions that check the
shard's lease, mark the items done, add to the run's counts and renew the lease. A redelivered
message, a second worker or a resumed run therefore never evaluates a finished item again, and
re-writing an annotation only updates it. A worker that vanished leaves its shard's lease to
expire; the sweeper then sends a message and the next worker takes the shard over. A cancelled
or failed run stops every shard at its next write.

Work is bounded in time (``EVALHUB_RUN_SLICE_SECONDS``): the worker then lets go of its shard
and the run is dispatched again, so long backfills share the workers and fit Celery's limits.
Provider limits (concurrency, requests per minute) are held in Redis across every process
(``evalhub.providers.limiter``), so more shards never ask more of a provider than it allows.
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
from django.db.models import F, Q
from django.utils import timezone

from annotations.models import AnnotationSource, AnnotatorKind
from annotations.naming import result_name
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
from evalhub.providers.selectors import provider_for
from evalhub.tasks import services as dispatch
from evalhub.tasks.hooks import (
    ShadowOutcome,
    items_written,
    run_guards,
    run_target,
    shadow_written,
)
from evalhub.tasks.judge_tracing import JudgeCall, judge_calls_record
from evalhub.tasks.models import (
    Granularity,
    ItemStatus,
    RunLogLevel,
    RunStatus,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
    TaskRunShard,
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
    shadow_id: int | None = None  # a shadow candidate: results to ``shadow_written`` only


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


# --- shards and claiming -------------------------------------------------------------------


def max_shards() -> int:
    """Shards of one run worked at once, at most: the other workers stay free for other runs."""
    return max(int(_setting("EVALHUB_RUN_MAX_SHARDS", 8)), 1)


def shard_size(total: int) -> int:
    """Items per shard: small enough that every free worker gets some (about four shards per
    worker a run may have), large enough that a shard's start and its last requests draining
    stay a small part of it; ``EVALHUB_RUN_SHARD_ITEMS`` fixes it."""
    fixed = int(_setting("EVALHUB_RUN_SHARD_ITEMS", 0))
    if fixed > 0:
        return fixed
    return min(max(-(-total // (4 * max_shards())), 50), 1000)


def _shards_make(run: TaskRun) -> None:
    """Cut the run's items, in id order, into contiguous shards (once, under the run's lock).
    The ids are streamed: memory stays flat however many items there are."""
    size = shard_size(run.items.count())
    shards: list[TaskRunShard] = []
    first = last = None
    count = 0
    for item_id in run.items.order_by("id").values_list("id", flat=True).iterator(10_000):
        if first is None:
            first = item_id
        last, count = item_id, count + 1
        if count == size:
            shards.append(_shard(run, len(shards) + 1, first, last, count))
            first, count = None, 0
    if first is not None and last is not None:
        shards.append(_shard(run, len(shards) + 1, first, last, count))
    TaskRunShard.objects.bulk_create(shards, batch_size=1000)
    if len(shards) > 1:
        run_log(run, f"{run.items.count()} items in {len(shards)} shards of up to {size}")


def _shard(run: TaskRun, number: int, first: int, last: int, size: int) -> TaskRunShard:
    return TaskRunShard(run=run, number=number, first_item=first, last_item=last, size=size)


def _run_complete(run: TaskRun) -> None:
    now = timezone.now()
    run.status, run.finished_at, run.updated_at = RunStatus.COMPLETED, now, now
    run.save()
    run_log(
        run,
        f"completed: {run.succeeded} succeeded, {run.errored} errored, {run.skipped} skipped",
    )


def _claim(run_id: int, worker: str) -> tuple[TaskRun, TaskRunShard] | str:
    """Lease the run's next free shard (listing the run's items and cutting them into shards
    first, if no worker has). Returns the run and the shard, or ``gone``, ``busy`` (every open
    shard is leased, or the run has its share of workers) or ``finished`` (no shard is open)."""
    with transaction.atomic():
        run = TaskRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_active:
            return "gone"
        now = timezone.now()
        if run.status == RunStatus.QUEUED:
            run.status, run.started_at, run.updated_at = RunStatus.RUNNING, now, now
            run.save(update_fields=["status", "started_at", "updated_at"])
            run_log(run, f"started on {worker}")
        if not run.planned:
            run = run_plan(run=run)
        if not run.shards.exists():
            _shards_make(run)
        open_shards = run.shards.filter(finished_at__isnull=True)
        if not open_shards.exists():
            _run_complete(run)
            return "finished"
        leased = open_shards.exclude(lease_owner="").filter(lease_expires_at__gte=now)
        in_flight = leased.count()
        if in_flight >= max_shards():
            return "busy"
        free = open_shards.exclude(pk__in=leased.values("pk")).order_by("number")
        shard = free.first()
        if shard is None:
            return "busy"
        if shard.lease_owner:
            run_log(
                run,
                f"resumed on {worker} (shard {shard.number}): the lease of {shard.lease_owner} "
                "expired",
                level=RunLogLevel.WARNING,
            )
        shard.lease_owner = worker
        shard.lease_expires_at = now + timedelta(seconds=lease_seconds())
        shard.save(update_fields=["lease_owner", "lease_expires_at"])
        run.updated_at = now
        run.save(update_fields=["updated_at"])
        if in_flight + 1 < max_shards() and free.exclude(pk=shard.pk).exists():
            # One more message for the run: the next free worker takes the next shard.
            transaction.on_commit(lambda: dispatch.run_dispatch(run_id))
        return run, shard


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
        shard: TaskRunShard,
        worker: str,
        *,
        limiter: Limiter | None,
        retry: RetryPolicy | None,
        concurrency: int | None,
    ) -> None:
        self.run, self.shard, self.worker = run, shard, worker
        self.limiter, self.retry = limiter, retry
        self.granularity = run.config["granularity"]
        self.tracing = bool(run.config.get("tracing"))
        self.target = run_target(run.config.get("target"))
        self.evaluators = self._evaluators()
        self.guards = run_guards(task_id=run.task_id, evaluators=self.evaluators)
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

        def provider_of(version: EvaluatorVersion) -> Provider | None:
            if override is not None or version.evaluator.kind != EvaluatorKind.LLM:
                return override
            parsed = config_parse(version.config)
            assert isinstance(parsed, LlmJudgeConfig)
            return provider_for(parsed.provider_id)

        evaluators = []
        for entry in config["evaluators"]:
            version = versions.get(entry["version_id"])
            if version is None:
                raise _Fatal(f"evaluator {entry['name']} was deleted")
            provider = provider_of(version)
            if provider is None and version.evaluator.kind == EvaluatorKind.LLM:
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
        active = {e.version.evaluator_id: e.version.evaluator for e in evaluators}
        return evaluators + self._shadows(provider_of, active)

    def _shadows(self, provider_of: Any, active: dict[int, Any]) -> list[_Evaluator]:
        """The run's shadow candidates (``config["shadows"]``, added by ``hooks``): each an
        unsaved version of an evaluator the run evaluates, called like it on the same items.
        One without a provider is left out (a shadow never stops the active evaluation)."""
        shadows = []
        for entry in self.run.config.get("shadows") or []:
            if entry["evaluator_id"] not in active:
                continue
            version = EvaluatorVersion(
                evaluator=active[entry["evaluator_id"]], number=0, config=entry["candidate"]
            )
            provider = provider_of(version)
            if provider is None and version.evaluator.kind == EvaluatorKind.LLM:
                continue
            shadows.append(
                _Evaluator(
                    version=version,
                    name=version.evaluator.name,
                    annotator_kind=AnnotatorKind.LLM
                    if version.evaluator.kind == EvaluatorKind.LLM
                    else AnnotatorKind.CODE,
                    variables=dict(entry.get("variables") or {}),
                    provider=provider,
                    shadow_id=entry["shadow_id"],
                )
            )
        return shadows

    def _concurrency(self) -> int:
        limit = int(_setting("EVALHUB_TASK_CONCURRENCY", 16))
        providers = {e.provider.pk: e.provider for e in self.evaluators if e.provider is not None}
        if providers:
            limit = min(limit, sum(p.max_concurrency for p in providers.values()))
        return max(limit, 1)

    # The items, read on this thread; each yields one unit per evaluator.
    def _units(self) -> Any:
        last_id = self.shard.first_item - 1
        model = self.run.config.get("model", "")
        while not self.stop:
            rows = list(
                self.run.items.filter(
                    status=ItemStatus.PENDING, id__gt=last_id, id__lte=self.shard.last_item
                ).order_by("id")[:ITEM_CHUNK]
            )
            if not rows:
                return
            last_id = rows[-1].pk
            found = self._inputs([r.target_pk for r in rows])
            for row in rows:
                span, values = found.get(row.target_pk, (None, None))
                item = _Item(row=row, span=span)
                item.results = [None] * len(self.evaluators)
                if values is None:  # gone (a span, trace, session or experiment run)
                    item.skip_reason = f"the {self.granularity} no longer exists"
                    self.ready.append(item)
                    continue
                for index, evaluator in enumerate(self.evaluators):
                    prepared = evaluation_prepare(
                        version=evaluator.version,
                        span=item.span,
                        values=values[index],
                        provider=evaluator.provider,
                        variables=evaluator.variables,
                        model=model
                        if evaluator.version.evaluator.kind == EvaluatorKind.LLM
                        else "",
                    )
                    if self.tracing and prepared.request is not None and not evaluator.shadow_id:
                        item.prepared[index] = prepared
                    yield _Unit(item=item, index=index, prepared=prepared)

    def _inputs(self, pks: list[int]) -> dict[int, tuple[Span | None, list[dict[str, Any]]]]:
        """Item pk → the span its evaluators read and the values each evaluator is given
        (by variable): the representative span of a project's item, or what the run's
        target hands over."""
        if self.target is not None:
            return self.target.inputs(run=self.run, pks=pks, evaluators=self.evaluators)
        spans = representative_spans(self.granularity, pks)
        return {pk: (span, [{} for _ in self.evaluators]) for pk, span in spans.items()}

    def _complete(self, unit: _Unit, result: EvaluationResult) -> None:
        # A shadow candidate's refused call is its failed result: it never stops the run.
        if result.fatal and not self.evaluators[unit.index].shadow_id:
            if not self.fatal:
                self.fatal = result.error or "the provider refused the request"
            self.stop = True
            return
        evaluation_cost(result)
        self.guards.spend(self.evaluators[unit.index], result)
        unit.item.results[unit.index] = result
        if unit.item.complete:
            self.ready.append(unit.item)

    def go(self, deadline: float) -> str:
        """Evaluate the shard until no item of it is left, the deadline passes, or the run
        stops. Returns ``finished`` (the run), ``shard done``, ``yielded``, ``failed``,
        ``cancelled`` or ``lost``."""
        units = self._units()
        exhausted = False
        inflight: dict[Future[EvaluationResult], _Unit] = {}
        with ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"run{self.run.pk}.{self.shard.number}"
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
                    refused = self.guards.check(self.evaluators[unit.index])
                    if refused:  # e.g. a budget is spent: the run fails with it, the task pauses
                        self.fatal, self.stop = self.fatal or refused, True
                        break
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
            return self._gone()
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
                if result.skipped or evaluator.shadow_id:  # shadows: never annotations
                    continue
                metadata = {"run_id": self.run.pk, "task_id": self.run.task_id}
                inputs.append(
                    result_annotation(
                        result=result,
                        evaluator_name=evaluator.name,
                        annotator_kind=evaluator.annotator_kind,
                        target_kind=kind,
                        target_id=item.row.target_key,
                        metadata=metadata,
                    )
                )
                metadata = {**result.annotation_metadata(), **metadata}
                inputs.extend(_document_inputs(item, evaluator, result, kind, metadata))
        return inputs

    def _target_results(self, items: list[_Item]) -> list[tuple[TaskRunItem, str, str, Any]]:
        """The results a run's target stores (every evaluation that ran, failed ones too)."""
        return [
            (item.row, evaluator.name, evaluator.annotator_kind, result)
            for item in items
            if not item.skip_reason
            for evaluator, result in zip(self.evaluators, item.results, strict=True)
            if result is not None and not result.skipped and not evaluator.shadow_id
        ]

    def _held(self) -> tuple[TaskRun, TaskRunShard] | None:
        """The run, locked, and the shard, while this worker still holds the shard's lease and
        the run is running (not cancelled or failed by another shard). Every change to a
        shard's lease happens under this lock."""
        run = TaskRun.objects.select_for_update().get(pk=self.run.pk)
        shard = TaskRunShard.objects.get(pk=self.shard.pk)
        if run.status != RunStatus.RUNNING or shard.lease_owner != self.worker:
            return None
        return run, shard

    def _flush(self) -> None:
        """Write the ready results and renew the shard's lease (the heartbeat: at least every
        third of a lease, results or not)."""
        self.last_flush = time.monotonic()
        items, self.ready = self.ready, []
        try:
            with transaction.atomic():
                held = self._held()
                if held is None:
                    raise _LeaseLost
                run, shard = held
                self._write(run, items)
                shard.lease_expires_at = timezone.now() + timedelta(seconds=lease_seconds())
                shard.save(update_fields=["lease_expires_at"])
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
        """Where results are written: the annotations, the items and the run's counts, in the
        transaction of ``_flush`` (which holds the run's lock and checks the shard's lease)."""
        if self.tracing:
            self._judge_calls_record(run, items)
        while self.target is None:
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
        shadows: list[ShadowOutcome] = []
        for item in items:
            row = item.row
            row.finished_at, row.worker = now, self.worker[:200]
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
                if evaluator.shadow_id:  # what it spent counts; its result goes elsewhere
                    counts["prompt_tokens"] += result.prompt_tokens or 0
                    counts["completion_tokens"] += result.completion_tokens or 0
                    cost += result.cost or 0.0
                    shadows.append(ShadowOutcome(evaluator.shadow_id, row, item.span, result))
                    continue
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
        if self.target is not None:
            self.target.write(run=run, results=self._target_results(items))
        TaskRunItem.objects.bulk_update(
            [item.row for item in items], ["status", "results", "reason", "finished_at", "worker"]
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
        run.updated_at = now
        run.save()
        items_written(run=run, rows=[item.row for item in items])
        shadow_written(run=run, results=shadows)

    def _finish(self) -> str:
        """The shard has no item left: close it, and the run when it was the last open one."""
        with transaction.atomic():
            held = self._held()
            if held is None:
                return self._gone()
            run, shard = held
            pending = run.items.filter(
                status=ItemStatus.PENDING, id__gte=shard.first_item, id__lte=shard.last_item
            )
            if pending.exists():
                return self._release(run, shard)
            shard.lease_owner, shard.lease_expires_at = "", None
            shard.finished_at = timezone.now()
            shard.save(update_fields=["lease_owner", "lease_expires_at", "finished_at"])
            if run.shards.filter(finished_at__isnull=True).exists():
                return "shard done"
            _run_complete(run)
        return "finished"

    def _yield(self) -> str:
        with transaction.atomic():
            held = self._held()
            if held is None:
                return self._gone()
            return self._release(*held)

    def _gone(self) -> str:
        status = TaskRun.objects.filter(pk=self.run.pk).values_list("status", flat=True).first()
        return "cancelled" if status == RunStatus.CANCELLED else "lost"

    def _release(self, run: TaskRun, shard: TaskRunShard) -> str:
        shard.lease_owner, shard.lease_expires_at = "", None
        shard.save(update_fields=["lease_owner", "lease_expires_at"])
        run.updated_at = timezone.now()
        run.save(update_fields=["updated_at"])
        return "yielded"


class _Fatal(Exception):
    pass


def _document_inputs(
    item: _Item, evaluator: _Evaluator, result: EvaluationResult, kind: str, metadata: dict
) -> list[AnnotationInput]:
    """A document check's verdict on each retrieved document of a span, stored on the
    document (span + position) under the evaluator's name, beside the span's own result."""
    if kind != "SPAN" or not result.ok:
        return []
    return [
        AnnotationInput(
            target_kind="DOCUMENT",
            target_id=item.row.target_key,
            document_position=position,
            name=result_name(evaluator.name),
            annotator_kind=evaluator.annotator_kind,
            label=document.label,
            score=document.score,
            explanation=document.explanation,
            metadata={k: v for k, v in metadata.items() if v is not None},
        )
        for position, document in enumerate(result.documents)
        if document.label is not None or document.score is not None
    ]


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


def _others_waiting(run_id: int) -> bool:
    """Whether another run waits for a worker: queued, or with a shard nobody holds. A worker
    that finished a shard then sends its run to the back of the queue instead of taking the
    run's next shard, so runs share the workers a shard at a time."""
    others = TaskRun.objects.exclude(pk=run_id)
    if others.filter(status=RunStatus.QUEUED).exists():
        return True
    return (
        TaskRunShard.objects.filter(run__status=RunStatus.RUNNING, finished_at__isnull=True)
        .exclude(run_id=run_id)
        .filter(Q(lease_owner="") | Q(lease_expires_at__lt=timezone.now()))
        .exists()
    )


def run_work(
    *,
    run_id: int,
    worker: str | None = None,
    slice_seconds: float | None = None,
    concurrency: int | None = None,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
) -> str:
    """Work on a run's shards, one after the other, for up to ``slice_seconds``. Returns
    ``finished`` (the run is), ``yielded`` (items are left: dispatch it again), ``failed``,
    ``cancelled``, ``busy`` (other workers hold what is left), ``gone`` (no such active run)
    or ``lost`` (a shard's lease went to another worker)."""
    worker = worker or worker_name()
    slice_seconds = slice_seconds or _setting("EVALHUB_RUN_SLICE_SECONDS", 60)
    deadline: float | None = None
    run = TaskRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_active:
        return "gone"
    while True:
        claimed = _claim(run_id, worker)
        if isinstance(claimed, str):
            return claimed
        run, shard = claimed
        if deadline is None:  # the slice starts once the run is listed and a shard held
            deadline = time.monotonic() + slice_seconds
        try:
            engine = _Engine(
                run, shard, worker, limiter=limiter, retry=retry, concurrency=concurrency
            )
        except _Fatal as exc:
            run_fail(run_id=run.pk, reason=str(exc), pause_task=True)
            return "failed"
        outcome = engine.go(deadline)
        if outcome != "shard done":
            return outcome
        if time.monotonic() > deadline or _others_waiting(run_id):
            return "yielded"  # to the back of the queue: a shard is a turn
