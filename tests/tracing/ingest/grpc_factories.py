"""The OTLP/gRPC exporter that keeps its results, and a raw gRPC export call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from tracing.ingest.grpc import SERVICE


class RecordingExporter(OTLPSpanExporter):
    """The OTLP/gRPC exporter, keeping the result of every export."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(insecure=True, timeout=15, **kwargs)
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        self.results.append(result)
        return result


def export_raw(
    endpoint: str, body: bytes, metadata: Sequence[tuple[str, str]] = (), **kwargs: Any
) -> bytes:
    """One ``Export`` call with ``body`` as the serialized request, as any client sends it."""
    with grpc.insecure_channel(endpoint) as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        return export(body, metadata=metadata, timeout=15, **kwargs)
