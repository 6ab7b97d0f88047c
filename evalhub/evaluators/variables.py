"""Variable mapping: where each template variable's value comes from on a span.

Sources (a variable named like a source maps to it by default):

=========================  ===========================================================
``input`` / ``output``     the span's input / output value
``documents``              the retrieved documents' contents, numbered and joined (the
                           span's own, else those of the trace's retriever spans)
``reference``              the reference answer from metadata (``reference``,
                           ``expected_output``, ``expected`` or ``ground_truth``)
``metadata.<path>``        a key of the span's metadata (dots go deeper)
``attributes.<path>``      an attribute, e.g. ``attributes.llm.input_messages``
``name`` ``status``        the span's name, status code, latency in ms, model name
``latency_ms`` ``model``
``trace.trajectory``       every span of the trace in order (trace granularity)
``session.conversation``   the session's turns, user and assistant (session granularity)
=========================  ===========================================================

Resolving reads the trace store and never writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evalhub.evaluators.judge import TemplateVariableMissing

if TYPE_CHECKING:
    from tracing.models import Span

SIMPLE_SOURCES = (
    "input",
    "output",
    "documents",
    "reference",
    "name",
    "status",
    "latency_ms",
    "model",
    "trace.trajectory",
    "session.conversation",
)
REFERENCE_KEYS = ("reference", "expected_output", "expected", "ground_truth")
_PATH = re.compile(r"^(attributes|metadata)\.[^.\s][^\s]*$")
MAX_FIELD_CHARS = 4000  # per span field in trajectories and conversations


def source_validate(source: str, *, variable: str) -> None:
    """Raise ``ValueError`` naming ``variable`` if ``source`` is not a known source."""
    if source in SIMPLE_SOURCES or _PATH.match(source):
        return
    raise ValueError(
        f"variable {{{variable}}}: unknown source {source!r} (use one of "
        f"{', '.join(SIMPLE_SOURCES)}, metadata.<key> or attributes.<path>)"
    )


def path_get(data: Any, path: str) -> Any:
    """The value at dotted ``path`` in nested dicts/lists, or ``_MISSING``."""
    node = data
    for part in path.split("."):
        if isinstance(node, Mapping):
            if part in node:
                node = node[part]
            else:
                return _MISSING
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    if isinstance(node, Mapping) and set(node) == {""}:
        return node[""]
    return node


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


def _messages_text(value: list[Any]) -> str | None:
    lines = []
    for item in value:
        message = item.get("message", item) if isinstance(item, Mapping) else None
        if not isinstance(message, Mapping) or "role" not in message:
            return None
        content = message.get("content")
        if content is None and message.get("contents"):
            content = " ".join(
                str(c.get("message_content", {}).get("text", ""))
                for c in message["contents"]
                if isinstance(c, Mapping)
            )
        line = f"{message['role']}: {content if content is not None else ''}"
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = (call.get("tool_call") or call).get("function", {})
                if isinstance(function, Mapping):
                    line += f"\n  → calls {function.get('name')}({function.get('arguments', '')})"
        lines.append(line)
    return "\n".join(lines)


def value_text(value: Any) -> str:
    """A value as prompt text: strings as they are, messages as ``role: content`` lines,
    anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        text = _messages_text(value)
        if text is not None:
            return text
    return json.dumps(value, ensure_ascii=False, default=str)


def _clip(text: str | None) -> str:
    if text is None:
        return ""
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + " …[truncated]"


def documents_of(attributes: Mapping[str, Any]) -> list[str]:
    docs = path_get(attributes, "retrieval.documents")
    if not isinstance(docs, list):
        return []
    contents = []
    for item in docs:
        document = item.get("document", item) if isinstance(item, Mapping) else None
        if isinstance(document, Mapping) and document.get("content") is not None:
            contents.append(str(document["content"]))
    return contents


