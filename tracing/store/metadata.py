"""Span metadata edits: a JSON merge patch (RFC 7386, except that null keeps a key) applied to
each span named, with the spans that could not take it reported one by one."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from tracing.models import Project, Span


@dataclass
class SpanMetadataError:
    span_id: str
    error_message: str


@dataclass
class SpanMetadataPatchResult:
    spans_processed: int = 0
    spans_updated: int = 0
    spans_failed: int = 0
    errors: list[SpanMetadataError] = field(default_factory=list)


def metadata_merge(target: Any, patch: Any) -> Any:
    """JSON Merge Patch (RFC 7386), except that ``null`` sets the key to null, not removes it.

    Objects merge key by key, recursively; any other patch value replaces the target value.
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        merged[key] = metadata_merge(merged.get(key), value) if isinstance(value, dict) else value
    return merged


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else type(value).__name__


@transaction.atomic
def spans_metadata_patch(
    *, project: Project, patches: Sequence[tuple[str, Any]]
) -> SpanMetadataPatchResult:
    """Merge each ``(span_id, patch)`` into that span's metadata (see ``metadata_merge``).

    A span not in ``project`` or a patch that is not a JSON object is reported in ``errors``;
    the other patches are still applied. Patches for one span apply in the order given.
    """
    result = SpanMetadataPatchResult(spans_processed=len(patches))
    wanted = sorted({span_id for span_id, _ in patches if isinstance(span_id, str)})
    spans = {
        span.span_id: span
        for span in Span.objects.select_for_update(no_key=True)
        .filter(project=project, span_id__in=wanted)
        .order_by("id")
        .only("id", "span_id", "metadata")
    }
    changed: dict[str, Span] = {}
    for span_id, patch in patches:
        span = spans.get(span_id)
        if span is None:
            message = f"span {span_id!r} not found in project {project.name!r}"
        elif not isinstance(patch, dict):
            message = f"metadata patch must be a JSON object, not {_json_type(patch)}"
        else:
            merged = metadata_merge(span.metadata, patch)
            if merged != span.metadata:
                span.metadata = merged
                changed[span_id] = span
            result.spans_updated += 1
            continue
        result.spans_failed += 1
        result.errors.append(SpanMetadataError(span_id=str(span_id), error_message=message))
    Span.objects.bulk_update(list(changed.values()), ["metadata"], batch_size=500)
    return result


__all__ = ["SpanMetadataError", "SpanMetadataPatchResult", "metadata_merge", "spans_metadata_patch"]
