"""Alignment runs: create one from the items people labelled, run the draft over them (the
hub's judge code and provider limiter, on threads), save the draft as the evaluator's next
version, copy the labelled items into a dataset of golden examples."""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from queue import SimpleQueue
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from annotations.agreement import TRACE, rating_pairs
from annotations.datasets.services import DatasetAdded, dataset_examples_add_by_name
from annotations.store.selectors import agreement_ratings
from evalhub.alignment.models import (
    AlignmentItem,
    AlignmentItemStatus,
    AlignmentRun,
    AlignmentStatus,
)
from evalhub.budgets.guard import budget_guard
from evalhub.calibration.estimate import SAMPLE, Estimate, JudgeInput, run_estimate
from evalhub.core.jobs import job_send
from evalhub.evaluators.definition import EvaluatorConfigError
from evalhub.evaluators.models import Evaluator, EvaluatorVersion
from evalhub.evaluators.running import (
    EvaluationResult,
    evaluation_cost,
    evaluation_execute,
    evaluation_prepare,
)
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_config_check, evaluator_update
from evalhub.providers.limiter import Limiter
from evalhub.providers.llm import RetryPolicy
from evalhub.providers.models import Provider
from evalhub.tasks.engine import representative_spans
from tracing.models import Project, Session, Span, Trace

logger = logging.getLogger(__name__)

MAX_ITEMS = 2000
DEFAULT_ITEMS = 500
LEASE = timedelta(minutes=10)
WRITE_EVERY = 25


