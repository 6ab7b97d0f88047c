"""Reads for the trace browser's detail pages: a trace as a span tree with a waterfall, one span
laid out by its OpenInference kind, and a session as the turns of a conversation.

Everything here returns plain data for templates. Span content (names, inputs, outputs,
attributes, events) is user data: it is returned as ``str`` and never marked safe, so the
templates escape it; JSON is pretty-printed to text for the same reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, NamedTuple, Protocol

from django.db.models import F

from annotations.models import Annotation, AnnotatorKind
from tracing.models import Session, Span, SpanKind, StatusCode, Trace
from tracing.store.records import flatten

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
# Lists of numbers longer than this are shown by their length (embedding vectors).
MAX_NUMBERS_SHOWN: Final = 16
# JSON longer than this is shown as it came rather than parsed and indented.
MAX_PRETTY_CHARS: Final = 1_000_000
ANNOTATION_ORDER: Final = ("name", "identifier", "-updated_at", "id")

SpanUrl = Callable[[str], str]


# --- formatting -------------------------------------------------------------------------------


def duration_text(ms: float | None) -> str:
    """``0.42`` → ``"0.42 ms"``, ``812.3`` → ``"812 ms"``, ``1534`` → ``"1.53 s"``,
    ``125000`` → ``"2m 5s"``."""
    if ms is None:
        return ""
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m {seconds}s"


def pretty_json(value: Any) -> str:
    """Indented JSON text (non-ASCII kept as is); the caller's template escapes it."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@dataclass(frozen=True, slots=True)
class TextBlock:
    """A value to show in a ``<pre>``: JSON indented when it is JSON, else the text itself."""

    text: str
    is_json: bool


def text_block(value: Any, mime_type: str = "") -> TextBlock | None:
    """``None`` for no value; JSON (by mime type or because it parses as an object or array)
    indented; other text as it is."""
    if value is None:
        return None
    if not isinstance(value, str):
        return TextBlock(pretty_json(value), True)
    stripped = value.strip()
    looks_json = "json" in mime_type.lower() or stripped[:1] in ("{", "[")
    if looks_json and stripped and len(value) <= MAX_PRETTY_CHARS:
        try:
            parsed = json.loads(stripped)
        except ValueError:
            return TextBlock(value, False)
        if isinstance(parsed, dict | list):
            return TextBlock(pretty_json(parsed), True)
    return TextBlock(value, False)


def _json_text(value: Any) -> str:
    """A JSON-ish attribute (``llm.invocation_parameters``, ``tool.parameters``) as text."""
    block = text_block(value, "application/json")
    return block.text if block else ""


def _scalar_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e6 else f"{value:.4f}"
    if isinstance(value, dict | list):
        return pretty_json(value)
    return str(value)


# --- nested attribute access ------------------------------------------------------------------


