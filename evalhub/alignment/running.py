"""Working an alignment run: a worker claims it (a lease on the run's row, renewed as it goes),
evaluates its pending items with the draft — the hub's judge code and provider limiter, the
calls on a pool of threads — and writes each batch of results in one statement, only on items
still pending. A beat sweeper (``alignment_runs_sweep``) sends again the runs whose message was
lost (queued too long) or whose worker died (its lease ran out); whoever works a run, each item
is written into it once."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from evalhub.alignment.models import (
    AlignmentItem,
    AlignmentItemStatus,
    AlignmentRun,
    AlignmentStatus,
)
from evalhub.budgets.guard import BudgetGuard, budget_guard
from evalhub.core.jobs import job_send
from evalhub.evaluators.models import EvaluatorVersion
from evalhub.evaluators.running import (
    EvaluationResult,
    PreparedEvaluation,
    evaluation_cost,
    evaluation_execute,
    evaluation_prepare,
)
from evalhub.providers.limiter import Limiter, Limits, limiter_default
from evalhub.providers.llm import RetryPolicy, client_for
from evalhub.providers.models import Provider
from evalhub.providers.selectors import provider_config, provider_for

logger = logging.getLogger(__name__)

WRITE_EVERY = 25
READ_EVERY = 200  # items read from the database at once, after the first calls' share
COLLECT_SECONDS = 0.02  # without a budget, the writing thread wakes at most this often

# The Celery task working an alignment run (evalhub.alignment.jobs).
RUN_EXECUTE = "alignment.run_execute"
RUNS_SWEEP = "alignment.runs_sweep"  # beat, every EVALHUB_RUNS_SWEEP_SECONDS


def lease() -> timedelta:
    """How long a worker holds a run without news (``EVALHUB_RUN_LEASE_SECONDS``, as task
    runs): it renews the lease at least three times in that span while it works."""
    return timedelta(seconds=int(settings.EVALHUB_RUN_LEASE_SECONDS))


def alignment_dispatch(run_id: int) -> None:
    """Send the run to a worker (after the commit that made it). A message that cannot be
    sent leaves the run queued: the sweeper (or the page's "send again") sends it later."""
    try:
        job_send(RUN_EXECUTE, run_id)
    except Exception:  # the broker is down
        logger.exception("could not dispatch alignment run %s", run_id)


def _stale(now: datetime) -> Q:
    """Runs that need a worker: queued a lease ago and not sent again since (the first
    message lost), or running with their lease run out (the worker died)."""
    lapsed = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    queued = Q(status=AlignmentStatus.QUEUED, created_at__lt=now - lease())
    return (queued | Q(status=AlignmentStatus.RUNNING)) & lapsed


@transaction.atomic
def alignment_run_resend(*, run_id: int, now: datetime | None = None) -> bool:
    """Send a run that needs a worker (``_stale``) again, after the commit: marked queued and
    not swept again for a lease. The run's claim makes a message too many harmless; items
    already written are not evaluated again. False when it needs nothing."""
    now = now or timezone.now()
    updated = AlignmentRun.objects.filter(_stale(now), pk=run_id).update(
        status=AlignmentStatus.QUEUED, lease_expires_at=now + lease()
    )
    if updated:
        transaction.on_commit(lambda: alignment_dispatch(run_id))
    return bool(updated)


def alignment_run_resume(*, run: AlignmentRun) -> bool:
    """The page's "send again": a queued run (however recent) or a running one whose lease
    ran out. False when it needs nothing."""
    now = timezone.now()
    stale = run.lease_expires_at is None or run.lease_expires_at <= now
    if run.status not in (AlignmentStatus.QUEUED, AlignmentStatus.RUNNING) or (
        run.status == AlignmentStatus.RUNNING and not stale
    ):
        return False
    AlignmentRun.objects.filter(pk=run.pk, status=run.status).update(
        status=AlignmentStatus.QUEUED, lease_expires_at=now + lease()
    )
    transaction.on_commit(lambda: alignment_dispatch(run.pk))
    return True


def alignment_runs_sweep(*, now: datetime | None = None) -> list[int]:
    """The beat sweeper: every run that needs a worker is sent again. Returns their ids."""
    now = now or timezone.now()
    ids = list(
        AlignmentRun.objects.filter(_stale(now)).order_by("id").values_list("pk", flat=True)[:100]
    )
    sent = [run_id for run_id in ids if alignment_run_resend(run_id=run_id, now=now)]
    if sent:
        logger.warning("alignment runs sent to a worker again: %s", sent)
    return sent


def _claim(run_id: int) -> AlignmentRun | None:
    with transaction.atomic():
        run = AlignmentRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not run.is_active:
            return None
        now = timezone.now()
        if (
            run.status == AlignmentStatus.RUNNING
            and run.lease_expires_at is not None
            and run.lease_expires_at > now
        ):
            return None  # another worker has it
        run.status = AlignmentStatus.RUNNING
        run.started_at = run.started_at or now
        run.lease_expires_at = now + lease()
        run.save(update_fields=["status", "started_at", "lease_expires_at"])
        return run


_COLUMNS = (
    ("status", "varchar"),
    ("draft_label", "varchar"),
    ("draft_score", "double precision"),
    ("draft_explanation", "text"),
    ("error", "text"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ("latency_ms", "double precision"),
)


def _item_values(result: EvaluationResult) -> tuple[Any, ...]:
    return (
        AlignmentItemStatus.ERROR if result.error else AlignmentItemStatus.DONE,
        result.label,
        result.score,
        (result.explanation or "")[:4000],
        (result.skipped or result.error or "")[:2000],
        result.prompt_tokens,
        result.completion_tokens,
        result.latency_ms,
    )


def _items_update(rows: list[tuple[int, tuple[Any, ...]]]) -> set[int]:
    """Write the draft's results of these items in one statement, only on items still
    pending; the ids written. An item another worker wrote meanwhile (a resumed run whose
    first worker was still alive) keeps its first result: each item is evaluated into the run
    once."""
    table = connection.ops.quote_name(AlignmentItem._meta.db_table)
    first = ", ".join(
        ["CAST(%s AS bigint) AS id"] + [f"CAST(%s AS {kind}) AS {name}" for name, kind in _COLUMNS]
    )
    rest = ", ".join(["%s"] * (len(_COLUMNS) + 1))
    selects = [f"SELECT {first}"] + [f"SELECT {rest}"] * (len(rows) - 1)
    assignments = ", ".join(f"{name} = v.{name}" for name, _kind in _COLUMNS)
    # Only this module's column names and placeholders: every value is a parameter.
    sql = (
        f"UPDATE {table} SET {assignments} FROM ({' UNION ALL '.join(selects)}) AS v "  # noqa: S608
        f"WHERE {table}.id = v.id AND {table}.status = %s RETURNING {table}.id"
    )
    params = [value for pk, values in rows for value in (pk, *values)]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, AlignmentItemStatus.PENDING])
        return {row[0] for row in cursor.fetchall()}


