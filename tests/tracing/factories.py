"""Builders shared by the tracing tests: a span in Phoenix's REST shape."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from tests import factories

_ids = itertools.count(1)


def phoenix_span(
    *,
    trace_id: str | None = None,
    span_id: str | None = None,
    parent_id: str | None = None,
    name: str = "span",
    span_kind: str = "CHAIN",
    start: datetime | None = None,
    latency_ms: float = 100.0,
    status_code: str = "OK",
    attributes: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A span in Phoenix's REST shape, as the Phoenix client sends it."""
    start = start or factories.BASE_TIME
    n = next(_ids)
    span: dict[str, Any] = {
        "name": name,
        "context": {
            "trace_id": trace_id or f"{0xABC000 + n:032x}",
            "span_id": span_id or f"{0xDEF000 + n:016x}",
        },
        "span_kind": span_kind,
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(milliseconds=latency_ms)).isoformat(),
        "status_code": status_code,
        "status_message": "",
        "attributes": attributes if attributes is not None else {"input.value": "question"},
        "events": events or [],
    }
    if parent_id is not None:
        span["parent_id"] = parent_id
    return span
