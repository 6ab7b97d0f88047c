"""Where a shard's results are written (``ResultWriter.write``): the annotations (or what the
run's target stores), the judge calls' spans with tracing on, the items, the run's logs and
counts, and the after-write hooks — in the engine's transaction, which holds the run's lock and
checks the shard's lease.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from annotations.models import AnnotationSource
from annotations.naming import result_name
from annotations.store.services import (
    AnnotationInput,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from evalhub.evaluators.results import result_annotation
from evalhub.evaluators.running import (
    EvaluationResult,
)
from evalhub.tasks.evaluating import RunEvaluator, WorkItem
from evalhub.tasks.hooks import (
    ShadowOutcome,
    items_written,
    shadow_written,
)
from evalhub.tasks.judge_tracing import JudgeCall, judge_calls_record
from evalhub.tasks.models import (
    ItemStatus,
    RunLogLevel,
    TaskRun,
    TaskRunItem,
    TaskRunLog,
)

MAX_LOG_MESSAGE = 2000


class ResultWriter:
    """Writes the results of one shard's items, evaluated by ``evaluators``."""

    def __init__(
        self,
        *,
        evaluators: list[RunEvaluator],
        granularity: str,
        worker: str,
        target: Any,
        tracing: bool,
    ) -> None:
        self.evaluators, self.granularity, self.worker = evaluators, granularity, worker
        self.target, self.tracing = target, tracing

    def _annotation_inputs(self, run: TaskRun, items: list[WorkItem]) -> list[AnnotationInput]:
        inputs = []
        kind = self.granularity.upper()
        for item in items:
            if item.skip_reason:
                continue
            for evaluator, result in zip(self.evaluators, item.results, strict=True):
                assert result is not None
                if result.skipped or evaluator.shadow_id:  # shadows: never annotations
                    continue
                metadata = {"run_id": run.pk, "task_id": run.task_id}
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

    def _target_results(self, items: list[WorkItem]) -> list[tuple[TaskRunItem, str, str, Any]]:
        """The results a run's target stores (every evaluation that ran, failed ones too)."""
        return [
            (item.row, evaluator.name, evaluator.annotator_kind, result)
            for item in items
            if not item.skip_reason
            for evaluator, result in zip(self.evaluators, item.results, strict=True)
            if result is not None and not result.skipped and not evaluator.shadow_id
        ]

    def _judge_calls_record(self, run: TaskRun, items: list[WorkItem]) -> None:
        """Enable tracing: the judge calls of these items as LLM spans, their trace ids kept
        on the results (so the annotations and the items link to them)."""
        calls = [
            JudgeCall(
                prepared=prepared,
                result=item.results[index],  # type: ignore[arg-type]  # a judge item: its results are judge results
                evaluator=self.evaluators[index].name,
                target_kind=item.row.target_kind,
                target_id=item.row.target_key,
            )
            for item in items
            if not item.skip_reason
            for index, prepared in item.prepared.items()
        ]
        assert run.project is not None  # tracing is for a project's runs
        judge_calls_record(calls, project_name=run.project.name, run_id=run.pk, task_id=run.task_id)

    def write(self, run: TaskRun, items: list[WorkItem]) -> None:
        """The annotations, the items and the run's counts, in the transaction of the engine's
        ``_flush`` (which holds the run's lock and checks the shard's lease)."""
        if self.tracing:
            self._judge_calls_record(run, items)
        while self.target is None:
            try:
                with transaction.atomic():
                    annotations_upsert(
                        items=self._annotation_inputs(run, items),
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


def _document_inputs(
    item: WorkItem, evaluator: RunEvaluator, result: EvaluationResult, kind: str, metadata: dict
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
    entry: dict[str, Any] = {
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
