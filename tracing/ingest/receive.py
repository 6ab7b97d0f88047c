"""OTLP bodies in: decoded (``tracing.ingest.otlp``) and stored (``tracing.store.services.spans_ingest``); used by the HTTP and gRPC endpoints."""

from __future__ import annotations

from tracing.ingest.otlp import (
    PROJECT_NAME_MAX_LENGTH,
    OtlpDecodeError,
    spans_from_otlp_json,
    spans_from_otlp_protobuf,
)
from tracing.store.services import IngestResult, spans_ingest


def otlp_ingest(*, body: bytes, is_json: bool, project_name: str | None = None) -> IngestResult:
    """Store the spans of an OTLP ``ExportTraceServiceRequest`` (protobuf, or OTLP JSON when
    ``is_json``; already decompressed) as ``spans_ingest`` does: the valid ones are stored, the
    others come back in ``result.rejected``. Raises ``OtlpDecodeError`` when the payload cannot
    be read at all. ``project_name`` (the ``x-project-name`` header) wins over the resource's
    ``openinference.project.name``. Both OTLP transports, HTTP and gRPC, come through here."""
    if project_name is not None and len(project_name.strip()) > PROJECT_NAME_MAX_LENGTH:
        # The header names the project of every span: the whole request is refused.
        raise OtlpDecodeError(
            f"x-project-name: project name is longer than {PROJECT_NAME_MAX_LENGTH} characters"
        )
    decode = spans_from_otlp_json if is_json else spans_from_otlp_protobuf
    decoded = decode(body, project_name=project_name)
    result = spans_ingest(records=decoded.records, default_project=project_name)
    result.received += len(decoded.rejected)
    result.rejected[:0] = decoded.rejected
    return result
