"""One span laid out for its pane on the trace page, by its OpenInference kind: messages,
tools, documents, embeddings, exceptions, attributes, and its evaluations and annotations.

Plain data for templates; span content stays ``str`` and is never marked safe (the templates
escape it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

from annotations.models import Annotation, AnnotatorKind
from tracing.detail.formatting import (
    TextBlock,
    TreeItem,
    attribute_tree,
    duration_text,
    json_text,
    pretty_json,
    result_text,
    scalar_text,
    text_block,
)
from tracing.models import Span, SpanKind, StatusCode
from tracing.store.records import flatten

ANNOTATION_ORDER: Final = ("name", "identifier", "-updated_at", "id")

SpanUrl = Callable[[str], str]


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
                arguments=json_text(_get(call, "function", "arguments")),
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
                score=scalar_text(score) if score is not None else "",
                metadata=json_text(document.get("metadata")) if document.get("metadata") else "",
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
                    attributes=[(k, scalar_text(v)) for k, v in attributes.items()],
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
                result=result_text(item.label, item.score),
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
            invocation_parameters=json_text(llm.get("invocation_parameters")),
            input_messages=_messages(llm.get("input_messages")),
            output_messages=_messages(llm.get("output_messages")),
            tools=[
                (
                    _text(_get(_json_value(_get(t, "tool", "json_schema")), "function", "name"))
                    or f"tool {i + 1}",
                    json_text(_get(t, "tool", "json_schema")),
                )
                for i, t in enumerate(_items(llm.get("tools")))
            ],
            prompt_template=_text(_get(llm, "prompt_template", "template")),
            prompt_template_variables=json_text(_get(llm, "prompt_template", "variables")),
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
            tool_parameters=json_text(tool.get("parameters")),
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


def span_annotations(*, span: Span) -> list[Annotation]:
    """A span's evaluations and annotations, by name."""
    return list(
        Annotation.objects.filter(span=span).select_related("user").order_by(*ANNOTATION_ORDER)
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
