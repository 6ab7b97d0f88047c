"""Shadow versions: start one (a candidate definition, or an alignment run's draft), what a
task's runs add for it, where its results go, promote it, discard it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from evalhub.alignment.models import AlignmentRun
from evalhub.core.fields import FieldInvalid
from evalhub.evaluators.models import Evaluator, EvaluatorVersion
from evalhub.evaluators.selectors import evaluator_version_latest
from evalhub.evaluators.services import evaluator_config_check, evaluator_update
from evalhub.shadow.models import ShadowResult, ShadowStatus, ShadowVersion
from evalhub.tasks.hooks import ShadowOutcome
from evalhub.tasks.models import Task, TaskRun

MAX_TEXT = 4000


class ShadowInvalid(FieldInvalid):
    """Bad input or a refused change: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


def _candidate(
    *,
    evaluator: Evaluator,
    candidate: Mapping[str, Any] | None,
    alignment_run: AlignmentRun | None,
    user: User | None,
    admin: bool | None,
) -> dict[str, Any]:
    if alignment_run is not None:
        if alignment_run.evaluator_id != evaluator.pk:
            raise ShadowInvalid("alignment_id", f"is not an alignment run of {evaluator.name}")
        if candidate is None:
            candidate = alignment_run.draft
    if candidate is None:
        raise ShadowInvalid("candidate", "give a candidate definition or an alignment run")
    if not isinstance(candidate, Mapping):
        raise ShadowInvalid("candidate", "must be an object (an evaluator definition)")
    try:
        cleaned = evaluator_config_check(dict(candidate), user, admin)
    except ValueError as exc:  # EvaluatorConfigError too; the message names the field
        raise ShadowInvalid("candidate", str(exc)) from exc
    if cleaned["kind"] != evaluator.kind:
        raise ShadowInvalid("candidate", "kind: an evaluator's kind cannot change")
    if cleaned == evaluator_version_latest(evaluator=evaluator).config:
        raise ShadowInvalid("candidate", "is the active version's definition: change something")
    return cleaned


def shadow_start(
    *,
    task: Task,
    evaluator: Evaluator,
    candidate: Mapping[str, Any] | None = None,
    alignment_run: AlignmentRun | None = None,
    user: User | None = None,
    admin: bool | None = None,
) -> ShadowVersion:
    """Run ``candidate`` (else ``alignment_run``'s draft) beside ``evaluator``'s active version
    in ``task``'s next runs. One running shadow per task and evaluator. Raises
    ``ShadowInvalid``, or ``PermissionDenied`` for custom code by a non-admin."""
    if task.on_dataset:
        raise ShadowInvalid("task", "is a dataset's task: shadows run beside a project's task")
    if not task.task_evaluators.filter(evaluator=evaluator).exists():
        raise ShadowInvalid("evaluator", f"{evaluator.name} is not one of the task's evaluators")
    cleaned = _candidate(
        evaluator=evaluator,
        candidate=candidate,
        alignment_run=alignment_run,
        user=user,
        admin=admin,
    )
    running = ShadowInvalid(
        "evaluator",
        f"{evaluator.name} already has a running shadow on this task: promote or discard it",
    )
    if ShadowVersion.objects.filter(
        task=task, evaluator=evaluator, status=ShadowStatus.RUNNING
    ).exists():
        raise running
    try:
        with transaction.atomic():
            return ShadowVersion.objects.create(
                task=task,
                evaluator=evaluator,
                candidate=cleaned,
                base_version=evaluator_version_latest(evaluator=evaluator),
                alignment_run=alignment_run,
                created_by=user if user is not None and user.pk else None,
            )
    except IntegrityError as exc:  # another request started one meanwhile
        raise running from exc


