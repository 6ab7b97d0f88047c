"""Builders shared by the SDK tests: span frames with nested attributes, nulls and metadata."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from tests import factories

T0 = factories.BASE_TIME


def span_rows(count: int = 3, *, trace_id: str = "a" * 32, first: int = 1) -> list[dict[str, Any]]:
    """Span-frame rows with nested attributes, nulls and metadata; the first is the root."""
    root_id = f"{first:016x}"
    rows = []
    for i in range(count):
        llm = i % 3 == 1
        start = T0 + timedelta(seconds=i)
        rows.append(
            {
                "context.span_id": f"{first + i:016x}",
                "context.trace_id": trace_id,
                "parent_id": None if i == 0 else root_id,
                "name": "llm" if llm else f"step-{i}",
                "span_kind": "LLM" if llm else "CHAIN",
                "start_time": start,
                "end_time": start + timedelta(milliseconds=250 * (i + 1)),
                "status_code": "ERROR" if i % 3 == 2 else "OK",
                "status_message": "boom" if i % 3 == 2 else "",
                "events": [],
                "attributes.input.value": f"question {i}",
                "attributes.output.value": None if i % 3 == 2 else f"answer {i}",
                "attributes.llm.model_name": "gpt-4o-mini" if llm else None,
                "attributes.llm.token_count.prompt": 120 if llm else None,
                "attributes.llm.input_messages": (
                    [
                        {"message": {"role": "system", "content": "Be brief."}},
                        {"message": {"role": "user", "content": f"question {i}"}},
                    ]
                    if llm
                    else None
                ),
                "attributes.tag.tags": ["vip", "beta"] if i == 0 else None,
                "attributes.app.attempt": i,  # int64
                "attributes.app.cached": i % 2 == 0,  # bool
                "attributes.metadata.region": "eu-west" if i % 2 else "us-east",
                "attributes.metadata.limits.max_tokens": 512 if llm else None,
                "attributes.retrieval.documents": (
                    [{"document": {"id": "doc-1", "score": 0.5}}] if i % 3 == 2 else None
                ),
            }
        )
    return rows


def span_frame(count: int = 3, **kwargs: Any) -> pd.DataFrame:
    frame = pd.DataFrame(span_rows(count, **kwargs))
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