def _write(run: AlignmentRun, finished: list[tuple[AlignmentItem, EvaluationResult]]) -> None:
    """Store a batch of results (one UPDATE for the items, one for the run's counters) and
    renew the run's lease."""
    with transaction.atomic():
        written = (
            _items_update([(item.pk, _item_values(result)) for item, result in finished])
            if finished
            else set()
        )
        mine = [result for item, result in finished if item.pk in written]
        AlignmentRun.objects.filter(pk=run.pk).update(
            done=F("done") + len(mine),
            errored=F("errored") + sum(1 for r in mine if r.error),
            prompt_tokens=F("prompt_tokens") + sum(r.prompt_tokens or 0 for r in mine),
            completion_tokens=F("completion_tokens") + sum(r.completion_tokens or 0 for r in mine),
            cost=F("cost") + sum(r.cost or 0.0 for r in mine),
            lease_expires_at=timezone.now() + lease(),
        )


def _finish(run: AlignmentRun, error: str = "") -> None:
    AlignmentRun.objects.filter(pk=run.pk).update(
        status=AlignmentStatus.FAILED if error else AlignmentStatus.COMPLETED,
        error=error[:2000],
        finished_at=timezone.now(),
        lease_expires_at=None,
    )


def _draft_provider(draft: dict[str, Any]) -> Provider | None:
    """The provider the draft calls (its own, else the default): read once per run, not per
    item. None: the evaluations fail with the reason, as the hub reports it."""
    return provider_for(draft.get("provider_id"))


