"""The one filter language for spans: ``compile_filter(text)`` → ``Q`` for ``Span`` querysets.

    from tracing.query import FilterError, compile_filter
    spans = Span.objects.filter(compile_filter("latency_ms > 1000 and eval.Correctness.label = 'wrong'"))

``FIELDS`` is the catalogue of fields (name → ``FieldSpec`` with ``type`` and ``description``).
``trace_matches`` / ``session_matches`` say what a span filter means for a trace or a session
(any of its spans matches). The language is described in docs/filter-language.md.
"""

from tracing.query.compiler import compile_filter
from tracing.query.errors import FilterError
from tracing.query.fields import FIELDS, FieldSpec
from tracing.query.units import session_matches, trace_matches

__all__ = [
    "FIELDS",
    "FieldSpec",
    "FilterError",
    "compile_filter",
    "session_matches",
    "trace_matches",
]
