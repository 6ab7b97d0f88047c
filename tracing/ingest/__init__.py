"""Ingestion: wire formats in, ``SpanRecord`` objects out, stored by ``spans_ingest``."""

from tracing.ingest.records import SpanRecord, SpanRecordError, flatten, unflatten

__all__ = ["SpanRecord", "SpanRecordError", "flatten", "unflatten"]
