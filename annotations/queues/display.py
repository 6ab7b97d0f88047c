"""An item of a labeling queue laid out for labelling: its span, trace or session as the trace
browser's detail pages show it (``tracing.detail.presenter``), with machine results left out
when the queue hides them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from annotations.models import (
    Annotation,
    AnnotatorKind,
)
from annotations.queues.models import (
    LabelingQueueItem,
)
from annotations.queues.selectors import item_target_id
from tracing.detail.presenter import (
    SessionDetail,
    TraceDetail,
    session_detail_get,
    trace_detail_get,
)
from tracing.detail.span_pane import SpanPane, span_pane_get


@dataclass(frozen=True, slots=True)
class ItemDisplay:
    """What the labeling view shows of an item, from the trace browser's detail selectors: a
    span's pane; a trace's span tree and selected span (its root unless one is picked); a
    session's conversation."""

    kind: str
    target_id: str
    project_name: str
    pane: SpanPane | None = None
    trace: TraceDetail | None = None
    root: SpanPane | None = None  # a trace's root span, for its input and output
    session: SessionDetail | None = None
    machine_results_hidden: bool = False

    @property
    def found(self) -> bool:
        return self.pane is not None or self.session is not None


def _humans_only(annotations: Sequence[Annotation]) -> list[Annotation]:
    return [a for a in annotations if a.annotator_kind == AnnotatorKind.HUMAN]


def _without_machine_results(display: ItemDisplay) -> ItemDisplay:
    """``display`` with the results of judges and code evaluators left out (spans' panes, the
    span tree's badges, a trace's and a session's own results); people's labels stay."""

    def pane(value: SpanPane | None) -> SpanPane | None:
        return None if value is None else replace(value, evaluations=[])

    trace = display.trace
    if trace is not None:
        trace = replace(
            trace,
            rows=[replace(r, evaluation_count=0, evaluation_summary="") for r in trace.rows],
            selected=replace(trace.selected, evaluations=[]),
            trace_annotations=_humans_only(trace.trace_annotations),
        )
    session = display.session
    if session is not None:
        session = replace(
            session,
            evaluations=_humans_only(session.evaluations),
            turns=[replace(t, evaluations=_humans_only(t.evaluations)) for t in session.turns],
        )
    return replace(
        display,
        pane=pane(display.pane),
        root=pane(display.root),
        trace=trace,
        session=session,
        machine_results_hidden=True,
    )


def queue_item_display(
    *,
    item: LabelingQueueItem,
    span_url: Callable[[str], str],
    span_id: str | None = None,
    hide_machine_results: bool = False,
) -> ItemDisplay:
    """Lay the item out for labelling; ``span_url(span_id)`` links a trace's spans, and
    ``span_id`` selects one of them. With ``hide_machine_results`` evaluators' results are
    left out (the queue's setting, until the person has submitted)."""
    display = _item_display(item=item, span_url=span_url, span_id=span_id)
    return _without_machine_results(display) if hide_machine_results else display


def _item_display(
    *, item: LabelingQueueItem, span_url: Callable[[str], str], span_id: str | None
) -> ItemDisplay:
    project_name = item.project.name
    target_id = item_target_id(item)
    kind = item.queue.item_kind
    if item.span_id is not None:
        span = item.span
        pane = span_pane_get(
            project_name=project_name,
            trace_id=span.trace.trace_id,  # type: ignore[union-attr]  # a stored span has its trace
            span_id=target_id,
            span_url=span_url,
        )
        return ItemDisplay(kind, target_id, project_name, pane=pane)
    if item.trace_id is not None:
        detail = None
        if span_id:
            detail = trace_detail_get(
                project_name=project_name, trace_id=target_id, span_id=span_id, span_url=span_url
            )
        if detail is None:
            detail = trace_detail_get(
                project_name=project_name, trace_id=target_id, span_id=None, span_url=span_url
            )
        if detail is None:
            return ItemDisplay(kind, target_id, project_name)
        root = detail.selected
        root_id = detail.rows[0].span_id if detail.rows else None
        if root_id and root.span.span_id != root_id:
            root = (
                span_pane_get(
                    project_name=project_name,
                    trace_id=target_id,
                    span_id=root_id,
                    span_url=span_url,
                )
                or root
            )
        return ItemDisplay(
            kind, target_id, project_name, pane=detail.selected, trace=detail, root=root
        )
    session = session_detail_get(project_name=project_name, session_id=target_id)
    return ItemDisplay(kind, target_id, project_name, session=session)