class HeldSlots:
    """The provider limiter as a run's calls use it: each of the run's threads takes a slot at
    its first call and keeps it for its next ones — renewed every half lease, so that a dead
    worker's slots still come free — instead of two Redis round trips a call. The run's pool
    is no larger than the provider's concurrency, so it never holds more than its share. A
    provider with a rate limit counts every request: then each call asks the limiter."""

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self._local = threading.local()
        self._held: list[contextlib.AbstractContextManager[None]] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self, limits: Limits, *, timeout: float) -> Iterator[None]:
        if limits.requests:
            with self._limiter.slot(limits, timeout=timeout):
                yield
            return
        renew = (limits.lease_seconds or 60.0) / 2
        held = getattr(self._local, "held", None)
        now = time.monotonic()
        if held is None or now - held[1] > renew:
            if held is not None:
                self._drop(held[0])
            lease = self._limiter.slot(limits, timeout=timeout)
            lease.__enter__()
            with self._lock:
                self._held.append(lease)
            self._local.held = (lease, now)
        yield

    def _drop(self, lease: contextlib.AbstractContextManager[None]) -> None:
        with self._lock:
            self._held.remove(lease)
        lease.__exit__(None, None, None)

    def release(self) -> None:
        """Give every held slot back (the run's end)."""
        with self._lock:
            held, self._held = self._held, []
        for lease in held:
            with contextlib.suppress(Exception):
                lease.__exit__(None, None, None)


