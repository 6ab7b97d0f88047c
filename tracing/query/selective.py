"""Spans found from the annotations' side when a filter's evaluation condition is selective.

``eval.Correctness.label = 'incorrect'`` compiles to "an annotation of the span matches"
(``tracing.query.compiler``). Read newest first, a page walks the spans by time and probes the
annotations for each: cheap when most spans match, a scan of about limit * spans / matches spans
when one span in hundreds does. When such a condition is ANDed with the rest of the filter
and few annotations match (at most ``SELECTIVE_MAX``), ``spans_found_by`` names the spans they
are on — the span ids, plus, for root spans, the trace and session ids — as a plain condition
the span query adds to the whole filter: an index look-up per match instead of a walk. It only
narrows to spans the filter would keep anyway, so rows and order are the same either way.
"""

from __future__ import annotations

from typing import Final

from django.db.models import Q

from tracing.query.compiler import NOTHING, AnnotationConjunct, annotation_conjuncts

# The most matching annotations read to narrow a page (they are named in the span query).
SELECTIVE_MAX: Final = 20_000


def spans_found_by(filter_expr: str | None, *, limit: int | None = None) -> Q | None:
    """A condition that every span matching ``filter_expr`` meets, naming the spans one of its
    selective annotation conditions finds (at most ``limit`` annotations match it, by default
    ``SELECTIVE_MAX``), or ``None`` when the filter has no such condition. Raises
    ``FilterError`` for a bad filter."""
    if not filter_expr or not filter_expr.strip():
        return None
    for conjunct in annotation_conjuncts(filter_expr):
        found = _found(conjunct, SELECTIVE_MAX if limit is None else limit)
        if found is not None:
            return found
    return None


def _found(conjunct: AnnotationConjunct, limit: int) -> Q | None:
    annotations = conjunct.annotations
    if conjunct.on_trace:
        annotations = annotations.filter(trace__isnull=False)
    rows = list(annotations.values_list("span_id", "trace_id", "session_id")[: limit + 1])
    if len(rows) > limit:
        return None
    spans = {span for span, _, _ in rows if span is not None}
    traces = {trace for _, trace, _ in rows if trace is not None}
    sessions = {session for _, _, session in rows if session is not None}
    if conjunct.on_trace:
        return Q(trace_id__in=sorted(traces)) if traces else NOTHING
    found = Q(pk__in=sorted(spans)) if spans else NOTHING
    roots = Q(trace_id__in=sorted(traces)) if traces else NOTHING
    if sessions:
        roots |= Q(session_id__in=sorted(sessions))
    if traces or sessions:
        found |= Q(parent_id__isnull=True) & roots
    return found
