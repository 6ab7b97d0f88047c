"""What ``client.spans`` takes and returns, in the Arize spans SDK's shapes.

Objects (``Span``, ``Pagination``, ``AnnotationInput``, ...) are Pydantic models: attribute
access to every field (``span.context.span_id``), ``to_dict()`` / ``to_json()``, and Pydantic's
``model_fields`` (which fields a type has), ``model_dump()`` and ``model_dump_json()``. Results
of the update calls are dicts (``result["spans_updated"]``) whose keys are also attributes
(``result.spans_updated``).

The Arize SDK's import paths work with the package name changed:
``from evalhub_client.spans.types import AnnotateRecordInput`` and
``from evalhub_client.annotation_queues.types import AnnotationInput`` are these classes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class _Model(BaseModel):
    """``to_dict()`` (fields that are ``None`` left out, as the Arize SDK does) and
    ``to_json()``."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


# --- what the span listing returns -----------------------------------------------------------


class SpanContext(_Model):
    model_config = ConfigDict(frozen=True, extra="allow")

    trace_id: str
    span_id: str


class Span(_Model):
    """A span as ``client.spans.list`` returns it (read-only).

    ``span_id``, ``trace_id`` (from ``context``) and ``kind`` (``span_kind``) are there too, as
    the Arize SDK names them. ``attributes`` holds the OpenInference attributes with flat dotted
    keys (``span.attributes["llm.model_name"]``), input, output and metadata included.
    ``to_dict()`` is the span exactly as the API sent it; fields the API adds later are kept
    (``span.model_extra``).
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    id: str | None = Field(None, description="EvalHub's id of the span (spans.delete takes it)")
    name: str
    context: SpanContext
    span_kind: str | None = None
    parent_id: str | None = None
    start_time: datetime
    end_time: datetime
    status_code: str = "UNSET"
    status_message: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)
    events: list[dict[str, Any]] = Field(default_factory=list)

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Span:
        span = cls.model_validate(data)
        span._raw = dict(data)
        return span

    @property
    def span_id(self) -> str:
        return self.context.span_id

    @property
    def trace_id(self) -> str:
        return self.context.trace_id

    @property
    def kind(self) -> str | None:
        return self.span_kind

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._raw) if self._raw else super().to_dict()


class Pagination(_Model):
    """Where the next page starts: pass ``next_cursor`` as ``cursor=`` to the same call."""

    model_config = ConfigDict(frozen=True)

    next_cursor: str | None = None
    has_more: bool = False


PaginationMetadata = Pagination
"""The Arize SDK's name."""


# --- annotations by span id ------------------------------------------------------------------


class AnnotationInput(_Model):
    """One annotation value for a record: ``label``, ``score`` and/or ``text`` (the
    annotation's explanation, a free-form note), under the annotation ``name``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=255)
    score: float | None = None
    label: str | None = None
    text: str | None = None


class AnnotateRecordInput(_Model):
    """The annotations of one span: ``record_id`` is its span id."""

    model_config = ConfigDict(extra="forbid")

    record_id: str
    values: list[AnnotationInput] = Field(..., min_length=1)


# --- results ---------------------------------------------------------------------------------


class SpanDeletePartialResponse(_Model):
    """What ``spans.delete`` returns when only part of the spans were deleted: their
    ``deleted_span_ids``; ``detail`` says why the rest were not. Deleting again is safe (ids
    already gone are ignored)."""

    deleted_span_ids: list[str]
    detail: str | None = None


SpansDelete200Response = SpanDeletePartialResponse
"""The Arize SDK's earlier name."""


class SpansLogResponse(dict[str, Any]):
    """What ``spans.log`` returns: ``status_code`` (200: every span was stored), and the totals
    ``total_received``, ``total_queued`` (stored) and ``total_evaluations``, as keys and
    attributes."""

    def __init__(self, totals: Mapping[str, int], *, status_code: int) -> None:
        super().__init__(totals)
        self.status_code = status_code

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def total_received(self) -> int:
        return int(self["total_received"])

    @property
    def total_queued(self) -> int:
        return int(self["total_queued"])

    @property
    def total_evaluations(self) -> int:
        return int(self["total_evaluations"])

    def __repr__(self) -> str:
        return f"SpansLogResponse(status_code={self.status_code}, {dict.__repr__(self)})"


class SpansUpdateResult(dict[str, Any]):
    """What ``update_metadata``, ``update_evaluations`` and ``update_annotations`` return: a dict
    with ``spans_processed`` (rows given), ``spans_updated``, ``spans_failed`` and ``errors``
    (``[{"span_id": ..., "error_message": ...}]``); the update calls on evaluations and
    annotations add ``records`` (rows received) and ``annotations`` (written). Every key is also
    an attribute."""

    @property
    def spans_processed(self) -> int:
        return int(self["spans_processed"])

    @property
    def spans_updated(self) -> int:
        return int(self["spans_updated"])

    @property
    def spans_failed(self) -> int:
        return int(self["spans_failed"])

    @property
    def errors(self) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = self["errors"]
        return errors

    @property
    def records(self) -> int:
        return int(self["records"])

    @property
    def annotations(self) -> int:
        return int(self["annotations"])


MetadataUpdateResult = SpansUpdateResult
"""The name earlier versions of this SDK gave ``update_metadata``'s result."""


__all__ = [
    "AnnotateRecordInput",
    "AnnotationInput",
    "MetadataUpdateResult",
    "Pagination",
    "PaginationMetadata",
    "Span",
    "SpanContext",
    "SpanDeletePartialResponse",
    "SpansDelete200Response",
    "SpansLogResponse",
    "SpansUpdateResult",
]
