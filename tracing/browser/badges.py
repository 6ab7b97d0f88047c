"""The evaluation and annotation badges of the trace browser's table rows, from one query per
page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from annotations.models import Annotation
from annotations.naming import MACHINE_KINDS
from tracing.browser.tabs import Tab
from tracing.models import Span


@dataclass(slots=True)
class Badge:
    name: str
    text: str
    tone: str  # "ok", "error" or "" (CSS class)
    explanation: str
    count: int = 1  # equal results on the row's spans (a trace's), shown once


_BADGE_FIELDS: Final = (
    "span_id",
    "span__trace_id",
    "trace_id",
    "session_id",
    "name",
    "label",
    "score",
    "explanation",
    "annotator_kind",
)


def badges_attach(rows: Sequence[Any], *, tab: Tab) -> None:
    """Give each row ``eval_badges`` and ``note_badges`` (lists of ``Badge``) from one query.

    Spans get the annotations on them; a trace row (its root span) those of the whole trace —
    on any of its spans and on the trace itself; a session row those on the session.
    Evaluations are by LLM and code annotators, annotations by people. Equal badges (same
    name and result) are shown once with a count.
    """
    for row in rows:
        row.eval_badges, row.note_badges = [], []
    if not rows:
        return
    owners: dict[tuple[str, int], list[Any]] = {}
    if tab == "sessions":
        for row in rows:
            owners.setdefault(("session", row.pk), []).append(row)
        items = (
            Annotation.objects.filter(session_id__in=[row.pk for row in rows])
            .order_by("name", "id")
            .values(*_BADGE_FIELDS)
        )
    elif tab == "traces":
        for row in rows:
            owners.setdefault(("trace", row.trace_id), []).append(row)
        traces = sorted({row.trace_id for row in rows})
        # Two index-served halves in one statement: the annotations on the traces' spans (by
        # the spans' (trace, start_time) index) and those on the traces themselves.
        on_spans = Annotation.objects.filter(span__in=Span.objects.filter(trace_id__in=traces))
        on_traces = Annotation.objects.filter(trace_id__in=traces)
        items = (
            on_spans.values(*_BADGE_FIELDS, "id")
            .union(on_traces.values(*_BADGE_FIELDS, "id"), all=True)
            .order_by("name", "id")
        )
    else:
        for row in rows:
            owners.setdefault(("span", row.pk), []).append(row)
        items = (
            Annotation.objects.filter(span_id__in=[row.pk for row in rows])
            .order_by("name", "id")
            .values(*_BADGE_FIELDS)
        )
    found: dict[int, dict[tuple[bool, str, str, str], Badge]] = {}
    for item in items:
        if tab == "traces":
            key = ("trace", item["span__trace_id"] or item["trace_id"])
        elif tab == "sessions":
            key = ("session", item["session_id"])
        else:
            key = ("span", item["span_id"])
        badge = _badge(item)
        machine = item["annotator_kind"] in MACHINE_KINDS
        for owner in owners.get(key, ()):
            mine = found.setdefault(id(owner), {})
            same = mine.get((machine, badge.name, badge.text, badge.tone))
            if same is not None:
                same.count += 1
                continue
            badge = Badge(badge.name, badge.text, badge.tone, badge.explanation)
            mine[(machine, badge.name, badge.text, badge.tone)] = badge
            (owner.eval_badges if machine else owner.note_badges).append(badge)
    for row in rows:
        row.eval_badges.sort(key=lambda badge: (badge.name, -badge.count, badge.text))
        row.note_badges.sort(key=lambda badge: (badge.name, -badge.count, badge.text))


_GOOD_LABELS: Final = {"correct", "factual", "relevant", "pass", "passed", "good", "yes", "true"}
_BAD_LABELS: Final = {
    "incorrect",
    "hallucinated",
    "unrelated",
    "irrelevant",
    "fail",
    "failed",
    "bad",
    "no",
    "false",
    "toxic",
}


def _badge(item: dict[str, Any]) -> Badge:
    label, score = item["label"], item["score"]
    if label:
        text = label
    elif score is not None:
        text = f"{score:g}"
    else:
        text = "—"
    tone = ""
    if label and label.lower() in _GOOD_LABELS:
        tone = "ok"
    elif label and label.lower() in _BAD_LABELS:
        tone = "error"
    elif not label and score is not None:
        tone = "ok" if score >= 0.5 else "error"
    return Badge(item["name"], text, tone, item["explanation"] or "")
