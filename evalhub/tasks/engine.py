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

This module holds the leases, the shards and the loop; what a run evaluates with and on is
``evaluating``'s (``run_evaluators``, ``representative_spans``), and the results are written by
``writing`` (``ResultWriter``) inside this module's lease-checking transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from evalhub.evaluators.models import EvaluatorKind
from evalhub.evaluators.running import (
    EvaluationResult,
    PreparedEvaluation,
    evaluation_cost,
    evaluation_execute,
    evaluation_prepare,
)
from evalhub.providers.limiter import Limiter
from evalhub.providers.llm import RetryPolicy
from evalhub.tasks import runs
from evalhub.tasks.backfill import run_plan
from evalhub.tasks.evaluating import RunFatal, WorkItem, representative_spans, run_evaluators
from evalhub.tasks.hooks import (
    run_guards,
    run_target,
)
from evalhub.tasks.models import (
    ItemStatus,
    RunLogLevel,
    RunStatus,
    TaskRun,
    TaskRunShard,
)
from evalhub.tasks.runs import lease_seconds, run_fail, run_log
from evalhub.tasks.writing import ResultWriter
from tracing.models import Span

logger = logging.getLogger(__name__)

ITEM_CHUNK = 200
FLUSH_SECONDS = 1.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


@dataclass
class _Unit:
    item: WorkItem
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
            transaction.on_commit(lambda: runs.run_dispatch(run_id))
        return run, shard


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
        self.evaluators = run_evaluators(run)
        self.guards = run_guards(task_id=run.task_id, evaluators=self.evaluators)
        self.concurrency = concurrency or self._concurrency()
        self.ready: list[WorkItem] = []
        self.fatal: str = ""
        self.stop = False
        self.lost = False
        self.last_flush = time.monotonic()
        self.writer = ResultWriter(
            evaluators=self.evaluators,
            granularity=self.granularity,
            worker=worker,
            target=self.target,
            tracing=self.tracing,
        )

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
                item = WorkItem(row=row, span=span)
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
                self.writer.write(run, items)
                shard.lease_expires_at = timezone.now() + timedelta(seconds=lease_seconds())
                shard.save(update_fields=["lease_expires_at"])
        except _LeaseLost:
            self.lost = self.stop = True
            return
        self.run = run

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
        except RunFatal as exc:
            run_fail(run_id=run.pk, reason=str(exc), pause_task=True)
            return "failed"
        outcome = engine.go(deadline)
        if outcome != "shard done":
            return outcome
        if time.monotonic() > deadline or _others_waiting(run_id):
            return "yielded"  # to the back of the queue: a shard is a turn
