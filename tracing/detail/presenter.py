"""Reads for the trace browser's detail pages: a trace as a span tree with a waterfall (its
selected span laid out by ``tracing.detail.span_pane``), and a session as the turns of a
conversation.

Everything here returns plain data for templates. Span content (names, inputs, outputs,
attributes, events) is user data: it is returned as ``str`` and never marked safe, so the
templates escape it (``tracing.detail.formatting``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, NamedTuple, Protocol

from django.db.models import F

from annotations.models import Annotation
from tracing.detail.formatting import TextBlock, duration_text, result_text, text_block
from tracing.detail.span_pane import (
    ANNOTATION_ORDER,
    SpanPane,
    SpanUrl,
    span_annotations,
    span_pane_build,
)
from tracing.models import Session, Span, StatusCode, Trace

TREE_FIELDS: Final = (  # the order of ``TreeSpan``
    "id",
    "span_id",
    "parent_id",
    "name",
    "span_kind",
    "status_code",
    "start_time",
    "end_time",
    "latency_ms",
)


# --- the trace page ---------------------------------------------------------------------------


class TreeSpan(NamedTuple):
    """The columns of a span the tree needs (read with ``values_list``: a trace may have
    thousands of spans, and model instances cost more than the page can afford)."""

    pk: int
    span_id: str
    parent_id: str | None
    name: str
    span_kind: str
    status_code: str
    start_time: datetime
    end_time: datetime
    latency_ms: float


@dataclass(frozen=True, slots=True)
class TreeRow:
    """A span's row in the tree, in pre-order, with what the row shows precomputed."""

    span_id: str
    name: str
    kind: str
    depth: int
    child_count: int
    is_error: bool
    has_error_below: bool
    duration: str
    bar_style: str  # "left:..%;width:..%" — numbers only
    url: str
    evaluation_count: int
    evaluation_summary: str


@dataclass(frozen=True, slots=True)
class TraceDetail:
    trace: Trace
    rows: list[TreeRow]
    selected: SpanPane
    trace_annotations: list[Annotation]
    duration: str
    error_count: int


class _TreeNode(Protocol):
    @property
    def span_id(self) -> str: ...
    @property
    def parent_id(self) -> str | None: ...


def span_tree[N: _TreeNode](spans: Sequence[N]) -> list[tuple[N, int, int]]:
    """Spans in start order → ``(span, depth, child count)`` in pre-order, children in start
    order. Spans whose parent is not in the trace are roots; a parent cycle cannot hide a span."""
    by_id = {span.span_id: span for span in spans}
    children: dict[str, list[N]] = {}
    roots: list[N] = []
    for span in spans:
        if span.parent_id and span.parent_id in by_id and span.parent_id != span.span_id:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    ordered: list[tuple[N, int, int]] = []
    seen: set[str] = set()

    def walk(starts: list[N]) -> None:
        stack = [(span, 0) for span in reversed(starts)]
        while stack:
            span, depth = stack.pop()
            if span.span_id in seen:
                continue
            seen.add(span.span_id)
            kids = children.get(span.span_id, [])
            ordered.append((span, depth, len(kids)))
            stack.extend((kid, depth + 1) for kid in reversed(kids))

    walk(roots)
    if len(seen) < len(spans):  # spans in a parent cycle: show them rather than lose them
        walk([span for span in spans if span.span_id not in seen])
    return ordered


def _errors_below(tree: list[tuple[TreeSpan, int, int]]) -> list[bool]:
    """For each pre-order row, whether a descendant has status ERROR."""
    below = [False] * len(tree)
    stack: list[tuple[int, int]] = []  # (row index, depth) of the open ancestors
    for index, (span, depth, _kids) in enumerate(tree):
        while stack and stack[-1][1] >= depth:
            stack.pop()
        if span.status_code == StatusCode.ERROR:
            for ancestor, _ in stack:
                if below[ancestor]:
                    break
                below[ancestor] = True
        stack.append((index, depth))
    return below


def _waterfall(span: TreeSpan, start: datetime, total_ms: float) -> str:
    offset = (span.start_time - start).total_seconds() * 1000 / total_ms * 100
    offset = min(max(offset, 0.0), 100.0)
    width = min(max(span.latency_ms / total_ms * 100, 0.0), 100.0 - offset)
    return f"left:{offset:.3f}%;width:{width:.3f}%"


def trace_get(*, project_name: str, trace_id: str) -> Trace | None:
    """The trace with this id in the project of this name (with both loaded), else ``None``."""
    return (
        Trace.objects.select_related("project", "session")
        .filter(project__name=project_name, trace_id=trace_id)
        .first()
    )


