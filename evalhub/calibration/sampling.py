"""Calibration sampling: which judged items of a task go to people, and the hook the task
engine calls once a batch of results is written (``calibration_sample``).

The choice is stratified by the judge's label and deterministic: within each label, the
label's first item goes, then one more each time the label's items reach the next multiple of
1 / rate (``sent < ceil(rate x seen)``) — every label gets its share of the queue, rare labels
included, and the same results written in the same order choose the same items. It runs in the
transaction that writes the results, so each item is considered once, whatever the retries.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from annotations.queues.models import LabelingQueue
from annotations.queues.services import QueueInvalid, QueueItemsNotFound, queue_items_add
from evalhub.calibration.models import CalibrationSampling
from evalhub.evaluators.models import Evaluator
from evalhub.tasks.models import ItemStatus, Task

logger = logging.getLogger(__name__)

_IDS = {"span": "span_ids", "trace": "trace_ids", "session": "session_ids"}


class SamplingInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message
        super().__init__(f"{field}: {message}")


def stratified_choice(
    labels: Iterable[str | None], strata: dict[str, list[int]], rate_percent: float
) -> list[int]:
    """The positions of ``labels`` to send, updating ``strata`` (label → [seen, sent])."""
    chosen = []
    for position, label in enumerate(labels):
        if label is None:
            continue
        seen, sent = strata.get(label, [0, 0])
        seen += 1
        if sent < math.ceil(rate_percent / 100 * seen - 1e-9):
            sent += 1
            chosen.append(position)
        strata[label] = [seen, sent]
    return chosen


@transaction.atomic
def calibration_sampling_set(
    *,
    task: Task,
    queue: LabelingQueue,
    rate_percent: Any,
    evaluator: Evaluator | None = None,
    stratify: bool = True,
) -> CalibrationSampling:
    """Send ``rate_percent`` of ``task``'s judged items to ``queue`` from now on. Raises
    ``SamplingInvalid`` naming the field."""
    if isinstance(rate_percent, bool) or not isinstance(rate_percent, int | float):
        raise SamplingInvalid("rate_percent", "must be a number")
    if not 0 < rate_percent <= 100:
        raise SamplingInvalid("rate_percent", "must be above 0 and at most 100")
    if queue.item_kind.lower() != task.granularity:
        raise SamplingInvalid(
            "queue", f"takes {queue.item_kind.lower()}s; the task evaluates {task.granularity}s"
        )
    if evaluator is not None and not task.task_evaluators.filter(evaluator=evaluator).exists():
        raise SamplingInvalid("evaluator", f"{evaluator.name} is not one of the task's")
    config, _ = CalibrationSampling.objects.update_or_create(
        task=task,
        defaults={
            "queue": queue,
            "rate_percent": float(rate_percent),
            "evaluator": evaluator,
            "stratify": bool(stratify),
            "updated_at": timezone.now(),
        },
    )
    return config


def calibration_sampling_clear(*, task: Task) -> None:
    CalibrationSampling.objects.filter(task=task).delete()


def _label(row: Any, evaluator: str | None) -> str | None:
    for result in row.results or []:
        if evaluator is not None and result.get("evaluator") != evaluator:
            continue
        if result.get("label") is not None and not result.get("error"):
            return str(result["label"])
    return None


def calibration_sample(*, run: Any, rows: list[Any]) -> int:
    """The engine's hook after it wrote ``rows`` (``TaskRunItem``s with their results), in the
    same transaction: send the task's share of them to its calibration queue. Returns how many
    were sent. An item the queue cannot take is logged and left out; the results stand."""
    if run.task_id is None or not rows or run.project_id is None:
        return 0  # a dataset task's items are experiment runs: no queue takes them
    config = (
        CalibrationSampling.objects.select_for_update(of=("self",))
        .select_related("queue", "evaluator")
        .filter(task_id=run.task_id)
        .first()
    )
    if config is None:
        return 0
    done = [row for row in rows if row.status == ItemStatus.DONE]
    evaluator = config.evaluator.name if config.evaluator is not None else None
    strata = dict(config.strata)
    labels = (_label(row, evaluator) for row in done)
    if not config.stratify:  # one stratum: every judged item alike
        labels = ("*" if label is not None else None for label in labels)
    chosen = stratified_choice(labels, strata, config.rate_percent)
    config.strata, config.updated_at = strata, timezone.now()
    config.save(update_fields=["strata", "updated_at"])
    keys = [done[position].target_key for position in chosen]
    if not keys:
        return 0
    try:
        with transaction.atomic():
            queue_items_add(
                queue=config.queue, project=run.project, **{_IDS[done[0].target_kind]: keys}
            )
    except (QueueInvalid, QueueItemsNotFound) as exc:
        logger.warning("calibration sampling of task %s: %s", run.task_id, exc)
        return 0
    return len(keys)


__all__ = [
    "SamplingInvalid",
    "calibration_sample",
    "calibration_sampling_clear",
    "calibration_sampling_set",
    "stratified_choice",
]
