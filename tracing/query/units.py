"""What a span filter means for a trace or a session: **a trace (a session) matches when any
of its spans matches**. The Traces and Sessions tabs, tasks at trace and session granularity,
queue filters, backfill counts, dataset selection and the traces API all ask here, so the rule
is the same everywhere. "Root span only" is the old rule for traces — the trace's root span
must match — and is also what ``parent_id IS NULL and (…)`` says in the language.

Each condition is an ``EXISTS`` over the trace's (session's) spans, which PostgreSQL runs as a
semi-join: per candidate row through the ``(trace, start_time)`` index when matches are common,
or by collecting the trace ids of the matching spans first when they are rare.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q

from tracing.models import Span


def trace_matches(condition: Q, *, trace: str = "trace_id", root_only: bool = False) -> Q:
    """A condition on rows that stand for traces — root spans (``trace="trace_id"``, the
    column holding the trace) or ``Trace`` rows (``trace="pk"``) — true when a span of the
    trace matches ``condition`` (with ``root_only``, when its root span does)."""
    spans = Span.objects.filter(condition, trace_id=OuterRef(trace))
    if root_only:
        spans = spans.filter(parent_id__isnull=True)
    return Q(Exists(spans))


def session_matches(condition: Q, *, session: str = "pk") -> Q:
    """A condition on ``Session`` rows (``session="pk"``) or on rows holding a session in
    ``session``: true when a span of the session matches ``condition``."""
    return Q(Exists(Span.objects.filter(condition, session_id=OuterRef(session))))


__all__ = ["session_matches", "trace_matches"]