def _get(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...`` through dicts, or ``None`` where the shape differs."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _items(value: Any) -> list[Any]:
    """An OpenInference list as stored: a list, or (for gaps in the indexes) a dict with digit
    keys, in index order."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping) and value and all(str(k).isdigit() for k in value):
        return [value[k] for k in sorted(value, key=int)]
    return []


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return pretty_json(value)


# --- the attribute tree -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeItem:
    """One token of a nested ``<details>`` tree, emitted in document order: ``open`` starts a
    branch (``key``, ``summary``), ``close`` ends one, anything else is a leaf."""

    kind: str  # "open" | "close" | "leaf"
    key: str = ""
    value: str = ""
    summary: str = ""
    is_open: bool = False
    multiline: bool = False


def attribute_tree(value: Mapping[str, Any], *, open_depth: int = 1) -> list[TreeItem]:
    """Nested attributes → tokens for nested ``<details>``; branches shallower than
    ``open_depth`` start open. Long lists of numbers (vectors) are summarised by length."""
    items: list[TreeItem] = []
    _tree_walk(value, 0, open_depth, items)
    return items


def _tree_walk(
    value: Mapping[str, Any] | list[Any], depth: int, open_depth: int, out: list[TreeItem]
) -> None:
    pairs: Iterable[tuple[str, Any]] = (
        (((str(k) if k != "" else "(value)"), v) for k, v in value.items())
        if isinstance(value, Mapping)
        else ((f"[{i}]", v) for i, v in enumerate(value))
    )
    for key, child in pairs:
        if isinstance(child, list) and _is_vector(child):
            out.append(TreeItem("leaf", key, f"[{len(child)} numbers]"))
        elif isinstance(child, Mapping | list) and child:
            size = len(child)
            summary = f"{{{size}}}" if isinstance(child, Mapping) else f"[{size}]"
            out.append(TreeItem("open", key, summary=summary, is_open=depth < open_depth))
            _tree_walk(child, depth + 1, open_depth, out)
            out.append(TreeItem("close"))
        else:
            text = (
                _scalar_text(child) if not isinstance(child, Mapping | list) else pretty_json(child)
            )
            out.append(TreeItem("leaf", key, text, multiline="\n" in text or len(text) > 120))


def _is_vector(value: list[Any]) -> bool:
    return len(value) > MAX_NUMBERS_SHOWN and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )


# --- the span pane ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolCallView:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class MessageView:
    role: str
    name: str
    content: str
    parts: list[str]
    tool_calls: list[ToolCallView]
    tool_call_id: str


@dataclass(frozen=True, slots=True)
class DocumentResultView:
    """An evaluation or annotation of one retrieved document (e.g. its relevance)."""

    name: str
    result: str
    annotator_kind: str
    explanation: str


@dataclass(frozen=True, slots=True)
class DocumentView:
    id: str
    content: str
    score: str
    metadata: str
    results: tuple[DocumentResultView, ...] = ()


@dataclass(frozen=True, slots=True)
class EmbeddingView:
    text: str
    dimension: int | None


@dataclass(frozen=True, slots=True)
class ExceptionView:
    type: str
    message: str
    stacktrace: str
    escaped: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class EventView:
    name: str
    timestamp: str
    attributes: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class SpanPane:
    """One span laid out for reading: the sections its kind calls for, then its events,
    attributes, evaluations (by LLM or code) and annotations (by people)."""

    span: Span
    url: str
    is_error: bool
    duration: str
    # LLM
    model: str = ""
    provider: str = ""
    invocation_parameters: str = ""
    input_messages: list[MessageView] = field(default_factory=list)
    output_messages: list[MessageView] = field(default_factory=list)
    tools: list[tuple[str, str]] = field(default_factory=list)  # (name, JSON schema)
    prompt_template: str = ""
    prompt_template_variables: str = ""
    prompt_template_version: str = ""
    # RETRIEVER / RERANKER
    documents: list[DocumentView] = field(default_factory=list)
    reranker_query: str = ""
    reranker_top_k: str = ""
    reranker_input: list[DocumentView] = field(default_factory=list)
    reranker_output: list[DocumentView] = field(default_factory=list)
    # EMBEDDING
    embeddings: list[EmbeddingView] = field(default_factory=list)
    # TOOL
    tool_name: str = ""
    tool_description: str = ""
    tool_parameters: str = ""
    # every kind
    input: TextBlock | None = None
    output: TextBlock | None = None
    exceptions: list[ExceptionView] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)
    attributes: list[TreeItem] = field(default_factory=list)
    metadata: list[TreeItem] = field(default_factory=list)
    evaluations: list[Annotation] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def has_llm(self) -> bool:
        return bool(self.model or self.input_messages or self.output_messages)

    @property
    def status_message(self) -> str:
        """The status message, unless an exception below already says it."""
        message = self.span.status_message
        repeated = any(message in (e.message, f"{e.type}: {e.message}") for e in self.exceptions)
        return "" if repeated else message

    @property
    def io_collapsed(self) -> bool:
        """LLM spans repeat their messages in input/output: those start closed there."""
        return bool(self.input_messages or self.output_messages)


def _message(raw: Any) -> MessageView | None:
    message = _get(raw, "message")
    if not isinstance(message, Mapping):
        return None
    parts = []
    for item in _items(message.get("contents")):
        content = _get(item, "message_content")
        text = _get(content, "text")
        if text is not None:
            parts.append(_text(text))
        elif (url := _get(content, "image", "image", "url")) is not None:
            parts.append(f"[image] {_text(url)}")
    calls = []
    for item in _items(message.get("tool_calls")):
        call = _get(item, "tool_call")
        calls.append(
            ToolCallView(
                id=_text(_get(call, "id")),
                name=_text(_get(call, "function", "name")),
                arguments=_json_text(_get(call, "function", "arguments")),
            )
        )
    return MessageView(
        role=_text(message.get("role")) or "unknown",
        name=_text(message.get("name")),
        content=_text(message.get("content")),
        parts=parts,
        tool_calls=calls,
        tool_call_id=_text(message.get("tool_call_id")),
    )


def _messages(value: Any) -> list[MessageView]:
    return [m for m in (_message(raw) for raw in _items(value)) if m is not None]


def _documents(value: Any) -> list[DocumentView]:
    documents = []
    for raw in _items(value):
        document = _get(raw, "document")
        if not isinstance(document, Mapping):
            continue
        score = document.get("score")
        documents.append(
            DocumentView(
                id=_text(document.get("id")),
                content=_text(document.get("content")),
                score=_scalar_text(score) if score is not None else "",
                metadata=_json_text(document.get("metadata")) if document.get("metadata") else "",
            )
        )
    return documents


def _events(events: Any) -> tuple[list[ExceptionView], list[EventView]]:
    exceptions: list[ExceptionView] = []
    others: list[EventView] = []
    for event in events if isinstance(events, list) else []:
        if not isinstance(event, Mapping):
            continue
        raw = event.get("attributes")
        attributes = flatten(raw) if isinstance(raw, Mapping) else {}
        timestamp = _text(event.get("timestamp"))
        name = _text(event.get("name"))
        if name == "exception" or "exception.type" in attributes:
            exceptions.append(
                ExceptionView(
                    type=_text(attributes.get("exception.type")),
                    message=_text(attributes.get("exception.message")),
                    stacktrace=_text(attributes.get("exception.stacktrace")),
                    escaped=_text(attributes.get("exception.escaped")),
                    timestamp=timestamp,
                )
            )
        else:
            others.append(
                EventView(
                    name=name,
                    timestamp=timestamp,
                    attributes=[(k, _scalar_text(v)) for k, v in attributes.items()],
                )
            )
    return exceptions, others


def _split_annotations(items: Iterable[Annotation]) -> tuple[list[Annotation], list[Annotation]]:
    """A span's own evaluations and people's annotations (its documents' results aside)."""
    evaluations: list[Annotation] = []
    annotations: list[Annotation] = []
    for item in items:
        if item.document_position is not None:
            continue
        (annotations if item.annotator_kind == AnnotatorKind.HUMAN else evaluations).append(item)
    return evaluations, annotations


def _with_document_results(
    documents: list[DocumentView], annotations: Iterable[Annotation]
) -> list[DocumentView]:
    """The documents with the results stored on them (by position), in name order."""
    by_position: dict[int, list[DocumentResultView]] = {}
    for item in annotations:
        if item.document_position is None:
            continue
        by_position.setdefault(item.document_position, []).append(
            DocumentResultView(
                name=item.name,
                result=_result_text(item.label, item.score),
                annotator_kind=item.annotator_kind,
                explanation=item.explanation or "",
            )
        )
    return [
        replace(doc, results=tuple(by_position.get(position, ())))
        for position, doc in enumerate(documents)
    ]


def span_pane_build(*, span: Span, url: str, annotations: Sequence[Annotation]) -> SpanPane:
    """Lay out a fully loaded span for its pane (no queries)."""
    attrs: Mapping[str, Any] = span.attributes if isinstance(span.attributes, Mapping) else {}
    llm = _get(attrs, "llm")
    exceptions, events = _events(span.events)
    evaluations, human = _split_annotations(annotations)
    parts: dict[str, Any] = {}
    if isinstance(llm, Mapping):
        parts.update(
            provider=_text(llm.get("provider") or llm.get("system")),
            invocation_parameters=_json_text(llm.get("invocation_parameters")),
            input_messages=_messages(llm.get("input_messages")),
            output_messages=_messages(llm.get("output_messages")),
            tools=[
                (
                    _text(_get(_json_value(_get(t, "tool", "json_schema")), "function", "name"))
                    or f"tool {i + 1}",
                    _json_text(_get(t, "tool", "json_schema")),
                )
                for i, t in enumerate(_items(llm.get("tools")))
            ],
            prompt_template=_text(_get(llm, "prompt_template", "template")),
            prompt_template_variables=_json_text(_get(llm, "prompt_template", "variables")),
            prompt_template_version=_text(_get(llm, "prompt_template", "version")),
        )
    if span.span_kind == SpanKind.RETRIEVER or _get(attrs, "retrieval", "documents"):
        parts["documents"] = _with_document_results(
            _documents(_get(attrs, "retrieval", "documents")), annotations
        )
    reranker = _get(attrs, "reranker")
    if isinstance(reranker, Mapping):
        parts.update(
            reranker_query=_text(reranker.get("query")),
            reranker_top_k=_text(reranker.get("top_k")),
            reranker_input=_documents(reranker.get("input_documents")),
            reranker_output=_documents(reranker.get("output_documents")),
        )
    embeddings = _get(attrs, "embedding", "embeddings")
    if embeddings is not None:
        parts["embeddings"] = [
            EmbeddingView(
                text=_text(_get(item, "embedding", "text")),
                dimension=len(v)
                if isinstance(v := _get(item, "embedding", "vector"), list)
                else None,
            )
            for item in _items(embeddings)
        ]
    tool = _get(attrs, "tool")
    if isinstance(tool, Mapping):
        parts.update(
            tool_name=_text(tool.get("name")),
            tool_description=_text(tool.get("description")),
            tool_parameters=_json_text(tool.get("parameters")),
        )
    model = span.model_name or _text(
        _get(llm, "model_name")
        or _get(attrs, "embedding", "model_name")
        or _get(reranker, "model_name")
    )
    return SpanPane(
        span=span,
        url=url,
        is_error=span.status_code == StatusCode.ERROR,
        duration=duration_text(span.latency_ms),
        model=model,
        input=text_block(span.input_value, span.input_mime_type),
        output=text_block(span.output_value, span.output_mime_type),
        exceptions=exceptions,
        events=events,
        attributes=attribute_tree(attrs),
        metadata=attribute_tree(span.metadata) if isinstance(span.metadata, Mapping) else [],
        evaluations=evaluations,
        annotations=human,
        **parts,
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


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


def _result_text(label: str | None, score: float | None) -> str:
    return label if label is not None else _scalar_text(score)


def trace_get(*, project_name: str, trace_id: str) -> Trace | None:
    """The trace with this id in the project of this name (with both loaded), else ``None``."""
    return (
        Trace.objects.select_related("project", "session")
        .filter(project__name=project_name, trace_id=trace_id)
        .first()
    )


def span_annotations(*, span: Span) -> list[Annotation]:
    """A span's evaluations and annotations, by name."""
    return list(
        Annotation.objects.filter(span=span).select_related("user").order_by(*ANNOTATION_ORDER)
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
        results.setdefault(span_pk, []).append(f"{name}: {_result_text(label, score)}")
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


def span_pane_get(
    *, project_name: str, trace_id: str, span_id: str, span_url: SpanUrl
) -> SpanPane | None:
    """One span's pane (for htmx): the span, loaded fully, and its evaluations."""
    span = Span.objects.filter(
        project__name=project_name, trace__trace_id=trace_id, span_id=span_id
    ).first()
    if span is None:
        return None
    return span_pane_build(
        span=span, url=span_url(span.span_id), annotations=span_annotations(span=span)
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


__all__ = [
    "DocumentResultView",
    "DocumentView",
    "EmbeddingView",
    "EventView",
    "ExceptionView",
    "MessageView",
    "SessionDetail",
    "SessionTurn",
    "SpanPane",
    "TextBlock",
    "ToolCallView",
    "TraceDetail",
    "TreeItem",
    "TreeRow",
    "TreeSpan",
    "attribute_tree",
    "duration_text",
    "pretty_json",
    "session_detail_get",
    "span_pane_build",
    "span_pane_get",
    "span_tree",
    "text_block",
    "trace_detail_get",
    "trace_get",
]
