"""The one filter language for spans: ``compile_filter(text)`` → ``Q`` for ``Span`` querysets.

    from tracing.query import FilterError, compile_filter
    spans = Span.objects.filter(compile_filter("latency_ms > 1000 and eval.Correctness.label = 'wrong'"))

``FIELDS`` is the catalogue of fields (name → ``FieldSpec`` with ``type`` and ``description``).
The language is described in docs/filter-language.md.
"""

from tracing.query.compiler import compile_filter
from tracing.query.errors import FilterError
from tracing.query.fields import FIELDS, FieldSpec

__all__ = ["FIELDS", "FieldSpec", "FilterError", "compile_filter"]
