"""The trace page's span tree rows.

A trace can have thousands of spans; rendering each row through template nodes cost most of
the page's time budget (≈ 25 nodes a row), so the rows are written here in one pass. Every
value interpolated is a number or passed through ``html.escape`` (``& < > " '``, as Django's
``escape``) — span names and ids are user data — and only the markup written here is trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape  # Django's escape(), without its lazy-string wrapper: 5x faster here

from django import template
from django.utils.safestring import SafeString, mark_safe

from tracing.detail.presenter import TreeRow
from tracing.templatetags.span_kinds import kind_class

register = template.Library()


@register.simple_tag
def span_tree_rows(rows: Sequence[TreeRow], selected_id: str) -> SafeString:
    """The ``<li role="treeitem">`` rows of ``#span-tree``; ``selected_id`` is marked selected.

    Each row links to its span (``href`` for a new tab, ``hx-get`` for the pane; the list
    carries ``hx-target``/``hx-push-url``). ``data-depth`` and ``aria-expanded`` drive
    collapsing in ``detail.js``.
    """
    parts: list[str] = []
    add = parts.append
    for row in rows:
        selected = row.span_id == selected_id
        classes = "row"
        if row.is_error:
            classes += " error"
        if row.has_error_below:
            classes += " error-below"
        if selected:
            classes += " selected"
        span_id, url, kind = escape(row.span_id), escape(row.url), escape(row.kind)
        depth = int(row.depth)
        if row.child_count:
            expanded = ' aria-expanded="true"'
            plural = "" if row.child_count == 1 else "s"
            twisty = (
                '<button type="button" class="twisty" tabindex="-1" '
                f'aria-label="Collapse or expand" title="{int(row.child_count)} child span{plural}">'
                "</button>"
            )
        else:
            expanded = ""
            twisty = '<span class="twisty"></span>'
        badges = ""
        if row.is_error:
            badges += '<span class="badge error" title="This span failed">error</span>'
        if row.evaluation_count:
            plural = "" if row.evaluation_count == 1 else "s"
            badges += (
                f'<span class="badge accent" title="{escape(row.evaluation_summary)}">'
                f"{int(row.evaluation_count)} eval{plural}</span>"
            )
        add(
            f'<li role="treeitem" class="{classes}" data-span-id="{span_id}" '
            f'data-depth="{depth}" aria-level="{depth + 1}" '
            f'aria-selected="{"true" if selected else "false"}"{expanded}>'
            f'<span class="label">{twisty}<a class="span-link" href="{url}" hx-get="{url}">'
            f'<span class="kind {kind_class(row.kind)}">{kind}</span> '
            f'<span class="span-name">{escape(row.name)}</span></a>{badges}</span>'
            f'<span class="bar-track"><span class="bar" data-bar="{escape(row.bar_style)}">'
            f'</span></span><span class="dur">{escape(row.duration)}</span></li>\n'
        )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above
