"""The spans types at the Arize SDK's import path (``arize.spans.types``): the same classes as
``evalhub_client.types``."""

from evalhub_client.spans.client import SpanList, SpanListResponse
from evalhub_client.types import (
    AnnotateRecordInput,
    Pagination,
    PaginationMetadata,
    Span,
    SpanContext,
    SpanDeletePartialResponse,
    SpansDelete200Response,
    SpansLogResponse,
    SpansUpdateResult,
)

SpansList200Response = SpanList
"""The Arize SDK's earlier name of the span list response."""

__all__ = [
    "AnnotateRecordInput",
    "Pagination",
    "PaginationMetadata",
    "Span",
    "SpanContext",
    "SpanDeletePartialResponse",
    "SpanList",
    "SpanListResponse",
    "SpansDelete200Response",
    "SpansList200Response",
    "SpansLogResponse",
    "SpansUpdateResult",
]
