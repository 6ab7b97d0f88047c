"""Ingestion: wire formats in, ``SpanRecord`` objects out, stored by ``spans_ingest``."""

from tracing.ingest.otlp import (
    BodyTooLargeError,
    OtlpDecodeError,
    OtlpSpans,
    UnsupportedEncodingError,
    body_decompress,
    spans_from_otlp_json,
    spans_from_otlp_protobuf,
)
from tracing.store.records import RejectedSpan, SpanRecord, SpanRecordError, flatten, unflatten

__all__ = [
    "BodyTooLargeError",
    "OtlpDecodeError",
    "OtlpSpans",
    "RejectedSpan",
    "SpanRecord",
    "SpanRecordError",
    "UnsupportedEncodingError",
    "body_decompress",
    "flatten",
    "spans_from_otlp_json",
    "spans_from_otlp_protobuf",
    "unflatten",
]
