"""Labelled items for calibration tests: people's labels and a judge's results on spans."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from annotations.store.services import AnnotationInput, annotations_upsert
from tests import factories
from tests.evalhub.fake_openai import completion
from tracing.models import Span

Row = tuple[str, str | None, int]  # (person's label, judge's label or None, judge's version)


def labelled_spans(
    rows: list[Row],
    *,
    name: str = "Correctness",
    project: str = "default",
    start: datetime | None = None,
    step: timedelta = timedelta(hours=6),
    person: str = "alice",
) -> list[Span]:
    """One trace per row (items ``step`` apart from ``start``, input ``question <row>``): the
    person's label on its LLM span and, when given, the judge's result there, naming the
    version that produced it."""
    start = start or factories.BASE_TIME
    spans = []
    items = []
    for index, (human, judge, version) in enumerate(rows):
        llm = factories.trace(
            project=project, start=start + index * step, input_value=f"question {index}"
        )[2]
        spans.append(llm)
        items.append(AnnotationInput("SPAN", llm.span_id, name, label=human, identifier=person))
        if judge is not None:
            items.append(
                AnnotationInput(
                    "SPAN",
                    llm.span_id,
                    name,
                    annotator_kind="LLM",
                    label=judge,
                    metadata={"evaluator": name, "version": version},
                )
            )
    annotations_upsert(items=items)
    return spans


def oracle_reply(
    labels: dict[str, str], default: str
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A fake judge's answer (``FakeOpenAI.reply``) that depends on the prompt: the label of
    the first ``labels`` key found in it (``question 3``), else ``default``; as a tool call
    when the request has tools, else as JSON content."""

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []))
        matches = [key for key in labels if re.search(rf"\b{re.escape(key)}\b", text)]
        label = labels[matches[0]] if matches else default
        return completion(
            body, verdict={"label": label, "explanation": "oracle"}, tokens=(len(text.split()), 8)
        )

    return reply