def trace_detail_get(
    *, project_name: str, trace_id: str, span_id: str | None, span_url: SpanUrl
) -> TraceDetail | None:
    """The trace page: the span tree (one query, start order) with waterfall positions as
    percentages of the trace's duration, the evaluations of every span (one query, for the
    rows' badges), the trace's own evaluations, and the selected span (``span_id``, else the
    first root) loaded fully and laid out with its evaluations.
    ``None`` when the project, the trace or the span is not there."""
    trace = trace_get(project_name=project_name, trace_id=trace_id)
    if trace is None:
        return None
    spans = [
        TreeSpan(*values)
        for values in Span.objects.filter(trace=trace)
        .order_by("start_time", "id")
        .values_list(*TREE_FIELDS)
    ]
    if not spans:
        return None
    tree = span_tree(spans)
    if span_id is None:
        selected_id = tree[0][0].span_id
    elif any(span.span_id == span_id for span in spans):
        selected_id = span_id
    else:
        return None
    selected = Span.objects.filter(trace=trace, span_id=selected_id).first()
    if selected is None:
        return None

    results: dict[int, list[str]] = {}
    for span_pk, name, label, score in (
        Annotation.objects.filter(span__trace=trace)
        .order_by(*ANNOTATION_ORDER)
        .values_list("span_id", "name", "label", "score")
    ):
        results.setdefault(span_pk, []).append(f"{name}: {result_text(label, score)}")
    trace_annotations = list(
        Annotation.objects.filter(trace=trace).select_related("user").order_by(*ANNOTATION_ORDER)
    )

    start = min(span.start_time for span in spans)
    end = max(span.end_time for span in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    below = _errors_below(tree)
    rows = []
    for (span, depth, kids), error_below in zip(tree, below, strict=True):
        notes = results.get(span.pk, ())
        rows.append(
            TreeRow(
                span_id=span.span_id,
                name=span.name,
                kind=span.span_kind,
                depth=depth,
                child_count=kids,
                is_error=span.status_code == StatusCode.ERROR,
                has_error_below=error_below,
                duration=duration_text(span.latency_ms),
                bar_style=_waterfall(span, start, total_ms),
                url=span_url(span.span_id),
                evaluation_count=len(notes),
                evaluation_summary=", ".join(notes),
            )
        )
    return TraceDetail(
        trace=trace,
        rows=rows,
        selected=span_pane_build(
            span=selected,
            url=span_url(selected.span_id),
            annotations=span_annotations(span=selected) if selected.pk in results else [],
        ),
        trace_annotations=trace_annotations,
        duration=duration_text(total_ms),
        error_count=sum(1 for span in spans if span.status_code == StatusCode.ERROR),
    )


# --- the session page -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionTurn:
    """One trace of a conversation: what the user asked and was answered (its root span)."""

    number: int
    trace: Trace
    input: TextBlock | None
    output: TextBlock | None
    is_error: bool
    status_message: str
    duration: str
    evaluations: list[Annotation]


@dataclass(frozen=True, slots=True)
class SessionDetail:
    session: Session
    turns: list[SessionTurn]
    evaluations: list[Annotation]
    duration: str
    user_ids: list[str]


def session_detail_get(*, project_name: str, session_id: str) -> SessionDetail | None:
    """A session's traces in start order, each with its root span's input and output and the
    evaluations of its spans and of the trace; and the session's own evaluations."""
    session = (
        Session.objects.select_related("project")
        .filter(project__name=project_name, session_id=session_id)
        .first()
    )
    if session is None:
        return None
    traces = list(session.traces.order_by("start_time", "id"))
    roots: dict[int, Span] = {}
    for span in (
        Span.objects.filter(trace__session=session, parent_id__isnull=True)
        .order_by("start_time", "id")
        .only(
            "id",
            "trace_id",
            "span_id",
            "status_code",
            "status_message",
            "input_value",
            "input_mime_type",
            "output_value",
            "output_mime_type",
            "user_id",
        )
    ):
        roots.setdefault(span.trace_id, span)
    by_trace: dict[int, list[Annotation]] = {}
    for annotation in (
        Annotation.objects.filter(span__trace__session=session)
        .annotate(span_trace_pk=F("span__trace"))
        .order_by(*ANNOTATION_ORDER)
    ):
        by_trace.setdefault(annotation.span_trace_pk, []).append(annotation)
    for on_trace in Annotation.objects.filter(trace__session=session).order_by(*ANNOTATION_ORDER):
        by_trace.setdefault(on_trace.trace_id or 0, []).append(on_trace)
    turns = []
    for number, trace in enumerate(traces, start=1):
        root = roots.get(trace.pk)
        turns.append(
            SessionTurn(
                number=number,
                trace=trace,
                input=text_block(root.input_value, root.input_mime_type) if root else None,
                output=text_block(root.output_value, root.output_mime_type) if root else None,
                is_error=trace.error_count > 0,
                status_message=root.status_message if root else "",
                duration=duration_text(trace.latency_ms),
                evaluations=by_trace.get(trace.pk, []),
            )
        )
    evaluations = list(Annotation.objects.filter(session=session).order_by(*ANNOTATION_ORDER))
    duration = (
        duration_text((session.end_time - session.start_time).total_seconds() * 1000)
        if session.start_time and session.end_time
        else ""
    )
    return SessionDetail(
        session=session,
        turns=turns,
        evaluations=evaluations,
        duration=duration,
        user_ids=sorted({root.user_id for root in roots.values() if root.user_id}),
    )