def shadows_run_config(*, task: Task | None, config: Mapping[str, Any]) -> dict[str, Any]:
    """What a run of ``task`` adds to its settings (``evalhub.tasks.hooks``): the running
    shadows of the evaluators it evaluates, each with the task's variable mapping."""
    if task is None or task.on_dataset:  # shadows compare judges on a project's spans
        return {}
    entries = {e["evaluator_id"]: e for e in config.get("evaluators", [])}
    shadows = ShadowVersion.objects.filter(
        task=task, status=ShadowStatus.RUNNING, evaluator_id__in=list(entries)
    ).order_by("id")
    return {
        "shadows": [
            {
                "shadow_id": shadow.pk,
                "evaluator_id": shadow.evaluator_id,
                "candidate": shadow.candidate,
                "variables": entries[shadow.evaluator_id].get("variables") or {},
            }
            for shadow in shadows
        ]
    }


def shadow_results_write(*, run: TaskRun, results: list[ShadowOutcome]) -> int:
    """Store the candidates' results of a run's items (``evalhub.tasks.hooks``; in the
    transaction that writes the items): one row per shadow and item, a re-evaluation updates
    it. Results of a shadow no longer running (promoted or discarded meanwhile) are dropped,
    as are evaluations that did not apply (skipped)."""
    ids = {outcome.shadow_id for outcome in results}
    running = set(
        ShadowVersion.objects.filter(pk__in=ids, status=ShadowStatus.RUNNING).values_list(
            "pk", flat=True
        )
    )
    now = timezone.now()
    rows = []
    for outcome in results:
        result = outcome.result
        if outcome.shadow_id not in running or result.skipped:
            continue
        span = outcome.span
        rows.append(
            ShadowResult(
                shadow_id=outcome.shadow_id,
                run=run,
                target_kind=str(outcome.row.target_kind).upper(),
                target_key=outcome.row.target_key,
                target_pk=outcome.row.target_pk,
                trace_id=span.trace.trace_id if span is not None else "",
                span_id=span.span_id if span is not None else "",
                when=outcome.row.start_time,
                label=result.label if result.ok else None,
                score=result.score if result.ok else None,
                explanation=(result.explanation or "")[:MAX_TEXT] if result.ok else "",
                error="" if result.ok else (result.error or "failed")[:MAX_TEXT],
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost=result.cost,
                latency_ms=result.latency_ms,
                created_at=now,
            )
        )
    ShadowResult.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["shadow", "target_kind", "target_key"],
        update_fields=[
            "run",
            "label",
            "score",
            "explanation",
            "error",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "latency_ms",
            "created_at",
        ],
    )
    return len(rows)


def _running(shadow: ShadowVersion) -> ShadowVersion:
    locked = ShadowVersion.objects.select_for_update().get(pk=shadow.pk)
    if locked.status != ShadowStatus.RUNNING:
        raise ShadowInvalid("shadow", f"is {locked.get_status_display().lower()} already")
    return locked


@transaction.atomic
def shadow_promote(
    *, shadow: ShadowVersion, user: User | None = None, admin: bool | None = None
) -> EvaluatorVersion:
    """Make the candidate the evaluator's active version: its next version (every task using
    the evaluator runs it from their next run). Past results keep naming the version that
    produced them; the shadow's results stay, as the candidate's record. Raises
    ``ShadowInvalid`` unless the shadow is running."""
    shadow = _running(shadow)
    try:
        version = evaluator_update(
            evaluator=shadow.evaluator, user=user, config=shadow.candidate, admin=admin
        )
    except ValueError as exc:
        raise ShadowInvalid("candidate", str(exc)) from exc
    shadow.status, shadow.promoted_version = ShadowStatus.PROMOTED, version
    shadow.finished_at = timezone.now()
    shadow.save(update_fields=["status", "promoted_version", "finished_at"])
    return version


@transaction.atomic
def shadow_discard(*, shadow: ShadowVersion) -> int:
    """Stop the shadow and remove its results; returns how many were removed. Raises
    ``ShadowInvalid`` unless the shadow is running."""
    shadow = _running(shadow)
    removed, _ = ShadowResult.objects.filter(shadow=shadow).delete()
    shadow.status, shadow.finished_at = ShadowStatus.DISCARDED, timezone.now()
    shadow.save(update_fields=["status", "finished_at"])
    return removed