def _documents(span: Any) -> str | None:
    from tracing.models import Span, SpanKind

    contents = documents_of(span.attributes or {})
    if not contents and span.trace_id is not None:
        for attributes in (
            Span.objects.filter(trace_id=span.trace_id, span_kind=SpanKind.RETRIEVER)
            .order_by("start_time", "id")
            .values_list("attributes", flat=True)
        ):
            contents.extend(documents_of(attributes or {}))
    if not contents:
        return None
    return "\n\n".join(f"[{i}] {content}" for i, content in enumerate(contents, 1))


def reference_of(metadata: Mapping[str, Any]) -> Any:
    for key in REFERENCE_KEYS:
        if metadata.get(key) is not None:
            return metadata[key]
    return _MISSING


def _trajectory(span: Any) -> str | None:
    from tracing.models import Span

    spans = list(Span.objects.filter(trace_id=span.trace_id).order_by("start_time", "id"))
    if not spans:
        return None
    depth: dict[str, int] = {}
    lines = []
    for number, item in enumerate(spans, 1):
        level = depth.get(item.parent_id or "", -1) + 1
        depth[item.span_id] = level
        indent = "  " * level
        status = " (ERROR)" if item.status_code == "ERROR" else ""
        lines.append(f"{indent}{number}. [{item.span_kind}] {item.name}{status}")
        if item.input_value:
            lines.append(f"{indent}   input: {_clip(item.input_value)}")
        if item.output_value:
            lines.append(f"{indent}   output: {_clip(item.output_value)}")
    return "\n".join(lines)


def _conversation(span: Any) -> str | None:
    from tracing.models import Span, Trace

    if span.session_id is None:
        return None
    roots = Trace.objects.filter(session_id=span.session_id).order_by("start_time", "id")
    root_ids = [r for r in roots.values_list("root_span_id", flat=True) if r]
    by_id = {s.span_id: s for s in Span.objects.filter(span_id__in=root_ids)}
    turns = []
    for root_id in root_ids:
        root = by_id.get(root_id)
        if root is None:
            continue
        if root.input_value:
            turns.append(f"User: {_clip(root.input_value)}")
        if root.output_value:
            turns.append(f"Assistant: {_clip(root.output_value)}")
    return "\n".join(turns) or None


def source_value(span: Span, source: str) -> Any:
    """The raw value of ``source`` on ``span`` (a ``tracing.models.Span``), or ``_MISSING``."""
    simple: dict[str, Any] = {
        "input": lambda: span.input_value,
        "output": lambda: span.output_value,
        "name": lambda: span.name,
        "status": lambda: span.status_code,
        "latency_ms": lambda: span.latency_ms,
        "model": lambda: span.model_name or None,
        "documents": lambda: _documents(span),
        "reference": lambda: reference_of(span.metadata or {}),
        "trace.trajectory": lambda: _trajectory(span),
        "session.conversation": lambda: _conversation(span),
    }
    if source in simple:
        value = simple[source]()
    elif source.startswith("metadata."):
        value = path_get(span.metadata or {}, source.removeprefix("metadata."))
    elif source.startswith("attributes."):
        value = path_get(span.attributes or {}, source.removeprefix("attributes."))
    else:
        raise ValueError(f"unknown source {source!r}")
    return _MISSING if value is None else value


def variables_resolve(
    *, mapping: Mapping[str, str], span: Span | None = None, values: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """Each variable of ``mapping`` (name → source) as text: from ``values`` when given there,
    else from ``span``. A variable with no value raises ``TemplateVariableMissing`` naming it
    and its source."""
    values = values or {}
    resolved: dict[str, str] = {}
    for name, source in mapping.items():
        if name in values and values[name] is not None:
            resolved[name] = value_text(values[name])
            continue
        if span is None:
            raise TemplateVariableMissing(name, "no span given and no value pasted")
        value = source_value(span, source)
        if value is _MISSING:
            raise TemplateVariableMissing(
                name, f"{source} is missing on span {span.span_id} ({span.name})", source=source
            )
        resolved[name] = value_text(value)
    return resolved


def is_missing(value: Any) -> bool:
    return value is _MISSING
