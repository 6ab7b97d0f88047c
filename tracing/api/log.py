"""Logging spans with their evaluations in one transaction (``POST /v1/projects/{id}/spans``, the Arize and Phoenix SDKs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from annotations.store.services import (
    AnnotationInput,
    AnnotationTargetNotFound,
    annotations_upsert,
)
from tracing.models import Project, Span, Trace
from tracing.store.records import (
    SpanRecord,
    SpanRecordError,
)
from tracing.store.services import spans_ingest


@dataclass
class SpanLogResult:
    received: int = 0
    inserted: int = 0
    evaluations: int = 0


class SpanBatchRejected(ValueError):
    """A span batch that was not written: its invalid and duplicate spans (``span_id``,
    ``trace_id``, and for invalid ones the ``error``), and other ``errors`` (evaluations)."""

    def __init__(
        self,
        *,
        received: int,
        invalid: Sequence[dict[str, str]] = (),
        duplicates: Sequence[dict[str, str]] = (),
        errors: Sequence[str] = (),
    ) -> None:
        self.received = received
        self.invalid = list(invalid)
        self.duplicates = list(duplicates)
        self.errors = list(errors)
        parts = []
        if self.invalid:
            parts.append(
                f"{len(self.invalid)} invalid span(s): "
                + "; ".join(f"{i['span_id']}: {i['error']}" for i in self.invalid[:5])
            )
        if self.duplicates:
            parts.append(
                f"{len(self.duplicates)} duplicate span(s): "
                + ", ".join(d["span_id"] for d in self.duplicates[:5])
            )
        parts.extend(self.errors[:5])
        super().__init__("; ".join(parts) or "the batch was rejected")


@transaction.atomic
def spans_log(
    *,
    project: Project,
    spans: Sequence[Any],
    evaluations: Sequence[AnnotationInput] = (),
) -> SpanLogResult:
    """Store a batch of spans in Phoenix's JSON shape into ``project``, all or nothing.

    A span that cannot be read, whose trace belongs to another project, that is already stored
    or that appears twice in the batch rejects the whole batch (``SpanBatchRejected``). The
    ``evaluations`` (annotations on spans or traces of the batch or already stored in the
    project) are written in the same transaction.
    """
    from tracing.ingest.phoenix import record_from_phoenix

    records: list[SpanRecord] = []
    invalid: list[dict[str, str]] = []
    for position, raw in enumerate(spans):
        try:
            record = record_from_phoenix(raw)
        except SpanRecordError as exc:
            context = raw.get("context") if isinstance(raw, dict) else None
            context = context if isinstance(context, dict) else {}
            invalid.append(
                {
                    "span_id": str(context.get("span_id") or f"#{position}"),
                    "trace_id": str(context.get("trace_id") or ""),
                    "error": f"data.{position}: {exc}",
                }
            )
            continue
        record.project_name = project.name
        records.append(record)

    seen: set[str] = set()
    duplicates: list[dict[str, str]] = []
    for record in records:
        if record.span_id in seen:
            duplicates.append({"span_id": record.span_id, "trace_id": record.trace_id})
        seen.add(record.span_id)
    stored = set(Span.objects.filter(span_id__in=sorted(seen)).values_list("span_id", flat=True))
    duplicates.extend(
        {"span_id": r.span_id, "trace_id": r.trace_id} for r in records if r.span_id in stored
    )
    other_project = dict(
        Trace.objects.filter(trace_id__in={r.trace_id for r in records})
        .exclude(project=project)
        .values_list("trace_id", "project__name")
    )
    invalid.extend(
        {
            "span_id": r.span_id,
            "trace_id": r.trace_id,
            "error": f"trace {r.trace_id} belongs to project {other_project[r.trace_id]!r}",
        }
        for r in records
        if r.trace_id in other_project
    )
    if invalid or duplicates:
        raise SpanBatchRejected(received=len(spans), invalid=invalid, duplicates=duplicates)

    ingested = spans_ingest(records=records, default_project=project.name)
    if ingested.rejected:
        raise SpanBatchRejected(
            received=len(spans),
            invalid=[
                {"span_id": r.span_id, "trace_id": r.trace_id, "error": r.reason}
                for r in ingested.rejected
            ],
        )
    if ingested.inserted != len(records):
        # Another request stored some of these spans since the check above.
        raise SpanBatchRejected(
            received=len(spans),
            errors=["some of these spans were stored by another request meanwhile"],
        )
    result = SpanLogResult(received=len(spans), inserted=ingested.inserted)
    if evaluations:
        try:
            result.evaluations = len(
                annotations_upsert(items=evaluations, source="API", project=project)
            )
        except AnnotationTargetNotFound as exc:
            raise SpanBatchRejected(
                received=len(spans),
                errors=[f"evaluations: targets not found: {', '.join(exc.missing)}"],
            ) from exc
        except ValueError as exc:
            raise SpanBatchRejected(received=len(spans), errors=[f"evaluations: {exc}"]) from exc
    return result
