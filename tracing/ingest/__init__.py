"""Ingestion: wire formats in (OTLP over HTTP, ``http``, and gRPC, ``grpc``; Phoenix's span
JSON, ``phoenix``), decoded (``otlp``) into ``tracing.store.records.SpanRecord`` objects and
stored by ``tracing.store.services.spans_ingest`` (``receive``).

Nothing is imported here: the gRPC ingest processes import this package before Django is set
up (``grpc_process``)."""