class AlignmentInvalid(ValueError):
    """Bad input for an alignment run: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class LabelledItem:
    target_kind: str
    target_key: str
    human_label: str
    current_label: str | None
    current_version: int | None


def labelled_items(*, project: Project, name: str) -> tuple[list[LabelledItem], int]:
    """The items people gave a label named ``name`` in ``project``, with the people's majority
    label and the evaluator's stored result on it (the agreement page's pairing); and how many
    items were left out because people disagree there without a majority."""
    ratings = agreement_ratings(project=project, name=name)
    people: dict[tuple[str, str], Counter[str]] = {}
    for rating in ratings:
        if rating.rater.is_human and rating.label is not None:
            key = (rating.target.kind, rating.target.key)
            people.setdefault(key, Counter())[rating.label] += 1
    current: dict[tuple[str, str], tuple[str, int | None]] = {}
    for _name, first, second in rating_pairs(ratings):
        if first.rater.is_human and not second.rater.is_human and second.label is not None:
            current[(first.target.kind, first.target.key)] = (second.label, second.version)
    items, tied = [], 0
    for key in sorted(people):
        (top, n), *rest = people[key].most_common()
        if rest and rest[0][1] == n:
            tied += 1
            continue
        label, version = current.get(key, (None, None))
        items.append(LabelledItem(key[0], key[1], top, label, version))
    return items, tied


def item_spans(project: Project, items: list[LabelledItem]) -> dict[tuple[str, str], Span]:
    """Each item's span (a trace's root span, a session's first trace's root span)."""
    found: dict[tuple[str, str], Span] = {}
    keys: dict[str, list[str]] = {}
    for item in items:
        keys.setdefault(item.target_kind, []).append(item.target_key)
    for span in Span.objects.filter(project=project, span_id__in=keys.get("SPAN", [])):
        found[("SPAN", span.span_id)] = span
    for kind, model, granularity in (
        (TRACE, Trace, "trace"),
        ("SESSION", Session, "session"),
    ):
        if not keys.get(kind):
            continue
        field = "trace_id" if model is Trace else "session_id"
        pks = dict(
            model.objects.filter(project=project, **{f"{field}__in": keys[kind]}).values_list(
                "pk", field
            )
        )
        for pk, span in representative_spans(granularity, list(pks)).items():
            found[(kind, pks[pk])] = span
    return found


def draft_clean(
    *, evaluator: Evaluator, draft: Any, user: AbstractBaseUser | None, admin: bool | None = None
) -> dict[str, Any]:
    """The validated draft definition (the rules of saving a version); raises
    ``AlignmentInvalid`` naming the field."""
    if not isinstance(draft, dict):
        raise AlignmentInvalid("draft", "must be an object: an evaluator definition")
    try:
        cleaned = evaluator_config_check(draft, user, admin)
    except EvaluatorConfigError as exc:
        raise AlignmentInvalid("draft", str(exc)) from None
    except ValueError as exc:
        raise AlignmentInvalid("draft", str(exc)) from None
    if cleaned["kind"] != evaluator.kind:
        raise AlignmentInvalid("draft", "kind: the draft must be of the evaluator's kind")
    return cleaned


def alignment_estimate(
    *,
    evaluator: Evaluator,
    project: Project,
    draft: Any,
    user: AbstractBaseUser | None = None,
    admin: bool | None = None,
    max_items: int = DEFAULT_ITEMS,
) -> Estimate:
    """What running ``draft`` over the labelled items would take (``alignment_run_create``'s
    items): calls, tokens, cost, duration. Writes nothing; raises ``AlignmentInvalid``."""
    cleaned = draft_clean(evaluator=evaluator, draft=draft, user=user, admin=admin)
    _check_max_items(max_items)
    items, _tied = labelled_items(project=project, name=evaluator.annotation_name)
    spans = item_spans(project, items[:max_items])
    chosen = [
        spans[(i.target_kind, i.target_key)]
        for i in items
        if (i.target_kind, i.target_key) in spans
    ]
    draft_version = EvaluatorVersion(evaluator=evaluator, number=0, config=cleaned)
    return run_estimate(
        items=min(len(chosen), max_items),
        judges=[JudgeInput(version=draft_version)],
        spans=chosen[:SAMPLE],
        capped=len(items) > max_items,
    )


def _check_max_items(max_items: Any) -> None:
    if not isinstance(max_items, int) or isinstance(max_items, bool) or max_items < 1:
        raise AlignmentInvalid("max_items", "must be a whole number of at least 1")
    if max_items > MAX_ITEMS:
        raise AlignmentInvalid("max_items", f"must be at most {MAX_ITEMS}")


# The Celery task working an alignment run (evalhub.alignment.jobs).
RUN_EXECUTE = "alignment.run_execute"


def alignment_dispatch(run_id: int) -> None:
    """Send the run to a worker (after the commit that made it). A message that cannot be
    sent leaves the run queued: the page offers to send it again."""
    try:
        job_send(RUN_EXECUTE, run_id)
    except Exception:  # the broker is down
        logger.exception("could not dispatch alignment run %s", run_id)


def alignment_run_resume(*, run: AlignmentRun) -> bool:
    """Send a queued run, or a running one whose worker's lease expired, to a worker again
    (the run's claim makes a second message harmless). False when it needs nothing."""
    stale = run.status == AlignmentStatus.RUNNING and (
        run.lease_expires_at is None or run.lease_expires_at <= timezone.now()
    )
    if run.status != AlignmentStatus.QUEUED and not stale:
        return False
    transaction.on_commit(lambda: alignment_dispatch(run.pk))
    return True


@transaction.atomic
def alignment_run_create(
    *,
    evaluator: Evaluator,
    project: Project,
    draft: Any,
    user: AbstractBaseUser | None = None,
    admin: bool | None = None,
    max_items: int = DEFAULT_ITEMS,
) -> AlignmentRun:
    """A run of ``draft`` over (up to ``max_items`` of) the items people labelled with the
    evaluator's result name in ``project``, queued for a worker. Raises ``AlignmentInvalid``
    (nothing written) for a bad draft, a bad limit or no labelled item."""
    _check_max_items(max_items)
    cleaned = draft_clean(evaluator=evaluator, draft=draft, user=user, admin=admin)
    items, tied = labelled_items(project=project, name=evaluator.annotation_name)
    spans = item_spans(project, items)
    items = [item for item in items if (item.target_kind, item.target_key) in spans][:max_items]
    if not items:
        raise AlignmentInvalid(
            "project",
            f"nobody labelled an item of {project.name} with {evaluator.annotation_name!r} yet",
        )
    run = AlignmentRun.objects.create(
        evaluator=evaluator,
        project=project,
        base_version=evaluator_version_latest(evaluator=evaluator),
        draft=cleaned,
        total=len(items),
        skipped=tied,
        created_by=user if user is not None and user.pk else None,
    )
    AlignmentItem.objects.bulk_create(
        AlignmentItem(
            run=run,
            target_kind=item.target_kind,
            target_key=item.target_key,
            span=spans[(item.target_kind, item.target_key)],
            human_label=item.human_label,
            current_label=item.current_label,
            current_version=item.current_version,
        )
        for item in items
    )
    transaction.on_commit(lambda: alignment_dispatch(run.pk))
    return run


# --- running ---------------------------------------------------------------------------------


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
        run.lease_expires_at = now + LEASE
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
    """Store a batch of results: one UPDATE for the items, one for the run's counters."""
    if not finished:
        return
    with transaction.atomic():
        written = _items_update([(item.pk, _item_values(result)) for item, result in finished])
        mine = [result for item, result in finished if item.pk in written]
        AlignmentRun.objects.filter(pk=run.pk).update(
            done=F("done") + len(mine),
            errored=F("errored") + sum(1 for r in mine if r.error),
            prompt_tokens=F("prompt_tokens") + sum(r.prompt_tokens or 0 for r in mine),
            completion_tokens=F("completion_tokens") + sum(r.completion_tokens or 0 for r in mine),
            cost=F("cost") + sum(r.cost or 0.0 for r in mine),
            lease_expires_at=timezone.now() + LEASE,
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
    if draft.get("provider_id") is not None:
        return Provider.objects.filter(pk=draft["provider_id"]).first()
    return Provider.objects.filter(is_default=True).first()


def alignment_run_work(
    *,
    run_id: int,
    limiter: Limiter | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int | None = None,
) -> str:
    """Evaluate the run's pending items with its draft: prepared on this thread, the judge
    calls on a pool bounded by the provider's concurrency (and the shared limiter), results
    written every few items. Idempotent: a finished run, or one another worker holds, is left
    alone; a resumed run evaluates only pending items. Returns ``completed``, ``failed`` or
    ``skipped``."""
    run = _claim(run_id)
    if run is None:
        return "skipped"
    draft_version = EvaluatorVersion(evaluator=run.evaluator, number=0, config=run.draft)
    provider = _draft_provider(run.draft)
    pending = (
        run.items.filter(status=AlignmentItemStatus.PENDING)
        .select_related("span__trace", "span__session", "span__project")
        .order_by("id")
    )
    limit = concurrency or int(getattr(settings, "EVALHUB_TASK_CONCURRENCY", 16))
    if provider is not None:
        limit = min(limit, max(provider.max_concurrency, 1))
    # Prepared one at a time as slots free up: the first calls start at once.
    prepared = (
        (item, evaluation_prepare(version=draft_version, span=item.span, provider=provider))
        for item in list(pending)
    )
    finished: list[tuple[AlignmentItem, EvaluationResult]] = []
    fatal = ""
    queue = prepared
    # The spend budgets of the evaluator, its provider and everything hold here too.
    provider_id = provider.pk if provider is not None else None
    guard = budget_guard(
        task_id=None, evaluator_ids=[run.evaluator_id], provider_ids=[provider_id or 0]
    )
    inflight: dict[Future[EvaluationResult], AlignmentItem] = {}
    completed: SimpleQueue[Future[EvaluationResult]] = SimpleQueue()
    with ThreadPoolExecutor(max_workers=max(limit, 1), thread_name_prefix="align") as pool:

        def refill() -> None:
            """Start calls until every slot is busy (or the items, the provider or the
            budget end)."""
            nonlocal fatal
            while not fatal and len(inflight) < limit:
                entry = next(queue, None)
                if entry is None:
                    return
                item, ready = entry
                if ready.result.fatal:  # no item could run: no provider, a bad key…
                    fatal = ready.result.error or "the provider cannot be used"
                    return
                if ready.result.error is not None:
                    finished.append((item, ready.result))
                    continue
                over_budget = guard.blocked(evaluator_id=run.evaluator_id, provider_id=provider_id)
                if over_budget:
                    fatal = over_budget
                    return
                future = pool.submit(evaluation_execute, ready, limiter=limiter, retry=retry)
                inflight[future] = item
                future.add_done_callback(completed.put)

        while True:
            refill()
            if not inflight:
                break
            # Calls report on a queue as they end: one wake-up a call, not a wait over all.
            done = [completed.get()]
            while not completed.empty():
                done.append(completed.get_nowait())
            for future in done:
                item = inflight.pop(future)
                result = future.result()
                if result.fatal:
                    fatal = fatal or (result.error or "the provider refused the request")
                    continue
                evaluation_cost(result)
                guard.record(
                    evaluator_id=run.evaluator_id,
                    provider_id=provider_id,
                    tokens=result.total_tokens,
                    cost=result.cost,
                )
                finished.append((item, result))
            if len(finished) >= WRITE_EVERY:
                refill()  # the freed slots' next calls start before the write
                _write(run, finished)
                finished = []
    _write(run, finished)
    _finish(run, fatal)
    return "failed" if fatal else "completed"


# --- saving --------------------------------------------------------------------------------


@transaction.atomic
def alignment_save(
    *, run: AlignmentRun, user: AbstractBaseUser | None = None, admin: bool | None = None
) -> EvaluatorVersion:
    """Save the run's draft as the evaluator's next version (the same definition saved twice
    is one version). Raises ``AlignmentInvalid`` while the run is not completed."""
    run = AlignmentRun.objects.select_for_update().get(pk=run.pk)
    if run.status != AlignmentStatus.COMPLETED:
        raise AlignmentInvalid("run", f"is {run.status}: save it once it has completed")
    version = evaluator_update(evaluator=run.evaluator, user=user, config=run.draft, admin=admin)
    run.saved_version = version
    run.save(update_fields=["saved_version"])
    return version


def alignment_golden_dataset(
    *, run: AlignmentRun, name: str, user: AbstractBaseUser | None = None
) -> DatasetAdded:
    """Copy the run's items — with their labels, people's and the evaluator's — into the
    dataset ``name`` (created when there is none): golden examples whose expected output is
    the people's label. Items already in it are skipped. Raises the dataset services' errors
    (``DatasetInvalid`` naming the field)."""
    added: DatasetAdded | None = None
    by_source: dict[str, list[int]] = {}
    for kind, span_pk in run.items.filter(span__isnull=False).values_list("target_kind", "span"):
        by_source.setdefault(kind.lower(), []).append(span_pk)
    total_added = total_skipped = 0
    with transaction.atomic():
        for source in ("span", "trace", "session"):
            if source not in by_source:
                continue
            added = dataset_examples_add_by_name(
                name=name,
                spans=by_source[source],
                source=source,  # type: ignore[arg-type]
                expected_output_from=run.evaluator.annotation_name,
                user=user,
            )
            total_added += added.added
            total_skipped += added.skipped
    if added is None:
        raise AlignmentInvalid("run", "has no item with a span left to copy")
    return DatasetAdded(
        dataset=added.dataset, added=total_added, skipped=total_skipped, created=added.created
    )


__all__ = [
    "AlignmentInvalid",
    "LabelledItem",
    "alignment_dispatch",
    "alignment_estimate",
    "alignment_golden_dataset",
    "alignment_run_create",
    "alignment_run_resume",
    "alignment_run_work",
    "alignment_save",
    "draft_clean",
    "item_spans",
    "labelled_items",
]