class _Callers:
    """The run's judge calls on up to ``size`` threads, started as the first items are handed
    out. Each thread takes the next item off one queue as soon as its last call ends and
    reports on another: no thread busy with the database stands between one call's end and
    the next one's start. A fatal result (a bad key…) stops every thread before its next
    call; an item it did not call comes back without a result (it stays pending)."""

    def __init__(
        self,
        size: int,
        *,
        limiter: HeldSlots,
        retry: RetryPolicy | None,
    ) -> None:
        self.work: SimpleQueue[tuple[AlignmentItem, PreparedEvaluation] | None] = SimpleQueue()
        self.done: SimpleQueue[tuple[AlignmentItem, EvaluationResult | Exception | None]] = (
            SimpleQueue()
        )
        self.stop = threading.Event()
        self._size, self._limiter, self._retry = size, limiter, retry
        self._threads: list[threading.Thread] = []

    def hand(self, item: AlignmentItem, ready: PreparedEvaluation) -> None:
        self.work.put((item, ready))
        if len(self._threads) < self._size:
            thread = threading.Thread(
                target=self._loop, name=f"align-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _loop(self) -> None:
        while (entry := self.work.get()) is not None:
            item, ready = entry
            if self.stop.is_set():
                self.done.put((item, None))
                continue
            try:
                result = evaluation_execute(ready, limiter=self._limiter, retry=self._retry)
            except Exception as exc:  # a bug, not a failed evaluation: the run raises it
                self.stop.set()
                self.done.put((item, exc))
                continue
            if result.fatal:
                self.stop.set()
            self.done.put((item, result))

    def close(self) -> None:
        """Stop the threads (each ends its current call first)."""
        self.stop.set()
        for _thread in self._threads:
            self.work.put(None)
        for thread in self._threads:
            thread.join()


def _pending_items(run: AlignmentRun, first: int) -> Iterator[AlignmentItem]:
    """The run's pending items in id order, read a chunk at a time: the first chunk only as
    large as the first calls need, so they start before the rest is read. Only the span is
    joined: a draft's variables read nothing else of it by row."""
    pending = (
        run.items.filter(status=AlignmentItemStatus.PENDING).select_related("span").order_by("id")
    )
    size, last = first, 0
    while True:
        chunk = list(pending.filter(pk__gt=last)[:size])
        yield from chunk
        if len(chunk) < size:
            return
        last, size = chunk[-1].pk, READ_EVERY


def _work(
    run: AlignmentRun,
    version: EvaluatorVersion,
    provider: Provider | None,
    callers: _Callers,
    guard: BudgetGuard,
    *,
    limit: int,
) -> str:
    """Hand the run's pending items to ``callers`` and write their results every few items.
    Under a budget, each call is asked for just before it starts, so no more than ``limit``
    are handed out. Else every item is read, prepared and handed out while the first calls
    are in flight (this thread's work holds the interpreter: done then, it does not delay
    the later calls), and the database work never delays a call. Returns why the run
    failed, or ``""``."""
    evaluator_id = run.evaluator_id
    provider_id = provider.pk if provider is not None else None
    budgeted = guard.applies(evaluator_id=evaluator_id, provider_id=provider_id)
    ahead = limit if budgeted else sys.maxsize
    prepared = (
        (item, evaluation_prepare(version=version, span=item.span, provider=provider))
        for item in _pending_items(run, limit)
    )
    finished: list[tuple[AlignmentItem, EvaluationResult]] = []
    fatal = ""
    handed = 0  # handed to the callers, not yet back
    heartbeat = lease().total_seconds() / 3
    renewed = time.monotonic()

    def stop(reason: str) -> None:
        nonlocal fatal
        fatal = fatal or reason
        callers.stop.set()

    def feed() -> None:
        """Hand out items until ``ahead`` are out (or the items, the provider or the budget
        end)."""
        nonlocal handed
        while not fatal and handed < ahead:
            entry = next(prepared, None)
            if entry is None:
                return
            item, ready = entry
            if ready.result.fatal:  # no item could run: no provider, a bad key…
                stop(ready.result.error or "the provider cannot be used")
                return
            if ready.result.error is not None:
                finished.append((item, ready.result))
                continue
            if budgeted:
                over_budget = guard.blocked(evaluator_id=evaluator_id, provider_id=provider_id)
                if over_budget:
                    stop(over_budget)
                    return
            callers.hand(item, ready)
            handed += 1

    while True:
        feed()
        if not handed:
            break
        # Calls report on a queue as they end: one wake-up for all that ended meanwhile.
        try:
            done = [callers.done.get(timeout=heartbeat)]
        except Empty:  # slow calls: the lease is renewed all the same
            done = []
        if not budgeted and handed > limit:
            # The threads have items enough: collect a few answers a wake-up, not one (each
            # wake-up takes the interpreter from a thread about to send or read a request).
            time.sleep(COLLECT_SECONDS)
        while not callers.done.empty():
            done.append(callers.done.get_nowait())
        for item, result in done:
            handed -= 1
            if result is None:  # not called: the run stops
                continue
            if isinstance(result, Exception):
                raise result
            if result.fatal:
                stop(result.error or "the provider refused the request")
                continue
            evaluation_cost(result)
            guard.record(
                evaluator_id=evaluator_id,
                provider_id=provider_id,
                tokens=result.total_tokens,
                cost=result.cost,
            )
            finished.append((item, result))
        if len(finished) >= WRITE_EVERY or time.monotonic() - renewed > heartbeat:
            feed()  # with a budget, the next calls start before the write
            _write(run, finished)
            finished, renewed = [], time.monotonic()
    _write(run, finished)
    return fatal


def _client_make(provider: Provider | None) -> None:
    """The provider's client, made before the first item is read (not by the first call,
    while the other threads wait for it): its TLS context alone is tens of milliseconds."""
    if provider is not None:
        with contextlib.suppress(Exception):  # the calls report it, item by item
            client_for(provider_config(provider))


def alignment_run_work(
    *,
    run_id: int,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int | None = None,
) -> str:
    """Evaluate the run's pending items with its draft: read and prepared on this thread, the
    judge calls on threads bounded by the provider's concurrency (and the shared limiter),
    results written every few items. The first calls start once the first items are ready;
    the rest are read meanwhile. Idempotent: a finished run, or one another worker holds, is
    left alone; a resumed run evaluates only pending items. Returns ``completed``, ``failed``
    or ``skipped``."""
    run = _claim(run_id)
    if run is None:
        return "skipped"
    draft_version = EvaluatorVersion(evaluator=run.evaluator, number=0, config=run.draft)
    provider = _draft_provider(run.draft)
    limit = concurrency or int(getattr(settings, "EVALHUB_TASK_CONCURRENCY", 16))
    if provider is not None:
        limit = min(limit, max(provider.max_concurrency, 1))
    limit = max(limit, 1)
    # The spend budgets of the evaluator, its provider and everything hold here too.
    guard = budget_guard(
        task_id=None,
        evaluator_ids=[run.evaluator_id],
        provider_ids=[provider.pk if provider is not None else 0],
    )
    slots = HeldSlots(limiter or limiter_default())
    _client_make(provider)
    callers = _Callers(limit, limiter=slots, retry=retry)
    try:
        fatal = _work(run, draft_version, provider, callers, guard, limit=limit)
    finally:
        callers.close()
        slots.release()
    _finish(run, fatal)
    return "failed" if fatal else "completed"
