"""Template tags for labeling queues: the queues the trace browser's bulk action offers."""

from __future__ import annotations

from django import template

from annotations.queues.models import LabelingQueue
from annotations.queues.selectors import TAB_KINDS, queue_choices

register = template.Library()


@register.simple_tag
def queues_for_tab(tab: str) -> list[LabelingQueue]:
    """The queues that take the rows of a trace browser tab (spans, traces or sessions)."""
    kind = TAB_KINDS.get(tab)
    return queue_choices(item_kind=kind) if kind else []
